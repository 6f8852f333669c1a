//! Freshness SLAs and health, per unit (asset x partition), as status
//! computes them. An asset declares its SLA in its header:
//!
//! ```toml
//! --- [freshness]
//! --- warn_after = "2h"
//! --- fail_after = "6h"
//! ```
//!
//! **The clock.** Every unit that is not fresh has an instant since which
//! it is *behind* — its data is not what its code and inputs give now, or
//! it has none — and its SLA compares how long ago that was (its *age*)
//! with the limits: at or past `fail_after` the SLA is failed, at or past
//! `warn_after` it warns. Time is judged at the workspace's [`Clock`]
//! (`CAIRN_NOW` in the CLI); an instant after it counts as age zero.
//!
//! | unit | behind since |
//! |---|---|
//! | fresh (whatever the age of its commit) | never: within its SLA, as rebuilding it would give the same data (early cutoff) |
//! | time partition, no version | its window's close: a day is due once it has ended (the partition does not exist before) |
//! | unpartitioned or static partition, no version | unknown: the SLA is missed at once (failed with `fail_after`, warn with only `warn_after`) |
//! | stale, code changed | its own commit (the snapshot does not time code edits; conservative) |
//! | stale, inputs changed | the earliest of: each upstream asset partition it reads committed after it (its commit time); each source partition first seen with its current content after it (the fingerprint cache's `observed_at`); each upstream unit it reads that is itself behind (that unit's instant, so a day missing upstream makes a roll-up behind since the day closed). An upstream behind since an unknown instant, or no such instant at all: its own commit |
//! | latest attempt failed | as above, from its versions (a failed forced rebuild of a fresh unit is not behind) |
//!
//! So per partition, not per asset: an old partition backfilled today never
//! hides a late one. Commit and observation times are the real clock's.
//!
//! **Health** of a unit: the worst of its SLA level, a failing `error`
//! check on its current version and a failed latest attempt, ordered
//! `ok < warn < sla failed < failing check < failed run`; an asset's is
//! the worst of its units'. `cairn status --check` fails on a health of
//! `sla failed` or worse; a stale asset *with* an SLA passes while within
//! it (an asset without one still fails when anything is not fresh).
//!
//! [`Clock`]: crate::model::workspace::Clock

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use cairn_assets::FreshnessSla;

/// How healthy a unit or an asset is; later variants are worse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Fresh, or behind but within its SLA (or with no SLA).
    #[default]
    Ok,
    /// Behind for at least `warn_after`.
    Warn,
    /// Behind for at least `fail_after`: its SLA is failed.
    SlaFailed,
    /// An `error` check fails on its current version.
    FailingCheck,
    /// Its latest attempt failed.
    FailedRun,
}

impl Health {
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warn => "warn",
            Health::SlaFailed => "sla failed",
            Health::FailingCheck => "failing check",
            Health::FailedRun => "failed run",
        }
    }
}

/// Where a unit stands against its asset's SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaLevel {
    /// Within it.
    Ok,
    /// At or past `warn_after`.
    Warn,
    /// At or past `fail_after`.
    Failed,
}

impl SlaLevel {
    /// The health this level gives.
    pub fn health(self) -> Health {
        match self {
            SlaLevel::Ok => Health::Ok,
            SlaLevel::Warn => Health::Warn,
            SlaLevel::Failed => Health::SlaFailed,
        }
    }
}

/// What a unit's SLA clock measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaBasis {
    /// A time partition with no version: since its window closed.
    NotBuilt,
    /// A unit with no version and no time window: no instant to count
    /// from, so the SLA is missed at once.
    NeverBuilt,
    /// A committed unit that is out of date: since it became so.
    Stale,
}

/// One unit's reading against its asset's SLA (only units that are
/// behind have one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlaReading {
    /// Within, warn or failed.
    pub level: SlaLevel,
    /// What the clock measures.
    pub basis: SlaBasis,
    /// Since when it is behind (`None`: never built, no time window).
    pub since: Option<DateTime<Utc>>,
    /// How long that is at the status's instant, in whole seconds.
    pub age_secs: Option<u64>,
}

