//! `cairn tick [--at T]`: one automation evaluation at an instant — what
//! every automated asset's conditions say and why, the units requested —
//! then, without a server, the requested run (and anything else queued)
//! executed in this process through the same run queue a server uses.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use cairn_engine::{
    Clock, DefinitionsCache, QueueSettings, RunQueue, RunStatus, TickReport, Workspace,
};

use crate::Failure;
use crate::args::{Format, TickArgs};
use crate::commands::{Environment, parse_instant, print_json};

/// Runs `cairn tick`.
pub(crate) async fn run(ws: &Workspace, project: &Path, args: TickArgs) -> Result<u8, Failure> {
    let at = match &args.at {
        Some(text) => parse_instant(&format!("--at `{text}`"), text).map_err(Failure::Usage)?,
        None => chrono::Utc::now(),
    };
    let env = Environment::read()?;
    let clock = args.at.is_some().then_some(Clock::Fixed(at));
    let queue = RunQueue::start(QueueSettings {
        project: project.to_path_buf(),
        max_concurrent_runs: usize::try_from(ws.project().config.server.max_concurrent_runs)
            .unwrap_or(usize::MAX),
        configure: Arc::new(move |w| {
            let w = env.apply(w);
            match clock {
                Some(c) => w.with_clock(c),
                None => w,
            }
        }),
        definitions: Arc::new(DefinitionsCache::default()),
    })
    .await?;
    let report = queue.tick(at).await?;
    queue.run_until_idle().await?;
    queue.shutdown(std::time::Duration::ZERO).await;
    let status = match &report.run_id {
        Some(id) => ws.run(id)?.map(|(r, _)| r.status),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&report, status, &mut out)?,
        Format::Text => render_text(&report, status, &mut out)?,
    }
    Ok(u8::from(matches!(
        status,
        Some(RunStatus::Failed | RunStatus::Crashed)
    )))
}

/// The tick as JSON: each condition with its reason, the units requested,
/// the run and how it ended.
pub(crate) fn render_json(
    report: &TickReport,
    status: Option<RunStatus>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Unit<'a> {
        asset: &'a str,
        partition: &'a str,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        at: String,
        conditions: &'a [cairn_engine::ConditionResult],
        requested: Vec<Unit<'a>>,
        run_id: Option<&'a str>,
        attached: bool,
        conflict: bool,
        run_status: Option<&'static str>,
    }
    print_json(
        &Out {
            at: report.at.to_rfc3339(),
            conditions: &report.conditions,
            requested: report
                .requested
                .iter()
                .map(|(a, p)| Unit {
                    asset: a,
                    partition: p,
                })
                .collect(),
            run_id: report.run_id.as_ref().map(|r| r.0.as_str()),
            attached: report.attached,
            conflict: report.conflict,
            run_status: status.map(RunStatus::as_str),
        },
        out,
    )
}

