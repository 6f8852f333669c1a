//! `cairn-catalog` owns Cairn's metadata: runs, per-asset attempts, committed
//! materializations (versions, exact upstream versions used, files, rows,
//! schema, metrics and cost), data-quality check results and the cache of
//! source fingerprints.
//!
//! Invariants:
//! - Only the catalog decides what is committed: a materialization becomes
//!   visible to readers by exactly one transaction
//!   ([`Catalog::commit_materialization`]), which also moves the asset's
//!   "current version" pointer. Files never referenced by a committed row are
//!   garbage.
//! - The catalog knows nothing of scheduling or DataFusion; it stores and
//!   answers. [`SqlCatalog`] implements the [`Catalog`] trait once, over
//!   SQLite (the embedded default) and PostgreSQL (shared by several
//!   processes and servers).
#![deny(missing_docs)]

mod alerts;
mod error;
mod model;
mod sql;
mod url;

pub use alerts::*;
pub use error::CatalogError;
pub use model::*;
pub use sql::{CatalogCopy, SqlCatalog};
pub use url::{open_catalog, open_sql_catalog};

use chrono::{DateTime, Utc};

/// Result type of every catalog operation.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// The metadata store. All methods are synchronous and cheap; callers on an
/// async runtime may call them directly (SQLite answers in microseconds) or
/// from `spawn_blocking` for large reads.
pub trait Catalog: Send + Sync {
    /// Records the start of a run (status [`RunStatus::Running`]).
    fn begin_run(&self, run: &NewRun) -> Result<()>;

    /// Records how a run ended (and drops its queue claims).
    fn finish_run(&self, id: &RunId, status: RunStatus, error: Option<&str>) -> Result<()>;

    /// Marks every run still `Running` for which `is_alive` answers false as
    /// [`RunStatus::Crashed`] (the process was killed before it could
    /// finish) — except runs of the queue (those with a request), which go
    /// back to [`RunStatus::Queued`] to be resumed, or end
    /// [`RunStatus::Cancelled`] when a cancel had been asked for. Returns the
    /// ids it changed.
    fn mark_crashed_runs(&self, is_alive: &dyn Fn(&RunRecord) -> bool) -> Result<Vec<RunId>>;

    /// Puts a run in the queue, in one transaction: unless an active
    /// (queued or running, not being cancelled) run of the queue already
    /// claims every one of `run.claims` (then nothing is written and that
    /// run is returned), inserts the run in status [`RunStatus::Queued`]
    /// with its request and claims. A run with no claims is always queued.
    fn enqueue_run(&self, run: &NewQueuedRun) -> Result<Enqueued>;

    /// The automation state of every asset a tick has evaluated.
    fn automation_state(&self) -> Result<Vec<AutomationState>>;

    /// Records a tick in one transaction: the new states (only if no
    /// other tick moved them since they were read — else nothing is
    /// written and [`TickRecorded::Conflict`] returned), the evaluations,
    /// and the runs it requests, queued as [`Catalog::enqueue_run`] does.
    /// A tick is thus all or nothing: a crash cannot fire an instant
    /// without queueing its run, nor queue it twice.
    fn record_tick(&self, tick: &NewTick) -> Result<TickRecorded>;

