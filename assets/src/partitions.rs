//! Partitions: how an asset is split (time windows in a timezone, static
//! lists, or a two-dimensional combination of both), the keys that exist,
//! the time range each key covers, and how a downstream partition maps to
//! the upstream partitions it reads.
//!
//! Keys are strings: `2024-05-01` (daily), `2024-04-29` (weekly: the
//! Monday), `2024-05` (monthly), `2024-05-01T13-0400` (hourly, with the UTC
//! offset so the repeated hour of a DST change stays unique), a static
//! value such as `eu`, and `2024-05-01|eu` for two dimensions. Storage uses
//! hive-style paths: `date=2024-05-01/region=eu`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

/// One hour and one minute, built without the panicking constructors
/// (clippy.toml bans them).
const ONE_HOUR: Duration = match Duration::try_hours(1) {
    Some(d) => d,
    None => Duration::zero(),
};
const ONE_MINUTE: Duration = match Duration::try_minutes(1) {
    Some(d) => d,
    None => Duration::zero(),
};

/// How long each time partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One hour.
    Hourly,
    /// One calendar day in the timezone.
    Daily,
    /// Monday to Monday in the timezone.
    Weekly,
    /// One calendar month in the timezone.
    Monthly,
}

impl Granularity {
    /// Parses `hourly`, `daily`, `weekly`, `monthly`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hourly" => Granularity::Hourly,
            "daily" => Granularity::Daily,
            "weekly" => Granularity::Weekly,
            "monthly" => Granularity::Monthly,
            _ => return None,
        })
    }

    /// The default dimension name (the hive path segment).
    pub fn default_name(self) -> &'static str {
        match self {
            Granularity::Hourly => "hour",
            Granularity::Daily => "date",
            Granularity::Weekly => "week",
            Granularity::Monthly => "month",
        }
    }
}

/// A time-window dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeDimension {
    /// Dimension name (hive path segment).
    pub name: String,
    /// Window length.
    pub granularity: Granularity,
    /// Local start of the first partition.
    pub start: NaiveDateTime,
    /// Local start of the last partition, when the asset ends.
    pub end: Option<NaiveDateTime>,
    /// Timezone of the windows.
    pub timezone: Tz,
    /// The output column holding the event time, when declared.
    pub column: Option<String>,
}

/// A static-list dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticDimension {
    /// Dimension name (hive path segment).
    pub name: String,
    /// The values, in declaration order; no duplicates.
    pub values: Vec<String>,
    /// The output column holding the value, when declared.
    pub column: Option<String>,
}

/// One dimension of a partitioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// Time windows.
    Time(TimeDimension),
    /// A static list.
    Static(StaticDimension),
}

impl Dimension {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Dimension::Time(t) => &t.name,
            Dimension::Static(s) => &s.name,
        }
    }
}

/// How an asset is partitioned: one or two dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionsDef {
    /// The dimensions, in key order.
    pub dimensions: Vec<Dimension>,
}

/// The range of time a time partition covers, `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

/// A key that does not belong to a partitioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey {
    /// The key as given.
    pub key: String,
    /// Why, with the expected form.
    pub reason: String,
}

impl fmt::Display for BadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown partition key `{}`: {}", self.key, self.reason)
    }
}

impl TimeDimension {
    /// The local start of the window following the one starting at `local`.
    fn next_start(&self, local: NaiveDateTime) -> NaiveDateTime {
        self.shift(local, 1)
    }

    /// The local start `n` windows after (or before, for negative `n`) `local`.
    pub fn shift(&self, local: NaiveDateTime, n: i64) -> NaiveDateTime {
        let by = |step: Option<Duration>| {
            step.and_then(|d| local.checked_add_signed(d))
                .unwrap_or(if n < 0 {
                    NaiveDateTime::MIN
                } else {
                    NaiveDateTime::MAX
                })
        };
        match self.granularity {
            Granularity::Hourly => by(Duration::try_hours(n)),
            Granularity::Daily => by(Duration::try_days(n)),
            Granularity::Weekly => by(Duration::try_weeks(n)),
            Granularity::Monthly => {
                let months = i64::from(local.year()) * 12 + i64::from(local.month0()) + n;
                let (y, m) = (months.div_euclid(12), months.rem_euclid(12));
                i32::try_from(y)
                    .ok()
                    .and_then(|y| NaiveDate::from_ymd_opt(y, u32::try_from(m).ok()? + 1, 1))
                    .map(|d| d.and_time(NaiveTime::MIN))
                    .unwrap_or(local)
            }
        }
    }

