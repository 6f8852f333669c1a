//! The run queue: every run a server starts goes through it, persisted in
//! the catalog so that it survives the process.
//!
//! - **Submit** validates and plans the request now (a bad selection or
//!   partition is refused and nothing is queued), then queues a run that
//!   claims the units the plan would build — or, when one active run
//!   already claims every one of them, attaches to that run (no new run;
//!   the caller watches that one). One catalog transaction decides.
//! - **Dispatch** starts queued runs in queueing order while fewer than
//!   `max_concurrent_runs` run. A run waits while an earlier active run
//!   claims one of its units or a unit of an asset upstream of one of its
//!   assets: a unit is never built by two runs at once, and a later run
//!   plans again when it starts, so what an earlier run built is fresh by
//!   then (early cutoff) and is not built twice.
//! - **Cancel** ends a queued run at once; a running one starts no unit
//!   more and abandons those in flight (nothing of them commits), then
//!   ends cancelled.
//! - **Restart**: a run left running by a dead process goes back to the
//!   queue when the project is next opened (`Catalog::mark_crashed_runs`);
//!   when it runs again, its plan skips what it committed before.
//! - **Shutdown** drains: runs start no unit more, what is in flight
//!   commits, and unfinished runs stay for the next start to resume.
//!
//! `[pools]` limits are shared by every run of the process.

pub(crate) mod feed;
pub(crate) mod request;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use cairn_catalog::{
    Catalog, Enqueued, NewQueuedRun, NewRun, PartitionRef, QueuedRun, RunId, RunRecord, RunStatus,
};

use crate::error::EngineError;
use crate::execute::control::{Pools, RunContext, RunControl, Stop};
use crate::execute::report::{Progress, RunEvent};
use crate::model::workspace::{DefinitionsCache, Workspace};
use crate::plan::Decision;
use feed::{BackfillCounts, Feeds, RunUpdate, RunWatch, UnitOutcome, UpdateKind};
use request::RunRequest;

/// How often the dispatcher looks at the queue when nothing woke it (runs
/// queued or cancelled by another process).
const TICK: Duration = Duration::from_secs(2);

/// How long [`RunQueue::cancel`] waits for a running run to end.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// What the queue needs to run work.
#[derive(Clone)]
pub struct QueueSettings {
    /// The project folder (opened afresh for each run, so edited
    /// definitions are seen).
    pub project: PathBuf,
    /// Runs executed at once.
    pub max_concurrent_runs: usize,
    /// Applied to every workspace the queue opens (an injected clock,
    /// test failpoints).
    pub configure: Arc<dyn Fn(Workspace) -> Workspace + Send + Sync>,
    /// Definitions kept between opens while the project's files are
    /// unchanged (shared with the server's other requests).
    pub definitions: Arc<DefinitionsCache>,
}

/// The answer to a submitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The run to watch.
    pub run_id: RunId,
    /// True when an active run already claimed every unit: no new run.
    pub attached: bool,
}

/// The queue of one process. Clones share it.
#[derive(Clone)]
pub struct RunQueue {
    inner: Arc<Inner>,
}

struct Inner {
    settings: QueueSettings,
    catalog: Arc<dyn Catalog>,
    pools: Arc<Pools>,
    state: Mutex<State>,
    /// Something changed: look at the queue again.
    wake: Notify,
    /// A run this process executed ended.
    ended: Notify,
    /// When the queue started: runs of other processes that ended before
    /// are history, not news.
    since: chrono::DateTime<Utc>,
}

#[derive(Default)]
struct State {
    /// Runs this process executes, with their stop controls.
    running: HashMap<RunId, RunControl>,
    feeds: Feeds,
    draining: bool,
}

impl RunQueue {
    /// Opens the project (which returns the runs of a dead process to the
    /// queue) and starts dispatching. Needs a Tokio runtime.
    pub async fn start(settings: QueueSettings) -> Result<RunQueue, EngineError> {
        let ws = open(&settings, None).await?;
        let inner = Arc::new(Inner {
            catalog: Arc::clone(&ws.catalog),
            pools: Arc::new(Pools::new(&ws.project.config.pools)),
            settings,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            ended: Notify::new(),
            since: Utc::now(),
        });
        let dispatcher = Arc::clone(&inner);
        tokio::spawn(async move { dispatch_forever(dispatcher).await });
        Ok(RunQueue { inner })
    }

