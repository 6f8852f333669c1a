//! The engine's one API boundary: every operation a front end (the CLI,
//! the coming server, the benchmarks) may ask of a project, as
//! [`Workspace`] methods of one line each. The modules behind them are
//! private; the types these methods take and return are re-exported from
//! the crate root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use cairn_catalog::{BackfillId, RunId};

use crate::error::EngineError;
use crate::execute::backfill::{BackfillOptions, BackfillReport};
use crate::execute::control::RunContext;
use crate::execute::recheck::CheckReport;
use crate::execute::report::{Progress, RunReport};
use crate::lineage::column_lineage::ColumnNode;
use crate::model::workspace::{Clock, DefinitionsCache, Failpoints, Workspace};
use crate::plan::{MaterializeOptions, PlannedUnit};
use crate::records::cost::AssetCost;
use crate::records::details::AssetDetails;
use crate::records::gc::GcReport;
use crate::records::provenance::Provenance;
use crate::records::time_travel::AsOf;
use crate::state::freshness::SlaMiss;
use crate::state::snapshot::{Snapshot, SnapshotTimings};
use crate::state::status::AssetStatus;
use crate::{execute, lineage, model, plan, records, state};

impl Workspace {
    /// Loads the project in `dir` and opens its catalog and storage; the
    /// project is validated before anything is created on disk.
    pub fn open(dir: &Path) -> Result<Workspace, EngineError> {
        model::workspace::open(dir)
    }

    /// [`Workspace::open`] for a long-running process: reuses the
    /// definitions `cache` holds while the project's definition files are
    /// unchanged (a server opens the project for every request).
    pub fn open_cached(dir: &Path, cache: &DefinitionsCache) -> Result<Workspace, EngineError> {
        model::workspace::open_cached(dir, cache)
    }

    /// The loaded definitions.
    pub fn project(&self) -> &cairn_assets::Project {
        &self.project
    }

    /// The dependency graph of sources and assets.
    pub fn graph(&self) -> &crate::model::graph::AssetGraph {
        &self.graph
    }

    /// The URL of a stored file given relative to the storage root.
    pub fn file_url(&self, relative: &str) -> String {
        self.storage.file_url(relative)
    }

    /// The audit log since an instant, optionally of one principal.
    pub fn audit_log(
        &self,
        since: Option<DateTime<Utc>>,
        who: Option<&str>,
    ) -> Result<Vec<cairn_catalog::AuditEntry>, EngineError> {
        Ok(self.catalog.audit_log(since, who)?)
    }

    /// The most recent runs, newest first, at most `limit`.
    pub fn runs(&self, limit: usize) -> Result<Vec<cairn_catalog::RunRecord>, EngineError> {
        Ok(self.catalog.runs(limit)?)
    }

    /// One run and the attempts it recorded, in order; `None` when unknown.
    pub fn run(
        &self,
        id: &RunId,
    ) -> Result<Option<(cairn_catalog::RunRecord, Vec<cairn_catalog::AttemptRecord>)>, EngineError>
    {
        Ok(self.catalog.run(id)?)
    }

    /// Judges time (complete partitions, freshness) at `clock`'s instant.
    pub fn with_clock(self, clock: Clock) -> Workspace {
        Workspace { clock, ..self }
    }

    /// Bounds the memory DataFusion holds at once in each run to `bytes`
    /// (spilling past it), whatever `[engine] memory_limit` says; `None`
    /// keeps the project's setting.
    pub fn with_memory_limit(self, bytes: Option<u64>) -> Workspace {
        Workspace {
            memory_limit: bytes.or(self.memory_limit),
            ..self
        }
    }

    /// The memory bound of this workspace's runs, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Installs a test harness's failpoints.
    pub fn with_failpoints(self, failpoints: Failpoints) -> Workspace {
        Workspace { failpoints, ..self }
    }

    /// This workspace acting for `principal` (a server token's name): runs
    /// and audit entries record it instead of the OS user.
    pub fn with_principal(self, principal: String) -> Workspace {
        Workspace {
            principal: Some(principal),
            ..self
        }
    }

    /// Reads versions and assesses every asset.
    pub fn snapshot(&self) -> Result<Snapshot, EngineError> {
        state::snapshot::snapshot(self)
    }

    /// [`Workspace::snapshot`], timing each stage (for benchmarks).
    pub fn snapshot_timed(&self) -> Result<(Snapshot, SnapshotTimings), EngineError> {
        state::snapshot::snapshot_of(self, None)
    }

    /// A snapshot of `assets` and everything upstream of them only.
    pub fn snapshot_of(
        &self,
        assets: Option<&BTreeSet<String>>,
    ) -> Result<(Snapshot, SnapshotTimings), EngineError> {
        state::snapshot::snapshot_of(self, assets)
    }

    /// The status of the selected assets (all when `selection` is empty).
    pub fn status(&self, selection: &[String]) -> Result<Vec<AssetStatus>, EngineError> {
        state::snapshot::status(self, selection)
    }

    /// Every unit at or past a limit of its asset's freshness SLA, judged
    /// at the workspace's clock (for alerts: list it each tick).
    pub fn sla_misses(&self) -> Result<Vec<SlaMiss>, EngineError> {
        state::snapshot::sla_misses(self)
    }

    /// What [`Workspace::materialize`] would do with `opts`, unit by unit,
    /// with the causes `status` reports; nothing is run or written.
    pub fn explain(&self, opts: &MaterializeOptions) -> Result<Vec<PlannedUnit>, EngineError> {
        plan::explain(self, opts)
    }

