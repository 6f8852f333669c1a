//! `cairn check`: reruns the checks of committed versions without
//! rematerializing; exit code 1 when an `error` check fails.

use std::io::Write;

use serde::Serialize;

use cairn_catalog::RunId;
use cairn_engine::{CheckReport, Workspace};

use crate::Failure;
use crate::args::{CheckArgs, Format};
use crate::commands::{command_line, print_json};

/// Runs `cairn check`.
pub(crate) async fn run(ws: &Workspace, args: CheckArgs) -> Result<u8, Failure> {
    let (run_id, reports) = ws.check(&args.selection, &command_line()).await?;
    let code = u8::from(
        reports
            .iter()
            .flat_map(|r| r.checks.iter())
            .any(|c| c.blocks()),
    );
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(run_id.as_ref(), &reports, &mut out)?,
        Format::Text => render_text(&reports, &mut out)?,
    }
    Ok(code)
}

/// Checks that did not pass (or could not run).
fn failing(reports: &[CheckReport]) -> usize {
    reports
        .iter()
        .flat_map(|r| r.checks.iter())
        .filter(|c| !c.passed)
        .count()
}

/// The results as JSON: the run they were recorded under, the failing
/// count, and the engine's [`CheckReport`]s as they serialize.
pub(crate) fn render_json(
    run_id: Option<&RunId>,
    reports: &[CheckReport],
    out: &mut impl Write,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        run_id: Option<&'a RunId>,
        failing: usize,
        results: &'a [CheckReport],
    }
    print_json(
        &Out {
            run_id,
            failing: failing(reports),
            results: reports,
        },
        out,
    )
}

/// One line per check with its verdict (and up to three failing rows),
/// then the failing count.
pub(crate) fn render_text(reports: &[CheckReport], out: &mut impl Write) -> std::io::Result<()> {
    if reports.is_empty() {
        return writeln!(out, "No committed asset with checks selected.");
    }
    for r in reports {
        let name = if r.partition.is_empty() {
            r.asset.clone()
        } else {
            format!("{} [{}]", r.asset, r.partition)
        };
        for c in &r.checks {
            let verdict = match (&c.error, c.passed) {
                (Some(e), _) => format!("ERROR  could not run: {e}"),
                (None, true) => "pass".to_owned(),
                (None, false) => format!(
                    "{}  {} failing row(s)",
                    if c.severity == "error" {
                        "FAIL"
                    } else {
                        "WARN"
                    },
                    c.failing_rows
                ),
            };
            writeln!(out, "  {name:<28} {:<48} {verdict}", c.name)?;
            for row in c.sample.iter().take(3).filter(|_| !c.passed) {
                writeln!(out, "      e.g. {row}")?;
            }
        }
    }
    writeln!(out, "{} failing check(s)", failing(reports))
}
