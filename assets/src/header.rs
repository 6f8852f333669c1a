//! Per-asset configuration: a TOML header at the top of the `.sql` file
//! (lines starting with `---`) or a sidecar `NAME.toml` beside it.

use std::path::Path;

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, line_of_offset};

/// Per-asset configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssetConfig {
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Who owns it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Tags for selection and display.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The `[pools]` limit its builds count against.
    #[serde(default)]
    pub pool: Option<Spanned<String>>,
    /// How the asset is partitioned.
    #[serde(default)]
    pub partitions: Option<RawPartitions>,
    /// Partition mappings per upstream name.
    #[serde(default)]
    pub upstream: BTreeMap<String, RawMapping>,
    /// Count rows added/removed versus the previous version (default true;
    /// turn off for huge tables).
    #[serde(default)]
    pub count_row_changes: Option<bool>,
    /// Checks: `"not_null(id)"` or `{ check = "...", severity = "warn" }`.
    #[serde(default)]
    pub checks: Vec<Spanned<toml::Value>>,
    /// Declared output columns, `name = "SQL TYPE"`.
    #[serde(default)]
    pub columns: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// When it should run.
    #[serde(default)]
    pub automation: Option<crate::automation::RawAutomation>,
    /// Its freshness SLA.
    #[serde(default)]
    pub freshness: Option<crate::automation::RawFreshness>,
    /// Retries of transient failures.
    #[serde(default)]
    pub retries: Option<crate::automation::RawRetries>,
}

/// `[partitions]` as written: the primary dimension, optionally with a
/// static second dimension in `[partitions.static]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPartitions {
    /// `hourly`, `daily`, `weekly`, `monthly` or `static`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// First partition (time).
    #[serde(default)]
    pub start: Option<Spanned<String>>,
    /// Last partition, inclusive (time).
    #[serde(default)]
    pub end: Option<Spanned<String>>,
    /// IANA timezone (time), UTC by default.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// The output column holding the partition's time or value.
    #[serde(default)]
    pub column: Option<String>,
    /// Dimension name (hive path segment).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Values (static).
    #[serde(default)]
    pub values: Option<Spanned<Vec<String>>>,
    /// A static second dimension.
    #[serde(default, rename = "static")]
    pub second: Option<Spanned<RawStatic>>,
}

/// `[partitions.static]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatic {
    /// Dimension name.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Values.
    pub values: Spanned<Vec<String>>,
    /// The output column holding the value.
    #[serde(default)]
    pub column: Option<String>,
}

/// `[upstream.NAME]`: how partitions of this asset map to NAME's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    /// `identity`, `all`, `window` or `static`.
    pub mapping: Spanned<String>,
    /// Window: periods to shift (negative: earlier).
    #[serde(default)]
    pub offset: Option<i64>,
    /// Window: extra earlier periods to read.
    #[serde(default)]
    pub lag: Option<u32>,
    /// Static: downstream value -> upstream values.
    #[serde(default)]
    pub map: Option<BTreeMap<String, Vec<String>>>,
}

const HEADER_PREFIX: &str = "---";

/// The header lines of an asset file as TOML text, one TOML line per file
/// line so that TOML line numbers equal file line numbers. `None` when the
/// file has no header.
pub(crate) fn header_toml(sql_text: &str) -> Option<String> {
    let mut toml = String::new();
    let mut any = false;
    for line in sql_text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(HEADER_PREFIX) {
            any = true;
            toml.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            toml.push('\n');
        } else if trimmed.is_empty() && any {
            toml.push('\n');
        } else {
            break;
        }
    }
    any.then_some(toml)
}

/// Parses configuration TOML (a header or a sidecar). `line_offset` is
/// added to TOML line numbers to give file line numbers.
pub(crate) fn parse_config(toml_text: &str, file: &Path) -> Result<AssetConfig, Diagnostic> {
    toml::from_str::<AssetConfig>(toml_text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(toml_text, s.start));
        Diagnostic::new(file, line, format!("invalid asset config: {}", e.message())).with_hint(
            "allowed keys are description, owner, tags, pool, checks, count_row_changes, [partitions], [upstream.NAME], [columns], [automation], [freshness] and [retries]; see the README",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_keep_their_line_numbers() {
        let sql = "--- description = \"x\"\n---\n--- bogus = 1\nselect 1";
        let toml = header_toml(sql).unwrap_or_default();
        let err = parse_config(&toml, Path::new("a.sql")).err();
        assert_eq!(err.and_then(|d| d.line), Some(3));
    }

    #[test]
    fn no_header_is_none() {
        assert_eq!(header_toml("-- plain comment\nselect 1"), None);
    }
}
