//! DataFusion sessions and the tables they read: sources, committed
//! versions (with partition dimensions), metering of I/O and memory.

pub(crate) mod committed_table;
pub(crate) mod metering;
pub(crate) mod tables;
