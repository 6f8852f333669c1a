//! Plain values stored in and read from the catalog.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A run's id (a UUIDv7, so ids sort by start time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub String);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A backfill's id (a UUIDv7, so ids sort by creation time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BackfillId(pub String);

impl std::fmt::Display for BackfillId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A committed materialization's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MaterializationId(pub i64);

impl std::fmt::Display for MaterializationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished.
    Running,
    /// Every asset it attempted succeeded (or was fresh).
    Succeeded,
    /// At least one asset failed.
    Failed,
    /// The process died before finishing (found by a later run).
    Crashed,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "crashed" => RunStatus::Crashed,
            _ => return None,
        })
    }
}

/// A run to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRun {
    /// Its id.
    pub id: RunId,
    /// Who started it (OS user).
    pub user: String,
    /// Host name it runs on.
    pub host: String,
    /// Process id, used to detect crashed runs.
    pub pid: u32,
    /// The command line, e.g. `cairn materialize customers`.
    pub command: String,
    /// How it was triggered (`cli`, later `schedule`, `api`).
    pub trigger: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The backfill this run belongs to, if any.
    #[serde(default)]
    pub backfill_id: Option<BackfillId>,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// Who started it.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Command line.
    pub command: String,
    /// Trigger.
    pub trigger: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, if it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: RunStatus,
    /// The error, when it failed.
    pub error: Option<String>,
    /// The backfill this run belongs to, if any.
    #[serde(default)]
    pub backfill_id: Option<BackfillId>,
}

/// The outcome of one asset in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// A new version was committed.
    Materialized,
    /// It was already up to date; nothing was computed.
    Fresh,
    /// It failed; nothing was committed.
    Failed,
    /// Not attempted because an upstream failed.
    Skipped,
}

impl AttemptOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Materialized => "materialized",
            AttemptOutcome::Fresh => "fresh",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "materialized" => AttemptOutcome::Materialized,
            "fresh" => AttemptOutcome::Fresh,
            "failed" => AttemptOutcome::Failed,
            "skipped" => AttemptOutcome::Skipped,
            _ => return None,
        })
    }
}

/// An attempt to record (not a commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttempt {
    /// The run.
    pub run_id: RunId,
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// What happened.
    pub outcome: AttemptOutcome,
    /// The error message when it failed or was skipped.
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The run.
    pub run_id: RunId,
    /// The asset.
    pub asset: String,
    /// The partition key.
    pub partition: String,
    /// What happened.
    pub outcome: AttemptOutcome,
    /// The error, if any.
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What kind of thing an upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// A declared source (files).
    Source,
    /// Another asset.
    Asset,
}

impl UpstreamKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Source => "source",
            UpstreamKind::Asset => "asset",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "source" => Some(UpstreamKind::Source),
            "asset" => Some(UpstreamKind::Asset),
            _ => None,
        }
    }
}

/// The exact version of one upstream partition a materialization read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamVersion {
    /// Upstream name.
    pub name: String,
    /// Source or asset.
    pub kind: UpstreamKind,
    /// The upstream partition key (`""` when unpartitioned).
    pub partition: String,
    /// Its data version (hex blake3).
    pub data_version: String,
    /// The upstream materialization read, for assets.
    pub materialization: Option<MaterializationId>,
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the storage root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Rows in the file.
    pub row_count: u64,
}

/// A materialization to commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMaterialization {
    /// The run that produced it.
    pub run_id: RunId,
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// Code version (hex blake3).
    pub code_version: String,
    /// Input version (hex blake3).
    pub input_version: String,
    /// Data version of the written output (hex blake3).
    pub data_version: String,
    /// Rows written.
    pub row_count: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Wall time of the materialization in milliseconds.
    pub wall_ms: u64,
    /// Output schema, as JSON (`[{"name":..,"type":..,"nullable":..}]`).
    pub schema_json: String,
    /// Exact upstream versions read, in a stable order.
    pub inputs: Vec<UpstreamVersion>,
    /// Files written.
    pub files: Vec<FileRecord>,
    /// Commit time.
    pub committed_at: DateTime<Utc>,
}

/// A committed materialization with its inputs and files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaterializationRecord {
    /// Its id.
    pub id: MaterializationId,
    /// Everything that was committed.
    #[serde(flatten)]
    pub body: NewMaterialization,
}

/// The summary of a committed version, without inputs and files (cheap to
/// read for thousands of assets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentVersion {
    /// The materialization.
    pub id: MaterializationId,
    /// The run that produced it.
    pub run_id: RunId,
    /// The asset.
    pub asset: String,
    /// The partition key.
    pub partition: String,
    /// Code version.
    pub code_version: String,
    /// Input version.
    pub input_version: String,
    /// Data version.
    pub data_version: String,
    /// Rows.
    pub row_count: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Commit time.
    pub committed_at: DateTime<Utc>,
}

/// A cached source fingerprint: the content hash of a source, valid while
/// its cheap fingerprint (sizes and modification times) is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFingerprint {
    /// Source name.
    pub source: String,
    /// Digest of the files' paths, sizes and modification times.
    pub fingerprint: String,
    /// The content hash (the source's data version).
    pub data_version: String,
    /// When it was computed.
    pub observed_at: DateTime<Utc>,
}

/// How a backfill ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStatus {
    /// Created and not finished (or reopened to be resumed).
    Running,
    /// Every planned unit was committed (or was fresh).
    Succeeded,
    /// At least one unit failed or was skipped.
    Failed,
}

impl BackfillStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillStatus::Running => "running",
            BackfillStatus::Succeeded => "succeeded",
            BackfillStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => BackfillStatus::Running,
            "succeeded" => BackfillStatus::Succeeded,
            "failed" => BackfillStatus::Failed,
            _ => return None,
        })
    }
}

/// One partition of one asset: the unit of work of a backfill.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionRef {
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
}

/// A backfill to record: the request as given and the units it planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBackfill {
    /// Its id.
    pub id: BackfillId,
    /// Who started it (OS user).
    pub user: String,
    /// The command line, e.g. `cairn backfill daily_sales --from 2024-01-01`.
    pub command: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The asset selection as given (selection expressions).
    pub selection: Vec<String>,
    /// The first partition of the requested range, if one was given.
    pub from: Option<String>,
    /// The last partition of the requested range, if one was given.
    pub to: Option<String>,
    /// Explicitly listed partitions, if they were given instead of a range.
    pub partitions: Option<Vec<String>>,
    /// Whether fresh partitions are recomputed anyway.
    pub force: bool,
    /// The planned (asset, partition) units, in execution order.
    pub units: Vec<PartitionRef>,
}

/// A recorded backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRecord {
    /// Its id.
    pub id: BackfillId,
    /// Who started it.
    pub user: String,
    /// Command line.
    pub command: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it last finished, if it is not running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: BackfillStatus,
    /// The asset selection as given.
    pub selection: Vec<String>,
    /// First partition of the requested range, if given.
    pub from: Option<String>,
    /// Last partition of the requested range, if given.
    pub to: Option<String>,
    /// Explicitly listed partitions, if given.
    pub partitions: Option<Vec<String>>,
    /// Whether fresh partitions are recomputed anyway.
    pub force: bool,
    /// The planned units in execution order (empty in listings, see
    /// [`crate::Catalog::backfills`]).
    pub units: Vec<PartitionRef>,
}
