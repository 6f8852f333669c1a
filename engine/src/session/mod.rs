//! DataFusion sessions and the tables they read: sources, committed
//! versions (with partition dimensions), metering of I/O and memory, and
//! where queries execute (this process or a Ballista cluster).

pub(crate) mod cluster;
pub(crate) mod committed_table;
pub(crate) mod metering;
pub(crate) mod tables;
