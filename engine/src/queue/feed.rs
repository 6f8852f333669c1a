//! What happens to a run, as a stream of updates: each run the queue knows
//! keeps its updates so far (a late watcher gets them first, then the live
//! ones, with nothing lost or repeated); runs this process never saw are
//! told from what the catalog recorded.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use cairn_catalog::{AttemptOutcome, AttemptRecord, RunId, RunRecord, RunStatus};

use crate::execute::report::{AssetOutcome, AssetResult, RunReport};
use crate::model::units::Unit;

/// One thing that happened to a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    /// The run.
    pub run_id: RunId,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: UpdateKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateKind {
    /// Entered the queue.
    Queued,
    /// Left the queue and started.
    Started,
    /// The run planned the units it considers, in order (only when it has
    /// something to build).
    Planned {
        /// The asset partitions.
        units: Vec<Unit>,
    },
    /// An asset partition started building.
    UnitStarted {
        /// The asset.
        asset: String,
        /// The partition key (`""` when unpartitioned).
        partition: String,
    },
    /// An attempt of an asset partition failed transiently; it is tried
    /// again after a wait (`[retries]`).
    UnitRetrying {
        /// The asset.
        asset: String,
        /// The partition key.
        partition: String,
        /// `attempt 1 of 3 failed (transient), retrying in 9.6s: <error>`.
        message: String,
    },
    /// An asset partition is done.
    UnitFinished {
        /// The asset.
        asset: String,
        /// The partition key.
        partition: String,
        /// How it ended.
        outcome: UnitOutcome,
    },
    /// The run's report, as `cairn materialize` or `cairn backfill`
    /// gives it, just before `Finished` (runs this process executed to
    /// their end).
    Report {
        /// Every unit the run considered.
        run: Box<RunReport>,
        /// For a backfill: its id and counts.
        backfill: Option<BackfillCounts>,
    },
    /// The run ended (the last update).
    Finished {
        /// How.
        status: RunStatus,
        /// Why it failed or was cancelled.
        error: Option<String>,
    },
}

/// A backfill as its run's report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillCounts {
    /// The backfill.
    pub id: cairn_catalog::BackfillId,
    /// Partitions planned in total.
    pub planned: usize,
    /// Planned partitions committed before this run.
    pub already_done: usize,
}

/// How one asset partition of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitOutcome {
    /// A new version was committed (figures unknown when told from the
    /// catalog's record of an earlier process).
    Built {
        /// Rows written.
        rows: Option<u64>,
        /// Bytes written.
        bytes: Option<u64>,
        /// Wall time.
        wall: Option<Duration>,
        /// Whether its data differs from the previous version's.
        data_changed: Option<bool>,
    },
    /// Its upstream was rebuilt with identical data: nothing to do.
    EarlyCutoff,
    /// Already up to date.
    Fresh,
    /// It failed; nothing was committed.
    Failed {
        /// The error.
        error: String,
    },
    /// Not attempted: an upstream failed.
    Skipped {
        /// The failed upstream.
        upstream: String,
    },
}

impl UnitOutcome {
    /// The outcome of a unit the engine just reported.
    pub(crate) fn of(result: &AssetResult) -> UnitOutcome {
        match &result.outcome {
            AssetOutcome::Materialized(m) => UnitOutcome::Built {
                rows: Some(m.rows),
                bytes: Some(m.bytes_written),
                wall: Some(m.wall),
                data_changed: Some(m.data_changed),
            },
            AssetOutcome::Fresh { early_cutoff: true } => UnitOutcome::EarlyCutoff,
            AssetOutcome::Fresh {
                early_cutoff: false,
            } => UnitOutcome::Fresh,
            AssetOutcome::Failed { error, .. } => UnitOutcome::Failed {
                error: error.clone(),
            },
            AssetOutcome::Skipped { upstream } => UnitOutcome::Skipped {
                upstream: upstream.clone(),
            },
        }
    }

    /// The outcome as the catalog recorded it.
    fn recorded(attempt: &AttemptRecord) -> UnitOutcome {
        match attempt.outcome {
            AttemptOutcome::Materialized => UnitOutcome::Built {
                rows: None,
                bytes: None,
                wall: None,
                data_changed: None,
            },
            AttemptOutcome::Fresh => UnitOutcome::EarlyCutoff,
            AttemptOutcome::Failed => UnitOutcome::Failed {
                error: attempt.error.clone().unwrap_or_default(),
            },
            AttemptOutcome::Skipped => UnitOutcome::Skipped {
                upstream: attempt
                    .error
                    .as_deref()
                    .and_then(|e| e.strip_prefix("upstream "))
                    .and_then(|e| e.strip_suffix(" failed"))
                    .unwrap_or_default()
                    .to_owned(),
            },
        }
    }
}

/// What a watcher gets: the updates so far, then (unless the run had
/// finished) the live ones until `Finished`.
#[derive(Debug)]
pub struct RunWatch {
    /// Updates before the watch began, oldest first.
    pub past: Vec<RunUpdate>,
    /// Updates from now on; `None` when the run had finished.
    pub live: Option<mpsc::UnboundedReceiver<RunUpdate>>,
}

/// Finished runs whose updates are kept for late watchers.
const KEPT_FINISHED: usize = 1024;

/// The updates of every run this process knows.
#[derive(Default)]
pub(crate) struct Feeds {
    runs: HashMap<RunId, Feed>,
    finished: VecDeque<RunId>,
    /// Watchers of every run's updates from the moment they began.
    everything: Vec<mpsc::UnboundedSender<RunUpdate>>,
}

#[derive(Default)]
struct Feed {
    history: Vec<RunUpdate>,
    watchers: Vec<mpsc::UnboundedSender<RunUpdate>>,
    finished: bool,
    /// For a run another process executes: how many of the updates the
    /// catalog records of it are in `history` (`None`: this process
    /// pushes the run's updates itself).
    recorded: Option<usize>,
}

