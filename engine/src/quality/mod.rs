//! Checks on written output: declared checks (streamed and SQL), and rows
//! that must lie in their partition.

pub(crate) mod checks;
pub(crate) mod partition_guard;