/// One line per condition (asset, condition, fired or not, why), then
/// what was requested and how its run ended.
pub(crate) fn render_text(
    report: &TickReport,
    status: Option<RunStatus>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "tick {}", report.at.to_rfc3339())?;
    if report.conflict {
        writeln!(
            out,
            "  another tick recorded this instant meanwhile: nothing done here"
        )?;
        return Ok(());
    }
    if report.conditions.is_empty() {
        writeln!(out, "  no asset has [automation]")?;
    }
    let width = report
        .conditions
        .iter()
        .map(|c| c.asset.len())
        .max()
        .unwrap_or(0);
    for c in &report.conditions {
        writeln!(
            out,
            "  {:width$}  {:18}  {:5}  {}",
            c.asset,
            c.condition,
            if c.fired { "fired" } else { "-" },
            c.reason
        )?;
    }
    match &report.run_id {
        None => writeln!(out, "nothing requested")?,
        Some(id) => {
            let units: Vec<String> = report
                .requested
                .iter()
                .map(|(a, p)| {
                    if p.is_empty() {
                        a.clone()
                    } else {
                        format!("{a}[{p}]")
                    }
                })
                .collect();
            let how = if report.attached {
                "attached to run"
            } else {
                "run"
            };
            writeln!(
                out,
                "requested {} unit(s): {}\n{how} {id}: {}",
                units.len(),
                units.join(", "),
                status.map(RunStatus::as_str).unwrap_or("queued")
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use expect_test::expect;

    use cairn_engine::{ConditionResult, RunId, RunStatus, TickReport};

    use super::{render_json, render_text};
    use crate::commands::testing::{json, rendered};

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    /// A tick at 07:00 in New York: `daily`'s cron is due and two days are stale;
    /// `report` is fresh, and its eager condition waits for its lag.
    fn report() -> TickReport {
        let condition =
            |asset: &str, condition, fired, due: Option<&str>, reason: &str| ConditionResult {
                asset: asset.to_owned(),
                condition,
                fired,
                due: due.map(at),
                reason: reason.to_owned(),
            };
        TickReport {
            at: at("2026-03-08T11:00:00Z"),
            conditions: vec![
                condition(
                    "daily",
                    "cron",
                    true,
                    Some("2026-03-08T11:00:00Z"),
                    "cron `0 7 * * *` (America/New_York) at 2026-03-08T07:00:00-04:00: 2 stale units requested",
                ),
                condition(
                    "report",
                    "on_upstream_change",
                    false,
                    None,
                    "an upstream or source changed: 1 unit(s) waiting — debounced (lag 3600s, last request at 2026-03-08T10:30:00+00:00, next at 2026-03-08T11:30:00+00:00)",
                ),
            ],
            requested: vec![
                ("daily".to_owned(), "2026-03-06".to_owned()),
                ("daily".to_owned(), "2026-03-07".to_owned()),
            ],
            run_id: Some(RunId("01a22bf0-73eb-714e-8065-df4799170bf8".to_owned())),
            attached: false,
            conflict: false,
        }
    }

    #[test]
    fn text_of_a_tick() {
        expect![[r#"
            tick 2026-03-08T11:00:00+00:00
              daily   cron                fired  cron `0 7 * * *` (America/New_York) at 2026-03-08T07:00:00-04:00: 2 stale units requested
              report  on_upstream_change  -      an upstream or source changed: 1 unit(s) waiting — debounced (lag 3600s, last request at 2026-03-08T10:30:00+00:00, next at 2026-03-08T11:30:00+00:00)
            requested 2 unit(s): daily[2026-03-06], daily[2026-03-07]
            run 01a22bf0-73eb-714e-8065-df4799170bf8: succeeded
        "#]]
        .assert_eq(&rendered(|out| render_text(&report(), Some(RunStatus::Succeeded), out)));
        let nothing = TickReport {
            conditions: Vec::new(),
            requested: Vec::new(),
            run_id: None,
            ..report()
        };
        expect![[r#"
            tick 2026-03-08T11:00:00+00:00
              no asset has [automation]
            nothing requested
        "#]]
        .assert_eq(&rendered(|out| render_text(&nothing, None, out)));
    }

    #[test]
    fn json_of_a_tick() {
        expect![[r#"
            {
              "at": "2026-03-08T11:00:00+00:00",
              "conditions": [
                {
                  "asset": "daily",
                  "condition": "cron",
                  "fired": true,
                  "due": "2026-03-08T11:00:00Z",
                  "reason": "cron `0 7 * * *` (America/New_York) at 2026-03-08T07:00:00-04:00: 2 stale units requested"
                },
                {
                  "asset": "report",
                  "condition": "on_upstream_change",
                  "fired": false,
                  "due": null,
                  "reason": "an upstream or source changed: 1 unit(s) waiting — debounced (lag 3600s, last request at 2026-03-08T10:30:00+00:00, next at 2026-03-08T11:30:00+00:00)"
                }
              ],
              "requested": [
                {
                  "asset": "daily",
                  "partition": "2026-03-06"
                },
                {
                  "asset": "daily",
                  "partition": "2026-03-07"
                }
              ],
              "run_id": "01a22bf0-73eb-714e-8065-df4799170bf8",
              "attached": false,
              "conflict": false,
              "run_status": "succeeded"
            }
        "#]].assert_eq(&json(|out| render_json(&report(), Some(RunStatus::Succeeded), out)));
    }
}
