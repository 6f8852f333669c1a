//! `cairn gc`: removes (or with `--dry-run` lists) the files no committed
//! version needs, and says how much that frees.

use std::io::Write;

use serde::Serialize;

use cairn_engine::Workspace;

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
        Format::Text => render_text(
            &Removed {
                uncommitted: &report.uncommitted,
                expired: &report.expired,
                bytes: report.bytes,
                dry_run: args.dry_run,
            },
            &mut out,
        )?,
    }
    Ok(0)
}

/// What `cairn gc` removed, or on a dry run would remove (the parts of the
/// engine's `GcReport` the text shows; the engine does not re-export that
/// type at its root).
pub(crate) struct Removed<'a> {
    /// Files written by runs that never committed them.
    pub uncommitted: &'a [String],
    /// Files of replaced versions past retention.
    pub expired: &'a [String],
    /// Bytes freed.
    pub bytes: u64,
    /// Whether nothing was removed, only listed.
    pub dry_run: bool,
}

/// The engine's `GcReport` as JSON, as it serializes.
pub(crate) fn render_json(report: &impl Serialize, out: &mut impl Write) -> Result<(), Failure> {
    print_json(report, out)
}

/// One line per file removed and why, then the totals.
pub(crate) fn render_text(removed: &Removed<'_>, out: &mut impl Write) -> std::io::Result<()> {
    let verb = if removed.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in removed.uncommitted {
        writeln!(out, "{verb} {f} (never committed)")?;
    }
    for f in removed.expired {
        writeln!(out, "{verb} {f} (replaced, past retention)")?;
    }
    writeln!(
        out,
        "{} {} file(s), {}",
        verb,
        removed.uncommitted.len() + removed.expired.len(),
        bytes(removed.bytes)
    )
}
