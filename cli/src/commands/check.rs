//! `cairn check`: reruns the checks of committed versions without
//! rematerializing; exit code 1 when an `error` check fails.

use std::io::Write;

use serde::Serialize;

use cairn_catalog::RunId;
use cairn_engine::{CheckReport, Workspace};

use crate::Failure;
use crate::args::{CheckArgs, Format};
use crate::commands::{command_line, print_json, wire};

/// Runs `cairn check`.
pub(crate) async fn run(ws: &Workspace, args: CheckArgs) -> Result<u8, Failure> {
    let (run_id, reports) = ws.check(&args.selection, &command_line()).await?;
    let code = u8::from(
        reports
            .iter()
            .flat_map(|r| r.checks.iter())
            .any(|c| c.blocks()),
    );
    let mut out = crate::output::stdout();
    match args.format {
        Format::Json => render_json(run_id.as_ref(), &reports, &mut out)?,
        Format::Text => render_text(&reports, &mut out)?,
    }
    out.flush()?;
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
/// count, and each asset partition's check outcomes (the CLI's
/// [`wire::CheckOutcome`]), built from the engine's [`CheckReport`]s.
pub(crate) fn render_json(
    run_id: Option<&RunId>,
    reports: &[CheckReport],
    out: &mut impl Write,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        run_id: Option<&'a str>,
        failing: usize,
        results: Vec<Report<'a>>,
    }
    #[derive(Serialize)]
    struct Report<'a> {
        asset: &'a str,
        partition: &'a str,
        checks: Vec<wire::CheckOutcome<'a>>,
    }
    print_json(
        &Out {
            run_id: run_id.map(|id| id.0.as_str()),
            failing: failing(reports),
            results: reports
                .iter()
                .map(|r| Report {
                    asset: &r.asset,
                    partition: &r.partition,
                    checks: wire::check_outcomes(&r.checks),
                })
                .collect(),
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

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_catalog::RunId;
    use cairn_engine::{CheckOutcome, CheckReport};

    use super::{render_json, render_text};
    use crate::commands::testing::{json, open, redact, rendered, runtime, shop};

    /// `cairn check` on the shop: `regions`' warning fails, the rest pass;
    /// `big_regions` has no committed version to check.
    #[test]
    fn the_shop() {
        let dir = shop();
        let ws = open(dir.path());
        let (run_id, reports) = runtime()
            .block_on(ws.check(&[], "cairn check"))
            .unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
              daily [2024-01-01]           not_null(day)                                    pass
              daily [2024-01-02]           not_null(day)                                    pass
              regions                      unique(region)                                   pass
              regions                      row_count(3, 10)                                 WARN  1 failing row(s)
                  e.g. {"row_count":2}
            1 failing check(s)
        "#]].assert_eq(&rendered(|out| render_text(&reports, out)));
        expect![[r#"
            {
              "run_id": "<run>",
              "failing": 1,
              "results": [
                {
                  "asset": "daily",
                  "partition": "2024-01-01",
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    }
                  ]
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-02",
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": true,
                      "failing_rows": 0,
                      "sample": [],
                      "error": null
                    }
                  ]
                },
                {
                  "asset": "regions",
                  "partition": "",
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
                  ]
                }
              ]
            }
        "#]]
        .assert_eq(&redact(
            &json(|out| render_json(run_id.as_ref(), &reports, out)),
            dir.path(),
        ));
    }

    /// A check that could not run, and nothing checked at all.
    #[test]
    fn a_check_that_could_not_run() {
        let reports = [CheckReport {
            asset: "daily".to_owned(),
            partition: "2024-01-02".to_owned(),
            checks: vec![CheckOutcome {
                name: "not_null(day)".to_owned(),
                severity: "error",
                passed: false,
                failing_rows: 0,
                sample: Vec::new(),
                error: Some("Schema error: No field named day".to_owned()),
            }],
        }];
        let run = RunId("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned());
        expect![[r#"
              daily [2024-01-02]           not_null(day)                                    ERROR  could not run: Schema error: No field named day
            1 failing check(s)
        "#]].assert_eq(&rendered(|out| render_text(&reports, out)));
        expect![[r#"
            {
              "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
              "failing": 1,
              "results": [
                {
                  "asset": "daily",
                  "partition": "2024-01-02",
                  "checks": [
                    {
                      "name": "not_null(day)",
                      "severity": "error",
                      "passed": false,
                      "failing_rows": 0,
                      "sample": [],
                      "error": "Schema error: No field named day"
                    }
                  ]
                }
              ]
            }
        "#]]
        .assert_eq(&json(|out| render_json(Some(&run), &reports, out)));
        expect![[r#"
            {
              "run_id": null,
              "failing": 0,
              "results": []
            }
        "#]]
        .assert_eq(&json(|out| render_json(None, &[], out)));
    }
}
