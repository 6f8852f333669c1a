//! Executing a materialization run: schedule the units that may be stale
//! in dependency order with bounded concurrency, decide again just before
//! each one whether it is really stale (early cutoff), build it
//! (`build.rs`; again after a transient failure, `retry.rs`), and record
//! the run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use cairn_catalog::{
    AttemptOutcome, NewAttempt, NewCheckResult, RunId, RunStatus, UnitClaim, UnitClaimed,
    UpstreamKind, UpstreamVersion,
};

use crate::compile::declared::declared_schema;
use crate::error::EngineError;
use crate::execute::build::BuildFailure;
use crate::execute::control::{Pools, RunContext, Stop};
use crate::execute::inputs::{Job, Live, RunShared, check_tables, unit_files, upstream_tables};
use crate::execute::report::{AssetOutcome, AssetResult, Progress, RunEvent, RunReport};
use crate::execute::retry::{Attempts, Retrying, build_with_retries};
use crate::model::graph::RelationshipTarget;
use crate::model::units::Unit;
use crate::model::version::{UpstreamInput, input_version};
use crate::model::workspace::Workspace;
use crate::plan::{MaterializeOptions, Plan, plan, scope_of};
use crate::records::runs::{begin_run, check_record};
use crate::session::cluster::QueryEngine;
use crate::state::snapshot::Snapshot;

/// How long a unit claim lasts unless renewed: a process that dies while
/// building loses its claims this long after its last heartbeat.
const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// How often a run renews the claims of the units it builds.
const CLAIM_HEARTBEAT: Duration = Duration::from_secs(15);

/// How often a unit another run is building is asked for again.
const CLAIM_POLL: Duration = Duration::from_millis(250);

/// Claims `unit` for the run: `None` while another run holds it, else the
/// unit's current committed version as of the claim.
fn claim_unit(
    ws: &Workspace,
    run_id: &RunId,
    unit: &Unit,
) -> Result<Option<Option<cairn_catalog::CurrentVersion>>, EngineError> {
    let now = Utc::now();
    let claim = UnitClaim {
        run_id: run_id.clone(),
        asset: unit.0.clone(),
        partition: unit.1.clone(),
        now,
        until: now + CLAIM_LEASE,
    };
    Ok(match ws.catalog.claim_unit(&claim)? {
        UnitClaimed::Granted(current) => Some(current),
        UnitClaimed::Held(_) => None,
    })
}

/// Renews the run's unit claims every [`CLAIM_HEARTBEAT`] while it lives
/// (until dropped).
struct ClaimHeartbeat(tokio::task::JoinHandle<()>);

impl ClaimHeartbeat {
    fn start(catalog: Arc<dyn cairn_catalog::Catalog>, run: RunId) -> Self {
        ClaimHeartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(CLAIM_HEARTBEAT).await;
                let until = Utc::now() + CLAIM_LEASE;
                if let Err(e) = catalog.renew_unit_claims(&run, until) {
                    tracing::warn!(run = %run.0, error = %e, "could not renew unit claims");
                }
            }
        }))
    }
}

