//! Executing a materialization run: schedule the assets that may be stale
//! in dependency order with bounded concurrency, decide again just before
//! each one whether it is really stale (early cutoff), compute it with
//! DataFusion, write new immutable Parquet files, and commit each asset in
//! one catalog transaction.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::empty::EmptyTable;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use tokio::task::JoinSet;

use cairn_assets::{CostConfig, SqlAsset};
use cairn_catalog::{
    AttemptOutcome, Catalog, ColumnStats, FileRecord, MaterializationId, MaterializationMetrics,
    NewAttempt, NewCheckResult, NewMaterialization, RunId, RunStatus, UpstreamKind,
    UpstreamVersion,
};

use crate::compile::declared::{check_output, declared_schema};
use crate::error::EngineError;
use crate::execute::report::{
    AssetOutcome, AssetResult, Materialized, Progress, RunEvent, RunReport,
};
use crate::model::graph::{NodeKind, RelationshipTarget};
use crate::model::partition_index::dimension_names;
use crate::model::storage::Storage;
use crate::model::units::Unit;
use crate::model::version::{DataHasher, UpstreamInput, input_version};
use crate::model::workspace::Workspace;
use crate::plan::{MaterializeOptions, Plan, plan, scope_of};
use crate::quality::checks::{CheckOutcome, StreamChecks, run_checks};
use crate::records::runs::{begin_run, check_record};
use crate::session::committed_table::with_dimensions;
use crate::session::metering::{
    CountingStore, PeakMemoryPool, PlanMetrics, column_stats, plan_metrics,
};
use crate::session::tables::{
    metered_session, read_only, register_committed, register_source_partitions,
};
use crate::state::snapshot::Snapshot;

/// What a failed attempt's error says, before the list of failed checks,
/// when the output was written but failed its `error` checks (true whether
/// or not a previous version exists).
const CHECKS_FAILED: &str = "checks failed, output not committed: ";

/// How catalogs written before 2026-11 said the same.
const CHECKS_FAILED_BEFORE: &str = "check failed, previous version kept: ";

/// The failed checks named by a failed attempt's error, when that attempt
/// failed its checks (rather than its query, write or commit).
pub fn failed_checks(error: &str) -> Option<&str> {
    [CHECKS_FAILED, CHECKS_FAILED_BEFORE]
        .iter()
        .find_map(|prefix| error.split_once(prefix).map(|(_, checks)| checks))
}

/// The version of an upstream partition as the run currently sees it.
#[derive(Debug, Clone)]
struct Live {
    kind: UpstreamKind,
    data_version: String,
    materialization: Option<MaterializationId>,
    /// Committed files (assets), loaded on first use.
    files: Option<Vec<String>>,
}

/// Everything a build task needs, shared.
struct RunShared {
    cost: CostConfig,
    storage: Storage,
    catalog: Arc<dyn Catalog>,
    project: Arc<cairn_assets::Project>,
    run_id: RunId,
    /// The schema of each built asset's declared `[columns]`, typed once
    /// per run rather than once per partition.
    declared: HashMap<String, SchemaRef>,
    failpoints: crate::model::workspace::Failpoints,
}

/// A table one build reads.
enum UpstreamTable {
    /// A source, restricted to these partition keys.
    Source { name: String, keys: Vec<String> },
    /// An asset, as exactly these committed files; `schema_files` are used
    /// for the schema when no partition is mapped.
    Asset {
        name: String,
        files: Vec<String>,
        schema_files: Vec<String>,
    },
    /// The asset's own earlier partitions when none is mapped: an empty
    /// table of its declared `[columns]`.
    DeclaredEmpty { name: String },
}

/// One asset partition to build.
struct Job {
    /// The instant partitions and freshness checks are judged at.
    now: chrono::DateTime<Utc>,
    /// Files of the version being replaced (for rows added/removed).
    previous_files: Vec<String>,
    asset: SqlAsset,
    partition: String,
    sql: String,
    code_version: String,
    input_version: String,
    inputs: Vec<UpstreamVersion>,
    tables: Vec<UpstreamTable>,
    previous_data_version: Option<String>,
}

