//! `cairn materialize`: brings the selected assets up to date, reporting
//! each as it finishes; with `--explain` prints the plan instead (rendered
//! by [`crate::explain`]) and runs nothing.

use std::collections::BTreeSet;
use std::io::Write;

use cairn_engine::{AssetOutcome, MaterializeOptions, RunReport, Workspace};

use crate::Failure;
use crate::args::{Format, MaterializeArgs};
use crate::commands::{command_line, default_jobs, print_json};
use crate::output::{RunProgress, duration};

/// Runs `cairn materialize`; exit code 1 when an asset failed or was
/// skipped.
pub(crate) async fn run(ws: &Workspace, args: MaterializeArgs) -> Result<u8, Failure> {
    let opts = MaterializeOptions {
        selection: args.selection,
        force: args.force,
        jobs: default_jobs(args.jobs),
        command: command_line(),
        partitions: cairn_engine::PartitionFilter::All,
        backfill: None,
    };
    if args.explain {
        let units = ws.explain(&opts)?;
        let mut out = std::io::stdout().lock();
        match args.format {
            Format::Json => crate::explain::render_json(&units, &mut out)?,
            Format::Text => crate::explain::render_text(&units, &mut out)?,
        }
        return Ok(0);
    }
    let progress = RunProgress::new(args.format == Format::Json);
    let report = ws.materialize(&opts, &progress).await;
    progress.finish();
    let report = report?;
    let code = u8::from(report.has_failures());
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&report, &mut out)?,
        Format::Text => render_text(&report, &mut out)?,
    }
    Ok(code)
}

/// The report as JSON: the engine's [`RunReport`] as it serializes.
pub(crate) fn render_json(report: &RunReport, out: &mut impl Write) -> Result<(), Failure> {
    print_json(report, out)
}

/// The summary line (the assets were listed as they finished): the run's
/// counts, or that everything was already up to date.
pub(crate) fn render_text(report: &RunReport, out: &mut impl Write) -> std::io::Result<()> {
    let Some(run_id) = &report.run_id else {
        let assets: BTreeSet<&str> = report.results.iter().map(|r| r.asset.as_str()).collect();
        let what = if assets.len() == report.results.len() {
            format!("{} asset(s) fresh", assets.len())
        } else {
            format!(
                "{} asset(s), {} partition(s), all fresh",
                assets.len(),
                report.results.len()
            )
        };
        return writeln!(
            out,
            "Everything is up to date ({what}): no DataFusion work done."
        );
    };
    let count =
        |f: fn(&AssetOutcome) -> bool| report.results.iter().filter(|r| f(&r.outcome)).count();
    writeln!(
        out,
        "run {run_id}: {} materialized, {} fresh, {} failed, {} skipped in {}",
        count(|o| matches!(o, AssetOutcome::Materialized(_))),
        count(|o| matches!(o, AssetOutcome::Fresh { .. })),
        count(|o| matches!(o, AssetOutcome::Failed { .. })),
        count(|o| matches!(o, AssetOutcome::Skipped { .. })),
        duration(report.wall)
    )
}
