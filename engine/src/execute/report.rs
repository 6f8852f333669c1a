//! What a run reports: each unit's outcome, the run's summary, and the
//! progress events a front end renders while it runs.

use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use serde::Serialize;

use cairn_catalog::{MaterializationId, MaterializationMetrics, RunId};

use crate::model::units::Unit;
use crate::quality::checks::CheckOutcome;

/// What happened to one asset in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AssetOutcome {
    /// A new version was committed.
    Materialized(Box<Materialized>),
    /// Already up to date: no DataFusion work.
    Fresh {
        /// True when it was scheduled because an upstream was stale, but
        /// the upstream's rebuild produced identical data.
        early_cutoff: bool,
    },
    /// It failed; nothing was committed.
    Failed {
        /// The error.
        error: String,
        /// Check results, when checks ran (an `error` check failed).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        checks: Vec<CheckOutcome>,
    },
    /// Not attempted because an upstream failed.
    Skipped {
        /// The failed upstream.
        upstream: String,
    },
}

/// A committed materialization, as the run saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Materialized {
    /// Catalog id.
    pub id: MaterializationId,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Files written (relative to the storage root).
    pub files: Vec<String>,
    /// The new data version.
    pub data_version: String,
    /// Whether the data differs from the previous version.
    pub data_changed: bool,
    /// Wall time of the whole asset.
    pub wall: Duration,
    /// Time in DataFusion: planning and pulling batches.
    pub datafusion: Duration,
    /// Time encoding and writing Parquet.
    pub write: Duration,
    /// Time hashing rows for the data version.
    pub hashing: Duration,
    /// Time counting rows added and removed (reading the previous version).
    pub row_changes: Duration,
    /// Rows not in the previous version of this partition (exact), when
    /// there was one with the same columns.
    pub rows_added: Option<u64>,
    /// Rows of the previous version no longer present.
    pub rows_removed: Option<u64>,
    /// Results of the asset's checks (all passed or only warnings failed).
    pub checks: Vec<CheckOutcome>,
    /// Measured cost and column statistics.
    pub metrics: MaterializationMetrics,
    /// The output schema.
    #[serde(skip)]
    pub schema: Option<SchemaRef>,
}

/// One asset's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetResult {
    /// Asset name.
    pub asset: String,
    /// Partition key (`""` when unpartitioned).
    pub partition: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AssetOutcome,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run id; `None` when nothing was stale (no run was started).
    pub run_id: Option<RunId>,
    /// Per-asset results, in dependency order.
    pub results: Vec<AssetResult>,
    /// Wall time of the whole command.
    pub wall: Duration,
}

impl RunReport {
    /// Whether any asset failed or was skipped.
    pub fn has_failures(&self) -> bool {
        self.results.iter().any(|r| {
            matches!(
                r.outcome,
                AssetOutcome::Failed { .. } | AssetOutcome::Skipped { .. }
            )
        })
    }
}

/// Progress notifications, for the CLI to render.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A run started; these assets will be considered, in order.
    RunStarted {
        /// The run id.
        run_id: &'a RunId,
        /// Asset partitions that may be rebuilt, in order.
        planned: &'a [Unit],
    },
    /// An asset partition started computing.
    AssetStarted {
        /// The asset.
        asset: &'a str,
        /// The partition key.
        partition: &'a str,
    },
    /// An attempt of an asset partition failed transiently; it will be
    /// tried again after a wait (`[retries]`).
    AssetRetrying {
        /// The asset.
        asset: &'a str,
        /// The partition key.
        partition: &'a str,
        /// What the catalog records for the failed attempt: `attempt 1 of
        /// 3 failed (transient), retrying in 9.6s: <error>`.
        message: &'a str,
    },
    /// An asset finished (any outcome).
    AssetFinished {
        /// Its result.
        result: &'a AssetResult,
    },
}

/// Receives [`RunEvent`]s.
pub trait Progress: Send + Sync {
    /// Called for each event, from the scheduler (never concurrently).
    fn event(&self, event: RunEvent<'_>);
}

/// A [`Progress`] that ignores events.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: RunEvent<'_>) {}
}
