//! `cairn backfill`: materializes a range (or list) of partitions under a
//! recorded backfill, or finishes one with `--resume ID`.

use std::io::Write;

use serde::Serialize;

use cairn_engine::{AssetOutcome, BackfillOptions, BackfillReport, Workspace};

use crate::Failure;
use crate::args::{BackfillArgs, Format};
use crate::commands::{command_line, default_jobs, print_json, wire};
use crate::output::{RunProgress, duration};

/// Runs `cairn backfill`; exit code 1 when a partition failed or was
/// skipped.
pub(crate) async fn run(ws: &Workspace, args: BackfillArgs) -> Result<u8, Failure> {
    let progress = RunProgress::new(args.format == Format::Json);
    let jobs = default_jobs(args.jobs);
    check_resume(&args)?;
    let report = match &args.resume {
        Some(id) => {
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
                partitions: args.partitions.as_deref().map(partition_list),
                force: args.force,
                jobs,
                command: command_line(),
            };
            ws.backfill(&opts, &progress).await
        }
    };
    progress.finish();
    let report = report?;
    let memory = crate::commands::materialize::run_memory(ws, &report.run);
    print_with_memory(&report, memory, args.format)
}

/// Refuses `--resume` with anything that would plan a new backfill.
pub(crate) fn check_resume(args: &BackfillArgs) -> Result<(), Failure> {
    if args.resume.is_some()
        && (!args.selection.is_empty()
            || args.from.is_some()
            || args.to.is_some()
            || args.partitions.is_some())
    {
        return Err(Failure::Usage(
            "--resume continues a recorded backfill as planned; give no selection, --from, --to or --partitions with it".to_owned(),
        ));
    }
    Ok(())
}

/// `--partitions a, b,c` as keys.
pub(crate) fn partition_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Prints a backfill's report (its partitions were listed as they
/// finished); exit code 1 when a partition failed or was skipped.
pub(crate) fn print(report: &BackfillReport, format: Format) -> Result<u8, Failure> {
    print_with_memory(report, None, format)
}

/// [`print`], with the run's memory line under a memory limit.
fn print_with_memory(
    report: &BackfillReport,
    memory: Option<wire::RunMemory>,
    format: Format,
) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => render_json(report, memory, &mut out)?,
        Format::Text => {
            render_text(report, &mut out)?;
            if let Some(m) = &memory {
                crate::commands::materialize::render_memory_text(m, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(u8::from(report.run.has_failures()))
}

/// The report as JSON: the backfill, its counts and its run (the CLI's
/// [`wire::RunReport`]), built from the engine's [`BackfillReport`]; the
/// run has its `memory` under a memory limit.
pub(crate) fn render_json(
    report: &BackfillReport,
    memory: Option<wire::RunMemory>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        backfill_id: &'a str,
        planned: usize,
        already_done: usize,
        run: wire::RunReport<'a>,
    }
    let mut run = wire::RunReport::from(&report.run);
    run.memory = memory;
    print_json(
        &Out {
            backfill_id: &report.backfill_id.0,
            planned: report.planned,
            already_done: report.already_done,
            run,
        },
        out,
    )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::expect;

    use cairn_engine::{AssetOutcome, AssetResult, BackfillId, BackfillReport, RunId, RunReport};

    use super::{render_json, render_text};
    use crate::commands::testing::{json, rendered};

    fn result(partition: &str, outcome: AssetOutcome) -> AssetResult {
        AssetResult {
            asset: "daily".to_owned(),
            partition: partition.to_owned(),
            outcome,
        }
    }

    /// A resumed backfill whose run failed one partition, built by hand.
    fn resumed() -> BackfillReport {
        BackfillReport {
            backfill_id: BackfillId("0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b".to_owned()),
            planned: 5,
            already_done: 2,
            run: RunReport {
                run_id: Some(RunId("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned())),
                results: vec![
                    result("2024-01-03", AssetOutcome::Fresh { early_cutoff: true }),
                    result(
                        "2024-01-04",
                        AssetOutcome::Failed {
                            error: "assets/daily.sql [partition 2024-01-04]: no such file"
                                .to_owned(),
                            checks: Vec::new(),
                        },
                    ),
                    result(
                        "2024-01-05",
                        AssetOutcome::Skipped {
                            upstream: "sales".to_owned(),
                        },
                    ),
                ],
                wall: Duration::new(1, 5),
            },
        }
    }

    #[test]
    fn text_of_a_resumed_backfill() {
        expect![[r#"
            backfill 0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b: 5 partition(s) planned, 2 already done before, 0 materialized, 1 fresh, 1 failed, 1 skipped in 1.0 s
            resume with: cairn backfill --resume 0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b
        "#]].assert_eq(&rendered(|out| render_text(&resumed(), out)));
    }

    /// The JSON: the backfill's id and counts, then its run as
    /// `materialize` reports one.
    #[test]
    fn json_of_a_resumed_backfill() {
        expect![[r#"
            {
              "backfill_id": "0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b",
              "planned": 5,
              "already_done": 2,
              "run": {
                "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                "results": [
                  {
                    "asset": "daily",
                    "partition": "2024-01-03",
                    "outcome": "fresh",
                    "early_cutoff": true
                  },
                  {
                    "asset": "daily",
                    "partition": "2024-01-04",
                    "outcome": "failed",
                    "error": "assets/daily.sql [partition 2024-01-04]: no such file"
                  },
                  {
                    "asset": "daily",
                    "partition": "2024-01-05",
                    "outcome": "skipped",
                    "upstream": "sales"
                  }
                ],
                "wall": {
                  "secs": 1,
                  "nanos": 5
                }
              }
            }
        "#]]
        .assert_eq(&json(|out| render_json(&resumed(), None, out)));
    }
}