    /// Validates and plans `request`, then queues it (or attaches it to an
    /// active run that claims all its units). `principal` is who asks
    /// (recorded on the run and in the audit log; `None`: the OS user).
    pub async fn submit(
        &self,
        request: RunRequest,
        principal: Option<String>,
    ) -> Result<Submitted, EngineError> {
        let ws = open(&self.inner.settings, principal).await?;
        let command = request.command();
        let (stored, claims, backfill_id) = match &request {
            RunRequest::Materialize { .. } | RunRequest::Units { .. } => {
                let opts = request.materialize_options(&command).ok_or_else(|| {
                    EngineError::Internal("a materialize request without options".to_owned())
                })?;
                let planned = crate::plan::explain(&ws, &opts)?;
                let claims: Vec<PartitionRef> = planned
                    .iter()
                    .filter(|u| u.decision != Decision::Fresh)
                    .map(|u| PartitionRef {
                        asset: u.asset.clone(),
                        partition: u.partition.clone(),
                    })
                    .collect();
                let to_build: BTreeSet<String> = claims.iter().map(|c| c.asset.clone()).collect();
                crate::compile::validate_before_run(&ws, &to_build).await?;
                (request.clone(), claims, None)
            }
            RunRequest::Backfill { jobs, .. } => {
                let opts = request.backfill_options(&command).ok_or_else(|| {
                    EngineError::Internal("a backfill request without options".to_owned())
                })?;
                let (id, units) = crate::execute::backfill::plan_backfill(&ws, &opts)?;
                let claims = units
                    .into_iter()
                    .map(|(asset, partition)| PartitionRef { asset, partition })
                    .collect();
                let stored = RunRequest::ResumeBackfill {
                    id: id.clone(),
                    jobs: *jobs,
                };
                (stored, claims, Some(id))
            }
            RunRequest::ResumeBackfill { id, .. } => {
                let Some(record) = ws.catalog.backfill(id)? else {
                    return Err(crate::execute::backfill::no_such_backfill(&ws, id)?);
                };
                let claims = record
                    .backfill
                    .units
                    .into_iter()
                    .filter(|u| ws.project.assets.contains_key(&u.asset))
                    .collect();
                (request.clone(), claims, Some(id.clone()))
            }
        };
        let run_id = RunId(uuid::Uuid::now_v7().to_string());
        let queued = NewQueuedRun {
            run: NewRun {
                id: run_id.clone(),
                user: ws.principal(),
                host: crate::model::whoami::host(),
                pid: std::process::id(),
                command,
                trigger: "api".to_owned(),
                started_at: Utc::now(),
                backfill_id: backfill_id.clone(),
            },
            request: serde_json::to_string(&stored)
                .map_err(|e| EngineError::Internal(format!("encoding a run request: {e}")))?,
            attach: backfill_id.is_none(),
            claims,
        };
        let submitted = match ws.catalog.enqueue_run(&queued)? {
            Enqueued::Queued => {
                tracing::info!(
                    run = %run_id,
                    by = %queued.run.user,
                    units = queued.claims.len(),
                    "queued: {}",
                    queued.run.command
                );
                self.inner.push(RunUpdate {
                    run_id: run_id.clone(),
                    at: queued.run.started_at,
                    kind: UpdateKind::Queued,
                });
                self.inner.wake.notify_one();
                Submitted {
                    run_id,
                    attached: false,
                }
            }
            Enqueued::Attached(existing) => {
                tracing::info!(
                    run = %existing,
                    by = %queued.run.user,
                    "attached: {} (every unit already queued or running)",
                    queued.run.command
                );
                Submitted {
                    run_id: existing,
                    attached: true,
                }
            }
        };
        crate::records::audit::audit(
            &ws,
            "queue_run",
            &queued.run.command,
            serde_json::json!({
                "run_id": submitted.run_id,
                "attached": submitted.attached,
                "units": queued.claims.len(),
                "backfill_id": backfill_id,
            }),
        )?;
        Ok(submitted)
    }

