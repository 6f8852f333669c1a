//! Turning `[partitions]` and `[upstream.NAME]` as written into checked
//! [`PartitionsDef`]s and [`PartitionMapping`]s, with file:line errors.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, line_of_offset};
use crate::header::{RawMapping, RawPartitions, RawStatic};
use crate::names::is_valid_name;
use crate::partitions::{
    Dimension, Granularity, PartitionMapping, PartitionsDef, StaticDimension, TimeDimension,
};

/// Where a config text came from, to turn spans into file lines.
pub(crate) struct ConfigText<'a> {
    pub text: &'a str,
    pub file: &'a Path,
}

impl ConfigText<'_> {
    pub(crate) fn at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(
            self.file,
            Some(line_of_offset(self.text, spanned.span().start)),
            message,
        )
    }
}

/// Checks a `[partitions]` table.
pub(crate) fn resolve_partitions(
    raw: &RawPartitions,
    cx: &ConfigText<'_>,
) -> Result<PartitionsDef, Diagnostic> {
    let kind = raw.kind.get_ref().as_str();
    let first = if kind == "static" {
        let values = raw.values.as_ref().ok_or_else(|| {
            cx.at(&raw.kind, "static partitions need `values = [...]`")
                .with_hint("e.g. values = [\"eu\", \"us\", \"apac\"]")
        })?;
        for (field, present) in [
            ("start", raw.start.is_some()),
            ("end", raw.end.is_some()),
            ("timezone", raw.timezone.is_some()),
        ] {
            if present {
                return Err(cx.at(
                    &raw.kind,
                    format!("`{field}` applies to time partitions, not static ones"),
                ));
            }
        }
        Dimension::Static(static_dimension(
            raw.name.as_ref(),
            values,
            raw.column.clone(),
            cx,
        )?)
    } else {
        let granularity = Granularity::parse(kind).ok_or_else(|| {
            cx.at(&raw.kind, format!("unknown partition type `{kind}`"))
                .with_hint(
                    "use type = \"hourly\", \"daily\", \"weekly\", \"monthly\" or \"static\"",
                )
        })?;
        if raw.values.is_some() {
            return Err(cx.at(&raw.kind, "`values` applies to static partitions; put them in [partitions.static] for a second dimension"));
        }
        let timezone: Tz = match &raw.timezone {
            None => chrono_tz::UTC,
            Some(tz) => tz.get_ref().parse().map_err(|_| {
                cx.at(tz, format!("unknown timezone `{}`", tz.get_ref()))
                    .with_hint("use an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"")
            })?,
        };
        let start = raw.start.as_ref().ok_or_else(|| {
            cx.at(&raw.kind, "time partitions need `start`")
                .with_hint("e.g. start = \"2024-01-01\"")
        })?;
        let start_at = parse_time(start, granularity, cx)?;
        let end_at = raw
            .end
            .as_ref()
            .map(|e| parse_time(e, granularity, cx))
            .transpose()?;
        if let (Some(end), Some(end_at)) = (&raw.end, end_at)
            && end_at < start_at
        {
            return Err(cx
                .at(end, "`end` is before `start`")
                .with_hint("end is the last partition, inclusive"));
        }
        let name = dimension_name(raw.name.as_ref(), granularity.default_name(), cx)?;
        Dimension::Time(TimeDimension {
            name,
            granularity,
            start: start_at,
            end: end_at,
            timezone,
            column: raw.column.clone(),
        })
    };
    let mut dimensions = vec![first];
    if let Some(second) = &raw.second {
        if matches!(dimensions[0], Dimension::Static(_)) {
            return Err(cx.at(second, "a second dimension needs a time first dimension")
                .with_hint("declare type = \"daily\" (or another time type) with [partitions.static] for date x value"));
        }
        let RawStatic {
            name,
            values,
            column,
        } = second.get_ref();
        let dim = static_dimension(name.as_ref(), values, column.clone(), cx)?;
        if dim.name == dimensions[0].name() {
            return Err(cx
                .at(second, format!("both dimensions are named `{}`", dim.name))
                .with_hint("set a distinct `name`"));
        }
        dimensions.push(Dimension::Static(dim));
    }
    Ok(PartitionsDef { dimensions })
}

fn dimension_name(
    name: Option<&Spanned<String>>,
    default: &str,
    cx: &ConfigText<'_>,
) -> Result<String, Diagnostic> {
    match name {
        None => Ok(default.to_owned()),
        Some(n) if is_valid_name(n.get_ref()) => Ok(n.get_ref().clone()),
        Some(n) => Err(cx
            .at(n, format!("invalid dimension name `{}`", n.get_ref()))
            .with_hint("a lowercase identifier; it names the hive path segment, e.g. `date`")),
    }
}

fn static_dimension(
    name: Option<&Spanned<String>>,
    values: &Spanned<Vec<String>>,
    column: Option<String>,
    cx: &ConfigText<'_>,
) -> Result<StaticDimension, Diagnostic> {
    let default = column.clone().unwrap_or_else(|| "partition".to_owned());
    let name = dimension_name(name, &default, cx)?;
    if values.get_ref().is_empty() {
        return Err(cx.at(values, "static partitions need at least one value"));
    }
    let mut seen = BTreeSet::new();
    for v in values.get_ref() {
        if v.is_empty() || v.contains(['/', '|', '=', '\\']) || v.trim() != v {
            return Err(cx.at(values, format!("invalid static partition value `{v}`"))
                .with_hint("values become path segments: no empty values, spaces at the ends, `/`, `|`, `=` or `\\`"));
        }
        if !seen.insert(v.to_ascii_lowercase()) {
            return Err(cx
                .at(
                    values,
                    format!("static partition value `{v}` is listed twice (values overlap)"),
                )
                .with_hint("each value must be unique, ignoring case"));
        }
    }
    Ok(StaticDimension {
        name,
        values: values.get_ref().clone(),
        column,
    })
}

fn parse_time(
    s: &Spanned<String>,
    g: Granularity,
    cx: &ConfigText<'_>,
) -> Result<NaiveDateTime, Diagnostic> {
    let text = s.get_ref();
    let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            cx.at(s, format!("invalid date `{text}`"))
                .with_hint("write \"2024-01-01\" (or \"2024-01-01 13:00\" for hourly)")
        })?;
    if g != Granularity::Hourly && parsed.time() != NaiveTime::MIN {
        return Err(cx
            .at(s, format!("`{text}` is not the start of a day"))
            .with_hint("give a date such as \"2024-01-01\""));
    }
    if g == Granularity::Monthly && parsed.day() != 1 {
        return Err(cx
            .at(s, format!("`{text}` is not the first day of a month"))
            .with_hint("monthly partitions start on day 1, e.g. \"2024-01-01\""));
    }
    Ok(parsed)
}