    /// Brings the selected assets up to date.
    pub async fn materialize(
        &self,
        opts: &MaterializeOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, EngineError> {
        execute::run::materialize(self, opts, &RunContext::default(), progress).await
    }

    /// [`Workspace::materialize`] as a run of the run queue, or with a stop
    /// control and shared pools.
    pub async fn materialize_in(
        &self,
        opts: &MaterializeOptions,
        ctx: &RunContext,
        progress: &dyn Progress,
    ) -> Result<RunReport, EngineError> {
        execute::run::materialize(self, opts, ctx, progress).await
    }

    /// Plans, records and runs a backfill of a range of partitions.
    pub async fn backfill(
        &self,
        opts: &BackfillOptions,
        progress: &dyn Progress,
    ) -> Result<BackfillReport, EngineError> {
        execute::backfill::backfill(self, opts, progress).await
    }

    /// Resumes a recorded backfill: only what is not committed yet.
    pub async fn resume_backfill(
        &self,
        id: &BackfillId,
        jobs: usize,
        command: &str,
        progress: &dyn Progress,
    ) -> Result<BackfillReport, EngineError> {
        execute::backfill::resume_backfill(self, id, jobs, command, progress).await
    }

    /// Reruns the checks of the selected assets on their committed versions.
    pub async fn check(
        &self,
        selection: &[String],
        command: &str,
    ) -> Result<(Option<RunId>, Vec<CheckReport>), EngineError> {
        execute::recheck::check(self, selection, command).await
    }

    /// Runs ad-hoc read-only SQL over committed assets, sources and the
    /// `cairn.*` metadata tables.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        records::query::run_query(self, sql, None).await
    }

    /// Like [`Workspace::query`], over the versions current at `as_of`.
    pub async fn query_as_of(
        &self,
        sql: &str,
        as_of: &AsOf,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        records::query::run_query(self, sql, Some(as_of)).await
    }

    /// Everything `cairn show` prints about an asset.
    pub fn details(&self, name: &str) -> Result<AssetDetails, EngineError> {
        records::details::details(self, name)
    }

    /// The run, code and exact upstream versions behind a version of a
    /// partition, back to the sources.
    pub fn provenance(
        &self,
        asset: &str,
        partition: &str,
        version: Option<i64>,
    ) -> Result<Provenance, EngineError> {
        records::provenance::provenance(self, asset, partition, version)
    }

    /// The committed files of every asset as of a run or time.
    pub fn files_as_of(&self, as_of: &AsOf) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
        let files = records::time_travel::files_as_of(self, as_of)?;
        Ok(files
            .into_iter()
            .map(|(asset, files)| (asset, files.into_iter().map(|f| f.path).collect()))
            .collect())
    }

    /// Removes uncommitted files and versions past retention.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, EngineError> {
        records::gc::gc(self, dry_run).await
    }

    /// Measured cost per asset, optionally rolled up along lineage.
    pub fn cost(
        &self,
        selection: &[String],
        since: Option<DateTime<Utc>>,
        rollup: bool,
    ) -> Result<Vec<AssetCost>, EngineError> {
        records::cost::cost(self, selection, since, rollup)
    }

    /// Appends an entry to the audit log.
    pub fn audit(
        &self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), EngineError> {
        records::audit::audit(self, action, target, details)
    }

    /// The column lineage of `asset.column`, `depth` assets deep.
    pub async fn column_lineage(
        &self,
        asset: &str,
        column: &str,
        depth: Option<usize>,
    ) -> Result<ColumnNode, EngineError> {
        lineage::column_lineage::asset_column_lineage(self, asset, column, depth).await
    }

    /// Attempts the pending alerts due within `budget` (sleeping until
    /// they are), retrying failures per `policy`; what is still pending
    /// stays for a later call. Runs are never waiting on this.
    pub async fn deliver_alerts(
        &self,
        policy: &crate::alerts::deliver::DeliveryPolicy,
        budget: std::time::Duration,
    ) -> Result<crate::alerts::deliver::DeliveryReport, EngineError> {
        crate::alerts::deliver_alerts(self, policy, budget).await
    }

    /// Pending alerts, and the undelivered ones of the last 24 hours.
    pub fn alert_counts(&self) -> Result<cairn_catalog::AlertDeliveryCounts, EngineError> {
        crate::alerts::alert_counts(self)
    }

    /// A tick's freshness verdict for alerts: `misses` is
    /// [`Workspace::sla_misses`] at the tick; an incident opens for each
    /// unit newly past `fail_after` and closes for each no longer failing.
    /// How many opened or closed.
    pub fn observe_freshness(&self, misses: &[SlaMiss]) -> Result<usize, EngineError> {
        crate::alerts::observe_freshness(self, misses)
    }
}

/// Copies every record of the catalog at `from` into the empty catalog at
/// `to` (`cairn catalog migrate`): catalog URLs as in `cairn.toml`,
/// `sqlite://` paths relative to `project_dir`. All or nothing; the target
/// must be empty. Runs no project: neither catalog needs a `cairn.toml`.
pub fn migrate_catalog(
    from: &str,
    to: &str,
    project_dir: &Path,
) -> Result<cairn_catalog::CatalogCopy, EngineError> {
    // Opening a SQLite URL creates the file: a mistyped source would copy
    // nothing, successfully.
    if let Some(path) = from.trim().strip_prefix("sqlite://")
        && !project_dir.join(path).exists()
    {
        return Err(EngineError::Catalog(cairn_catalog::CatalogError::BadUrl {
            url: from.to_owned(),
            reason: format!(
                "there is no catalog at {}: nothing to copy (check --from)",
                project_dir.join(path).display()
            ),
        }));
    }
    let source = cairn_catalog::open_sql_catalog(from, project_dir)?;
    let target = cairn_catalog::open_sql_catalog(to, project_dir)?;
    Ok(source.copy_into(&target)?)
}