    /// A local wall-clock time as an instant; for a time skipped by a DST
    /// change the first instant after the gap, for a repeated time the first.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            LocalResult::None => {
                // Walk forward to the end of the gap (at most a few hours).
                let mut probe = local;
                for _ in 0..(6 * 60) {
                    probe += ONE_MINUTE;
                    if let Some(t) = self.timezone.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                Utc.from_utc_datetime(&local)
            }
        }
    }

    /// Every window, in order, that has *ended* by `now` (a partition is
    /// complete only once its window is over) and starts no later than the
    /// configured end.
    pub fn keys_until(&self, now: DateTime<Utc>) -> Vec<(String, Window)> {
        let mut out = Vec::new();
        if self.granularity == Granularity::Hourly {
            // Walk instants, not wall-clock hours: DST adds or removes one.
            let mut start = self.instant(self.start);
            loop {
                let end = start + ONE_HOUR;
                let local = start.with_timezone(&self.timezone);
                if end > now || self.end.is_some_and(|e| local.naive_local() > e) {
                    break;
                }
                out.push((
                    local.format("%Y-%m-%dT%H%z").to_string(),
                    Window { start, end },
                ));
                start = end;
            }
            return out;
        }
        let mut local = self.start;
        loop {
            if self.end.is_some_and(|e| local > e) {
                break;
            }
            let next = self.next_start(local);
            let window = Window {
                start: self.instant(local),
                end: self.instant(next),
            };
            if window.end > now {
                break;
            }
            out.push((self.format(local), window));
            local = next;
        }
        out
    }

    fn format(&self, local: NaiveDateTime) -> String {
        match self.granularity {
            Granularity::Hourly => self
                .timezone
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.format("%Y-%m-%dT%H%z").to_string())
                .unwrap_or_else(|| local.format("%Y-%m-%dT%H").to_string()),
            Granularity::Daily | Granularity::Weekly => local.format("%Y-%m-%d").to_string(),
            Granularity::Monthly => local.format("%Y-%m").to_string(),
        }
    }

    /// The local start of the window named by `key`.
    pub fn parse_key(&self, key: &str) -> Result<NaiveDateTime, BadKey> {
        let bad = |reason: String| BadKey {
            key: key.to_owned(),
            reason,
        };
        let local = match self.granularity {
            Granularity::Hourly => DateTime::parse_from_str(&format!("{key}00"), "%Y-%m-%dT%H%z%M")
                .map(|t| t.with_timezone(&self.timezone).naive_local())
                .map_err(|_| bad("hourly keys look like 2024-05-01T13-0400".to_owned()))?,
            Granularity::Daily | Granularity::Weekly => NaiveDate::parse_from_str(key, "%Y-%m-%d")
                .map(|d| d.and_time(NaiveTime::MIN))
                .map_err(|_| bad("keys look like 2024-05-01".to_owned()))?,
            Granularity::Monthly => NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d")
                .map(|d| d.and_time(NaiveTime::MIN))
                .map_err(|_| bad("monthly keys look like 2024-05".to_owned()))?,
        };
        if self.granularity == Granularity::Weekly && local.weekday() != self.start.weekday() {
            return Err(bad(format!(
                "weekly partitions start on {}",
                self.start.weekday()
            )));
        }
        if local < self.start || self.end.is_some_and(|e| local > e) {
            let range = match self.end {
                Some(e) => format!("from {} to {}", self.format(self.start), self.format(e)),
                None => format!("from {}", self.format(self.start)),
            };
            return Err(bad(format!("outside the partitions, which run {range}")));
        }
        Ok(local)
    }

    /// The window of `key`.
    pub fn window(&self, key: &str) -> Result<Window, BadKey> {
        let local = self.parse_key(key)?;
        if self.granularity == Granularity::Hourly {
            let start = self.instant(local);
            // Keys carry the offset: take the instant they name exactly.
            let start = DateTime::parse_from_str(&format!("{key}00"), "%Y-%m-%dT%H%z%M")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(start);
            return Ok(Window {
                start,
                end: start + ONE_HOUR,
            });
        }
        Ok(Window {
            start: self.instant(local),
            end: self.instant(self.next_start(local)),
        })
    }
}