/// Checks one `[upstream.NAME]` table against the two partitionings.
pub(crate) fn resolve_mapping(
    upstream: &str,
    raw: &RawMapping,
    downstream_def: Option<&PartitionsDef>,
    upstream_def: Option<&PartitionsDef>,
    cx: &ConfigText<'_>,
) -> Result<PartitionMapping, Diagnostic> {
    let kind = raw.mapping.get_ref().as_str();
    let at = |m: String| cx.at(&raw.mapping, m);
    if upstream_def.is_none() {
        return Err(at(format!(
            "`{upstream}` is not partitioned, so a partition mapping to it makes no sense"
        ))
        .with_hint(format!(
            "remove [upstream.{upstream}]: every partition reads all of `{upstream}`"
        )));
    }
    let Some(down) = downstream_def else {
        return match kind {
            "all" => Ok(PartitionMapping::All),
            _ => Err(at(format!("this asset is not partitioned, so it reads every partition of `{upstream}`; mapping `{kind}` makes no sense"))
                .with_hint("use mapping = \"all\" or partition this asset")),
        };
    };
    let unused = |field: &str, present: bool| -> Result<(), Diagnostic> {
        if present {
            Err(at(format!("`{field}` does not apply to mapping `{kind}`")))
        } else {
            Ok(())
        }
    };
    match kind {
        "identity" | "all" => {
            unused("offset", raw.offset.is_some())?;
            unused("lag", raw.lag.is_some())?;
            unused("map", raw.map.is_some())?;
            Ok(if kind == "all" { PartitionMapping::All } else { PartitionMapping::Identity })
        }
        "window" => {
            unused("map", raw.map.is_some())?;
            if down.time().is_none() || upstream_def.and_then(PartitionsDef::time).is_none() {
                return Err(at("a window mapping needs time partitions on both sides".to_owned()));
            }
            Ok(PartitionMapping::Window {
                offset: raw.offset.unwrap_or(0),
                lag: raw.lag.unwrap_or(0),
            })
        }
        "static" => {
            unused("offset", raw.offset.is_some())?;
            unused("lag", raw.lag.is_some())?;
            let Some(map) = &raw.map else {
                return Err(at("a static mapping needs `map = { downstream_value = [\"upstream_value\", ...] }`".to_owned()));
            };
            let values = |def: Option<&PartitionsDef>| -> Vec<String> {
                def.into_iter()
                    .flat_map(|d| d.dimensions.iter())
                    .filter_map(|d| match d {
                        Dimension::Static(s) => Some(s.values.clone()),
                        Dimension::Time(_) => None,
                    })
                    .flatten()
                    .collect()
            };
            let (down_values, up_values) = (values(Some(down)), values(upstream_def));
            if down_values.is_empty() || up_values.is_empty() {
                return Err(at("a static mapping needs static partitions on both sides".to_owned()));
            }
            for (d, ups) in map {
                if !down_values.contains(d) {
                    return Err(at(format!("`{d}` is not a partition value of this asset ({})", down_values.join(", "))));
                }
                if let Some(u) = ups.iter().find(|u| !up_values.contains(u)) {
                    return Err(at(format!("`{u}` is not a partition value of `{upstream}` ({})", up_values.join(", "))));
                }
            }
            Ok(PartitionMapping::Static(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
        }
        other => Err(at(format!("unknown partition mapping `{other}`"))
            .with_hint("use mapping = \"identity\", \"all\", \"window\" (with offset/lag) or \"static\" (with map)")),
    }
}

/// Problems with the default mapping between two partitionings that the
/// user must resolve explicitly.
pub(crate) fn check_default_mapping(
    upstream: &str,
    down: &PartitionsDef,
    up: &PartitionsDef,
) -> Option<String> {
    for d in &down.dimensions {
        if let Dimension::Static(ds) = d {
            let up_static = up.dimensions.iter().find_map(|u| match u {
                Dimension::Static(s) => Some(s),
                Dimension::Time(_) => None,
            });
            if let Some(us) = up_static
                && let Some(missing) = ds.values.iter().find(|v| !us.values.contains(v))
            {
                return Some(format!(
                    "partition value `{missing}` has no partition of the same name in `{upstream}` ({}); declare [upstream.{upstream}] mapping = \"static\" with a map",
                    us.values.join(", ")
                ));
            }
        }
    }
    None
}