impl Feeds {
    /// Records an update and passes it to the run's watchers.
    pub(crate) fn push(&mut self, update: RunUpdate) {
        let id = update.run_id.clone();
        let feed = self.runs.entry(id.clone()).or_default();
        if feed.finished {
            return;
        }
        let finished = matches!(update.kind, UpdateKind::Finished { .. });
        feed.watchers.retain(|w| w.send(update.clone()).is_ok());
        self.everything.retain(|w| w.send(update.clone()).is_ok());
        feed.history.push(update);
        if finished {
            feed.finished = true;
            feed.watchers.clear();
            self.finished.push_back(id);
            while self.finished.len() > KEPT_FINISHED {
                if let Some(old) = self.finished.pop_front() {
                    self.runs.remove(&old);
                }
            }
        }
    }

    /// Ends every watcher's stream (the process is stopping).
    pub(crate) fn close_watchers(&mut self) {
        for feed in self.runs.values_mut() {
            feed.watchers.clear();
        }
        self.everything.clear();
    }

    /// A watch of every run's updates: those so far of the runs not yet
    /// finished (oldest first), then every update from now on.
    pub(crate) fn watch_all(&mut self) -> mpsc::UnboundedReceiver<RunUpdate> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut past: Vec<&RunUpdate> = self
            .runs
            .values()
            .filter(|feed| !feed.finished)
            .flat_map(|feed| &feed.history)
            .collect();
        past.sort_by_key(|u| u.at);
        for update in past {
            // The receiver is still here: it cannot have gone.
            let _ = tx.send(update.clone());
        }
        self.everything.push(tx);
        rx
    }

    /// A watch of a run this process has updates of.
    pub(crate) fn watch(&mut self, id: &RunId) -> Option<RunWatch> {
        let feed = self.runs.get_mut(id)?;
        let live = (!feed.finished).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            feed.watchers.push(tx);
            rx
        });
        Some(RunWatch {
            past: feed.history.clone(),
            live,
        })
    }

    /// Starts the feed of a run this process has no updates of, from what
    /// the catalog recorded (the run was queued or run by an earlier
    /// process), and watches it.
    pub(crate) fn watch_recorded(
        &mut self,
        run: &RunRecord,
        attempts: &[AttemptRecord],
    ) -> RunWatch {
        self.follow_recorded(run, attempts);
        self.watch(&run.id).unwrap_or(RunWatch {
            past: Vec::new(),
            live: None,
        })
    }

    /// Whether `id` is a run of another process this one follows and that
    /// has not ended yet.
    pub(crate) fn is_followed(&self, id: &RunId) -> bool {
        self.runs
            .get(id)
            .is_some_and(|f| f.recorded.is_some() && !f.finished)
    }

    /// Whether this process has updates of `id`.
    pub(crate) fn knows(&self, id: &RunId) -> bool {
        self.runs.contains_key(id)
    }

    /// Brings the feed of a run another process executes (a CLI command,
    /// another server) up to what the catalog recorded of it: the updates
    /// not yet told are pushed. Runs of this process are left alone.
    pub(crate) fn follow_recorded(&mut self, run: &RunRecord, attempts: &[AttemptRecord]) {
        let told = match self.runs.get(&run.id) {
            Some(feed) if feed.finished => return,
            Some(feed) => match feed.recorded {
                Some(told) => told,
                None => return,
            },
            None => {
                self.runs.insert(
                    run.id.clone(),
                    Feed {
                        recorded: Some(0),
                        ..Feed::default()
                    },
                );
                0
            }
        };
        let updates = recorded_updates(run, attempts);
        let total = updates.len();
        for update in updates.into_iter().skip(told) {
            self.push(update);
        }
        if let Some(feed) = self.runs.get_mut(&run.id) {
            feed.recorded = Some(total.max(told));
        }
    }
}

/// A run's updates as the catalog recorded them.
fn recorded_updates(run: &RunRecord, attempts: &[AttemptRecord]) -> Vec<RunUpdate> {
    let update = |at, kind| RunUpdate {
        run_id: run.id.clone(),
        at,
        kind,
    };
    let mut updates = Vec::new();
    if let Some(queued) = run.queued_at {
        updates.push(update(queued, UpdateKind::Queued));
    }
    // A queued run's `started_at` is its queueing time until it starts.
    let started = match run.status {
        RunStatus::Queued => false,
        RunStatus::Cancelled => run.queued_at != Some(run.started_at),
        _ => true,
    };
    if started {
        updates.push(update(run.started_at, UpdateKind::Started));
    }
    // A failed attempt its unit had another one after was retried.
    let mut later = std::collections::HashSet::new();
    let mut retried = vec![false; attempts.len()];
    for (n, a) in attempts.iter().enumerate().rev() {
        let seen = !later.insert((a.asset.as_str(), a.partition.as_str()));
        retried[n] = seen && a.outcome == AttemptOutcome::Failed;
    }
    for (a, retried) in attempts.iter().zip(retried) {
        let kind = if retried {
            UpdateKind::UnitRetrying {
                asset: a.asset.clone(),
                partition: a.partition.clone(),
                message: a.error.clone().unwrap_or_default(),
            }
        } else {
            UpdateKind::UnitFinished {
                asset: a.asset.clone(),
                partition: a.partition.clone(),
                outcome: UnitOutcome::recorded(a),
            }
        };
        updates.push(update(a.at, kind));
    }
    if run.status.is_finished() {
        updates.push(update(
            run.finished_at.unwrap_or(run.started_at),
            UpdateKind::Finished {
                status: run.status,
                error: run.error.clone(),
            },
        ));
    }
    updates
}
