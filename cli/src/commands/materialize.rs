//! `cairn materialize`: brings the selected assets up to date, reporting
//! each as it finishes; with `--explain` prints the plan instead (rendered
//! by [`crate::explain`]) and runs nothing.

use std::collections::BTreeSet;
use std::io::Write;

use cairn_engine::{AssetOutcome, MaterializeOptions, PlannedUnit, RunReport, Workspace};

use crate::Failure;
use crate::args::{Format, MaterializeArgs};
use crate::commands::{command_line, default_jobs, print_json, wire};
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
        return print_plan(&ws.explain(&opts)?, args.format);
    }
    let progress = RunProgress::new(args.format == Format::Json);
    let report = ws.materialize(&opts, &progress).await;
    progress.finish();
    print_local(ws, &report?, args.format)
}

/// Prints the report of a run in this process: under a memory limit, with
/// what was spilled and the process's peak resident memory.
pub(crate) fn print_local(
    ws: &Workspace,
    report: &RunReport,
    format: Format,
) -> Result<u8, Failure> {
    print_with_memory(report, run_memory(ws, report), format)
}

/// Under a memory limit, what a run in this process spilled and the
/// process's peak resident memory (for `materialize` and `backfill`).
pub(crate) fn run_memory(ws: &Workspace, report: &RunReport) -> Option<wire::RunMemory> {
    ws.memory_limit().map(|limit| wire::RunMemory {
        limit_bytes: limit,
        spilled_bytes: spilled(report),
        peak_rss_bytes: crate::output::peak_rss_bytes(),
    })
}

/// `memory: limit 512 MB, spilled 1.2 GiB, peak resident 601.3 MiB`.
pub(crate) fn render_memory_text(
    memory: &wire::RunMemory,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "memory: limit {}, spilled {}, peak resident {}",
        crate::output::size_as_written(memory.limit_bytes),
        crate::output::bytes(memory.spilled_bytes),
        memory
            .peak_rss_bytes
            .map_or_else(|| "unknown".to_owned(), crate::output::bytes)
    )
}

/// Bytes spilled to disk by every unit of the run.
fn spilled(report: &RunReport) -> u64 {
    report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            AssetOutcome::Materialized(m) => Some(m.metrics.spilled_bytes),
            _ => None,
        })
        .sum()
}