impl Drop for ClaimHeartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn materialize(
    ws: &Workspace,
    opts: &MaterializeOptions,
    ctx: &RunContext,
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
        mut forced,
    } = plan(ws, &snapshot, opts)?;
    if let Some(id) = &ctx.queued {
        // Resumed after an interruption: what it committed is not forced again.
        for attempt in ws.catalog.run(id)?.map(|(_, a)| a).unwrap_or_default() {
            if attempt.outcome == AttemptOutcome::Materialized {
                forced.remove(&(attempt.asset, attempt.partition));
            }
        }
    }

    // Chosen units the run does not build (those it builds report their own).
    let in_run: HashSet<&Unit> = run_set.iter().collect();
    let fresh_results = || -> Vec<AssetResult> {
        chosen
            .iter()
            .filter(|u| !in_run.contains(*u))
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
        if let Some(id) = &ctx.queued {
            ws.catalog.finish_run(id, RunStatus::Succeeded, None)?;
        }
        return Ok(RunReport {
            run_id: ctx.queued.clone(),
            results: fresh_results(),
            wall: started.elapsed(),
        });
    }

    // Checks name columns the assets must produce: find mistakes before
    // anything runs.
    let to_build: BTreeSet<String> = run_set.iter().map(|u| u.0.clone()).collect();
    // A remote store or cluster that cannot be reached fails once, here,
    // before the run is recorded, not once per unit after each one's retries.
    ws.storage.check_reachable().await?;
    let engine = QueryEngine::from_config(&ws.project.config.engine, &ws.project.config.storage)?;
    engine.check_reachable().await?;
    crate::compile::validate_before_run(ws, &to_build).await?;

    crate::records::audit::audit_config_changes(ws)?;
    let trigger = if opts.backfill.is_some() {
        "backfill"
    } else {
        "cli"
    };
    let run_id = match &ctx.queued {
        Some(id) => id.clone(),
        None => begin_run(ws, &opts.command, trigger, opts.backfill.clone())?,
    };
    progress.event(RunEvent::RunStarted {
        run_id: &run_id,
        planned: &run_set,
    });

    let outcome = schedule(
        ws, opts, ctx, &snapshot, &run_set, &forced, &run_id, engine, progress,
    )
    .await;
    let unfinished = match &outcome {
        Ok(results) => run_set.len() - results.len(),
        Err(_) => 0,
    };
    let (status, error) = match &outcome {
        Ok(_) if ctx.control.is_cancelled() => (
            RunStatus::Cancelled,
            Some(format!(
                "cancelled; {unfinished} of {} asset partition(s) not built",
                run_set.len()
            )),
        ),
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
    // Drained for a shutdown with work left: the run stays as it is, for
    // the queue to resume.
    let drained = ctx.control.stop() == Some(Stop::Drain) && unfinished > 0;
    if !drained {
        ws.catalog.finish_run(&run_id, status, error.as_deref())?;
    }
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
    if let Ok(results) = &outcome {
        // Each unit's final outcome (after retries) opens or clears incidents.
        crate::execute::alerting::observe_run(ws, &run_id, results);
    }
    let mut results = outcome?;
    results.extend(fresh_results());
    ws.graph
        .sort_in_execution_order(&mut results, |r| (r.asset.as_str(), r.partition.as_str()));
    Ok(RunReport {
        run_id: Some(run_id),
        results,
        wall: started.elapsed(),
    })
}

