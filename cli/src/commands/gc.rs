//! `cairn gc`: removes (or with `--dry-run` lists) the files no committed
//! version needs, and says how much that frees.

use std::io::Write;

use cairn_engine::{GcReport, Workspace};

use crate::Failure;
use crate::args::{Format, GcArgs};
use crate::commands::print_json;
use crate::output::bytes;

/// Runs `cairn gc`.
pub(crate) async fn run(ws: &Workspace, args: GcArgs) -> Result<u8, Failure> {
    let report = ws.gc(args.dry_run).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&report, &mut out)?,
        Format::Text => render_text(&report, &mut out)?,
    }
    Ok(0)
}

/// The report as JSON: the engine's [`GcReport`] as it serializes.
pub(crate) fn render_json(report: &GcReport, out: &mut impl Write) -> Result<(), Failure> {
    print_json(report, out)
}

/// One line per file removed (or, on a dry run, that would be) and why,
/// then the totals.
pub(crate) fn render_text(report: &GcReport, out: &mut impl Write) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in &report.uncommitted {
        writeln!(out, "{verb} {f} (never committed)")?;
    }
    for f in &report.expired {
        writeln!(out, "{verb} {f} (replaced, past retention)")?;
    }
    writeln!(
        out,
        "{} {} file(s), {}",
        verb,
        report.uncommitted.len() + report.expired.len(),
        bytes(report.bytes)
    )
}