pub(crate) async fn materialize(
    ws: &Workspace,
    opts: &MaterializeOptions,
    progress: &dyn Progress,
) -> Result<RunReport, EngineError> {
    let started = Instant::now();
    let snapshot = match scope_of(ws, opts)? {
        None => crate::state::snapshot::snapshot(ws)?,
        Some(scope) => crate::state::snapshot::snapshot_of(ws, Some(&scope))?.0,
    };
    let Plan {
        chosen,
        run_set,
        forced,
    } = plan(ws, &snapshot, opts)?;
    let order: HashMap<&str, usize> = ws.graph.order().enumerate().map(|(i, n)| (n, i)).collect();

    let fresh_results = |done: &HashSet<Unit>| -> Vec<AssetResult> {
        chosen
            .iter()
            .filter(|u| !done.contains(*u))
            .map(|(a, k)| AssetResult {
                asset: a.clone(),
                partition: k.clone(),
                outcome: AssetOutcome::Fresh {
                    early_cutoff: false,
                },
            })
            .collect()
    };
    if run_set.is_empty() {
        return Ok(RunReport {
            run_id: None,
            results: fresh_results(&HashSet::new()),
            wall: started.elapsed(),
        });
    }

    // Checks name columns the assets must produce: find mistakes before
    // anything runs.
    let to_build: BTreeSet<String> = run_set.iter().map(|u| u.0.clone()).collect();
    crate::compile::validate_before_run(ws, &to_build).await?;

    crate::records::audit::audit_config_changes(ws)?;
    let trigger = if opts.backfill.is_some() {
        "backfill"
    } else {
        "cli"
    };
    let run_id = begin_run(ws, &opts.command, trigger, opts.backfill.clone())?;
    progress.event(RunEvent::RunStarted {
        run_id: &run_id,
        planned: &run_set,
    });

    let outcome = schedule(ws, opts, &snapshot, &run_set, &forced, &run_id, progress).await;
    let (status, error) = match &outcome {
        Ok(results)
            if results
                .iter()
                .any(|r| matches!(r.outcome, AssetOutcome::Failed { .. })) =>
        {
            let failed: BTreeSet<&str> = results
                .iter()
                .filter(|r| matches!(r.outcome, AssetOutcome::Failed { .. }))
                .map(|r| r.asset.as_str())
                .collect();
            (
                RunStatus::Failed,
                Some(format!(
                    "failed: {}",
                    failed.into_iter().collect::<Vec<_>>().join(", ")
                )),
            )
        }
        Ok(_) => (RunStatus::Succeeded, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    ws.catalog.finish_run(&run_id, status, error.as_deref())?;
    if let Ok(results) = &outcome {
        let count = |f: fn(&AssetOutcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
        let action = if opts.force { "force" } else { "materialize" };
        let target = if opts.selection.is_empty() {
            "*".to_owned()
        } else {
            opts.selection.join(" ")
        };
        crate::records::audit::audit(
            ws,
            action,
            &target,
            serde_json::json!({
                "run_id": run_id,
                "command": opts.command,
                "backfill_id": opts.backfill,
                "materialized": count(|o| matches!(o, AssetOutcome::Materialized(_))),
                "failed": count(|o| matches!(o, AssetOutcome::Failed { .. })),
                "skipped": count(|o| matches!(o, AssetOutcome::Skipped { .. })),
            }),
        )?;
    }
    let mut results = outcome?;
    let done: HashSet<Unit> = results
        .iter()
        .map(|r| (r.asset.clone(), r.partition.clone()))
        .collect();
    results.extend(fresh_results(&done));
    results.sort_by(|a, b| {
        let oa = order.get(a.asset.as_str()).copied().unwrap_or(usize::MAX);
        let ob = order.get(b.asset.as_str()).copied().unwrap_or(usize::MAX);
        (oa, &a.partition).cmp(&(ob, &b.partition))
    });
    Ok(RunReport {
        run_id: Some(run_id),
        results,
        wall: started.elapsed(),
    })
}

async fn schedule(
    ws: &Workspace,
    opts: &MaterializeOptions,
    snapshot: &Snapshot,
    run_set: &[Unit],
    forced: &HashSet<Unit>,
    run_id: &RunId,
    progress: &dyn Progress,
) -> Result<Vec<AssetResult>, EngineError> {
    let in_run: HashSet<&Unit> = run_set.iter().collect();
    let mut live: HashMap<Unit, Live> = HashMap::new();
    for (name, key, v) in snapshot.source_versions.iter() {
        live.insert(
            (name.to_owned(), key.to_owned()),
            Live {
                kind: UpstreamKind::Source,
                data_version: v.clone(),
                materialization: None,
                files: None,
            },
        );
    }
    for (name, key, cur) in snapshot.current.iter() {
        live.insert(
            (name.to_owned(), key.to_owned()),
            Live {
                kind: UpstreamKind::Asset,
                data_version: cur.data_version.to_string(),
                materialization: Some(cur.id),
                files: None,
            },
        );
    }

    // Dependencies between the units of this run.
    let mut upstream_of: HashMap<&Unit, Vec<Unit>> = HashMap::new();
    let mut dependents: HashMap<Unit, Vec<usize>> = HashMap::new();
    let mut waiting: Vec<usize> = vec![0; run_set.len()];
    // Per asset, not per partition: a backfill has hundreds per asset.
    let mut targets_of: HashMap<&str, Vec<RelationshipTarget>> = HashMap::new();
    for (i, unit) in run_set.iter().enumerate() {
        let Some(asset) = ws.project.assets.get(&unit.0) else {
            return Err(EngineError::Internal(format!(
                "asset `{}` vanished from the project",
                unit.0
            )));
        };
        let ups = snapshot.index.upstream_units(&ws.project, asset, &unit.1);
        for up in &ups {
            if in_run.contains(up) {
                waiting[i] += 1;
                dependents.entry(up.clone()).or_default().push(i);
            }
        }
        // A relationships target rebuilt in this run is checked against
        // its new version (see `AssetGraph::relationship_targets`).
        for target in targets_of
            .entry(unit.0.as_str())
            .or_insert_with(|| ws.graph.relationship_targets(asset))
            .iter()
            .filter(|t| t.refresh_first)
        {
            for key in snapshot.index.keys(&target.name) {
                let target = (target.name.clone(), key.clone());
                if in_run.contains(&target) {
                    waiting[i] += 1;
                    dependents.entry(target).or_default().push(i);
                }
            }
        }
        upstream_of.insert(unit, ups);
    }
    let mut ready: BTreeSet<usize> = (0..run_set.len()).filter(|i| waiting[*i] == 0).collect();

    let to_build: BTreeSet<String> = run_set.iter().map(|u| u.0.clone()).collect();
    let mut declared = HashMap::new();
    let typing = crate::session::tables::new_session(&ws.storage)
        .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
    for asset in to_build.iter().filter_map(|a| ws.project.assets.get(a)) {
        if let Some(schema) = declared_schema(&typing, asset)
            .await
            .map_err(|d| EngineError::Project(cairn_assets::ProjectError::one(d)))?
        {
            declared.insert(asset.name.clone(), schema);
        }
    }
    let shared = Arc::new(RunShared {
        cost: ws.project.config.cost.clone(),
        storage: ws.storage.clone(),
        failpoints: ws.failpoints.clone(),
        catalog: Arc::clone(&ws.catalog),
        project: Arc::clone(&ws.project),
        run_id: run_id.clone(),
        declared,
    });
    let lineage =
        crate::execute::lineage_events::LineageSink::new(ws, &to_build, &run_id.0).await?;
    let mut broken: HashMap<Unit, String> = HashMap::new(); // unit -> failed root asset
    let mut results = Vec::with_capacity(run_set.len());
    let mut tasks: JoinSet<(usize, Result<Materialized, BuildFailure>)> = JoinSet::new();
    let jobs = opts.jobs.max(1);

    loop {
        let mut finished: Vec<(usize, AssetResult)> = Vec::new();
        while tasks.len() < jobs {
            let Some(i) = ready.pop_first() else { break };
            let unit = &run_set[i];
            let (name, key) = (unit.0.as_str(), unit.1.as_str());
            let result = |outcome| AssetResult {
                asset: name.to_owned(),
                partition: key.to_owned(),
                outcome,
            };
            let ups = upstream_of.get(unit).cloned().unwrap_or_default();
            if let Some(root) = ups.iter().find_map(|u| broken.get(u)).cloned() {
                broken.insert(unit.clone(), root.clone());
                finished.push((i, result(AssetOutcome::Skipped { upstream: root })));
                continue;
            }
            let Some(asset) = ws.project.assets.get(name) else {
                continue;
            };
            let mut inputs = Vec::with_capacity(ups.len());
            for up in &ups {
                let Some(l) = live.get(up) else {
                    return Err(EngineError::Internal(format!(
                        "upstream `{}` [{}] of `{name}` has no version",
                        up.0, up.1
                    )));
                };
                inputs.push(UpstreamVersion {
                    name: up.0.clone(),
                    kind: l.kind,
                    partition: up.1.clone(),
                    data_version: l.data_version.clone(),
                    materialization: l.materialization,
                });
            }
            let code_version = snapshot
                .code_versions
                .get(name)
                .cloned()
                .unwrap_or_default();
            let keyed: Vec<UpstreamInput<'_>> = inputs.iter().map(UpstreamInput::from).collect();
            let iv = input_version(&code_version, key, &keyed);
            let current = snapshot.current.get_unit(unit);
            if !forced.contains(unit) && current.is_some_and(|c| c.input_version.as_str() == iv) {
                finished.push((i, result(AssetOutcome::Fresh { early_cutoff: true })));
                continue;
            }
            let sql = match crate::model::partition_index::bind_partition(asset, key) {
                Ok(sql) => sql,
                Err(e) => {
                    broken.insert(unit.clone(), name.to_owned());
                    finished.push((
                        i,
                        result(AssetOutcome::Failed {
                            error: format!("{}: {e}", asset.file.display()),
                            checks: Vec::new(),
                        }),
                    ));
                    continue;
                }
            };
            let mut tables = upstream_tables(ws, asset, &ups, &mut live)?;
            tables.extend(check_tables(ws, snapshot, asset, &mut live)?);
            let previous_files = if current.is_some() {
                unit_files(ws, unit, &mut live)?
            } else {
                Vec::new()
            };
            if let Some(l) = &lineage {
                l.start(ws, unit, &inputs);
            }
            progress.event(RunEvent::AssetStarted {
                asset: name,
                partition: key,
            });
            let job = Job {
                now: snapshot.index.now(),
                previous_files,
                asset: asset.clone(),
                partition: key.to_owned(),
                sql,
                code_version,
                input_version: iv,
                inputs,
                tables,
                previous_data_version: current.map(|c| c.data_version.to_string()),
            };
            let shared = Arc::clone(&shared);
            tasks.spawn(async move { (i, build(&shared, job).await) });
        }

        if finished.is_empty() {
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, result) = joined
                .map_err(|e| EngineError::Internal(format!("build task ended abnormally: {e}")))?;
            let unit = &run_set[i];
            let outcome = match result {
                Ok(m) => {
                    live.insert(
                        unit.clone(),
                        Live {
                            kind: UpstreamKind::Asset,
                            data_version: m.data_version.clone(),
                            materialization: Some(m.id),
                            files: Some(m.files.clone()),
                        },
                    );
                    AssetOutcome::Materialized(Box::new(m))
                }
                Err(BuildFailure { error, checks }) => {
                    broken.insert(unit.clone(), unit.0.clone());
                    AssetOutcome::Failed { error, checks }
                }
            };
            finished.push((
                i,
                AssetResult {
                    asset: unit.0.clone(),
                    partition: unit.1.clone(),
                    outcome,
                },
            ));
        }

        for (i, result) in finished {
            if !matches!(result.outcome, AssetOutcome::Materialized(_)) {
                let (outcome, error) = match &result.outcome {
                    AssetOutcome::Fresh { .. } => (AttemptOutcome::Fresh, None),
                    AssetOutcome::Failed { error, .. } => {
                        (AttemptOutcome::Failed, Some(error.clone()))
                    }
                    AssetOutcome::Skipped { upstream } => (
                        AttemptOutcome::Skipped,
                        Some(format!("upstream {upstream} failed")),
                    ),
                    AssetOutcome::Materialized(_) => (AttemptOutcome::Materialized, None),
                };
                if let AssetOutcome::Failed { checks, .. } = &result.outcome
                    && !checks.is_empty()
                {
                    let records: Vec<NewCheckResult> = checks.iter().map(check_record).collect();
                    ws.catalog.record_check_results(
                        run_id,
                        &result.asset,
                        &result.partition,
                        &records,
                        Utc::now(),
                    )?;
                }
                ws.catalog.record_attempt(&NewAttempt {
                    run_id: run_id.clone(),
                    asset: result.asset.clone(),
                    partition: result.partition.clone(),
                    outcome,
                    error,
                    at: Utc::now(),
                })?;
            }
            for &d in dependents
                .get(&run_set[i])
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                waiting[d] = waiting[d].saturating_sub(1);
                if waiting[d] == 0 {
                    ready.insert(d);
                }
            }
            if let Some(l) = &lineage {
                l.finish(&result);
            }
            progress.event(RunEvent::AssetFinished { result: &result });
            results.push(result);
        }
        if ready.is_empty() && tasks.is_empty() {
            break;
        }
    }
    if results.len() < run_set.len() {
        return Err(EngineError::Internal(format!(
            "{} asset partition(s) were never scheduled (a dependency cycle through checks?)",
            run_set.len() - results.len()
        )));
    }
    Ok(results)
}

/// The tables a unit reads, with committed files resolved (and cached in
/// `live`). Every upstream of the asset gets a table, even one the mapping
/// selects no partition of (it then reads as empty).
fn upstream_tables(
    ws: &Workspace,
    asset: &SqlAsset,
    ups: &[Unit],
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<UpstreamTable>, EngineError> {
    let mut tables = Vec::new();
    for name in &asset.upstream {
        let units: Vec<&Unit> = ups.iter().filter(|u| &u.0 == name).collect();
        if ws.graph.kind(name) == Some(NodeKind::Source) {
            tables.push(UpstreamTable::Source {
                name: name.clone(),
                keys: units.iter().map(|u| u.1.clone()).collect(),
            });
            continue;
        }
        let mut files = Vec::new();
        for u in &units {
            files.extend(unit_files(ws, u, live)?);
        }
        if files.is_empty() && *name == asset.name && asset.columns.is_some() {
            tables.push(UpstreamTable::DeclaredEmpty { name: name.clone() });
            continue;
        }
        let mut schema_files = Vec::new();
        if files.is_empty() {
            let any = live
                .iter()
                .find(|(u, l)| &u.0 == name && l.materialization.is_some())
                .map(|(u, _)| u.clone());
            if let Some(u) = any {
                schema_files = unit_files(ws, &u, live)?;
            }
        }
        tables.push(UpstreamTable::Asset {
            name: name.clone(),
            files,
            schema_files,
        });
    }
    Ok(tables)
}

/// Tables that checks read beyond the asset's upstreams (relationships
/// targets), as their committed versions.
fn check_tables(
    ws: &Workspace,
    snapshot: &Snapshot,
    asset: &SqlAsset,
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<UpstreamTable>, EngineError> {
    let mut out = Vec::new();
    for target in ws.graph.relationship_targets(asset) {
        if target.upstream {
            continue;
        }
        let to_asset = &target.name;
        match target.kind {
            NodeKind::Source => out.push(UpstreamTable::Source {
                name: to_asset.clone(),
                keys: snapshot.index.keys(to_asset).to_vec(),
            }),
            NodeKind::Asset => {
                let mut files = Vec::new();
                for key in snapshot.index.keys(to_asset) {
                    files.extend(unit_files(ws, &(to_asset.clone(), key.clone()), live)?);
                }
                out.push(UpstreamTable::Asset {
                    name: to_asset.clone(),
                    files,
                    schema_files: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}

fn unit_files(
    ws: &Workspace,
    unit: &Unit,
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<String>, EngineError> {
    let Some(l) = live.get_mut(unit) else {
        return Ok(Vec::new());
    };
    if let Some(files) = &l.files {
        return Ok(files.clone());
    }
    let files: Vec<String> = match l.materialization {
        Some(id) => ws
            .catalog
            .materialization(id)?
            .map(|m| m.body.files.into_iter().map(|f| f.path).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    l.files = Some(files.clone());
    Ok(files)
}

/// Why a build failed: the message, and check results when checks failed.
#[derive(Debug)]
struct BuildFailure {
    error: String,
    checks: Vec<CheckOutcome>,
}

impl From<String> for BuildFailure {
    fn from(error: String) -> Self {
        BuildFailure {
            error,
            checks: Vec::new(),
        }
    }
}

/// Computes, writes, checks and commits one asset partition. Errors are
/// user-facing messages naming the asset's file and partition; on error
/// nothing is committed and written files are removed.
async fn build(shared: &RunShared, job: Job) -> Result<Materialized, BuildFailure> {
    let started = Instant::now();
    let name = job.asset.name.clone();
    let file = match job.partition.as_str() {
        "" => job.asset.file.display().to_string(),
        key => format!("{} [partition {key}]", job.asset.file.display()),
    };
    let hive = job
        .asset
        .partitions
        .as_ref()
        .map(|d| d.hive_path(&job.partition))
        .unwrap_or_default();
    let rel = Storage::new_file_path(&name, &hive, &shared.run_id.0, 0);
    let path = shared.storage.object_path(&rel);
    let meters = Meters {
        store: Arc::new(CountingStore::new(Arc::clone(&shared.storage.store))),
        pool: Arc::new(PeakMemoryPool::default()),
    };
    let outcome = write_and_check(shared, &meters, &job, &rel, &path).await;
    let (written, checks, changes) = match outcome {
        Ok(ok) => ok,
        Err(mut failure) => {
            // Best effort: the file is uncommitted, so never read; gc would remove it later.
            let _ = shared.storage.store.delete(&path).await;
            failure.error = format!("{file}: {}", failure.error);
            return Err(failure);
        }
    };

    if let Some(pause) = shared
        .failpoints
        .before_commit
        .as_ref()
        .and_then(|hook| hook(&name, &job.partition))
    {
        tokio::time::sleep(pause).await;
    }

    let data_changed = job.previous_data_version.as_deref() != Some(written.data_version.as_str());
    let metrics = meters.metrics(&written, changes, &shared.cost);
    let wall = started.elapsed();
    let id = shared
        .catalog
        .commit_materialization(&NewMaterialization {
            run_id: shared.run_id.clone(),
            asset: name.clone(),
            partition: job.partition.clone(),
            code_version: job.code_version,
            input_version: job.input_version,
            data_version: written.data_version.clone(),
            row_count: written.rows,
            bytes_written: written.bytes,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            schema_json: schema_json(&written.schema),
            inputs: job.inputs,
            files: vec![FileRecord {
                path: rel.clone(),
                size_bytes: written.bytes,
                row_count: written.rows,
            }],
            committed_at: Utc::now(),
            metrics: metrics.clone(),
            checks: checks.iter().map(check_record).collect(),
        })
        .map_err(|e| format!("{file}: commit failed: {e}"))?;

    Ok(Materialized {
        id,
        rows: written.rows,
        bytes_written: written.bytes,
        files: vec![rel],
        data_version: written.data_version,
        data_changed,
        wall,
        datafusion: written.datafusion,
        write: written.write,
        hashing: written.hashing,
        row_changes: written.row_changes,
        rows_added: changes.map(|c| c.0),
        rows_removed: changes.map(|c| c.1),
        checks,
        metrics,
        schema: Some(written.schema),
    })
}

/// Rows added and removed versus the previous version.
type RowChanges = Option<(u64, u64)>;

/// The meters of one materialization.
struct Meters {
    store: Arc<CountingStore>,
    pool: Arc<PeakMemoryPool>,
}

impl Meters {
    /// Everything measured, priced with `rates`.
    fn metrics(
        &self,
        written: &Written,
        changes: RowChanges,
        rates: &CostConfig,
    ) -> MaterializationMetrics {
        let c = &self.store.counts;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let (bytes_read, read_requests) = (load(&c.bytes_read), load(&c.read_requests));
        let (bytes_written, write_requests) = (load(&c.bytes_written), load(&c.write_requests));
        let other_requests = load(&c.other_requests);
        // CPU: DataFusion operators' compute time plus our own per-row work.
        let cpu_seconds =
            written.plan.elapsed_compute_ns as f64 / 1e9 + written.hashing.as_secs_f64();
        let requests = (read_requests + write_requests + other_requests) as f64;
        let cost_usd = cpu_seconds / 3600.0 * rates.cpu_hour
            + bytes_read as f64 / 1e9 * rates.gb_scanned
            + bytes_written as f64 / 1e9 * rates.gb_stored_month
            + requests / 1000.0 * rates.per_1k_requests;
        MaterializationMetrics {
            rows_added: changes.map(|c| c.0),
            rows_removed: changes.map(|c| c.1),
            columns: written.columns.clone(),
            cpu_seconds,
            datafusion_seconds: written.datafusion.as_secs_f64(),
            output_rows: written.plan.output_rows,
            bytes_scanned: written.plan.bytes_scanned,
            spilled_bytes: written.plan.spilled_bytes,
            bytes_read,
            read_requests,
            objects_read: written.objects_read,
            bytes_written,
            write_requests,
            other_requests,
            peak_memory_bytes: self.pool.peak() as u64,
            cost_usd,
        }
    }
}

/// A session holding exactly what the unit reads; the write; then, on the
/// written file, the checks and the comparison with the previous version.
async fn write_and_check(
    shared: &RunShared,
    meters: &Meters,
    job: &Job,
    rel: &str,
    path: &object_store::path::Path,
) -> Result<(Written, Vec<CheckOutcome>, RowChanges), BuildFailure> {
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::clone(&meters.store) as Arc<dyn object_store::ObjectStore>;
    let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
        Arc::clone(&meters.pool) as _;
    let ctx = metered_session(&shared.storage, Arc::clone(&store), pool)
        .map_err(|e| e.strip_backtrace())?;
    let declared = shared.declared.get(&job.asset.name);
    for table in &job.tables {
        match table {
            UpstreamTable::DeclaredEmpty { name } => {
                let Some(schema) = declared else { continue };
                let dims = dimension_names(&shared.project, name);
                ctx.register_table(
                    name,
                    Arc::new(EmptyTable::new(with_dimensions(schema, &dims))),
                )
                .map_err(|e| e.strip_backtrace())?;
            }
            UpstreamTable::Source { name, keys } => {
                let Some(source) = shared.project.sources.get(name) else {
                    continue;
                };
                register_source_partitions(&ctx, source, keys)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            UpstreamTable::Asset {
                name,
                files,
                schema_files,
            } => {
                if files.is_empty() && schema_files.is_empty() && *name == job.asset.name {
                    return Err(crate::compile::needs_declared_columns(&job.asset)
                        .to_string()
                        .into());
                }
                let empty = files.is_empty();
                let files = if empty { schema_files } else { files };
                register_committed(
                    &ctx,
                    &shared.storage,
                    name,
                    files,
                    &dimension_names(&shared.project, name),
                    empty,
                )
                .await
                .map_err(|e| {
                    format!(
                        "cannot read committed files of `{name}`: {}",
                        e.strip_backtrace()
                    )
                })?;
            }
        }
    }
    let mut written = write_output(&ctx, &store, job, path).await?;
    written.objects_read = meters.store.counts.objects_read_except(path);
    if let Some(declared) = declared {
        check_output(&job.asset, declared, &written.schema).map_err(|d| d.to_string())?;
    }

    // From here on the asset's own name means the new, uncommitted output.
    let me = job.asset.name.as_str();
    let my_dims = dimension_names(&shared.project, me);
    register_committed(
        &ctx,
        &shared.storage,
        me,
        &[rel.to_owned()],
        &my_dims,
        false,
    )
    .await
    .map_err(|e| format!("cannot read back the written file: {}", e.strip_backtrace()))?;
    crate::quality::partition_guard::check_rows_in_partition(
        &ctx,
        me,
        &job.asset,
        &job.partition,
        &written.schema,
    )
    .await?;
    let checks = run_checks(&ctx, &job.asset.checks, me, job.now, &written.check_counts).await;
    if checks.iter().any(CheckOutcome::blocks) {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.blocks())
            .map(|c| match &c.error {
                Some(e) => format!("{} could not run: {e}", c.name),
                None => format!("{} ({} failing rows)", c.name, c.failing_rows),
            })
            .collect();
        return Err(BuildFailure {
            error: format!("{CHECKS_FAILED}{}", failed.join("; ")),
            checks,
        });
    }
    let t = Instant::now();
    let changes = if !counts_changes(job) {
        None
    } else if job.previous_data_version.as_deref() == Some(written.data_version.as_str()) {
        // Same multiset of rows: nothing added or removed.
        Some((0, 0))
    } else {
        row_changes(&ctx, shared, &meters.store, me, job, &mut written).await
    };
    written.row_changes = t.elapsed();
    Ok((written, checks, changes))
}

/// Whether rows added and removed are counted: there is a previous
/// version and the asset did not opt out.
fn counts_changes(job: &Job) -> bool {
    !job.previous_files.is_empty() && job.asset.count_changes
}

/// Exact rows added and removed (as multisets, see [`crate::execute::row_changes`])
/// between the new output, registered as `me`, and the previous version's
/// files. `None` when the columns differ (a schema change makes the
/// comparison meaningless) or the previous version cannot be read.
async fn row_changes(
    ctx: &SessionContext,
    shared: &RunShared,
    store: &Arc<CountingStore>,
    me: &str,
    job: &Job,
    written: &mut Written,
) -> RowChanges {
    use crate::execute::row_changes::{
        MAX_HELD_ROWS, Previous, by_sql, difference, previous_row_hashes,
    };
    if let Some(new) = written.row_hashes.take() {
        let files: Vec<_> = job
            .previous_files
            .iter()
            .map(|f| shared.storage.object_path(f))
            .collect();
        let store = Arc::clone(store) as Arc<dyn object_store::ObjectStore>;
        match previous_row_hashes(store, &files, &written.schema, MAX_HELD_ROWS).await {
            Ok(Previous::Hashes(previous)) => {
                let c = difference(new, previous);
                return Some((c.added, c.removed));
            }
            Ok(Previous::OtherColumns) | Err(_) => return None,
            Ok(Previous::TooLarge) => {}
        }
    }
    // Too many rows to hold their hashes: the same counts in SQL.
    const PREVIOUS: &str = "__cairn_previous";
    let dims = dimension_names(&shared.project, me);
    register_committed(
        ctx,
        &shared.storage,
        PREVIOUS,
        &job.previous_files,
        &dims,
        false,
    )
    .await
    .ok()?;
    let c = by_sql(ctx, me, PREVIOUS).await.ok()?;
    Some((c.added, c.removed))
}

struct Written {
    /// Failing-row counts of checks evaluated on the stream, by check index.
    check_counts: std::collections::HashMap<usize, u64>,
    plan: PlanMetrics,
    columns: Vec<ColumnStats>,
    schema: SchemaRef,
    rows: u64,
    bytes: u64,
    data_version: String,
    datafusion: Duration,
    write: Duration,
    hashing: Duration,
    /// Distinct objects read to compute it, its own output aside.
    objects_read: u64,
    /// Time counting rows added and removed.
    row_changes: Duration,
    /// Each row's hash, when rows added and removed are to be counted
    /// (`None` past [`crate::execute::row_changes::MAX_HELD_ROWS`]).
    row_hashes: Option<Vec<crate::model::version::RowHash>>,
}

async fn write_output(
    ctx: &SessionContext,
    store: &Arc<dyn object_store::ObjectStore>,
    job: &Job,
    path: &object_store::path::Path,
) -> Result<Written, String> {
    let df_err = |e: datafusion::error::DataFusionError| e.strip_backtrace();
    let t = Instant::now();
    let df = ctx
        .sql_with_options(&job.sql, read_only())
        .await
        .map_err(df_err)?;
    let plan = df.create_physical_plan().await.map_err(df_err)?;
    let mut datafusion = t.elapsed();
    let schema = plan.schema();
    let mut seen = HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(format!(
                "the query returns two columns named `{}`; give one an alias (e.g. `b.{} as b_{}`)",
                field.name(),
                field.name(),
                field.name()
            ));
        }
    }

    if let Some(def) = &job.asset.partitions {
        for dim in &def.dimensions {
            if schema.fields().iter().any(|f| f.name() == dim.name()) {
                return Err(format!(
                    "the output has a column named `{0}`, which is also the partition dimension (the `{0}=...` folder, which readers already see as a column); leave it out (`select * exclude ({0}) ...` when it comes from a partitioned upstream), rename it, or set a different `name` in [partitions]",
                    dim.name()
                ));
            }
        }
    }

    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
        .build();
    let sink = BufWriter::new(Arc::clone(store), path.clone());
    let mut writer = AsyncArrowWriter::try_new(sink, Arc::clone(&schema), Some(props))
        .map_err(|e| e.to_string())?;
    let mut hasher = DataHasher::new(&schema).map_err(df_err)?;
    if counts_changes(job) {
        hasher = hasher.keeping_row_hashes(crate::execute::row_changes::MAX_HELD_ROWS);
    }
    let mut stream_checks = StreamChecks::new(ctx, &job.asset.checks, &schema);
    let mut stream = execute_stream(Arc::clone(&plan), ctx.task_ctx()).map_err(df_err)?;
    let (mut write, mut hashing, mut rows) = (Duration::ZERO, Duration::ZERO, 0u64);
    loop {
        let t = Instant::now();
        let next = stream.next().await;
        datafusion += t.elapsed();
        let Some(batch) = next else { break };
        let batch = batch.map_err(df_err)?;
        let t = Instant::now();
        hasher.update(&batch).map_err(df_err)?;
        stream_checks.update(&batch);
        hashing += t.elapsed();
        let t = Instant::now();
        writer
            .write(&batch)
            .await
            .map_err(|e| format!("writing Parquet: {e}"))?;
        write += t.elapsed();
        rows += batch.num_rows() as u64;
    }
    let t = Instant::now();
    let parquet_meta = writer
        .close()
        .await
        .map_err(|e| format!("writing Parquet: {e}"))?;
    let bytes = store
        .head(path)
        .await
        .map_err(|e| format!("reading back written file: {e}"))?
        .size;
    write += t.elapsed();
    Ok(Written {
        check_counts: stream_checks.counts(),
        objects_read: 0,
        row_changes: Duration::ZERO,
        row_hashes: hasher.take_row_hashes(),
        columns: column_stats(&parquet_meta, &schema),
        plan: plan_metrics(&plan),
        schema,
        rows,
        bytes,
        data_version: hasher.finish(),
        datafusion,
        write,
        hashing,
    })
}

fn schema_json(schema: &SchemaRef) -> String {
    let fields: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    serde_json::Value::Array(fields).to_string()
}
