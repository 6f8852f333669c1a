//! What the benchmark binaries share: argument and error types,
//! summarising repeated timings and printing them against their targets.

use std::error::Error;
use std::time::Duration;

/// Errors of a benchmark binary: reported, never panicked.
pub type BoxResult<T> = Result<T, Box<dyn Error>>;

/// A count argument (`1_000` allowed).
pub fn parse_count(s: &str) -> BoxResult<usize> {
    s.replace('_', "")
        .parse::<usize>()
        .map_err(|e| format!("not a count: `{s}` ({e})").into())
}

/// The minimum and median of repeated timings.
pub struct MinMedian {
    pub min: Duration,
    pub median: Duration,
}

impl MinMedian {
    pub fn of(mut v: Vec<Duration>) -> MinMedian {
        v.sort();
        MinMedian {
            min: v.first().copied().unwrap_or_default(),
            median: v.get(v.len() / 2).copied().unwrap_or_default(),
        }
    }
}

/// Milliseconds, right-aligned for tables.
pub fn ms(d: Duration) -> String {
    format!("{:>10.2} ms", d.as_secs_f64() * 1e3)
}

/// "target < N ms: ok" or "...: MISSED".
pub fn target(value: Duration, limit: Duration) -> String {
    let verdict = if value < limit { "ok" } else { "MISSED" };
    format!("target < {} ms: {verdict}", limit.as_millis())
}

/// How the benchmark was built, for the header.
pub fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "debug assertions ON (unoptimized profile: numbers are pessimistic)"
    } else {
        "optimized"
    }
}
