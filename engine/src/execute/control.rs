//! What the process running a run provides besides what to run: the queued
//! run it executes (if the run queue started it), a control to stop it from
//! outside, and the `[pools]` limits shared with the other runs of the
//! process.
//!
//! Stopping is cooperative and never leaves anything half-committed: the
//! scheduler starts no unit once a stop is asked for; on a cancel it
//! abandons the units in flight (their files are written but never
//! committed — garbage for `cairn gc`; a build checks once more just before
//! its commit transaction), on a drain (server shutdown) it lets them
//! finish and commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use cairn_catalog::RunId;

/// How a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Cancelled: start nothing more, abandon the units in flight; the run
    /// ends cancelled.
    Cancel,
    /// The process is shutting down: start nothing more, let the units in
    /// flight commit; the run is left for the queue to resume.
    Drain,
}

/// Stops a running run from outside. Clones share the state.
#[derive(Debug, Clone)]
pub struct RunControl {
    stop: Arc<watch::Sender<Option<Stop>>>,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl {
            stop: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl RunControl {
    /// Asks the run to stop and abandon what is in flight. A cancel
    /// overrides a drain.
    pub fn cancel(&self) {
        self.stop.send_replace(Some(Stop::Cancel));
    }

    /// Asks the run to stop once what is in flight has committed (unless
    /// it was cancelled already).
    pub fn drain(&self) {
        self.stop.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(Stop::Drain);
                true
            } else {
                false
            }
        });
    }

    /// The stop asked for, if any.
    pub fn stop(&self) -> Option<Stop> {
        *self.stop.borrow()
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.stop() == Some(Stop::Cancel)
    }

    /// Resolves when the run is cancelled (never for a drain).
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.stop.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = rx.wait_for(|s| *s == Some(Stop::Cancel)).await;
    }

    /// Resolves when the run is asked to stop, by a cancel or a drain (a
    /// unit waiting to retry gives up then).
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        // As above: the channel cannot close here.
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// The `[pools]` limits: how many builds of each pool's assets run at once.
#[derive(Debug, Default)]
pub struct Pools {
    limits: HashMap<String, Arc<Semaphore>>,
}

impl Pools {
    /// One semaphore per declared pool.
    pub fn new(pools: &BTreeMap<String, u32>) -> Pools {
        Pools {
            limits: pools
                .iter()
                .map(|(name, limit)| {
                    let permits = usize::try_from(*limit).unwrap_or(usize::MAX).max(1);
                    (name.clone(), Arc::new(Semaphore::new(permits)))
                })
                .collect(),
        }
    }

    /// Waits for a slot of `pool` (none needed without a pool, or for a pool
    /// no longer declared). The slot is held until the permit drops.
    pub(crate) async fn acquire(&self, pool: Option<&str>) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.limits.get(pool?)?;
        // Semaphores here are never closed.
        Arc::clone(semaphore).acquire_owned().await.ok()
    }
}

/// What the process running a run provides besides what to run. The
/// default is what the CLI uses: a new run, never stopped from outside,
/// pools of its own.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The run queue's run to execute, already recorded as running (the
    /// run records its outcomes under this id instead of starting a new
    /// run; units this run committed before an interruption are not
    /// forced again).
    pub queued: Option<RunId>,
    /// Stops the run from outside.
    pub control: RunControl,
    /// Limits shared with other runs of the process; `None`: the project's
    /// `[pools]`, for this run alone.
    pub pools: Option<Arc<Pools>>,
}
