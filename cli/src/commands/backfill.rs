//! `cairn backfill`: materializes a range (or list) of partitions under a
//! recorded backfill, or finishes one with `--resume ID`.

use std::io::Write;

use cairn_engine::{AssetOutcome, BackfillOptions, BackfillReport, Workspace};

use crate::Failure;
use crate::args::{BackfillArgs, Format};
use crate::commands::{command_line, default_jobs, print_json};
use crate::output::{RunProgress, duration};

/// Runs `cairn backfill`; exit code 1 when a partition failed or was
/// skipped.
pub(crate) async fn run(ws: &Workspace, args: BackfillArgs) -> Result<u8, Failure> {
    let progress = RunProgress::new(args.format == Format::Json);
    let jobs = default_jobs(args.jobs);
    let report = match &args.resume {
        Some(id) => {
            if !args.selection.is_empty()
                || args.from.is_some()
                || args.to.is_some()
                || args.partitions.is_some()
            {
                return Err(Failure::Usage(
                    "--resume continues a recorded backfill as planned; give no selection, --from, --to or --partitions with it".to_owned(),
                ));
            }
            ws.resume_backfill(
                &cairn_catalog::BackfillId(id.clone()),
                jobs,
                &command_line(),
                &progress,
            )
            .await
        }
        None => {
            let opts = BackfillOptions {
                selection: args.selection,
                from: args.from,
                to: args.to,
                partitions: args.partitions.map(|p| {
                    p.split(',')
                        .map(|k| k.trim().to_owned())
                        .filter(|k| !k.is_empty())
                        .collect()
                }),
                force: args.force,
                jobs,
                command: command_line(),
            };
            ws.backfill(&opts, &progress).await
        }
    };
    progress.finish();
    let report = report?;
    let code = u8::from(report.run.has_failures());
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&report, &mut out)?,
        Format::Text => render_text(&report, &mut out)?,
    }
    Ok(code)
}

/// The report as JSON: the engine's [`BackfillReport`] as it serializes.
pub(crate) fn render_json(report: &BackfillReport, out: &mut impl Write) -> Result<(), Failure> {
    print_json(report, out)
}

/// The summary line (the partitions were listed as they finished), and how
/// to resume when something failed.
pub(crate) fn render_text(report: &BackfillReport, out: &mut impl Write) -> std::io::Result<()> {
    let count =
        |f: fn(&AssetOutcome) -> bool| report.run.results.iter().filter(|r| f(&r.outcome)).count();
    writeln!(
        out,
        "backfill {}: {} partition(s) planned, {} already done before, {} materialized, {} fresh, {} failed, {} skipped in {}",
        report.backfill_id,
        report.planned,
        report.already_done,
        count(|o| matches!(o, AssetOutcome::Materialized(_))),
        count(|o| matches!(o, AssetOutcome::Fresh { .. })),
        count(|o| matches!(o, AssetOutcome::Failed { .. })),
        count(|o| matches!(o, AssetOutcome::Skipped { .. })),
        duration(report.run.wall)
    )?;
    if report.run.has_failures() {
        writeln!(
            out,
            "resume with: cairn backfill --resume {}",
            report.backfill_id
        )?;
    }
    Ok(())
}