impl PartitionsDef {
    /// For people: "daily `date` from 2024-01-01 to 2024-01-31 (UTC) x
    /// `region` in eu, us, apac".
    pub fn describe(&self) -> String {
        self.dimensions
            .iter()
            .map(|d| match d {
                Dimension::Time(t) => {
                    let kind = match t.granularity {
                        Granularity::Hourly => "hourly",
                        Granularity::Daily => "daily",
                        Granularity::Weekly => "weekly",
                        Granularity::Monthly => "monthly",
                    };
                    let format = if t.granularity == Granularity::Hourly {
                        "%Y-%m-%d %H:00"
                    } else {
                        "%Y-%m-%d"
                    };
                    let end = t
                        .end
                        .map(|e| format!("to {}", e.format(format)))
                        .unwrap_or_else(|| "on".to_owned());
                    format!(
                        "{kind} `{}` from {} {end} ({})",
                        t.name,
                        t.start.format(format),
                        t.timezone
                    )
                }
                Dimension::Static(s) => format!("`{}` in {}", s.name, s.values.join(", ")),
            })
            .collect::<Vec<_>>()
            .join(" x ")
    }

    /// The time dimension, if any.
    pub fn time(&self) -> Option<&TimeDimension> {
        self.dimensions.iter().find_map(|d| match d {
            Dimension::Time(t) => Some(t),
            Dimension::Static(_) => None,
        })
    }

    /// Every complete partition key as of `now`, in order (time first, then
    /// static values in declaration order).
    pub fn keys_until(&self, now: DateTime<Utc>) -> Vec<String> {
        self.key_space(now).keys()
    }

    /// Splits and validates a key into one part per dimension.
    pub fn split_key<'k>(&self, key: &'k str) -> Result<Vec<&'k str>, BadKey> {
        let parts: Vec<&str> = key.split('|').collect();
        if parts.len() != self.dimensions.len() {
            let example: Vec<&str> = self.dimensions.iter().map(Dimension::name).collect();
            return Err(BadKey {
                key: key.to_owned(),
                reason: format!(
                    "expected {} part(s) separated by `|`: {}",
                    self.dimensions.len(),
                    example.join("|")
                ),
            });
        }
        for (dim, part) in self.dimensions.iter().zip(&parts) {
            match dim {
                Dimension::Time(t) => {
                    t.parse_key(part)?;
                }
                Dimension::Static(s) => {
                    if !s.values.iter().any(|v| v == part) {
                        return Err(BadKey {
                            key: key.to_owned(),
                            reason: format!("`{part}` is not one of {}", s.values.join(", ")),
                        });
                    }
                }
            }
        }
        Ok(parts)
    }

    /// The hive-style relative path of a key: `date=2024-05-01/region=eu`.
    pub fn hive_path(&self, key: &str) -> String {
        self.dimensions
            .iter()
            .zip(key.split('|'))
            .map(|(d, part)| format!("{}={part}", d.name()))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// How a downstream partition maps to the partitions of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionMapping {
    /// The default: the same key (time windows overlapping the downstream
    /// window when granularities differ; the same static value).
    Identity,
    /// Every upstream partition.
    All,
    /// Time windows `offset - lag ..= offset` periods from the downstream
    /// window, e.g. `lag = 6` for a 7-day rolling window, `offset = -1` for
    /// the previous day. Static dimensions map by identity.
    Window {
        /// Periods to shift (negative: earlier).
        offset: i64,
        /// Extra earlier periods to include.
        lag: u32,
    },
    /// Static values mapped by name: downstream value -> upstream values.
    Static(Vec<(String, Vec<String>)>),
}

