//! What the catalog records and how people read it: runs, the audit log,
//! provenance, time travel and gc, cost, asset details, metadata tables and
//! ad-hoc queries.

pub(crate) mod audit;
pub(crate) mod cost;
pub(crate) mod details;
pub(crate) mod gc;
pub(crate) mod metadata_tables;
pub(crate) mod provenance;
pub(crate) mod query;
pub(crate) mod runs;
pub(crate) mod time_travel;
