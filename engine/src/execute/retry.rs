//! Retrying a unit's transient failures per its `[retries]`: at most
//! `max_attempts` builds in all, waiting `backoff` after the first failure
//! and twice as long after each next one (at most a day), with ±20%
//! jitter so units that failed together do not retry together.
//!
//! Only failures the build judged transient ([`BuildFailure::transient`]:
//! I/O, object store, network) are retried; a SQL error, a schema mismatch,
//! a failing check or a partition-guard violation ends the unit at its
//! first attempt. A failed build commits nothing, so an attempt that
//! succeeds commits exactly what a run without failures would have — the
//! same rows, the same data version.
//!
//! The attempts run inside the unit's build task, so other units go on
//! while one waits. Each failed attempt that will be retried is sent to
//! the scheduler ([`Retrying`]), which records it in the catalog and
//! reports it; the last attempt's outcome is recorded as usual. A run asked
//! to stop (cancel or drain) interrupts the wait at once: the unit ends
//! with nothing committed and no outcome, as an abandoned unit does.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use cairn_assets::RetryPolicy;

use crate::execute::build::{BuildFailure, build};
use crate::execute::control::Pools;
use crate::execute::inputs::{Job, RunShared};
use crate::execute::report::Materialized;

/// The longest wait between two attempts, however many doublings.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// A failed attempt of a unit that will be tried again.
#[derive(Debug)]
pub(super) struct Retrying {
    /// The unit's index in the run.
    pub(super) unit: usize,
    /// The attempt that failed, from 1.
    pub(super) attempt: u32,
    /// Attempts in all.
    pub(super) max_attempts: u32,
    /// The wait before the next attempt.
    pub(super) wait: Duration,
    /// Why it failed.
    pub(super) error: String,
    /// When it failed.
    pub(super) at: DateTime<Utc>,
}

impl Retrying {
    /// What the catalog records for the failed attempt and progress shows:
    /// `attempt 1 of 3 failed (transient), retrying in 9.6s: <error>`.
    pub(super) fn message(&self) -> String {
        format!(
            "attempt {} of {} failed (transient), retrying in {}: {}",
            self.attempt,
            self.max_attempts,
            wait_text(self.wait),
            self.error
        )
    }
}

/// How a unit's attempts ended.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per unit, moved once from its task to the scheduler"
)]
pub(super) enum Attempts {
    /// The last attempt's result.
    Done(Result<Materialized, BuildFailure>),
    /// The run was asked to stop while the unit waited to retry: nothing
    /// committed, no outcome to record (a drained run resumes it).
    Interrupted,
}

/// Builds `job` up to `policy.max_attempts` times while its failures are
/// transient, holding a slot of `pool` during each attempt only (not while
/// waiting). Each failed attempt to be retried is sent on `retrying`
/// before the wait.
pub(super) async fn build_with_retries(
    shared: &RunShared,
    job: Job,
    policy: RetryPolicy,
    pools: &Pools,
    pool: Option<&str>,
    unit: usize,
    retrying: &mpsc::UnboundedSender<Retrying>,
) -> Attempts {
    let max_attempts = policy.max_attempts.max(1);
    for attempt in 1..max_attempts {
        let failure = match attempt_once(shared, job.clone(), pools, pool).await {
            Ok(m) => return Attempts::Done(Ok(m)),
            Err(f) if !f.transient => return Attempts::Done(Err(after_attempts(f, attempt))),
            Err(f) => f,
        };
        if shared.control.stop().is_some() {
            return Attempts::Interrupted;
        }
        let wait = backoff(
            policy.backoff,
            attempt,
            &[&shared.run_id.0, &job.asset.name, &job.partition],
        );
        // The scheduler outlives its build tasks; if it is gone, nobody
        // is left to tell.
        let _ = retrying.send(Retrying {
            unit,
            attempt,
            max_attempts,
            wait,
            error: failure.error,
            at: Utc::now(),
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.control.stopped() => return Attempts::Interrupted,
        }
    }
    let last = attempt_once(shared, job, pools, pool).await;
    Attempts::Done(last.map_err(|f| after_attempts(f, max_attempts)))
}

async fn attempt_once(
    shared: &RunShared,
    job: Job,
    pools: &Pools,
    pool: Option<&str>,
) -> Result<Materialized, BuildFailure> {
    let _slot = pools.acquire(pool).await;
    build(shared, job).await
}

/// The unit's final failure, saying how many attempts it took when more
/// than one.
fn after_attempts(mut failure: BuildFailure, attempts: u32) -> BuildFailure {
    if attempts > 1 {
        failure.error = format!("{} (after {attempts} attempts)", failure.error);
    }
    failure
}

/// The wait after failed attempt `attempt` (from 1): `first` doubled for
/// each earlier retry, at most [`MAX_WAIT`], times a jitter factor in
/// [0.8, 1.2] drawn from `seed` (the run and unit) and the attempt — no
/// random source needed, and different units spread apart.
pub(super) fn backoff(first: Duration, attempt: u32, seed: &[&str]) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let base = first.saturating_mul(1u32 << doublings).min(MAX_WAIT);
    let mut hasher = blake3::Hasher::new();
    for part in seed {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(&attempt.to_le_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    let unit = (u64::from_le_bytes(eight) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    base.mul_f64(0.8 + 0.4 * unit)
}

/// `9.6s`, `2m05s`, `3h20m`.
fn wait_text(wait: Duration) -> String {
    let secs = wait.as_secs();
    if secs < 60 {
        format!("{:.1}s", wait.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let first = Duration::from_secs(10);
        for attempt in 1..=5u32 {
            let base = 10.0 * f64::from(1u32 << (attempt - 1));
            for unit in ["a", "b", "c", "d"] {
                let wait = backoff(first, attempt, &["run", unit, ""]).as_secs_f64();
                assert!(
                    (base * 0.8..=base * 1.2).contains(&wait),
                    "attempt {attempt} of {unit}: {wait}"
                );
            }
        }
        // Deterministic per unit and attempt, spread across units.
        assert_eq!(
            backoff(first, 2, &["run", "a", ""]),
            backoff(first, 2, &["run", "a", ""])
        );
        let waits: std::collections::BTreeSet<Duration> = ["a", "b", "c", "d"]
            .iter()
            .map(|u| backoff(first, 1, &["run", u, ""]))
            .collect();
        assert!(waits.len() > 1, "{waits:?}");
        // Many doublings stay within a day (plus jitter), never overflow.
        let long = backoff(Duration::from_secs(3600), 100, &["run", "a", ""]);
        assert!(long <= MAX_WAIT.mul_f64(1.2), "{long:?}");
    }

    #[test]
    fn messages_say_which_attempt_and_how_long() {
        let r = Retrying {
            unit: 0,
            attempt: 1,
            max_attempts: 3,
            wait: Duration::from_millis(9_630),
            error: "assets/a.sql: writing Parquet: boom".to_owned(),
            at: Utc::now(),
        };
        assert_eq!(
            r.message(),
            "attempt 1 of 3 failed (transient), retrying in 9.6s: assets/a.sql: writing Parquet: boom"
        );
        assert_eq!(wait_text(Duration::from_secs(125)), "2m05s");
        assert_eq!(wait_text(Duration::from_secs(12_000)), "3h20m");
        let f = after_attempts(BuildFailure::from("x".to_owned()), 3);
        assert_eq!(f.error, "x (after 3 attempts)");
        assert_eq!(
            after_attempts(BuildFailure::from("x".to_owned()), 1).error,
            "x"
        );
    }
}