impl PartitionMapping {
    /// For people, as the downstream reads the upstream: "the same
    /// partition", "the 7 periods ending with this one", "the previous
    /// period".
    pub fn describe(&self) -> String {
        match self {
            PartitionMapping::Identity => "the same partition".to_owned(),
            PartitionMapping::All => "every partition".to_owned(),
            PartitionMapping::Window { offset, lag } => {
                let count = i64::from(*lag) + 1;
                let periods = if count == 1 {
                    "period".to_owned()
                } else {
                    format!("{count} periods")
                };
                match offset {
                    0 if count == 1 => "the same period".to_owned(),
                    0 => format!("the {periods} ending with this one"),
                    -1 if count == 1 => "the previous period".to_owned(),
                    o if *o < 0 => format!("the {periods} ending {} before this one", -o),
                    o => format!("the {periods} ending {o} after this one"),
                }
            }
            PartitionMapping::Static(pairs) => pairs
                .iter()
                .map(|(down, ups)| format!("{down} <- {}", ups.join("|")))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The partition keys of one partitioning that exist at some moment, per
/// dimension, so mappings can be answered without enumerating every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    dims: Vec<DimKeys>,
    /// Every key's part per dimension, for O(1) membership.
    members: Vec<std::collections::HashSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DimKeys {
    /// Sorted by window start.
    Time(Vec<(String, Window)>),
    Static(Vec<String>),
}

impl KeySpace {
    /// Every key, in order (time-major).
    pub fn keys(&self) -> Vec<String> {
        let per_dim: Vec<Vec<&str>> = self
            .dims
            .iter()
            .map(|d| match d {
                DimKeys::Time(t) => t.iter().map(|(k, _)| k.as_str()).collect(),
                DimKeys::Static(s) => s.iter().map(String::as_str).collect(),
            })
            .collect();
        product(&per_dim)
    }

    /// The time window of the key at `position` in [`KeySpace::keys`]
    /// (`None` without a time dimension, or past the last key): status
    /// reads a partition's window by its position, with no key to parse.
    pub fn time_window(&self, position: usize) -> Option<Window> {
        let len = |d: &DimKeys| match d {
            DimKeys::Time(t) => t.len(),
            DimKeys::Static(s) => s.len(),
        };
        // Keys run through the last dimension fastest.
        let mut stride = 1usize;
        let mut window = None;
        for d in self.dims.iter().rev() {
            let n = len(d);
            if let DimKeys::Time(t) = d {
                window = t
                    .get(position.checked_div(stride)? % n.max(1))
                    .map(|(_, w)| *w);
            }
            stride = stride.saturating_mul(n);
        }
        (position < stride).then_some(window).flatten()
    }

    /// Whether `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        let mut parts = key.split('|');
        let all = self
            .members
            .iter()
            .all(|m| parts.next().is_some_and(|p| m.contains(p)));
        all && parts.next().is_none()
    }
}

fn product(per_dim: &[Vec<&str>]) -> Vec<String> {
    let mut keys = vec![String::new()];
    for (i, values) in per_dim.iter().enumerate() {
        keys = keys
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    if i == 0 {
                        (*v).to_owned()
                    } else {
                        format!("{prefix}|{v}")
                    }
                })
            })
            .collect();
    }
    keys
}

impl PartitionsDef {
    /// The keys that exist as of `now` (complete time windows only).
    pub fn key_space(&self, now: DateTime<Utc>) -> KeySpace {
        let dims: Vec<DimKeys> = self
            .dimensions
            .iter()
            .map(|d| match d {
                Dimension::Time(t) => DimKeys::Time(t.keys_until(now)),
                Dimension::Static(s) => DimKeys::Static(s.values.clone()),
            })
            .collect();
        let members = dims
            .iter()
            .map(|d| match d {
                DimKeys::Time(t) => t.iter().map(|(k, _)| k.clone()).collect(),
                DimKeys::Static(s) => s.iter().cloned().collect(),
            })
            .collect();
        KeySpace { dims, members }
    }
}