impl SlaReading {
    /// Reads a unit behind since `since` (`None`: unknown) at `now`.
    pub(crate) fn at(
        sla: &FreshnessSla,
        basis: SlaBasis,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> SlaReading {
        let age_secs = since.map(|t| u64::try_from((now - t).num_seconds()).unwrap_or(0));
        // An unknown start is as late as can be.
        let past = |limit: Option<Duration>| {
            limit.is_some_and(|l| age_secs.is_none_or(|a| a >= l.as_secs()))
        };
        let level = if past(sla.fail_after) {
            SlaLevel::Failed
        } else if past(sla.warn_after) {
            SlaLevel::Warn
        } else {
            SlaLevel::Ok
        };
        SlaReading {
            level,
            basis,
            since,
            age_secs,
        }
    }

    /// The limit this reading is at or past (`fail_after` when failed,
    /// `warn_after` when warning).
    pub fn limit(&self, sla: &FreshnessSla) -> Option<Duration> {
        match self.level {
            SlaLevel::Ok => None,
            SlaLevel::Warn => sla.warn_after,
            SlaLevel::Failed => sla.fail_after,
        }
    }

    /// "2024-01-05 not built 7h after its window closed", "stale for 3h",
    /// "never materialized" (`key` empty for an unpartitioned asset).
    pub fn describe(&self, key: &str) -> String {
        let age = human(self.age_secs.unwrap_or(0));
        let what = match self.basis {
            SlaBasis::NotBuilt => format!("not built {age} after its window closed"),
            SlaBasis::NeverBuilt => "never materialized".to_owned(),
            SlaBasis::Stale => format!("stale for {age}"),
        };
        if key.is_empty() {
            what
        } else {
            format!("{key} {what}")
        }
    }

    /// "sla failed: 2024-01-05 not built 7h after its window closed
    /// (fail_after 6h)"; `None` within the SLA.
    pub fn verdict(&self, key: &str, sla: &FreshnessSla) -> Option<String> {
        self.verdict_on(&self.describe(key), sla)
    }

    /// [`SlaReading::verdict`] on `subject` as described.
    pub(crate) fn verdict_on(&self, subject: &str, sla: &FreshnessSla) -> Option<String> {
        let (prefix, name) = match self.level {
            SlaLevel::Ok => return None,
            SlaLevel::Warn => ("sla warn", "warn_after"),
            SlaLevel::Failed => ("sla failed", "fail_after"),
        };
        let limit = self
            .limit(sla)
            .map(|l| format!(" ({name} {})", human(l.as_secs())))
            .unwrap_or_default();
        Some(format!("{prefix}: {subject}{limit}"))
    }
}

/// The most overdue partition of an asset (the worst level, then the
/// oldest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverduePartition {
    /// Its key.
    pub key: String,
    /// Its reading.
    pub sla: SlaReading,
}

/// Whether `a` is more overdue than `b`: a worse level, then an older
/// (or unknown) start.
pub(crate) fn more_overdue(a: &SlaReading, b: &SlaReading) -> bool {
    let age = |r: &SlaReading| r.age_secs.unwrap_or(u64::MAX);
    (a.level, age(a)) > (b.level, age(b))
}

/// One unit at or past a limit of its asset's SLA: what
/// [`Workspace::sla_misses`](crate::Workspace::sla_misses) lists, for
/// alerts (an incident per unit, `recovered` when it leaves the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaMiss {
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// Warn or failed.
    pub level: SlaLevel,
    /// What the clock measures.
    pub basis: SlaBasis,
    /// Since when the unit is behind (`None`: never built, no window).
    pub since: Option<DateTime<Utc>>,
    /// How long that is (`None` with `since`).
    pub age: Option<Duration>,
    /// The limit reached: `fail_after` when failed, `warn_after` when
    /// warning.
    pub limit: Duration,
}

impl SlaMiss {
    /// "daily 2024-01-05 not built 7h after its window closed (fail_after 6h)".
    pub fn describe(&self) -> String {
        let reading = SlaReading {
            level: self.level,
            basis: self.basis,
            since: self.since,
            age_secs: self.age.map(|a| a.as_secs()),
        };
        let name = match self.level {
            SlaLevel::Failed => "fail_after",
            _ => "warn_after",
        };
        format!(
            "{} {} ({name} {})",
            self.asset,
            reading.describe(&self.partition),
            human(self.limit.as_secs())
        )
    }
}