    /// Evaluations recorded at or after `since`, oldest first, at most
    /// `limit` (the newest kept).
    fn automation_evaluations(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<AutomationEvaluation>>;

    /// The queue: every run with a request that is queued or running, in
    /// id (= queueing) order, with its claims.
    fn queue(&self) -> Result<Vec<QueuedRun>>;

    /// Moves a queued run to [`RunStatus::Running`], recording the process
    /// that runs it and when it started. False (and nothing changed) when
    /// it is not queued any more (cancelled meanwhile).
    fn start_queued_run(&self, id: &RunId, host: &str, pid: u32, at: DateTime<Utc>)
    -> Result<bool>;

    /// Asks for a run to be cancelled, in one transaction: a queued run
    /// ends [`RunStatus::Cancelled`] at once (and drops its claims); a
    /// running one is marked (its executor stops it and records the end);
    /// a finished one is left alone. Returns the run as it is now, `None`
    /// for an unknown id.
    fn request_cancel(&self, id: &RunId, at: DateTime<Utc>) -> Result<Option<RunRecord>>;

    /// Claims one unit for a run about to build it, in one transaction:
    /// granted unless another run that is still running holds an
    /// unexpired claim on it. Several processes (CLI runs and servers, on
    /// one PostgreSQL catalog or one SQLite file) thus never build a unit
    /// at once, and the one that waited sees what the other committed.
    /// A commit of the unit by the claiming run, [`Catalog::release_unit`]
    /// and the end of that run release the claim.
    fn claim_unit(&self, claim: &UnitClaim) -> Result<UnitClaimed>;

    /// Extends every unit claim of `run` until `until` (the run's
    /// heartbeat, while it builds).
    fn renew_unit_claims(&self, run: &RunId, until: DateTime<Utc>) -> Result<()>;

    /// Releases `run`'s claim on one unit (one it claimed and then did not
    /// build, or failed to build for good).
    fn release_unit(&self, run: &RunId, asset: &str, partition: &str) -> Result<()>;

    /// Records the outcome of one asset in one run that did *not* commit
    /// (failed, skipped, fresh). Committed outcomes are recorded by
    /// [`Catalog::commit_materialization`].
    fn record_attempt(&self, attempt: &NewAttempt) -> Result<()>;

    /// Commits a materialization in one transaction: the materialization row
    /// with its metrics, its inputs and files, its check results, a
    /// `Materialized` attempt, and the move of the current-version pointer of
    /// `(asset, partition)`.
    fn commit_materialization(&self, m: &NewMaterialization) -> Result<MaterializationId>;

    /// The current committed version of every (asset, partition).
    fn current_versions(&self) -> Result<Vec<CurrentVersion>>;

    /// One materialization with its inputs, files, metrics and check results
    /// (in the order they were recorded).
    fn materialization(&self, id: MaterializationId) -> Result<Option<MaterializationRecord>>;

    /// Committed materializations of an asset, newest first, at most `limit`.
    fn history(&self, asset: &str, limit: usize) -> Result<Vec<CurrentVersion>>;

    /// Calls `visit` with the current version of every (asset, partition),
    /// sorted by asset and partition, borrowed from the read (what status
    /// over hundreds of thousands of partitions reads).
    fn visit_current_versions(&self, visit: &mut dyn FnMut(&CurrentVersionRef<'_>)) -> Result<()>;

    /// [`Catalog::visit_current_versions`] restricted to `assets` (each
    /// asset's partitions in key order, assets in the order given).
    fn visit_current_versions_of(
        &self,
        assets: &[String],
        visit: &mut dyn FnMut(&CurrentVersionRef<'_>),
    ) -> Result<()>;

    /// The newest attempt of every asset (any outcome, committed ones included).
    fn latest_attempts(&self) -> Result<Vec<AttemptRecord>>;

    /// The newest attempt at any partition of `asset`.
    fn latest_attempt_of(&self, asset: &str) -> Result<Option<AttemptRecord>>;

    /// The newest attempt of every (asset, partition) whose newest attempt
    /// failed: what status needs, read without visiting healthy units.
    fn latest_failed_attempts(&self) -> Result<Vec<AttemptRecord>>;

    /// Records the check results of an attempt that did *not* commit (so
    /// they have no materialization), in one transaction. The results of
    /// committed attempts are recorded by [`Catalog::commit_materialization`].
    fn record_check_results(
        &self,
        run_id: &RunId,
        asset: &str,
        partition: &str,
        results: &[NewCheckResult],
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// The newest result of every check of every (asset, partition), committed
    /// or not, sorted by asset, partition and check name. "Newest" is the
    /// order of recording.
    fn latest_check_results(&self) -> Result<Vec<CheckResultRecord>>;

    /// The latest results that are failing checks, `error` and `warn`
    /// alike: what status needs, read without visiting passing checks.
    fn latest_failing_checks(&self) -> Result<Vec<CheckResultRecord>>;

    /// The check results of an asset (all partitions), newest first, at most
    /// `limit`.
    fn check_results(&self, asset: &str, limit: usize) -> Result<Vec<CheckResultRecord>>;

    /// Every committed materialization (current or since superseded)
    /// committed at or after `since` (all of them when `None`), with its
    /// metrics, oldest first.
    fn metrics_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<(CurrentVersion, MaterializationMetrics)>>;

    /// The current version of every (asset, partition) with its metrics,
    /// sorted like [`Catalog::current_versions`].
    fn current_metrics(&self) -> Result<Vec<(CurrentVersion, MaterializationMetrics)>>;

    /// Runs, newest first, at most `limit`.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>>;

    /// One run and the attempts it recorded, in recording order; `None`
    /// when no run has this id. One read transaction.
    fn run(&self, id: &RunId) -> Result<Option<(RunRecord, Vec<AttemptRecord>)>>;

    /// Every cached source fingerprint.
    fn source_fingerprints(&self) -> Result<Vec<SourceFingerprint>>;

    /// Stores (replaces) the cached fingerprint of one source.
    fn put_source_fingerprint(&self, fingerprint: &SourceFingerprint) -> Result<()>;

    /// Records a new backfill (status [`BackfillStatus::Running`]) with its
    /// planned units, in one transaction. Fails if the id already exists.
    fn create_backfill(&self, backfill: &NewBackfill) -> Result<()>;

    /// One backfill with its planned units, in execution order.
    fn backfill(&self, id: &BackfillId) -> Result<Option<BackfillRecord>>;

    /// Records how a backfill ended: sets its status and `finished_at` to
    /// now. Calling it again (e.g. after a resume) overwrites both; an unknown
    /// id is ignored.
    fn finish_backfill(&self, id: &BackfillId, status: BackfillStatus) -> Result<()>;

    /// Sets a backfill back to [`BackfillStatus::Running`] with no
    /// `finished_at`, before it is resumed. An unknown id is ignored.
    fn reopen_backfill(&self, id: &BackfillId) -> Result<()>;

    /// Every (asset, partition) with a committed materialization made by a
    /// run of backfill `id` (whatever the current version is now): the units
    /// a resume can skip. Distinct and sorted.
    fn committed_in_backfill(&self, id: &BackfillId) -> Result<Vec<PartitionRef>>;

    /// Backfills, newest first, at most `limit`. A listing: `units` is left
    /// empty (use [`Catalog::backfill`] for one backfill's units).
    fn backfills(&self, limit: usize) -> Result<Vec<BackfillRecord>>;

    /// Appends to the audit log (which nothing can update or delete).
    fn append_audit(&self, entry: &NewAuditEntry) -> Result<()>;

    /// Audit entries at or after `since`, by `principal` when given, oldest first.
    fn audit_log(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        principal: Option<&str>,
    ) -> Result<Vec<AuditEntry>>;

    /// Every file of every committed materialization, with whether it is
    /// current and whether retention already expired it.
    fn all_files(&self) -> Result<Vec<StoredFile>>;

    /// Records that retention removed these materializations' files.
    fn mark_expired(
        &self,
        ids: &[MaterializationId],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;

    /// The incidents that are open (not closed), oldest first.
    fn open_incidents(&self) -> Result<Vec<AlertIncident>>;

    /// Applies incident changes in one transaction, each only while it
    /// still holds (an `Open` when no incident of its kind is open for its
    /// unit, a `Close` when its incident is still open) and, when it
    /// applies, queues its deliveries as [`DeliveryStatus::Pending`], due
    /// at once. Two processes seeing the same failure thus open one
    /// incident and send one alert. Returns, per change, whether it applied.
    fn apply_incident_changes(&self, changes: &[IncidentChange]) -> Result<Vec<bool>>;

    /// Claims the pending deliveries due at `now` (oldest first, at most
    /// `limit`), in one transaction: their `next_attempt_at` moves to
    /// `lease_until`, so that no other process attempts them meanwhile
    /// (and a claimer that dies leaves them due again then).
    fn claim_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AlertDelivery>>;

    /// Records one attempt of a delivery in one transaction: appends it to
    /// the delivery's attempts and counts it; delivered without an error,
    /// else pending again at `retry_at`, or undelivered without one.
    fn record_alert_attempt(&self, attempt: &AlertAttempt) -> Result<()>;

    /// When the next pending delivery is due, if any is pending.
    fn next_alert_delivery_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// Incidents, newest first, at most `limit`, each with its deliveries
    /// in the order they were queued (none when no receiver listens to it).
    fn alert_log(&self, limit: usize) -> Result<Vec<(AlertIncident, Vec<AlertDelivery>)>>;

    /// The attempts of one delivery, in order.
    fn alert_attempts(&self, delivery: DeliveryId) -> Result<Vec<AlertAttemptRecord>>;

    /// Pending deliveries, and undelivered ones last attempted at or after
    /// `since`.
    fn alert_delivery_counts(&self, since: DateTime<Utc>) -> Result<AlertDeliveryCounts>;
}
