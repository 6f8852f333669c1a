//! Per-asset automation as declared in an asset's header: `[automation]`
//! (when it should run), `[freshness]` (its SLA) and `[retries]` (what to
//! do about transient failures), plus the duration syntax they share.
//!
//! Cron schedules are croner patterns evaluated in an IANA time zone. DST
//! is explicit (croner's documented behaviour, which Cairn relies on and
//! tests): a fixed wall-clock time that does not exist on a spring-forward
//! day fires at the first valid minute after the gap; one that happens
//! twice on a fall-back day fires once, at the first; interval patterns
//! (`0 * * * *`) fire for each real hour (23 and 25 times on those days).

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::partition_config::ConfigText;

/// `[automation]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAutomation {
    #[serde(default)]
    cron: Option<Spanned<String>>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    on_upstream_change: Option<bool>,
    #[serde(default)]
    on_missing: Option<bool>,
    #[serde(default)]
    lag: Option<Spanned<String>>,
    #[serde(default)]
    catch_up: Option<Spanned<String>>,
}

/// `[freshness]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreshness {
    #[serde(default)]
    warn_after: Option<Spanned<String>>,
    #[serde(default)]
    fail_after: Option<Spanned<String>>,
}

/// `[retries]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetries {
    #[serde(default)]
    max_attempts: Option<Spanned<u32>>,
    #[serde(default)]
    backoff: Option<Spanned<String>>,
}

/// When an asset should be brought up to date. Conditions compose by OR;
/// what they request is always only the stale or missing units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automation {
    /// Run at these instants.
    pub cron: Option<CronSchedule>,
    /// Run when an upstream commits new data (or a source changes).
    pub on_upstream_change: bool,
    /// Build partitions that appear (a time window that just closed).
    pub on_missing: bool,
    /// Not more often than this (debounce); zero: no limit.
    pub lag: Duration,
    /// What to do with cron instants missed while nothing ticked.
    pub catch_up: CatchUp,
}

/// Missed cron instants (downtime between two ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Fire once for the latest missed instant (the default).
    Latest,
    /// Fire once per missed instant (each recorded; the units requested
    /// are the same stale ones, so this matters for the record).
    All,
    /// Skip missed instants; only instants at or after the previous tick
    /// fire.
    None,
}

impl CatchUp {
    /// The name used in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Latest => "latest",
            CatchUp::All => "all",
            CatchUp::None => "none",
        }
    }
}

/// A cron pattern in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The pattern as written.
    pub pattern: String,
    /// The zone its wall-clock times are in.
    pub timezone: Tz,
    cron: croner::Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.timezone == other.timezone
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parses a croner pattern (5 fields, or 6 with seconds; `@daily`
    /// style aliases).
    pub fn new(pattern: &str, timezone: Tz) -> Result<CronSchedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        Ok(CronSchedule {
            pattern: pattern.to_owned(),
            timezone,
            cron,
        })
    }

    /// The instants it fires in `(after, until]`, oldest first, at most
    /// `limit` (the newest are kept when there are more).
    pub fn instants(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = std::collections::VecDeque::new();
        let start = after.with_timezone(&self.timezone);
        for t in self.cron.iter_after(start) {
            let t = t.with_timezone(&Utc);
            if t > until {
                break;
            }
            out.push_back(t);
            if out.len() > limit {
                out.pop_front();
            }
        }
        out.into()
    }
}

/// How old an asset's data (or a time partition, after its window closed)
/// may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FreshnessSla {
    /// Older than this: warn.
    pub warn_after: Option<Duration>,
    /// Older than this: the SLA is missed (a failure for `status --check`).
    pub fail_after: Option<Duration>,
}

/// Retries of transient failures (I/O, object store, network); SQL errors
/// and failing checks are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry).
    pub max_attempts: u32,
    /// The first wait; doubled each retry, with jitter.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Duration::from_secs(10),
        }
    }
}

/// `30s`, `15m`, `2h`, `1d`, `1w`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse_span(text, text, "a duration", "30s, 15m, 2h, 1d or 1w")
}

fn duration_at(
    raw: &Option<Spanned<String>>,
    key: &str,
    cx: &ConfigText<'_>,
) -> Result<Option<Duration>, Diagnostic> {
    raw.as_ref()
        .map(|r| {
            parse_duration(r.get_ref()).map_err(|e| {
                cx.at(r, format!("{key}: {e}"))
                    .with_hint("write e.g. \"15m\", \"2h\" or \"1d\"")
            })
        })
        .transpose()
}