    /// Cancels a run of the queue and waits (up to a minute) for it to
    /// end. `None` for an unknown run; a finished run is returned as it
    /// is; a run the CLI started directly cannot be cancelled here.
    pub async fn cancel(
        &self,
        id: &RunId,
        principal: Option<String>,
    ) -> Result<Option<RunRecord>, EngineError> {
        let Some((run, _)) = self.inner.catalog.run(id)? else {
            return Ok(None);
        };
        if run.status.is_finished() {
            return Ok(Some(run));
        }
        if run.queued_at.is_none() {
            return Err(EngineError::Usage(format!(
                "run {id} was started by `{}` (process {} on {}), not by the run queue; stop it there with Ctrl-C",
                run.command, run.pid, run.host
            )));
        }
        let ws = open(&self.inner.settings, principal).await?;
        // Watch before asking, so the end cannot slip between.
        let watch = self.watch(id)?;
        let after = ws.catalog.request_cancel(id, Utc::now())?;
        tracing::info!(run = %id, by = %ws.principal(), "cancel requested");
        crate::records::audit::audit(
            &ws,
            "cancel_run",
            &id.0,
            serde_json::json!({ "status_before": run.status.as_str() }),
        )?;
        match after {
            Some(r) if r.status == RunStatus::Cancelled => {
                self.inner.push(RunUpdate {
                    run_id: id.clone(),
                    at: r.finished_at.unwrap_or_else(Utc::now),
                    kind: UpdateKind::Finished {
                        status: r.status,
                        error: r.error.clone(),
                    },
                });
                self.inner.wake.notify_one();
            }
            Some(_) => {
                let control = self.inner.lock().running.get(id).cloned();
                if let Some(control) = control {
                    control.cancel();
                    if let Some(RunWatch {
                        live: Some(mut live),
                        ..
                    }) = watch
                    {
                        let _ = tokio::time::timeout(CANCEL_WAIT, async {
                            while let Some(u) = live.recv().await {
                                if matches!(u.kind, UpdateKind::Finished { .. }) {
                                    break;
                                }
                            }
                        })
                        .await;
                    }
                }
            }
            None => return Ok(None),
        }
        Ok(self.inner.catalog.run(id)?.map(|(r, _)| r))
    }

    /// The updates of a run so far and, unless it finished, the live ones.
    /// `None` for an unknown run.
    pub fn watch(&self, id: &RunId) -> Result<Option<RunWatch>, EngineError> {
        if let Some(w) = self.inner.lock().feeds.watch(id) {
            return Ok(Some(w));
        }
        let Some((run, attempts)) = self.inner.catalog.run(id)? else {
            return Ok(None);
        };
        Ok(Some(
            self.inner.lock().feeds.watch_recorded(&run, &attempts),
        ))
    }

    /// Every update of every run this queue handles: the updates so far of
    /// runs not yet finished, then all from now on (runs a CLI process
    /// starts directly are not in it); the stream ends when the queue shuts
    /// down.
    pub fn watch_all(&self) -> tokio::sync::mpsc::UnboundedReceiver<RunUpdate> {
        self.inner.lock().feeds.watch_all()
    }

    /// Stops dispatching and drains: running runs start no unit more and
    /// what is in flight commits, for at most `grace`; runs left
    /// unfinished are resumed by the next start.
    pub async fn shutdown(&self, grace: Duration) {
        let controls: Vec<RunControl> = {
            let mut state = self.inner.lock();
            state.draining = true;
            state.running.values().cloned().collect()
        };
        for c in &controls {
            c.drain();
        }
        let _ = tokio::time::timeout(grace, async {
            loop {
                let ended = self.inner.ended.notified();
                if self.inner.lock().running.is_empty() {
                    break;
                }
                ended.await;
            }
        })
        .await;
        self.inner.lock().feeds.close_watchers();
    }
}

impl RunQueue {
    /// The project as the queue opens it (for `principal`).
    pub(crate) async fn open_workspace(
        &self,
        principal: Option<String>,
    ) -> Result<Workspace, EngineError> {
        open(&self.inner.settings, principal).await
    }

