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
    /// In the run queue, not started yet.
    Queued,
    /// Started, not finished.
    Running,
    /// Every asset it attempted succeeded (or was fresh).
    Succeeded,
    /// At least one asset failed.
    Failed,
    /// The process died before finishing (found by a later run).
    Crashed,
    /// Cancelled: no unit started after the cancel; nothing half-committed.
    Cancelled,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended (it will not change any more).
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "crashed" => RunStatus::Crashed,
            "cancelled" => RunStatus::Cancelled,
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
    /// When it entered the run queue (`None` for a run the CLI started
    /// directly). While it is queued, `started_at` is this time too.
    #[serde(default)]
    pub queued_at: Option<DateTime<Utc>>,
}

/// A run to put in the run queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewQueuedRun {
    /// The run (its `started_at` is the time it is queued; `pid` and `host`
    /// are the queueing process's until it starts).
    pub run: NewRun,
    /// What to run, as the queue's owner encodes it (opaque here).
    pub request: String,
    /// The units it is expected to build: a later request whose units all
    /// lie in one active run's claims attaches to that run.
    pub claims: Vec<PartitionRef>,
    /// Whether this request may attach to an active run instead of being
    /// queued (false for work recorded on its own, like a planned backfill).
    pub attach: bool,
}

/// What [`crate::Catalog::enqueue_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The run was queued.
    Queued,
    /// An active (queued or running) run already claims every unit: no new
    /// run; this is the one to watch.
    Attached(RunId),
}

/// A run asking to build one unit (see [`crate::Catalog::claim_unit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitClaim {
    /// The run that will build it.
    pub run_id: RunId,
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// The time now (claims of other runs expired by then do not count).
    pub now: DateTime<Utc>,
    /// Until when the claim holds unless renewed (a lease: a process that
    /// dies holding it loses it then).
    pub until: DateTime<Utc>,
}

/// What [`crate::Catalog::claim_unit`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitClaimed {
    /// The unit is this run's to build; its current committed version as
    /// of the claim (another process may have committed it since the run
    /// planned).
    Granted(Option<CurrentVersion>),
    /// Another running run holds an unexpired claim on it: wait, then ask
    /// again.
    Held(RunId),
}

/// What the last tick saw of one automated asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationState {
    /// The asset.
    pub asset: String,
    /// The instant the last tick evaluated (cron instants up to it are done).
    pub last_tick_at: DateTime<Utc>,
    /// When a run was last requested for it.
    pub last_requested_at: Option<DateTime<Utc>>,
}

/// One condition of one asset, evaluated at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationEvaluation {
    /// The instant evaluated.
    pub tick_at: DateTime<Utc>,
    /// The asset.
    pub asset: String,
    /// `cron`, `on_upstream_change` or `on_missing`.
    pub condition: String,
    /// Whether it requested a run.
    pub fired: bool,
    /// Why (or why not), readable.
    pub reason: String,
    /// The run it requested (or attached to).
    pub run_id: Option<RunId>,
}

/// A tick to record, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTick {
    /// The instant evaluated.
    pub at: DateTime<Utc>,
    /// Each automated asset's new state, with the `last_tick_at` the
    /// evaluation read (`None`: it had no state): when another tick moved
    /// it meanwhile, nothing is recorded ([`TickRecorded::Conflict`]).
    pub states: Vec<(AutomationState, Option<DateTime<Utc>>)>,
    /// What was evaluated.
    pub evaluations: Vec<AutomationEvaluation>,
    /// Runs to queue (as [`crate::Catalog::enqueue_run`] would).
    pub runs: Vec<NewQueuedRun>,
}

/// What [`crate::Catalog::record_tick`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickRecorded {
    /// Recorded; each run queued or attached, in the order given.
    Recorded(Vec<Enqueued>),
    /// Another tick recorded meanwhile: nothing written.
    Conflict,
}

/// A run of the queue that has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRun {
    /// The run (status queued or running).
    pub record: RunRecord,
    /// Its request, as given to [`crate::Catalog::enqueue_run`].
    pub request: String,
    /// Its claimed units.
    pub claims: Vec<PartitionRef>,
    /// Whether a cancel was asked for while it ran.
    pub cancel_requested: bool,
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
    /// What computing it measured and cost (all zero/empty when unknown).
    #[serde(default)]
    pub metrics: MaterializationMetrics,
    /// Results of the data-quality checks run on this version, in the order
    /// they are recorded (and read back).
    #[serde(default)]
    pub checks: Vec<NewCheckResult>,
}

/// A committed materialization with its inputs, files, metrics and check
/// results.
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

/// A [`CurrentVersion`] borrowed from the catalog while it is read (see
/// [`crate::Catalog::visit_current_versions`]): nothing is copied, so
/// reading hundreds of thousands of them allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentVersionRef<'a> {
    /// The materialization.
    pub id: MaterializationId,
    /// The run that produced it.
    pub run_id: &'a str,
    /// The asset.
    pub asset: &'a str,
    /// The partition key.
    pub partition: &'a str,
    /// Code version.
    pub code_version: &'a str,
    /// Input version.
    pub input_version: &'a str,
    /// Data version.
    pub data_version: &'a str,
    /// Rows.
    pub row_count: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Commit time.
    pub committed_at: DateTime<Utc>,
}

impl CurrentVersionRef<'_> {
    /// An owned copy.
    pub fn to_owned_version(&self) -> CurrentVersion {
        CurrentVersion {
            id: self.id,
            run_id: RunId(self.run_id.to_owned()),
            asset: self.asset.to_owned(),
            partition: self.partition.to_owned(),
            code_version: self.code_version.to_owned(),
            input_version: self.input_version.to_owned(),
            data_version: self.data_version.to_owned(),
            row_count: self.row_count,
            bytes_written: self.bytes_written,
            wall_ms: self.wall_ms,
            committed_at: self.committed_at,
        }
    }
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
    /// When this content was first seen (a new fingerprint with the same
    /// content keeps it): freshness SLAs time source changes by it.
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

