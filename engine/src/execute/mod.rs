//! Operations that compute: materialize (schedule, build, write, commit),
//! backfills, rechecks, row changes, OpenLineage emission.

pub(crate) mod alerting;
pub(crate) mod backfill;
pub(crate) mod build;
pub(crate) mod control;
pub(crate) mod failure;
pub(crate) mod inputs;
pub(crate) mod lineage_events;
pub(crate) mod parquet_settings;
pub(crate) mod recheck;
pub(crate) mod report;
pub(crate) mod retry;
pub(crate) mod row_changes;
pub(crate) mod run;
pub(crate) mod write;
