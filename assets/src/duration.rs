//! Durations as headers write them: `30s`, `15m`, `2h`, `1d`, `1w` — one
//! parser for check ages (`freshness(ts, 12h)`) and automation settings
//! (`lag`, `warn_after`, `backoff`, `poll`).

use std::time::Duration;

/// The longest duration accepted: 100 years (of 366 days).
const MAX_SECS: u64 = 100 * 366 * 86_400;

/// Parses `text` (a number and one of `s m h d w`). Errors say
/// "`what` looks like `examples`, found `shown`" (`shown`: the text as the
/// user wrote it, e.g. still quoted).
pub(crate) fn parse_span(
    text: &str,
    shown: &str,
    what: &str,
    examples: &str,
) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let shape = || format!("{what} looks like {examples}, found `{shown}`");
    let n: u64 = n.parse().map_err(|_| shape())?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(shape()),
    };
    n.checked_mul(secs)
        .filter(|s| *s <= MAX_SECS)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{what} is at most 100 years (5218w), found `{shown}`"))
}