/// The upstream keys a downstream partition reads: `downstream` is the
/// downstream partitioning and key (None when unpartitioned), `upstream`
/// the upstream partitioning with its existing keys (None when
/// unpartitioned: one `""` partition).
pub fn upstream_keys(
    mapping: &PartitionMapping,
    downstream: Option<(&PartitionsDef, &str)>,
    upstream: Option<(&PartitionsDef, &KeySpace)>,
) -> Vec<String> {
    let Some((up, space)) = upstream else {
        return vec![String::new()];
    };
    let Some((down, key)) = downstream else {
        return space.keys();
    };
    if *mapping == PartitionMapping::All {
        return space.keys();
    }
    // The common case: identity between identical partitionings.
    if *mapping == PartitionMapping::Identity && up == down {
        return if space.contains(key) {
            vec![key.to_owned()]
        } else {
            Vec::new()
        };
    }
    let Ok(parts) = down.split_key(key) else {
        return Vec::new();
    };
    let mut per_dim: Vec<Vec<&str>> = Vec::with_capacity(up.dimensions.len());
    for (up_dim, dim_keys) in up.dimensions.iter().zip(&space.dims) {
        let matching = down
            .dimensions
            .iter()
            .zip(&parts)
            .find(|(d, _)| std::mem::discriminant(*d) == std::mem::discriminant(up_dim));
        let values: Vec<&str> = match (dim_keys, matching) {
            (DimKeys::Time(windows), Some((Dimension::Time(dt), part))) => {
                let Ok(local) = dt.parse_key(part) else {
                    return Vec::new();
                };
                let (offset, lag) = match mapping {
                    PartitionMapping::Window { offset, lag } => (*offset, i64::from(*lag)),
                    _ => (0, 0),
                };
                let start = dt.instant(dt.shift(local, offset - lag));
                let end = dt.instant(dt.shift(local, offset + 1));
                // Windows are sorted and disjoint: binary search the overlap.
                let first = windows.partition_point(|(_, w)| w.end <= start);
                let last = windows.partition_point(|(_, w)| w.start < end);
                windows[first..last.max(first)]
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect()
            }
            (DimKeys::Static(values), Some((Dimension::Static(_), part))) => match mapping {
                PartitionMapping::Static(pairs) => {
                    let wanted: BTreeSet<&str> = pairs
                        .iter()
                        .filter(|(d, _)| d == part)
                        .flat_map(|(_, u)| u.iter().map(String::as_str))
                        .collect();
                    values
                        .iter()
                        .map(String::as_str)
                        .filter(|v| wanted.contains(v))
                        .collect()
                }
                _ => values
                    .iter()
                    .map(String::as_str)
                    .filter(|v| v == part)
                    .collect(),
            },
            (DimKeys::Time(windows), _) => windows.iter().map(|(k, _)| k.as_str()).collect(),
            (DimKeys::Static(values), _) => values.iter().map(String::as_str).collect(),
        };
        per_dim.push(values);
    }
    product(&per_dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(tz: Tz, start: &str) -> TimeDimension {
        TimeDimension {
            name: "date".into(),
            granularity: Granularity::Daily,
            start: NaiveDate::parse_from_str(start, "%Y-%m-%d")
                .map(|d| d.and_time(NaiveTime::MIN))
                .unwrap_or_default(),
            end: None,
            timezone: tz,
            column: None,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn partitionings_and_mappings_describe_themselves() {
        let def = PartitionsDef {
            dimensions: vec![
                Dimension::Time(daily(chrono_tz::America::New_York, "2024-01-01")),
                Dimension::Static(StaticDimension {
                    name: "region".into(),
                    values: vec!["eu".into(), "us".into()],
                    column: None,
                }),
            ],
        };
        assert_eq!(
            def.describe(),
            "daily `date` from 2024-01-01 on (America/New_York) x `region` in eu, us"
        );
        let window = |offset, lag| PartitionMapping::Window { offset, lag }.describe();
        assert_eq!(window(0, 6), "the 7 periods ending with this one");
        assert_eq!(window(-1, 0), "the previous period");
        assert_eq!(window(-1, 2), "the 3 periods ending 1 before this one");
        assert_eq!(window(0, 0), "the same period");
        assert_eq!(PartitionMapping::Identity.describe(), "the same partition");
        assert_eq!(
            PartitionMapping::Static(vec![("emea".into(), vec!["eu".into(), "uk".into()])])
                .describe(),
            "emea <- eu|uk"
        );
    }

    #[test]
    fn new_york_days_across_both_dst_changes() {
        let d = daily(chrono_tz::America::New_York, "2024-01-01");
        // Spring forward: 23 hours, EST start, EDT end.
        let w = d.window("2024-03-10").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.start, utc("2024-03-10T05:00:00Z"));
        assert_eq!(w.end, utc("2024-03-11T04:00:00Z"));
        // Fall back: 25 hours.
        let w = d.window("2024-11-03").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.start, utc("2024-11-03T04:00:00Z"));
        assert_eq!(w.end, utc("2024-11-04T05:00:00Z"));
    }

    #[test]
    fn only_complete_windows_exist() {
        let d = daily(chrono_tz::UTC, "2024-01-01");
        let keys = d.keys_until(utc("2024-01-03T12:00:00Z"));
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["2024-01-01", "2024-01-02"]);
        assert_eq!(d.keys_until(utc("2025-01-01T00:00:00Z")).len(), 366);
    }

    #[test]
    fn hourly_keys_stay_unique_when_the_clock_repeats_an_hour() {
        let mut d = daily(chrono_tz::America::New_York, "2024-11-03");
        d.granularity = Granularity::Hourly;
        let keys = d.keys_until(utc("2024-11-04T05:00:00Z"));
        assert_eq!(keys.len(), 25);
        let unique: BTreeSet<&String> = keys.iter().map(|(k, _)| k).collect();
        assert_eq!(unique.len(), 25);
        assert!(unique.contains(&"2024-11-03T01-0400".to_owned()));
        assert!(unique.contains(&"2024-11-03T01-0500".to_owned()));
        let w = d
            .window("2024-11-03T01-0500")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.start, utc("2024-11-03T06:00:00Z"));
    }

    #[test]
    fn monthly_and_weekly_windows() {
        let mut m = daily(chrono_tz::UTC, "2024-01-01");
        m.granularity = Granularity::Monthly;
        let keys: Vec<String> = m
            .keys_until(utc("2024-04-15T00:00:00Z"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["2024-01", "2024-02", "2024-03"]);
        let w = m.window("2024-02").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.end - w.start, Duration::try_days(29).unwrap_or_default());
        let mut wk = daily(chrono_tz::UTC, "2024-01-01");
        wk.granularity = Granularity::Weekly;
        assert!(wk.parse_key("2024-01-08").is_ok());
        assert!(wk.parse_key("2024-01-09").is_err());
    }

    #[test]
    fn bad_keys_are_explained() {
        let d = daily(chrono_tz::UTC, "2024-01-01");
        assert!(
            d.parse_key("2023-12-31")
                .is_err_and(|e| e.reason.contains("outside"))
        );
        assert!(
            d.parse_key("May 1")
                .is_err_and(|e| e.reason.contains("2024-05-01"))
        );
    }

    fn def(dims: Vec<Dimension>) -> PartitionsDef {
        PartitionsDef { dimensions: dims }
    }

    #[test]
    fn each_key_position_has_its_time_window() {
        let region = || {
            Dimension::Static(StaticDimension {
                name: "region".into(),
                values: vec!["eu".into(), "us".into(), "apac".into()],
                column: None,
            })
        };
        let now = utc("2024-01-03T12:00:00Z");
        for d in [
            def(vec![Dimension::Time(daily(chrono_tz::UTC, "2024-01-01"))]),
            def(vec![
                Dimension::Time(daily(chrono_tz::UTC, "2024-01-01")),
                region(),
            ]),
            def(vec![
                region(),
                Dimension::Time(daily(chrono_tz::UTC, "2024-01-01")),
            ]),
        ] {
            let space = d.key_space(now);
            let keys = space.keys();
            for (i, key) in keys.iter().enumerate() {
                let day = key.split('|').find(|p| p.starts_with("2024")).unwrap_or("");
                let expected = d.time().and_then(|t| t.window(day).ok());
                assert_eq!(space.time_window(i), expected, "{key}");
            }
            assert_eq!(space.time_window(keys.len()), None);
        }
        let static_only = def(vec![region()]).key_space(now);
        assert_eq!(static_only.time_window(0), None);
    }

    #[test]
    fn rolling_window_reads_the_seven_previous_days() {
        let d = def(vec![Dimension::Time(daily(chrono_tz::UTC, "2024-01-01"))]);
        let now = utc("2025-01-01T00:00:00Z");
        let keys = upstream_keys(
            &PartitionMapping::Window { offset: 0, lag: 6 },
            Some((&d, "2024-01-10")),
            Some((&d, &d.key_space(now))),
        );
        assert_eq!(keys.first().map(String::as_str), Some("2024-01-04"));
        assert_eq!(keys.last().map(String::as_str), Some("2024-01-10"));
        assert_eq!(keys.len(), 7);
        // Clipped at the upstream's first partition.
        let keys = upstream_keys(
            &PartitionMapping::Window { offset: 0, lag: 6 },
            Some((&d, "2024-01-02")),
            Some((&d, &d.key_space(now))),
        );
        assert_eq!(keys, vec!["2024-01-01", "2024-01-02"]);
        // Identity and previous-day.
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Identity,
                Some((&d, "2024-03-10")),
                Some((&d, &d.key_space(now)))
            ),
            vec!["2024-03-10"]
        );
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Window { offset: -1, lag: 0 },
                Some((&d, "2024-03-10")),
                Some((&d, &d.key_space(now)))
            ),
            vec!["2024-03-09"]
        );
    }

    #[test]
    fn daily_reads_hourly_by_overlap_and_static_by_name() {
        let mut hourly = daily(chrono_tz::America::New_York, "2024-03-09");
        hourly.granularity = Granularity::Hourly;
        let up = def(vec![Dimension::Time(hourly)]);
        let down = def(vec![Dimension::Time(daily(
            chrono_tz::America::New_York,
            "2024-03-09",
        ))]);
        let now = utc("2024-04-01T00:00:00Z");
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Identity,
                Some((&down, "2024-03-10")),
                Some((&up, &up.key_space(now)))
            )
            .len(),
            23
        );

        let regions = Dimension::Static(StaticDimension {
            name: "region".into(),
            values: vec!["eu".into(), "us".into(), "apac".into()],
            column: None,
        });
        let two = def(vec![
            Dimension::Time(daily(chrono_tz::UTC, "2024-01-01")),
            regions.clone(),
        ]);
        let now = utc("2024-01-03T00:00:00Z");
        assert_eq!(two.keys_until(now).len(), 6);
        assert_eq!(two.hive_path("2024-01-02|us"), "date=2024-01-02/region=us");
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Identity,
                Some((&two, "2024-01-02|us")),
                Some((&two, &two.key_space(now)))
            ),
            vec!["2024-01-02|us"]
        );
        let by_region = def(vec![regions]);
        let map = PartitionMapping::Static(vec![("eu".into(), vec!["us".into(), "apac".into()])]);
        assert_eq!(
            upstream_keys(
                &map,
                Some((&by_region, "eu")),
                Some((&by_region, &by_region.key_space(now)))
            ),
            vec!["us", "apac"]
        );
        // Unpartitioned downstream reads everything; unpartitioned upstream is one "" partition.
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Identity,
                None,
                Some((&two, &two.key_space(now)))
            )
            .len(),
            6
        );
        assert_eq!(
            upstream_keys(
                &PartitionMapping::Identity,
                Some((&two, "2024-01-01|eu")),
                None
            ),
            vec![""]
        );
    }
}