    /// Look at the queue now (something was queued from outside `submit`).
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Waits until no run is queued and none this process started is
    /// running (a command that runs the queue in-process, like `cairn
    /// tick` without a server). Runs queued by others meanwhile are run too.
    pub async fn run_until_idle(&self) -> Result<(), EngineError> {
        loop {
            let ended = self.inner.ended.notified();
            let queued = self
                .inner
                .catalog
                .queue()?
                .iter()
                .any(|q| q.record.status == RunStatus::Queued);
            if !queued && self.inner.lock().running.is_empty() {
                return Ok(());
            }
            self.inner.wake.notify_one();
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: a panic elsewhere
        // does not make it unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, update: RunUpdate) {
        self.lock().feeds.push(update);
    }
}

/// Opens the project for the queue, acting for `principal`.
async fn open(
    settings: &QueueSettings,
    principal: Option<String>,
) -> Result<Workspace, EngineError> {
    let (dir, cache) = (settings.project.clone(), Arc::clone(&settings.definitions));
    let ws =
        tokio::task::spawn_blocking(move || crate::model::workspace::open_cached(&dir, &cache))
            .await
            .map_err(|e| EngineError::Internal(format!("opening the project: {e}")))??;
    let ws = (settings.configure)(ws);
    Ok(match principal {
        Some(p) => Workspace {
            principal: Some(p),
            ..ws
        },
        None => ws,
    })
}

async fn dispatch_forever(inner: Arc<Inner>) {
    loop {
        let woken = inner.wake.notified();
        if inner.lock().draining {
            return;
        }
        // A failure (catalog busy, project broken on disk) is retried at
        // the next wake or tick; the runs stay queued.
        if let Err(e) = dispatch(&inner).await {
            tracing::warn!("the queue waits: {e}");
        }
        if let Err(e) = follow_others(&inner) {
            tracing::warn!("following runs of other processes: {e}");
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// Runs of other processes (a `cairn materialize` in a terminal, another
/// server) looked at among the most recent ones.
const OTHERS_LOOKED_AT: usize = 20;

/// Tells the watchers what runs of other processes did since the last
/// look, from what the catalog recorded (their units' outcomes and ends;
/// not when a unit starts, which only the running process knows).
fn follow_others(inner: &Arc<Inner>) -> Result<(), EngineError> {
    let recent = inner.catalog.runs(OTHERS_LOOKED_AT)?;
    for run in recent {
        {
            let state = inner.lock();
            // Runs of this process, and runs of others already told to
            // their end.
            if state.running.contains_key(&run.id)
                || (state.feeds.knows(&run.id) && !state.feeds.is_followed(&run.id))
            {
                continue;
            }
            // A run that ended before this queue started is history.
            if !state.feeds.knows(&run.id)
                && run.status.is_finished()
                && run.finished_at.unwrap_or(run.started_at) < inner.since
            {
                continue;
            }
        }
        if let Some((run, attempts)) = inner.catalog.run(&run.id)? {
            inner.lock().feeds.follow_recorded(&run, &attempts);
        }
    }
    Ok(())
}

/// Starts every queued run that may start now.
async fn dispatch(inner: &Arc<Inner>) -> Result<(), EngineError> {
    let queue = inner.catalog.queue()?;
    let mut running = queue
        .iter()
        .filter(|q| q.record.status == RunStatus::Running)
        .count();
    let max = inner.settings.max_concurrent_runs.max(1);
    if running >= max || queue.iter().all(|q| q.record.status != RunStatus::Queued) {
        return Ok(());
    }
    let ws = open(&inner.settings, None).await?;
    let mut upstream: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (i, q) in queue.iter().enumerate() {
        if running >= max {
            break;
        }
        if q.record.status != RunStatus::Queued {
            continue;
        }
        // The assets whose units, claimed by an earlier run, make this one wait.
        let mut reads: HashSet<String> = HashSet::new();
        for c in &q.claims {
            let ancestors = upstream
                .entry(c.asset.as_str())
                .or_insert_with(|| ws.graph.ancestors(&c.asset));
            reads.extend(ancestors.iter().cloned());
        }
        let mine: HashSet<&PartitionRef> = q.claims.iter().collect();
        let blocked = queue[..i].iter().any(|earlier| {
            earlier
                .claims
                .iter()
                .any(|c| mine.contains(c) || reads.contains(&c.asset))
        });
        if blocked {
            continue;
        }
        if start(inner, q)? {
            running += 1;
        }
    }
    Ok(())
}

/// Marks `q` running and executes it in a task of its own.
fn start(inner: &Arc<Inner>, q: &QueuedRun) -> Result<bool, EngineError> {
    let id = q.record.id.clone();
    let now = Utc::now();
    if !inner.catalog.start_queued_run(
        &id,
        &crate::model::whoami::host(),
        std::process::id(),
        now,
    )? {
        return Ok(false);
    }
    tracing::info!(run = %id, "started: {}", q.record.command);
    let control = RunControl::default();
    {
        let mut state = inner.lock();
        state.running.insert(id.clone(), control.clone());
        state.feeds.push(RunUpdate {
            run_id: id.clone(),
            at: now,
            kind: UpdateKind::Started,
        });
    }
    let (inner, q) = (Arc::clone(inner), q.clone());
    tokio::spawn(async move {
        let outcome = execute(&inner, &q, &control).await;
        finish(&inner, &q.record.id, &control, outcome);
    });
    Ok(true)
}

/// Runs one queued run to its end (or until it is stopped).
async fn execute(
    inner: &Arc<Inner>,
    q: &QueuedRun,
    control: &RunControl,
) -> Result<(), EngineError> {
    let request: RunRequest = serde_json::from_str(&q.request).map_err(|e| {
        EngineError::Internal(format!(
            "run {} has an unreadable request: {e}",
            q.record.id
        ))
    })?;
    let ws = open(&inner.settings, Some(q.record.user.clone())).await?;
    let ctx = RunContext {
        queued: Some(q.record.id.clone()),
        control: control.clone(),
        pools: Some(Arc::clone(&inner.pools)),
    };
    let progress = Feeder {
        inner: Arc::clone(inner),
        run_id: q.record.id.clone(),
    };
    match &request {
        RunRequest::Materialize { .. } | RunRequest::Units { .. } => {
            let opts = request
                .materialize_options(&q.record.command)
                .ok_or_else(|| {
                    EngineError::Internal("a materialize request without options".to_owned())
                })?;
            let run = crate::execute::run::materialize(&ws, &opts, &ctx, &progress).await?;
            report(inner, &q.record.id, control, run, None);
        }
        RunRequest::ResumeBackfill { id, jobs } => {
            let backfill = crate::execute::backfill::run_remaining(
                &ws,
                id,
                (*jobs).max(1),
                &q.record.command,
                false,
                &ctx,
                &progress,
            )
            .await?;
            let counts = BackfillCounts {
                id: backfill.backfill_id,
                planned: backfill.planned,
                already_done: backfill.already_done,
            };
            report(inner, &q.record.id, control, backfill.run, Some(counts));
        }
        RunRequest::Backfill { .. } => {
            return Err(EngineError::Internal(
                "a backfill is queued by its recorded id".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Tells the run's watchers its report — unless it was drained for a
/// shutdown (it is not over: the next start resumes it).
fn report(
    inner: &Arc<Inner>,
    id: &RunId,
    control: &RunControl,
    run: crate::execute::report::RunReport,
    backfill: Option<BackfillCounts>,
) {
    if control.stop() == Some(Stop::Drain) {
        return;
    }
    inner.push(RunUpdate {
        run_id: id.clone(),
        at: Utc::now(),
        kind: UpdateKind::Report {
            run: Box::new(run),
            backfill,
        },
    });
}

/// Records how a run this process executed ended and tells its watchers.
fn finish(inner: &Arc<Inner>, id: &RunId, control: &RunControl, outcome: Result<(), EngineError>) {
    let read = || inner.catalog.run(id).ok().flatten().map(|(r, _)| r);
    let mut end = read();
    // An error before the run recorded its own end (a drained run is left
    // for the next start).
    if let Err(e) = &outcome
        && end.as_ref().is_some_and(|r| r.status == RunStatus::Running)
        && control.stop() != Some(Stop::Drain)
    {
        let status = if control.is_cancelled() {
            RunStatus::Cancelled
        } else {
            RunStatus::Failed
        };
        let _ = inner.catalog.finish_run(id, status, Some(&e.to_string()));
        end = read();
    }
    let finished = end.filter(|r| r.status.is_finished());
    match &finished {
        Some(r) => {
            let took = r
                .finished_at
                .map(|f| (f - r.started_at).num_milliseconds())
                .unwrap_or_default();
            match &r.error {
                None => tracing::info!(run = %id, ms = took, "{}", r.status.as_str()),
                Some(e) => tracing::warn!(run = %id, ms = took, "{}: {e}", r.status.as_str()),
            }
        }
        None => tracing::info!(run = %id, "stopped for shutdown; resumes at the next start"),
    }
    let mut state = inner.lock();
    state.running.remove(id);
    if let Some(r) = finished {
        state.feeds.push(RunUpdate {
            run_id: id.clone(),
            at: r.finished_at.unwrap_or_else(Utc::now),
            kind: UpdateKind::Finished {
                status: r.status,
                error: r.error,
            },
        });
    }
    drop(state);
    inner.ended.notify_waiters();
    inner.wake.notify_one();
}

/// Turns the engine's progress events into run updates.
struct Feeder {
    inner: Arc<Inner>,
    run_id: RunId,
}

impl Progress for Feeder {
    fn event(&self, event: RunEvent<'_>) {
        let kind = match event {
            RunEvent::RunStarted { planned, .. } => UpdateKind::Planned {
                units: planned.to_vec(),
            },
            RunEvent::AssetStarted { asset, partition } => UpdateKind::UnitStarted {
                asset: asset.to_owned(),
                partition: partition.to_owned(),
            },
            RunEvent::AssetRetrying {
                asset,
                partition,
                message,
            } => UpdateKind::UnitRetrying {
                asset: asset.to_owned(),
                partition: partition.to_owned(),
                message: message.to_owned(),
            },
            RunEvent::AssetFinished { result } => UpdateKind::UnitFinished {
                asset: result.asset.clone(),
                partition: result.partition.clone(),
                outcome: UnitOutcome::of(result),
            },
        };
        self.inner.push(RunUpdate {
            run_id: self.run_id.clone(),
            at: Utc::now(),
            kind,
        });
    }
}