#[expect(clippy::too_many_arguments, reason = "one call site")]
async fn schedule(
    ws: &Workspace,
    opts: &MaterializeOptions,
    ctx: &RunContext,
    snapshot: &Snapshot,
    run_set: &[Unit],
    forced: &HashSet<Unit>,
    run_id: &RunId,
    engine: QueryEngine,
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
        control: ctx.control.clone(),
        // Checked reachable by `materialize` before the run began.
        engine,
        memory: run_memory_pool(ws.memory_limit),
        memory_limit: ws.memory_limit,
    });
    let pools = ctx
        .pools
        .clone()
        .unwrap_or_else(|| Arc::new(Pools::new(&ws.project.config.pools)));
    let mut cancelling = false;
    let lineage =
        crate::execute::lineage_events::LineageSink::new(ws, &to_build, &run_id.0).await?;
    let mut broken: HashMap<Unit, String> = HashMap::new(); // unit -> failed root asset
    let mut results = Vec::with_capacity(run_set.len());
    let mut tasks: JoinSet<(usize, Attempts)> = JoinSet::new();
    // Units another run holds the claim of, asked again every CLAIM_POLL.
    let mut held: Vec<usize> = Vec::new();
    let _heartbeat = ClaimHeartbeat::start(Arc::clone(&ws.catalog), run_id.clone());
    // Failed attempts to be retried, sent by the build tasks.
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<Retrying>();
    let jobs = opts.jobs.max(1);

    loop {
        let mut finished: Vec<(usize, AssetResult)> = Vec::new();
        while tasks.len() < jobs && ctx.control.stop().is_none() {
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
            // Another process (a CLI run, a server) may be building this
            // unit, or have built it since the plan: claim it first.
            match claim_unit(ws, run_id, unit)? {
                None => {
                    held.push(i);
                    continue;
                }
                Some(Some(now)) if !forced.contains(unit) && now.input_version == iv => {
                    ws.catalog.release_unit(run_id, name, key)?;
                    live.insert(
                        unit.clone(),
                        Live {
                            kind: UpstreamKind::Asset,
                            data_version: now.data_version,
                            materialization: Some(now.id),
                            files: None,
                        },
                    );
                    finished.push((i, result(AssetOutcome::Fresh { early_cutoff: true })));
                    continue;
                }
                Some(_) => {}
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
            let (pools, pool) = (Arc::clone(&pools), asset.pool.clone());
            let (policy, retrying) = (asset.retries, retry_tx.clone());
            tasks.spawn(async move {
                let attempts =
                    build_with_retries(&shared, job, policy, &pools, pool.as_deref(), i, &retrying)
                        .await;
                (i, attempts)
            });
        }

        if finished.is_empty() {
            if ctx.control.stop().is_some() {
                // Units waiting for another run's claim are left unbuilt.
                held.clear();
            }
            if tasks.is_empty() && !held.is_empty() {
                // Nothing in flight here: wait for the other runs.
                tokio::select! {
                    () = ctx.control.cancelled(), if !cancelling => { cancelling = true; }
                    () = tokio::time::sleep(CLAIM_POLL) => ready.extend(held.drain(..)),
                }
                continue;
            }
            let joined = tokio::select! {
                biased;
                () = ctx.control.cancelled(), if !cancelling => {
                    // Abandon what is in flight: nothing of it commits.
                    tasks.abort_all();
                    cancelling = true;
                    continue;
                }
                Some(retry) = retry_rx.recv() => {
                    record_retry(ws, run_id, &run_set[retry.unit], &retry, progress)?;
                    continue;
                }
                () = tokio::time::sleep(CLAIM_POLL), if !held.is_empty() => {
                    ready.extend(held.drain(..));
                    continue;
                }
                joined = tasks.join_next() => joined,
            };
            let Some(joined) = joined else {
                break;
            };
            let (i, result) = match joined {
                Err(e) if e.is_cancelled() => continue,
                Err(e) => {
                    return Err(EngineError::Internal(format!(
                        "build task ended abnormally: {e}"
                    )));
                }
                // Stopped while waiting to retry: left unbuilt, as an
                // abandoned unit is.
                Ok((_, Attempts::Interrupted)) => continue,
                // A unit that failed once the run was cancelled was
                // abandoned (or raced the cancel): not recorded.
                Ok((_, Attempts::Done(Err(_)))) if ctx.control.is_cancelled() => continue,
                Ok((i, Attempts::Done(result))) => (i, result),
            };
            let unit = &run_set[i];
            let outcome = match result {
                Ok(m) => {
                    live.insert(
                        unit.clone(),
                        Live {
                            kind: UpstreamKind::Asset,
                            data_version: m.data_version.clone(),
                            materialization: Some(m.id),
                            // Read back from the catalog on first use,
                            // sizes included (spares readers a HEAD each).
                            files: None,
                        },
                    );
                    AssetOutcome::Materialized(Box::new(m))
                }
                Err(BuildFailure { error, checks, .. }) => {
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
                if outcome == AttemptOutcome::Failed {
                    // Failed for good (retries are over): free for others.
                    ws.catalog
                        .release_unit(run_id, &result.asset, &result.partition)?;
                }
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
        if tasks.is_empty()
            && ((ready.is_empty() && held.is_empty()) || ctx.control.stop().is_some())
        {
            break;
        }
    }
    // Attempts of units abandoned by a cancel, not yet recorded.
    while let Ok(retry) = retry_rx.try_recv() {
        record_retry(ws, run_id, &run_set[retry.unit], &retry, progress)?;
    }
    if let Some(l) = lineage {
        l.close().await;
    }
    if results.len() < run_set.len() && ctx.control.stop().is_none() {
        return Err(EngineError::Internal(format!(
            "{} asset partition(s) were never scheduled (a dependency cycle through checks?)",
            run_set.len() - results.len()
        )));
    }
    Ok(results)
}

/// Records a failed attempt that will be retried, and reports it.
fn record_retry(
    ws: &Workspace,
    run_id: &RunId,
    (asset, partition): &Unit,
    retry: &Retrying,
    progress: &dyn Progress,
) -> Result<(), EngineError> {
    let message = retry.message();
    ws.catalog.record_attempt(&NewAttempt {
        run_id: run_id.clone(),
        asset: asset.clone(),
        partition: partition.clone(),
        outcome: AttemptOutcome::Failed,
        error: Some(message.clone()),
        at: retry.at,
    })?;
    progress.event(RunEvent::AssetRetrying {
        asset,
        partition,
        message: &message,
    });
    Ok(())
}

/// The pool every unit of a run draws from. Bounded, it is DataFusion's
/// fair spill pool (concurrent units' spilling operators get equal shares
/// of what unspillable ones leave), tracking its five largest consumers so
/// that running out names them.
fn run_memory_pool(limit: Option<u64>) -> Arc<dyn datafusion::execution::memory_pool::MemoryPool> {
    use datafusion::execution::memory_pool::{
        FairSpillPool, TrackConsumersPool, UnboundedMemoryPool,
    };
    match limit {
        Some(bytes) => Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(usize::try_from(bytes).unwrap_or(usize::MAX)),
            std::num::NonZeroUsize::MIN.saturating_add(4),
        )),
        None => Arc::new(UnboundedMemoryPool::default()),
    }
}