pub(crate) fn resolve_automation(
    raw: &RawAutomation,
    cx: &ConfigText<'_>,
) -> Result<Automation, Diagnostic> {
    let timezone: Tz = match &raw.timezone {
        Some(tz) => tz.get_ref().parse().map_err(|_| {
            cx.at(tz, format!("unknown timezone `{}`", tz.get_ref()))
                .with_hint("use an IANA name such as \"Europe/Berlin\" or \"America/New_York\"")
        })?,
        None => Tz::UTC,
    };
    let cron = raw
        .cron
        .as_ref()
        .map(|c| {
            CronSchedule::new(c.get_ref(), timezone).map_err(|e| {
                cx.at(c, format!("invalid cron pattern `{}`: {e}", c.get_ref()))
                    .with_hint("five fields: minute hour day-of-month month day-of-week, e.g. \"0 6 * * *\" (06:00 every day)")
            })
        })
        .transpose()?;
    let catch_up = match &raw.catch_up {
        None => CatchUp::Latest,
        Some(c) => match c.get_ref().as_str() {
            "latest" => CatchUp::Latest,
            "all" => CatchUp::All,
            "none" => CatchUp::None,
            other => {
                return Err(cx
                    .at(c, format!("unknown catch_up `{other}`"))
                    .with_hint("use \"latest\" (default), \"all\" or \"none\""));
            }
        },
    };
    let automation = Automation {
        cron,
        on_upstream_change: raw.on_upstream_change.unwrap_or(false),
        on_missing: raw.on_missing.unwrap_or(false),
        lag: duration_at(&raw.lag, "lag", cx)?.unwrap_or_default(),
        catch_up,
    };
    if automation.cron.is_none() && !automation.on_upstream_change && !automation.on_missing {
        return Err(
            Diagnostic::new(cx.file, None, "[automation] has no condition").with_hint(
                "add cron = \"0 6 * * *\", on_upstream_change = true or on_missing = true",
            ),
        );
    }
    Ok(automation)
}

pub(crate) fn resolve_freshness(
    raw: &RawFreshness,
    cx: &ConfigText<'_>,
) -> Result<FreshnessSla, Diagnostic> {
    let sla = FreshnessSla {
        warn_after: duration_at(&raw.warn_after, "warn_after", cx)?,
        fail_after: duration_at(&raw.fail_after, "fail_after", cx)?,
    };
    if let (Some(w), Some(f), Some(at)) = (sla.warn_after, sla.fail_after, &raw.warn_after)
        && w > f
    {
        return Err(cx
            .at(at, "warn_after is longer than fail_after")
            .with_hint("warn first: warn_after must be at most fail_after"));
    }
    if sla.warn_after.is_none() && sla.fail_after.is_none() {
        return Err(Diagnostic::new(cx.file, None, "[freshness] sets no limit")
            .with_hint("add warn_after = \"2h\" and/or fail_after = \"6h\""));
    }
    Ok(sla)
}

pub(crate) fn resolve_retries(
    raw: &RawRetries,
    cx: &ConfigText<'_>,
) -> Result<RetryPolicy, Diagnostic> {
    let mut policy = RetryPolicy::default();
    if let Some(n) = &raw.max_attempts {
        if *n.get_ref() == 0 || *n.get_ref() > 100 {
            return Err(cx
                .at(n, format!("max_attempts = {} is out of range", n.get_ref()))
                .with_hint("attempts in all, from 1 (no retry) to 100"));
        }
        policy.max_attempts = *n.get_ref();
    }
    if let Some(b) = duration_at(&raw.backoff, "backoff", cx)? {
        policy.backoff = b;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fires(pattern: &str, tz: Tz, day: &str) -> Vec<String> {
        let s = CronSchedule::new(pattern, tz).unwrap();
        let start = utc(&format!("{day}T00:00:00Z")) - chrono::TimeDelta::try_hours(12).unwrap();
        let end = start + chrono::TimeDelta::try_hours(48).unwrap();
        s.instants(start, end, 1000)
            .into_iter()
            .map(|t| t.with_timezone(&tz))
            .filter(|t| t.date_naive().to_string() == day)
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn dst_days_fire_as_documented() {
        let ny = chrono_tz::America::New_York;
        // 02:30 does not exist on 2026-03-08: the first valid minute after the gap.
        assert_eq!(
            fires("30 2 * * *", ny, "2026-03-08"),
            ["2026-03-08T03:00:00-04:00"]
        );
        // 01:30 happens twice on 2026-11-01: once, at the first.
        assert_eq!(
            fires("30 1 * * *", ny, "2026-11-01"),
            ["2026-11-01T01:30:00-04:00"]
        );
        assert_eq!(
            fires("30 2 * * *", ny, "2026-11-01"),
            ["2026-11-01T02:30:00-05:00"]
        );
        assert_eq!(fires("0 * * * *", ny, "2026-03-08").len(), 23);
        assert_eq!(fires("0 * * * *", ny, "2026-11-01").len(), 25);
        assert_eq!(fires("0 * * * *", ny, "2026-06-01").len(), 24);
    }

    #[test]
    fn instants_keep_the_newest_within_the_limit() {
        let s = CronSchedule::new("0 6 * * *", Tz::UTC).unwrap();
        let all = s.instants(utc("2026-01-01T00:00:00Z"), utc("2026-01-05T12:00:00Z"), 10);
        assert_eq!(all.len(), 5);
        let last = s.instants(utc("2026-01-01T00:00:00Z"), utc("2026-01-05T12:00:00Z"), 1);
        assert_eq!(last, [utc("2026-01-05T06:00:00Z")]);
        // (after, until]: an instant equal to `after` is not repeated.
        let next = s.instants(utc("2026-01-05T06:00:00Z"), utc("2026-01-06T06:00:00Z"), 10);
        assert_eq!(next, [utc("2026-01-06T06:00:00Z")]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("2 hours").is_err());
        assert!(parse_duration("99999999999w").is_err());
    }
}