/// Prints the plan of `cairn materialize --explain` (locally or through a
/// server).
pub(crate) fn print_plan(units: &[PlannedUnit], format: Format) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => crate::explain::render_json(units, &mut out)?,
        Format::Text => crate::explain::render_text(units, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// Prints a run's report (its units were listed as they finished); exit
/// code 1 when an asset failed or was skipped.
pub(crate) fn print(report: &RunReport, format: Format) -> Result<u8, Failure> {
    print_with_memory(report, None, format)
}

/// [`print`], with the run's memory line under a memory limit.
fn print_with_memory(
    report: &RunReport,
    memory: Option<wire::RunMemory>,
    format: Format,
) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => render_json(report, memory, &mut out)?,
        Format::Text => {
            render_text(report, &mut out)?;
            if let Some(m) = &memory {
                render_memory_text(m, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(u8::from(report.has_failures()))
}

/// The report as JSON: the CLI's [`wire::RunReport`], built from the
/// engine's [`RunReport`], with the run's `memory` under a memory limit.
pub(crate) fn render_json(
    report: &RunReport,
    memory: Option<wire::RunMemory>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut wire = wire::RunReport::from(report);
    wire.memory = memory;
    print_json(&wire, out)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::expect;

    use cairn_catalog::{ColumnStats, MaterializationId, MaterializationMetrics, RunId};
    use cairn_engine::{
        AssetOutcome, AssetResult, CheckOutcome, MaterializeOptions, Materialized, NoProgress,
        PartitionFilter, RunReport,
    };

    use super::{render_json, render_text};
    use crate::commands::testing::{json, open, redact, rendered, runtime, shop};

    /// A check's outcome: passed without `sample` rows, else failed by
    /// `failing_rows` of which these are a sample.
    fn check(
        name: &str,
        severity: &'static str,
        failing_rows: u64,
        sample: Vec<serde_json::Value>,
    ) -> CheckOutcome {
        CheckOutcome {
            name: name.to_owned(),
            severity,
            passed: failing_rows == 0,
            failing_rows,
            sample,
            error: None,
        }
    }

    fn result(asset: &str, partition: &str, outcome: AssetOutcome) -> AssetResult {
        AssetResult {
            asset: asset.to_owned(),
            partition: partition.to_owned(),
            outcome,
        }
    }

    /// A run with every outcome, built by hand: a new version (with row
    /// changes, checks and metrics), one without a previous version to
    /// compare, fresh with and without early cutoff, failed with and
    /// without check results, skipped.
    fn every_outcome() -> RunReport {
        let ms = Duration::from_millis;
        let regions = Materialized {
            id: MaterializationId(14),
            rows: 2,
            bytes_written: 1_034,
            files: vec!["regions/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet".to_owned()],
            data_version: "da7a".repeat(16),
            data_changed: true,
            wall: ms(35),
            datafusion: Duration::new(0, 12_345_678),
            write: ms(3),
            hashing: Duration::from_micros(450),
            row_changes: Duration::ZERO,
            rows_added: Some(1),
            rows_removed: Some(0),
            checks: vec![
                check("unique(region)", "error", 0, Vec::new()),
                check(
                    "row_count(3, 10)",
                    "warn",
                    1,
                    vec![serde_json::json!({ "row_count": 2 })],
                ),
            ],
            metrics: MaterializationMetrics {
                rows_added: Some(1),
                rows_removed: Some(0),
                columns: vec![
                    ColumnStats {
                        name: "region".to_owned(),
                        null_count: Some(0),
                        min: Some("eu".to_owned()),
                        max: Some("us".to_owned()),
                    },
                    ColumnStats {
                        name: "amount".to_owned(),
                        null_count: None,
                        min: None,
                        max: None,
                    },
                ],
                cpu_seconds: 0.012,
                datafusion_seconds: 0.01,
                output_rows: 2,
                bytes_scanned: 96,
                spilled_bytes: 0,
                bytes_read: 5_427,
                read_requests: 13,
                objects_read: 3,
                bytes_written: 1_034,
                write_requests: 1,
                other_requests: 2,
                peak_memory_bytes: 1_048_576,
                cost_usd: 3.559_204_68e-6,
            },
            schema: None,
        };
        let first = Materialized {
            id: MaterializationId(15),
            rows: 1,
            bytes_written: 700,
            files: vec!["total/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet".to_owned()],
            data_version: "1a2b".repeat(16),
            data_changed: true,
            wall: Duration::new(2, 500_000_000),
            datafusion: ms(1_200),
            write: ms(4),
            hashing: ms(1),
            row_changes: Duration::ZERO,
            rows_added: None,
            rows_removed: None,
            checks: Vec::new(),
            metrics: MaterializationMetrics::default(),
            schema: None,
        };
        RunReport {
            run_id: Some(RunId("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned())),
            results: vec![
                result("top", "", AssetOutcome::Fresh {
                    early_cutoff: false,
                }),
                result(
                    "regions",
                    "",
                    AssetOutcome::Materialized(Box::new(regions)),
                ),
                result("total", "", AssetOutcome::Materialized(Box::new(first))),
                result("named", "", AssetOutcome::Fresh { early_cutoff: true }),
                result(
                    "daily",
                    "2024-01-03",
                    AssetOutcome::Failed {
                        error: "assets/daily.sql [partition 2024-01-03]: checks failed, output not committed: expression(amount >= 0) (2 failing rows)".to_owned(),
                        checks: vec![
                            check("not_null(day)", "error", 0, Vec::new()),
                            check(
                                "expression(amount >= 0)",
                                "error",
                                2,
                                vec![
                                    serde_json::json!({ "day": "2024-01-03", "sales": 1, "amount": -5 }),
                                    serde_json::json!({ "day": "2024-01-03", "sales": 2, "amount": -0.5 }),
                                ],
                            ),
                        ],
                    },
                ),
                result(
                    "big_regions",
                    "",
                    AssetOutcome::Failed {
                        error: "assets/big_regions.sql: Arrow error: Divide by zero error".to_owned(),
                        checks: Vec::new(),
                    },
                ),
                result(
                    "running",
                    "2024-01-03",
                    AssetOutcome::Skipped {
                        upstream: "daily".to_owned(),
                    },
                ),
            ],
            wall: Duration::new(3, 141_592_653),
        }
    }

    #[test]
    fn text_of_every_outcome() {
        expect![[r#"
            run 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b: 2 materialized, 2 fresh, 2 failed, 1 skipped in 3.1 s
        "#]].assert_eq(&rendered(|out| render_text(&every_outcome(), out)));
    }

    /// The JSON of every outcome: each result's asset and partition, then
    /// its `outcome` tag and fields; durations as seconds and nanoseconds.
    #[test]
    fn json_of_every_outcome() {
        expect![[r#"
            {
              "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
              "results": [
                {
                  "asset": "top",
                  "partition": "",
                  "outcome": "fresh",
                  "early_cutoff": false
                },
                {
                  "asset": "regions",
                  "partition": "",
                  "outcome": "materialized",
                  "id": 14,
                  "rows": 2,
                  "bytes_written": 1034,
                  "files": [
                    "regions/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
                  ],
                  "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 12345678
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 450000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 0
                  },
                  "rows_added": 1,
                  "rows_removed": 0,
                  "checks": [
                    {
                      "name": "unique(region)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    },
                    {
                      "name": "row_count(3, 10)",
                      "severity": "warn",
                      "passed": false,
                      "failing_rows": 1,
                      "sample": [
                        {
                          "row_count": 2
                        }
                      ],
                      "error": null
                    }
                  ],
                  "metrics": {
                    "rows_added": 1,
                    "rows_removed": 0,
                    "columns": [
                      {
                        "name": "region",
                        "null_count": 0,
                        "min": "eu",
                        "max": "us"
                      },
                      {
                        "name": "amount",
                        "null_count": null,
                        "min": null,
                        "max": null
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.01,
                    "output_rows": 2,
                    "bytes_scanned": 96,
                    "spilled_bytes": 0,
                    "bytes_read": 5427,
                    "read_requests": 13,
                    "objects_read": 3,
                    "bytes_written": 1034,
                    "write_requests": 1,
                    "other_requests": 2,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 3.55920468e-6
                  }
                },
                {
                  "asset": "total",
                  "partition": "",
                  "outcome": "materialized",
                  "id": 15,
                  "rows": 1,
                  "bytes_written": 700,
                  "files": [
                    "total/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
                  ],
                  "data_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                  "data_changed": true,
                  "wall": {
                    "secs": 2,
                    "nanos": 500000000
                  },
                  "datafusion": {
                    "secs": 1,
                    "nanos": 200000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 4000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 0
                  },
                  "rows_added": null,
                  "rows_removed": null,
                  "checks": [],
                  "metrics": {
                    "rows_added": null,
                    "rows_removed": null,
                    "columns": [],
                    "cpu_seconds": 0.0,
                    "datafusion_seconds": 0.0,
                    "output_rows": 0,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 0,
                    "read_requests": 0,
                    "objects_read": 0,
                    "bytes_written": 0,
                    "write_requests": 0,
                    "other_requests": 0,
                    "peak_memory_bytes": 0,
                    "cost_usd": 0.0
                  }
                },
                {
                  "asset": "named",
                  "partition": "",
                  "outcome": "fresh",
                  "early_cutoff": true
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-03",
                  "outcome": "failed",
                  "error": "assets/daily.sql [partition 2024-01-03]: checks failed, output not committed: expression(amount >= 0) (2 failing rows)",
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    },
                    {
                      "name": "expression(amount >= 0)",
                      "severity": "error",
                      "passed": false,
                      "failing_rows": 2,
                      "sample": [
                        {
                          "amount": -5,
                          "day": "2024-01-03",
                          "sales": 1
                        },
                        {
                          "amount": -0.5,
                          "day": "2024-01-03",
                          "sales": 2
                        }
                      ],
                      "error": null
                    }
                  ]
                },
                {
                  "asset": "big_regions",
                  "partition": "",
                  "outcome": "failed",
                  "error": "assets/big_regions.sql: Arrow error: Divide by zero error"
                },
                {
                  "asset": "running",
                  "partition": "2024-01-03",
                  "outcome": "skipped",
                  "upstream": "daily"
                }
              ],
              "wall": {
                "secs": 3,
                "nanos": 141592653
              }
            }
        "#]].assert_eq(&json(|out| render_json(&every_outcome(), None, out)));
    }

    /// Nothing was stale: no run, every asset fresh.
    #[test]
    fn json_when_everything_is_fresh() {
        let report = RunReport {
            run_id: None,
            results: vec![result(
                "named",
                "",
                AssetOutcome::Fresh {
                    early_cutoff: false,
                },
            )],
            wall: Duration::from_micros(1_500),
        };
        expect![[r#"
            Everything is up to date (1 asset(s) fresh): no DataFusion work done.
        "#]]
        .assert_eq(&rendered(|out| render_text(&report, out)));
        expect![[r#"
            {
              "run_id": null,
              "results": [
                {
                  "asset": "named",
                  "partition": "",
                  "outcome": "fresh",
                  "early_cutoff": false
                }
              ],
              "wall": {
                "secs": 0,
                "nanos": 1500000
              }
            }
        "#]]
        .assert_eq(&json(|out| render_json(&report, None, out)));
    }

    /// What a run measures varies from run to run (times, CPU, memory, the
    /// cost computed from them): fixed here.
    fn measured_fixed(report: &mut RunReport) {
        report.wall = Duration::from_millis(250);
        for r in &mut report.results {
            if let AssetOutcome::Materialized(m) = &mut r.outcome {
                m.wall = Duration::from_millis(35);
                m.datafusion = Duration::from_millis(20);
                m.write = Duration::from_millis(3);
                m.hashing = Duration::from_millis(1);
                m.row_changes = Duration::from_millis(2);
                m.metrics.cpu_seconds = 0.012;
                m.metrics.datafusion_seconds = 0.02;
                m.metrics.peak_memory_bytes = 1_048_576;
                m.metrics.cost_usd = 0.000_004;
            }
        }
    }

    /// The shop brought up to date for real: the edited and the missing
    /// partitions built, `big_regions` failing its check again, the rest
    /// fresh.
    #[test]
    fn json_of_a_real_run() {
        let dir = shop();
        let ws = open(dir.path());
        let options = MaterializeOptions {
            selection: Vec::new(),
            force: false,
            jobs: 1,
            command: "cairn materialize".to_owned(),
            partitions: PartitionFilter::All,
            backfill: None,
        };
        let mut report = runtime()
            .block_on(ws.materialize(&options, &NoProgress))
            .unwrap_or_else(|e| panic!("{e}"));
        measured_fixed(&mut report);
        expect![[r#"
            {
              "run_id": "<run>",
              "results": [
                {
                  "asset": "named",
                  "partition": "",
                  "outcome": "fresh",
                  "early_cutoff": false
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-01",
                  "outcome": "fresh",
                  "early_cutoff": false
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-02",
                  "outcome": "materialized",
                  "id": 8,
                  "rows": 1,
                  "bytes_written": 1000,
                  "files": [
                    "daily/date=2024-01-02/<run>-00000.parquet"
                  ],
                  "data_version": "2353c27253b84e3ed8e5d92c03935c489f4e8348350c7072f7c7b567d21ddfc9",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": 1,
                  "rows_removed": 1,
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    }
                  ],
                  "metrics": {
                    "rows_added": 1,
                    "rows_removed": 1,
                    "columns": [
                      {
                        "name": "day",
                        "null_count": 0,
                        "min": "2024-01-02",
                        "max": "2024-01-02"
                      },
                      {
                        "name": "sales",
                        "null_count": 0,
                        "min": "2",
                        "max": "2"
                      },
                      {
                        "name": "amount",
                        "null_count": 0,
                        "min": "50",
                        "max": "50"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 1,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 1929,
                    "read_requests": 8,
                    "objects_read": 1,
                    "bytes_written": 1000,
                    "write_requests": 1,
                    "other_requests": 3,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-03",
                  "outcome": "materialized",
                  "id": 9,
                  "rows": 1,
                  "bytes_written": 1000,
                  "files": [
                    "daily/date=2024-01-03/<run>-00000.parquet"
                  ],
                  "data_version": "abce45f1782ff1b1e612970c474ef3e337bc8a92db875e751386b30d39523538",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": null,
                  "rows_removed": null,
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    }
                  ],
                  "metrics": {
                    "rows_added": null,
                    "rows_removed": null,
                    "columns": [
                      {
                        "name": "day",
                        "null_count": 0,
                        "min": "2024-01-03",
                        "max": "2024-01-03"
                      },
                      {
                        "name": "sales",
                        "null_count": 0,
                        "min": "1",
                        "max": "1"
                      },
                      {
                        "name": "amount",
                        "null_count": 0,
                        "min": "300",
                        "max": "300"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 1,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 1042,
                    "read_requests": 3,
                    "objects_read": 1,
                    "bytes_written": 1000,
                    "write_requests": 1,
                    "other_requests": 3,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "regions",
                  "partition": "",
                  "outcome": "materialized",
                  "id": 10,
                  "rows": 2,
                  "bytes_written": 1066,
                  "files": [
                    "regions/<run>-00000.parquet"
                  ],
                  "data_version": "937773126b8e676480bb17ad7518dce59a52b8986d748794891237b4101cacf7",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": 1,
                  "rows_removed": 1,
                  "checks": [
                    {
                      "name": "unique(region)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    },
                    {
                      "name": "row_count(3, 10)",
                      "severity": "warn",
                      "passed": false,
                      "failing_rows": 1,
                      "sample": [
                        {
                          "row_count": 2
                        }
                      ],
                      "error": null
                    }
                  ],
                  "metrics": {
                    "rows_added": 1,
                    "rows_removed": 1,
                    "columns": [
                      {
                        "name": "region",
                        "null_count": 0,
                        "min": "eu",
                        "max": "us"
                      },
                      {
                        "name": "amount",
                        "null_count": 0,
                        "min": "165",
                        "max": "385"
                      },
                      {
                        "name": "sales",
                        "null_count": 0,
                        "min": "2",
                        "max": "3"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 2,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 2095,
                    "read_requests": 10,
                    "objects_read": 3,
                    "bytes_written": 1066,
                    "write_requests": 1,
                    "other_requests": 8,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "big_regions",
                  "partition": "",
                  "outcome": "failed",
                  "error": "assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)",
                  "checks": [
                    {
                      "name": "expression(amount < 100)",
                      "severity": "error",
                      "passed": false,
                      "failing_rows": 2,
                      "sample": [
                        {
                          "amount": 165,
                          "region": "eu"
                        },
                        {
                          "amount": 385,
                          "region": "us"
                        }
                      ],
                      "error": null
                    }
                  ]
                },
                {
                  "asset": "running",
                  "partition": "2024-01-01",
                  "outcome": "fresh",
                  "early_cutoff": false
                },
                {
                  "asset": "running",
                  "partition": "2024-01-02",
                  "outcome": "materialized",
                  "id": 11,
                  "rows": 1,
                  "bytes_written": 722,
                  "files": [
                    "running/date=2024-01-02/<run>-00000.parquet"
                  ],
                  "data_version": "c14014407b90736dbacc7facbbad9f0327e5858edcee19bc25865c3b90e0fe33",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": 1,
                  "rows_removed": 1,
                  "checks": [],
                  "metrics": {
                    "rows_added": 1,
                    "rows_removed": 1,
                    "columns": [
                      {
                        "name": "day",
                        "null_count": 0,
                        "min": "2024-01-02",
                        "max": "2024-01-02"
                      },
                      {
                        "name": "total",
                        "null_count": 0,
                        "min": "250",
                        "max": "250"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 0,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 3087,
                    "read_requests": 7,
                    "objects_read": 2,
                    "bytes_written": 722,
                    "write_requests": 1,
                    "other_requests": 1,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "running",
                  "partition": "2024-01-03",
                  "outcome": "materialized",
                  "id": 12,
                  "rows": 1,
                  "bytes_written": 722,
                  "files": [
                    "running/date=2024-01-03/<run>-00000.parquet"
                  ],
                  "data_version": "90b67646d1e83f05f2dc02bef8161d40925edc793975eadbfc7a9f12328f1f84",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": null,
                  "rows_removed": null,
                  "checks": [],
                  "metrics": {
                    "rows_added": null,
                    "rows_removed": null,
                    "columns": [
                      {
                        "name": "day",
                        "null_count": 0,
                        "min": "2024-01-03",
                        "max": "2024-01-03"
                      },
                      {
                        "name": "total",
                        "null_count": 0,
                        "min": "550",
                        "max": "550"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 0,
                    "bytes_scanned": 0,
                    "spilled_bytes": 0,
                    "bytes_read": 2444,
                    "read_requests": 3,
                    "objects_read": 2,
                    "bytes_written": 722,
                    "write_requests": 1,
                    "other_requests": 1,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "top",
                  "partition": "",
                  "outcome": "materialized",
                  "id": 13,
                  "rows": 1,
                  "bytes_written": 433,
                  "files": [
                    "top/<run>-00000.parquet"
                  ],
                  "data_version": "61d42e5f90bdf77164de7353d305a8f032176915353a1318fe9c66326d9df595",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": null,
                  "rows_removed": null,
                  "checks": [],
                  "metrics": {
                    "rows_added": null,
                    "rows_removed": null,
                    "columns": [
                      {
                        "name": "region",
                        "null_count": 0,
                        "min": "us",
                        "max": "us"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 1,
                    "bytes_scanned": 116,
                    "spilled_bytes": 0,
                    "bytes_read": 1615,
                    "read_requests": 4,
                    "objects_read": 1,
                    "bytes_written": 433,
                    "write_requests": 1,
                    "other_requests": 4,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                },
                {
                  "asset": "total",
                  "partition": "",
                  "outcome": "materialized",
                  "id": 14,
                  "rows": 1,
                  "bytes_written": 484,
                  "files": [
                    "total/<run>-00000.parquet"
                  ],
                  "data_version": "4cca813eb5f7a9e5a89fcee3cacfc0b9ade4d61fdd671e56e0483f817e6f3c86",
                  "data_changed": true,
                  "wall": {
                    "secs": 0,
                    "nanos": 35000000
                  },
                  "datafusion": {
                    "secs": 0,
                    "nanos": 20000000
                  },
                  "write": {
                    "secs": 0,
                    "nanos": 3000000
                  },
                  "hashing": {
                    "secs": 0,
                    "nanos": 1000000
                  },
                  "row_changes": {
                    "secs": 0,
                    "nanos": 2000000
                  },
                  "rows_added": 1,
                  "rows_removed": 1,
                  "checks": [],
                  "metrics": {
                    "rows_added": 1,
                    "rows_removed": 1,
                    "columns": [
                      {
                        "name": "amount",
                        "null_count": 0,
                        "min": "550",
                        "max": "550"
                      }
                    ],
                    "cpu_seconds": 0.012,
                    "datafusion_seconds": 0.02,
                    "output_rows": 1,
                    "bytes_scanned": 60,
                    "spilled_bytes": 0,
                    "bytes_read": 2045,
                    "read_requests": 6,
                    "objects_read": 1,
                    "bytes_written": 484,
                    "write_requests": 1,
                    "other_requests": 4,
                    "peak_memory_bytes": 1048576,
                    "cost_usd": 4e-6
                  }
                }
              ],
              "wall": {
                "secs": 0,
                "nanos": 250000000
              }
            }
        "#]].assert_eq(&redact(
            &json(|out| render_json(&report, None, out)),
            dir.path(),
        ));
    }
}
