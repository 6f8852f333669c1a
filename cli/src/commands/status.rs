//! `cairn status`: which assets are fresh, stale (and why), failed or never
//! materialized, as a table or JSON; `--check` makes it a freshness gate.

use std::io::Write;

use serde::Serialize;

use cairn_engine::{AssetState, AssetStatus, Workspace};

use crate::Failure;
use crate::args::{Format, StatusArgs};
use crate::commands::print_json;

/// Runs `cairn status`; exit code 1 with `--check` when anything selected
/// is not fresh or fails a check.
pub(crate) fn run(ws: &Workspace, args: StatusArgs) -> Result<u8, Failure> {
    let mut statuses = ws.status(&args.selection)?;
    let not_fresh = not_fresh(&statuses);
    let failing_checks: usize = statuses.iter().map(|s| s.failing_checks.len()).sum();
    let code = u8::from(args.check && (not_fresh > 0 || failing_checks > 0));
    if !args.partitions {
        for s in &mut statuses {
            if let Some(p) = &mut s.partitions {
                p.list.clear();
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&statuses, &mut out)?,
        Format::Text => render_text(&statuses, &mut out)?,
    }
    Ok(code)
}

/// The statuses as JSON: counts, then the engine's [`AssetStatus`]es as
/// they serialize.
pub(crate) fn render_json(statuses: &[AssetStatus], out: &mut impl Write) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        fresh: usize,
        not_fresh: usize,
        failing_checks: usize,
        assets: &'a [AssetStatus],
    }
    let not_fresh = not_fresh(statuses);
    print_json(
        &Out {
            fresh: statuses.len() - not_fresh,
            not_fresh,
            failing_checks: statuses.iter().map(|s| s.failing_checks.len()).sum(),
            assets: statuses,
        },
        out,
    )
}

/// How many of `statuses` are not fresh.
fn not_fresh(statuses: &[AssetStatus]) -> usize {
    statuses
        .iter()
        .filter(|s| s.state != AssetState::Fresh)
        .count()
}

/// The statuses as a table: one row per asset (and per partition listed
/// in its summary), then the counts.
pub(crate) fn render_text(statuses: &[AssetStatus], out: &mut impl Write) -> std::io::Result<()> {
    let not_fresh = not_fresh(statuses);
    let key_width = statuses
        .iter()
        .filter_map(|s| s.partitions.as_ref())
        .flat_map(|p| p.list.iter().map(|u| u.key.len() + 2))
        .max()
        .unwrap_or(0);
    let width = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(5)
        .max(5)
        .max(key_width);
    writeln!(
        out,
        "{:<width$}  {:<18}  {:<19}  {:>10}  DETAIL",
        "ASSET", "STATE", "LAST MATERIALIZED", "ROWS"
    )?;
    for s in statuses {
        let (when, rows, detail) = match &s.partitions {
            None => {
                let when = s
                    .current
                    .as_ref()
                    .map(|c| c.committed_at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = s
                    .current
                    .as_ref()
                    .map(|c| c.row_count.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let mut detail: Vec<String> = s.causes.iter().map(ToString::to_string).collect();
                if let Some(f) = &s.last_failure {
                    let current = s.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                for c in &s.failing_checks {
                    detail.push(format!("check failing: {c}"));
                }
                (when, rows, detail.join("; "))
            }
            Some(p) => {
                let when = p
                    .last_committed_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = if p.fresh + p.stale + p.failed == 0 {
                    "-".to_owned()
                } else {
                    p.rows.to_string()
                };
                (when, rows, {
                    let mut d = format!("{} partitions: {}", p.total, p.describe());
                    if !s.failing_checks.is_empty() {
                        d.push_str(&format!(
                            "; checks failing: {}",
                            s.failing_checks.join(", ")
                        ));
                    }
                    d
                })
            }
        };
        writeln!(
            out,
            "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
            s.name,
            s.state.as_str(),
            when,
            rows,
            detail
        )?;
        if let Some(p) = &s.partitions {
            for u in &p.list {
                let mut detail: Vec<String> = u.causes.iter().map(ToString::to_string).collect();
                if let Some(f) = &u.last_failure {
                    let current = u.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                let when = u
                    .current
                    .as_ref()
                    .map(|c| c.committed_at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let rows = u
                    .current
                    .as_ref()
                    .map(|c| c.row_count.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                writeln!(
                    out,
                    "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
                    format!("  {}", u.key),
                    u.state.as_str(),
                    when,
                    rows,
                    detail.join("; ")
                )?;
            }
        }
    }
    writeln!(
        out,
        "{} fresh, {} not fresh",
        statuses.len() - not_fresh,
        not_fresh
    )
}

/// What a failed latest attempt means for the version being served: when
/// it failed its checks, its output was never committed and the current
/// version (if any) is the one that passed them.
fn failure_text(
    f: &cairn_catalog::AttemptRecord,
    current: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let error = f.error.as_deref().unwrap_or("unknown error");
    let attempt = when(f.at);
    match (cairn_engine::failed_checks(error), current) {
        (Some(checks), Some(t)) => format!(
            "the last attempt ({attempt}) failed its checks and was not committed: {checks}; the current version (committed {}) passed its checks and stays current",
            when(t)
        ),
        (Some(checks), None) => format!(
            "the last attempt ({attempt}) failed its checks and was not committed: {checks}; no version is committed yet"
        ),
        (None, Some(t)) => format!(
            "the last attempt ({attempt}) failed: {error}; the current version (committed {}) stays current",
            when(t)
        ),
        (None, None) => format!("the last attempt ({attempt}) failed: {error}"),
    }
}