/// `45s`, `12m`, `7h`, `7h 5m`, `2d 7h`: the largest unit and the next.
pub fn human(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua} {b}{ub}")
        }
    };
    if d > 0 {
        pair(d, "d", h, "h")
    } else if h > 0 {
        pair(h, "h", m, "m")
    } else if m > 0 {
        pair(m, "m", s, "s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const HOUR: u64 = 3_600;

    fn sla(warn: Option<u64>, fail: Option<u64>) -> FreshnessSla {
        FreshnessSla {
            warn_after: warn.map(|h| Duration::from_secs(h * HOUR)),
            fail_after: fail.map(|h| Duration::from_secs(h * HOUR)),
        }
    }

    #[test]
    fn levels_at_and_past_each_limit() {
        let sla = sla(Some(2), Some(6));
        let closed = t("2024-01-06T00:00:00Z");
        let at = |now: &str| SlaReading::at(&sla, SlaBasis::NotBuilt, Some(closed), t(now));
        assert_eq!(at("2024-01-06T01:59:59Z").level, SlaLevel::Ok);
        assert_eq!(at("2024-01-06T02:00:00Z").level, SlaLevel::Warn);
        assert_eq!(at("2024-01-06T05:59:59Z").level, SlaLevel::Warn);
        let failed = at("2024-01-06T07:00:00Z");
        assert_eq!(failed.level, SlaLevel::Failed);
        assert_eq!(failed.age_secs, Some(7 * HOUR));
        assert_eq!(
            failed.verdict("2024-01-05", &sla).as_deref(),
            Some("sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h)")
        );
        assert_eq!(
            at("2024-01-06T03:00:00Z")
                .verdict("2024-01-05", &sla)
                .as_deref(),
            Some("sla warn: 2024-01-05 not built 3h after its window closed (warn_after 2h)")
        );
        assert_eq!(at("2024-01-06T01:00:00Z").verdict("2024-01-05", &sla), None);
        // A start after the clock (commit times are the real clock's,
        // `CAIRN_NOW` may be earlier) is age zero.
        assert_eq!(at("2024-01-05T00:00:00Z").age_secs, Some(0));
    }

    #[test]
    fn an_unknown_start_misses_the_sla_at_once() {
        let now = t("2024-01-06T00:00:00Z");
        let never = |sla: FreshnessSla| SlaReading::at(&sla, SlaBasis::NeverBuilt, None, now);
        assert_eq!(never(sla(Some(2), Some(6))).level, SlaLevel::Failed);
        assert_eq!(never(sla(Some(2), None)).level, SlaLevel::Warn);
        assert_eq!(
            never(sla(None, Some(6)))
                .verdict("", &sla(None, Some(6)))
                .as_deref(),
            Some("sla failed: never materialized (fail_after 6h)")
        );
    }

    #[test]
    fn the_most_overdue_is_the_worst_level_then_the_oldest() {
        let sla = sla(Some(2), Some(6));
        let now = t("2024-01-10T00:00:00Z");
        let r = |since: &str| SlaReading::at(&sla, SlaBasis::Stale, Some(t(since)), now);
        let old = r("2024-01-05T00:00:00Z");
        let newer = r("2024-01-09T12:00:00Z");
        let warn = r("2024-01-09T21:00:00Z");
        assert!(more_overdue(&old, &newer));
        assert!(more_overdue(&newer, &warn));
        assert!(!more_overdue(&warn, &old));
        let never = SlaReading::at(&sla, SlaBasis::NeverBuilt, None, now);
        assert!(more_overdue(&never, &old));
    }

    #[test]
    fn durations_read_as_two_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45), "45s");
        assert_eq!(human(12 * 60), "12m");
        assert_eq!(human(7 * HOUR), "7h");
        assert_eq!(human(7 * HOUR + 300), "7h 5m");
        assert_eq!(human(2 * 86_400 + 7 * HOUR + 59), "2d 7h");
    }

    #[test]
    fn health_orders_worst_last() {
        let mut all = [
            Health::FailedRun,
            Health::Warn,
            Health::FailingCheck,
            Health::Ok,
            Health::SlaFailed,
        ];
        all.sort();
        let names: Vec<&str> = all.iter().map(|h| h.as_str()).collect();
        assert_eq!(
            names,
            ["ok", "warn", "sla failed", "failing check", "failed run"]
        );
    }
}