/// A recorded backfill: the request as recorded, and how it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRecord {
    /// What was recorded (its `units` are empty in listings, see
    /// [`crate::Catalog::backfills`]).
    #[serde(flatten)]
    pub backfill: NewBackfill,
    /// When it last finished, if it is not running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: BackfillStatus,
}

/// The result of one data-quality check on one attempt's output, to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCheckResult {
    /// The check's name, unique within its asset.
    pub name: String,
    /// `"warn"` (reported only) or `"error"` (a failure blocks the commit).
    pub severity: String,
    /// Whether the check passed.
    pub passed: bool,
    /// How many rows failed it (0 when it passed).
    pub failing_rows: u64,
    /// A JSON array of up to 10 failing rows (`[]` when none).
    pub sample_json: String,
    /// Why the check itself could not be evaluated, if it could not (the
    /// check then counts as not passed).
    pub error: Option<String>,
}

/// A recorded check result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResultRecord {
    /// Its id (increasing in recording order).
    pub id: i64,
    /// The run that evaluated it.
    pub run_id: RunId,
    /// The asset checked.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// The materialization whose data was checked; `None` when the attempt
    /// was not committed (e.g. an `error` check failed).
    pub materialization: Option<MaterializationId>,
    /// When it was recorded (the commit time for committed attempts).
    pub at: DateTime<Utc>,
    /// The result itself.
    #[serde(flatten)]
    pub result: NewCheckResult,
}

/// Statistics of one output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Column name.
    pub name: String,
    /// Null values in the column, if known.
    pub null_count: Option<u64>,
    /// Smallest value, rendered as text, if known.
    pub min: Option<String>,
    /// Largest value, rendered as text, if known.
    pub max: Option<String>,
}

/// What one materialization measured and cost. Every field defaults to
/// zero/empty, so a record stored without metrics reads back as
/// [`MaterializationMetrics::default`]. Floating-point fields must be
/// finite to be stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaterializationMetrics {
    /// Rows present in this version but not in the previous one, if known.
    pub rows_added: Option<u64>,
    /// Rows present in the previous version but not in this one, if known.
    pub rows_removed: Option<u64>,
    /// Per-column statistics of the output, in schema order.
    pub columns: Vec<ColumnStats>,
    /// CPU time spent, in seconds (all threads).
    pub cpu_seconds: f64,
    /// Wall time spent executing the DataFusion plan, in seconds.
    pub datafusion_seconds: f64,
    /// Rows produced by the plan.
    pub output_rows: u64,
    /// Bytes scanned from inputs by the plan.
    pub bytes_scanned: u64,
    /// Bytes spilled to disk by the plan.
    pub spilled_bytes: u64,
    /// Bytes read from object storage.
    pub bytes_read: u64,
    /// Read (GET) requests made to object storage.
    pub read_requests: u64,
    /// Distinct objects (source files and committed upstream files) read
    /// to compute the output: what partition pruning left to read.
    pub objects_read: u64,
    /// Bytes written to object storage.
    pub bytes_written: u64,
    /// Write (PUT, multipart part) requests made to object storage.
    pub write_requests: u64,
    /// Other object-storage requests (LIST, HEAD, DELETE, ...).
    pub other_requests: u64,
    /// Peak memory reserved by the plan, in bytes.
    pub peak_memory_bytes: u64,
    /// Estimated cost of compute and storage requests, in US dollars.
    pub cost_usd: f64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn metrics_default_when_absent() {
        assert_eq!(
            serde_json::from_str::<MaterializationMetrics>("{}").unwrap(),
            MaterializationMetrics::default()
        );
        let partial: MaterializationMetrics =
            serde_json::from_str(r#"{"cost_usd":0.5,"rows_added":3}"#).unwrap();
        assert_eq!(partial.cost_usd, 0.5);
        assert_eq!(partial.rows_added, Some(3));
        assert_eq!(partial.rows_removed, None);
        assert!(partial.columns.is_empty());
    }

    #[test]
    fn check_record_flattens_its_result() {
        let record = CheckResultRecord {
            id: 7,
            run_id: RunId("r1".to_owned()),
            asset: "orders".to_owned(),
            partition: String::new(),
            materialization: None,
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            result: NewCheckResult {
                name: "id_not_null".to_owned(),
                severity: "error".to_owned(),
                passed: false,
                failing_rows: 2,
                sample_json: "[{\"id\":null}]".to_owned(),
                error: None,
            },
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["name"], "id_not_null");
        assert_eq!(json["failing_rows"], 2);
        assert_eq!(json["materialization"], serde_json::Value::Null);
        let back: CheckResultRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}

/// An audit log entry to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the OS user or API principal.
    pub principal: String,
    /// From which host.
    pub host: String,
    /// The project's git commit, when the project is a git repository.
    pub git_commit: Option<String>,
    /// What: `materialize`, `backfill`, `check`, `gc`, `config_changed` ...
    pub action: String,
    /// On what: a selection, a backfill id, a list of assets.
    pub target: String,
    /// Details as JSON.
    pub details: String,
}

/// A recorded audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position in the log.
    pub id: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: NewAuditEntry,
}

/// A file of a committed materialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// The materialization.
    pub materialization: MaterializationId,
    /// Path relative to the storage root.
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// When the materialization was committed.
    pub committed_at: DateTime<Utc>,
    /// Whether it is the current version of its partition.
    pub is_current: bool,
    /// Whether retention already removed it.
    pub expired: bool,
}
