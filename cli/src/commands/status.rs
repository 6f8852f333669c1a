//! `cairn status`: which assets are fresh, stale (and why), failed or never
//! materialized, and where each stands against its freshness SLA, as a
//! table or JSON; `--check` makes it a freshness gate.

use std::io::Write;

use serde::Serialize;

use cairn_engine::{AssetState, AssetStatus, StaleCause, Workspace};

use crate::Failure;
use crate::args::{Format, StatusArgs};
use crate::commands::{print_json, wire};

/// Runs `cairn status`; exit code 1 with `--check` when anything selected
/// fails it ([`AssetStatus::fails_check`]: a failed run, a failing check,
/// a failed SLA, or without an SLA anything not fresh).
pub(crate) fn run(ws: &Workspace, args: StatusArgs) -> Result<u8, Failure> {
    let code = print(ws.status(&args.selection)?, &args)?;
    if args.format == Format::Text {
        crate::commands::alerts::undelivered_line(ws, &mut std::io::stdout().lock())?;
    }
    Ok(code)
}

/// Prints the statuses of `cairn status` (locally or through a server)
/// as `args` asks; the exit code.
pub(crate) fn print(mut statuses: Vec<AssetStatus>, args: &StatusArgs) -> Result<u8, Failure> {
    let code = u8::from(args.check && statuses.iter().any(AssetStatus::fails_check));
    if !args.partitions {
        summaries_only(&mut statuses);
    }
    let mut out = crate::output::stdout();
    match args.format {
        Format::Json => render_json(&statuses, &mut out)?,
        Format::Text => render_text(&statuses, &mut out)?,
    }
    out.flush()?;
    Ok(code)
}

/// Drops the partition lists (the default without `--partitions`): the
/// counts stay.
fn summaries_only(statuses: &mut [AssetStatus]) {
    for s in statuses {
        if let Some(p) = &mut s.partitions {
            p.list.clear();
        }
    }
}

/// A row's causes for the DETAIL column; "never materialized" is left out
/// where the STATE column already says it.
fn causes_text(state: AssetState, causes: &[StaleCause]) -> Vec<String> {
    causes
        .iter()
        .filter(|c| {
            !(state == AssetState::NeverMaterialized && matches!(c, StaleCause::NeverMaterialized))
        })
        .map(ToString::to_string)
        .collect()
}

/// The statuses as JSON: counts, then each asset's status (the CLI's
/// [`wire::AssetStatus`], built from the engine's [`AssetStatus`]).
pub(crate) fn render_json(statuses: &[AssetStatus], out: &mut impl Write) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        fresh: usize,
        not_fresh: usize,
        failing_checks: usize,
        /// Units (partitions, or unpartitioned assets) past `fail_after`.
        sla_failed: usize,
        /// Units past only `warn_after`.
        sla_warn: usize,
        assets: Vec<wire::AssetStatus<'a>>,
    }
    let not_fresh = not_fresh(statuses);
    let (sla_failed, sla_warn) = sla_counts(statuses);
    print_json(
        &Out {
            fresh: statuses.len() - not_fresh,
            not_fresh,
            failing_checks: statuses.iter().map(|s| s.failing_checks.len()).sum(),
            sla_failed,
            sla_warn,
            assets: statuses.iter().map(wire::AssetStatus::from).collect(),
        },
        out,
    )
}

/// Units past `fail_after`, and past only `warn_after`, over `statuses`.
fn sla_counts(statuses: &[AssetStatus]) -> (usize, usize) {
    statuses
        .iter()
        .map(AssetStatus::sla_counts)
        .fold((0, 0), |(f, w), (sf, sw)| (f + sf, w + sw))
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
                let mut detail = causes_text(s.state, &s.causes);
                if let Some(f) = &s.last_failure {
                    let current = s.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                for c in &s.failing_checks {
                    detail.push(format!("check failing: {c}"));
                }
                for c in &s.warning_checks {
                    detail.push(format!("check warning: {c}"));
                }
                detail.extend(s.sla_verdict());
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
                    if !s.warning_checks.is_empty() {
                        d.push_str(&format!(
                            "; checks warning: {}",
                            s.warning_checks.join(", ")
                        ));
                    }
                    if let Some(v) = s.sla_verdict() {
                        d.push_str(&format!("; {v}"));
                    }
                    d
                })
            }
        };
        let line = format!(
            "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
            s.name,
            s.state.as_str(),
            when,
            rows,
            detail
        );
        writeln!(out, "{}", line.trim_end())?;
        if let Some(p) = &s.partitions {
            for u in &p.list {
                let mut detail = causes_text(u.state, &u.causes);
                if let Some(f) = &u.last_failure {
                    let current = u.current.as_ref().map(|c| c.committed_at);
                    detail.insert(0, failure_text(f, current));
                }
                if let (Some(r), Some(sla)) = (&u.sla, &s.freshness) {
                    detail.extend(r.verdict("", sla));
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
                let line = format!(
                    "{:<width$}  {:<18}  {:<19}  {:>10}  {}",
                    format!("  {}", u.key),
                    u.state.as_str(),
                    when,
                    rows,
                    detail.join("; ")
                );
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    let (sla_failed, sla_warn) = sla_counts(statuses);
    let sla = if sla_failed + sla_warn > 0 {
        format!("; SLA: {sla_failed} failed, {sla_warn} warn")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} fresh, {} not fresh{sla}",
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use expect_test::expect;

    use cairn_assets::FreshnessSla;
    use cairn_catalog::{AttemptOutcome, AttemptRecord, CurrentVersion, MaterializationId, RunId};
    use cairn_engine::{
        AssetState, AssetStatus, Health, OverduePartition, PartitionSummary, SlaBasis, SlaLevel,
        SlaReading, StaleCause,
    };

    use super::{render_json, render_text, summaries_only};
    use crate::commands::testing::{json, open, redact, rendered, shop, wall_fixed};

    const RUN: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_utc()
    }

    fn status(name: &str, state: AssetState, causes: Vec<StaleCause>) -> AssetStatus {
        AssetStatus {
            name: name.to_owned(),
            state,
            causes,
            code_version: "c0de".repeat(16),
            input_version: None,
            current: None,
            last_failure: None,
            partitions: None,
            failing_checks: Vec::new(),
            warning_checks: Vec::new(),
            health: match state {
                AssetState::Failed => Health::FailedRun,
                _ => Health::Ok,
            },
            freshness: None,
            sla: None,
        }
    }

    fn hours(h: u64) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(h * 3_600))
    }

    fn committed(asset: &str, id: i64, rows: u64, time: &str) -> Option<CurrentVersion> {
        Some(CurrentVersion {
            id: MaterializationId(id),
            run_id: RunId(RUN.to_owned()),
            asset: asset.to_owned(),
            partition: String::new(),
            code_version: "c0de".repeat(16),
            input_version: "1a2b".repeat(16),
            data_version: "da7a".repeat(16),
            row_count: rows,
            bytes_written: 7_680,
            wall_ms: 35,
            committed_at: at(time),
        })
    }

    fn failure(asset: &str, error: &str, time: &str) -> Option<AttemptRecord> {
        Some(AttemptRecord {
            run_id: RunId(RUN.to_owned()),
            asset: asset.to_owned(),
            partition: String::new(),
            outcome: AttemptOutcome::Failed,
            error: Some(error.to_owned()),
            at: at(time),
        })
    }

    /// Every state an asset can be in, built by hand (exact times keep the
    /// columns aligned in the snapshot).
    fn every_state() -> [AssetStatus; 11] {
        let customers = AssetStatus {
            current: committed("customers", 12, 100, "2024-05-01T09:30:00Z"),
            ..status("customers", AssetState::Fresh, vec![])
        };
        let stg_customers = AssetStatus {
            current: committed("stg_customers", 3, 100, "2024-05-01T09:29:58Z"),
            failing_checks: vec!["not_null(email)".to_owned()],
            health: Health::FailingCheck,
            ..status("stg_customers", AssetState::Fresh, vec![])
        };
        let orders = AssetStatus {
            current: committed("orders", 13, 99, "2024-05-01T09:30:01Z"),
            ..status(
                "orders",
                AssetState::Stale,
                vec![
                    StaleCause::CodeChanged,
                    StaleCause::SourceChanged {
                        name: "raw_orders".to_owned(),
                    },
                ],
            )
        };
        let monthly_revenue = AssetStatus {
            current: committed("monthly_revenue", 14, 4, "2024-05-01T09:30:02Z"),
            ..status(
                "monthly_revenue",
                AssetState::Stale,
                vec![StaleCause::UpstreamStale {
                    name: "orders".to_owned(),
                }],
            )
        };
        let payments = AssetStatus {
            current: committed("payments", 9, 113, "2024-04-30T18:00:00Z"),
            last_failure: failure(
                "payments",
                "check failed, previous version kept: unique(payment_id) (2 failing rows)",
                "2024-05-01T09:30:03Z",
            ),
            ..status("payments", AssetState::Failed, vec![])
        };
        let refunds = AssetStatus {
            last_failure: failure(
                "refunds",
                "Arrow error: Divide by zero error",
                "2024-05-01T09:30:04Z",
            ),
            ..status(
                "refunds",
                AssetState::Failed,
                vec![StaleCause::NeverMaterialized],
            )
        };
        let churn = status(
            "churn",
            AssetState::NeverMaterialized,
            vec![
                StaleCause::NeverMaterialized,
                StaleCause::UpstreamNeverMaterialized {
                    name: "refunds".to_owned(),
                },
            ],
        );
        let daily_sales = AssetStatus {
            partitions: Some(PartitionSummary {
                total: 31,
                fresh: 28,
                stale: 1,
                missing: 2,
                failed: 0,
                rows: 28,
                last_committed_at: Some(at("2024-05-01T09:31:00Z")),
                stale_causes: vec!["source sales changed".to_owned()],
                sla_warn: 0,
                sla_failed: 0,
                most_overdue: None,
                list: Vec::new(),
            }),
            failing_checks: vec!["not_null(day) [2024-01-03]".to_owned()],
            health: Health::FailingCheck,
            ..status(
                "daily_sales",
                AssetState::Stale,
                vec![
                    StaleCause::SourceChanged {
                        name: "sales".to_owned(),
                    },
                    StaleCause::NeverMaterialized,
                ],
            )
        };
        let rolling_7d = AssetStatus {
            partitions: Some(PartitionSummary {
                total: 31,
                fresh: 0,
                stale: 0,
                missing: 31,
                failed: 0,
                rows: 0,
                last_committed_at: None,
                stale_causes: Vec::new(),
                sla_warn: 0,
                sla_failed: 0,
                most_overdue: None,
                list: Vec::new(),
            }),
            ..status(
                "rolling_7d",
                AssetState::NeverMaterialized,
                vec![StaleCause::NeverMaterialized],
            )
        };
        // Past its SLA: two days late, the older by 7 h.
        let late_days = AssetStatus {
            partitions: Some(PartitionSummary {
                total: 5,
                fresh: 3,
                stale: 0,
                missing: 2,
                failed: 0,
                rows: 3,
                last_committed_at: Some(at("2024-01-05T12:00:00Z")),
                stale_causes: Vec::new(),
                sla_warn: 1,
                sla_failed: 1,
                most_overdue: Some(OverduePartition {
                    key: "2024-01-05".to_owned(),
                    sla: SlaReading {
                        level: SlaLevel::Failed,
                        basis: SlaBasis::NotBuilt,
                        since: Some(at("2024-01-06T00:00:00Z")),
                        age_secs: Some(7 * 3_600),
                    },
                }),
                list: Vec::new(),
            }),
            health: Health::SlaFailed,
            freshness: Some(FreshnessSla {
                warn_after: hours(2),
                fail_after: hours(6),
            }),
            ..status(
                "late_days",
                AssetState::Stale,
                vec![StaleCause::NeverMaterialized],
            )
        };
        // Stale past warn_after, within fail_after.
        let lookup = AssetStatus {
            current: committed("lookup", 15, 8, "2024-05-01T06:00:00Z"),
            health: Health::Warn,
            freshness: Some(FreshnessSla {
                warn_after: hours(1),
                fail_after: hours(24),
            }),
            sla: Some(SlaReading {
                level: SlaLevel::Warn,
                basis: SlaBasis::Stale,
                since: Some(at("2024-05-01T07:00:00Z")),
                age_secs: Some(3 * 3_600),
            }),
            ..status(
                "lookup",
                AssetState::Stale,
                vec![StaleCause::SourceChanged {
                    name: "raw_lookup".to_owned(),
                }],
            )
        };
        [
            customers,
            stg_customers,
            orders,
            monthly_revenue,
            payments,
            refunds,
            churn,
            daily_sales,
            rolling_7d,
            late_days,
            lookup,
        ]
    }

    #[test]
    fn table_of_every_state() {
        let statuses = every_state();
        expect![[r#"
            ASSET            STATE               LAST MATERIALIZED          ROWS  DETAIL
            customers        fresh               2024-05-01 09:30:00         100
            stg_customers    fresh               2024-05-01 09:29:58         100  check failing: not_null(email)
            orders           stale               2024-05-01 09:30:01          99  code changed; source raw_orders changed
            monthly_revenue  stale               2024-05-01 09:30:02           4  upstream orders is stale
            payments         failed              2024-04-30 18:00:00         113  the last attempt (2024-05-01 09:30:03) failed its checks and was not committed: unique(payment_id) (2 failing rows); the current version (committed 2024-04-30 18:00:00) passed its checks and stays current
            refunds          failed              -                             -  the last attempt (2024-05-01 09:30:04) failed: Arrow error: Divide by zero error; never materialized
            churn            never materialized  -                             -  upstream refunds never materialized
            daily_sales      stale               2024-05-01 09:31:00          28  31 partitions: 28 fresh, 1 stale: source sales changed, 2 missing; checks failing: not_null(day) [2024-01-03]
            rolling_7d       never materialized  -                             -  31 partitions: 0 fresh, 31 missing
            late_days        stale               2024-01-05 12:00:00           3  5 partitions: 3 fresh, 2 missing; sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h)
            lookup           stale               2024-05-01 06:00:00           8  source raw_lookup changed; sla warn: stale for 3h (warn_after 1h)
            2 fresh, 9 not fresh; SLA: 1 failed, 2 warn
        "#]]
        .assert_eq(&rendered(|out| render_text(&statuses, out)));
    }

    #[test]
    fn nothing_selected() {
        expect![[r#"
            ASSET  STATE               LAST MATERIALIZED          ROWS  DETAIL
            0 fresh, 0 not fresh
        "#]]
        .assert_eq(&rendered(|out| render_text(&[], out)));
    }

    /// A real project after a partial run and edits: fresh, stale with
    /// causes, failed, never materialized, partitioned (summaries, then
    /// every partition as `--partitions` lists them).
    #[test]
    fn a_real_project_after_edits() {
        let dir = shop();
        let ws = open(dir.path());
        let mut statuses = ws.status(&[]).unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            ASSET         STATE               LAST MATERIALIZED          ROWS  DETAIL
            named         fresh               <time>           2
            daily         stale               <time>           2  3 partitions: 1 fresh, 1 stale: source sales changed, 1 missing
              2024-01-01  fresh               <time>           1
              2024-01-02  stale               <time>           1  source sales changed
              2024-01-03  never materialized  -                             -
            regions       stale               <time>           2  code changed; source sales changed; check warning: row_count(3, 10)
            big_regions   failed              -                             -  the last attempt (<time>) failed its checks and was not committed: expression(amount < 100) (2 failing rows); no version is committed yet; never materialized; upstream regions is stale
            running       stale               <time>           2  3 partitions: 1 fresh, 1 stale: upstream daily is stale, 1 missing
              2024-01-01  fresh               <time>           1
              2024-01-02  stale               <time>           1  upstream daily is stale
              2024-01-03  never materialized  -                             -  upstream daily never materialized; an earlier partition is stale
            top           never materialized  -                             -  upstream regions is stale
            total         stale               <time>           1  upstream regions is stale
            1 fresh, 6 not fresh
        "#]]
        .assert_eq(&redact(
            &rendered(|out| render_text(&statuses, out)),
            dir.path(),
        ));
        summaries_only(&mut statuses);
        expect![[r#"
            ASSET        STATE               LAST MATERIALIZED          ROWS  DETAIL
            named        fresh               <time>           2
            daily        stale               <time>           2  3 partitions: 1 fresh, 1 stale: source sales changed, 1 missing
            regions      stale               <time>           2  code changed; source sales changed; check warning: row_count(3, 10)
            big_regions  failed              -                             -  the last attempt (<time>) failed its checks and was not committed: expression(amount < 100) (2 failing rows); no version is committed yet; never materialized; upstream regions is stale
            running      stale               <time>           2  3 partitions: 1 fresh, 1 stale: upstream daily is stale, 1 missing
            top          never materialized  -                             -  upstream regions is stale
            total        stale               <time>           1  upstream regions is stale
            1 fresh, 6 not fresh
        "#]]
        .assert_eq(&redact(
            &rendered(|out| render_text(&statuses, out)),
            dir.path(),
        ));
    }

    /// The JSON of every state: the counts, then each asset with its
    /// causes (tagged by `cause`), current version, last failure,
    /// partition counts and failing checks.
    #[test]
    fn json_of_every_state() {
        expect![[r#"
            {
              "fresh": 2,
              "not_fresh": 9,
              "failing_checks": 2,
              "sla_failed": 1,
              "sla_warn": 2,
              "assets": [
                {
                  "name": "customers",
                  "state": "fresh",
                  "causes": [],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 12,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "customers",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 100,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-05-01T09:30:00Z"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "stg_customers",
                  "state": "fresh",
                  "causes": [],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 3,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "stg_customers",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 100,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-05-01T09:29:58Z"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [
                    "not_null(email)"
                  ],
                  "health": "failing_check",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "orders",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "code_changed"
                    },
                    {
                      "cause": "source_changed",
                      "name": "raw_orders"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 13,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "orders",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 99,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-05-01T09:30:01Z"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "monthly_revenue",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "orders"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 14,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "monthly_revenue",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 4,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-05-01T09:30:02Z"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "payments",
                  "state": "failed",
                  "causes": [],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 9,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "payments",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 113,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-04-30T18:00:00Z"
                  },
                  "last_failure": {
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "payments",
                    "partition": "",
                    "outcome": "failed",
                    "error": "check failed, previous version kept: unique(payment_id) (2 failing rows)",
                    "at": "2024-05-01T09:30:03Z"
                  },
                  "partitions": null,
                  "failing_checks": [],
                  "health": "failed_run",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "refunds",
                  "state": "failed",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": null,
                  "last_failure": {
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "refunds",
                    "partition": "",
                    "outcome": "failed",
                    "error": "Arrow error: Divide by zero error",
                    "at": "2024-05-01T09:30:04Z"
                  },
                  "partitions": null,
                  "failing_checks": [],
                  "health": "failed_run",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "churn",
                  "state": "never_materialized",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_never_materialized",
                      "name": "refunds"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "daily_sales",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "source_changed",
                      "name": "sales"
                    },
                    {
                      "cause": "never_materialized"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 31,
                    "fresh": 28,
                    "stale": 1,
                    "missing": 2,
                    "failed": 0,
                    "rows": 28,
                    "last_committed_at": "2024-05-01T09:31:00Z",
                    "stale_causes": [
                      "source sales changed"
                    ],
                    "sla_warn": 0,
                    "sla_failed": 0,
                    "most_overdue": null,
                    "list": []
                  },
                  "failing_checks": [
                    "not_null(day) [2024-01-03]"
                  ],
                  "health": "failing_check",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "rolling_7d",
                  "state": "never_materialized",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 31,
                    "fresh": 0,
                    "stale": 0,
                    "missing": 31,
                    "failed": 0,
                    "rows": 0,
                    "last_committed_at": null,
                    "stale_causes": [],
                    "sla_warn": 0,
                    "sla_failed": 0,
                    "most_overdue": null,
                    "list": []
                  },
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "late_days",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 5,
                    "fresh": 3,
                    "stale": 0,
                    "missing": 2,
                    "failed": 0,
                    "rows": 3,
                    "last_committed_at": "2024-01-05T12:00:00Z",
                    "stale_causes": [],
                    "sla_warn": 1,
                    "sla_failed": 1,
                    "most_overdue": {
                      "key": "2024-01-05",
                      "level": "failed",
                      "basis": "not_built",
                      "since": "2024-01-06T00:00:00Z",
                      "age_seconds": 25200
                    },
                    "list": []
                  },
                  "failing_checks": [],
                  "health": "sla_failed",
                  "freshness": {
                    "warn_after_seconds": 7200,
                    "fail_after_seconds": 21600
                  },
                  "sla": null
                },
                {
                  "name": "lookup",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "source_changed",
                      "name": "raw_lookup"
                    }
                  ],
                  "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                  "input_version": null,
                  "current": {
                    "id": 15,
                    "run_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "asset": "lookup",
                    "partition": "",
                    "code_version": "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de",
                    "input_version": "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b",
                    "data_version": "da7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7ada7a",
                    "row_count": 8,
                    "bytes_written": 7680,
                    "wall_ms": 35,
                    "committed_at": "2024-05-01T06:00:00Z"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "warn",
                  "freshness": {
                    "warn_after_seconds": 3600,
                    "fail_after_seconds": 86400
                  },
                  "sla": {
                    "level": "warn",
                    "basis": "stale",
                    "since": "2024-05-01T07:00:00Z",
                    "age_seconds": 10800
                  }
                }
              ]
            }
        "#]].assert_eq(&json(|out| render_json(&every_state(), out)));
    }

    /// The JSON of a real project: summaries only (the default), then
    /// `--partitions` of one asset, each partition with its committed
    /// version.
    #[test]
    fn json_of_a_real_project() {
        let dir = shop();
        let ws = open(dir.path());
        let mut statuses = ws.status(&[]).unwrap_or_else(|e| panic!("{e}"));
        summaries_only(&mut statuses);
        statuses.iter_mut().for_each(wall_fixed);
        expect![[r#"
            {
              "fresh": 1,
              "not_fresh": 6,
              "failing_checks": 0,
              "sla_failed": 0,
              "sla_warn": 0,
              "assets": [
                {
                  "name": "named",
                  "state": "fresh",
                  "causes": [],
                  "code_version": "04f47f2ceec21a2016a50dfbd53e116f76644a5d14ce0c754ae05ee2d61f0c85",
                  "input_version": "ac640170f2bc5dead0697ba59d705b5b4d30826259545afccc9fa42ea14cf715",
                  "current": {
                    "id": 1,
                    "run_id": "<run>",
                    "asset": "named",
                    "partition": "",
                    "code_version": "04f47f2ceec21a2016a50dfbd53e116f76644a5d14ce0c754ae05ee2d61f0c85",
                    "input_version": "ac640170f2bc5dead0697ba59d705b5b4d30826259545afccc9fa42ea14cf715",
                    "data_version": "2fc8cdcfd7922112e75da747ade48b38d78a8169e05e37e6b946e13fa0aa54e2",
                    "row_count": 2,
                    "bytes_written": 743,
                    "wall_ms": 35,
                    "committed_at": "<time>"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "daily",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "source_changed",
                      "name": "sales"
                    },
                    {
                      "cause": "never_materialized"
                    }
                  ],
                  "code_version": "1dbf9b27a8a8c92381ab5c3c53075af448c938f44359d3feaad482465b6edd87",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 3,
                    "fresh": 1,
                    "stale": 1,
                    "missing": 1,
                    "failed": 0,
                    "rows": 2,
                    "last_committed_at": "<time>",
                    "stale_causes": [
                      "source sales changed"
                    ],
                    "sla_warn": 0,
                    "sla_failed": 0,
                    "most_overdue": null,
                    "list": []
                  },
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "regions",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "code_changed"
                    },
                    {
                      "cause": "source_changed",
                      "name": "sales"
                    }
                  ],
                  "code_version": "dd5ee57c5d1706376a9f7bdc7f31f3a28129d865aa536eeaecbc92b00a8468d6",
                  "input_version": "2aa3881cd226d989319fce26718206424eed5f1e662e4b3016a48d3012e74368",
                  "current": {
                    "id": 4,
                    "run_id": "<run>",
                    "asset": "regions",
                    "partition": "",
                    "code_version": "0c071de92d3f15c5406d9c38cd960cf270f556019e581510cece8a2744a4602c",
                    "input_version": "9cc44c0bfbd859dd427f9857ca1fd07a6a60b2c283282f324daa74c1e4347d03",
                    "data_version": "4f10717f1f0a8d31159b030b1916e5c4aac8a9496572b208b7de35be74a21c1d",
                    "row_count": 2,
                    "bytes_written": 1057,
                    "wall_ms": 35,
                    "committed_at": "<time>"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "warning_checks": [
                    "row_count(3, 10)"
                  ],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "big_regions",
                  "state": "failed",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ],
                  "code_version": "d73e9399cee32d9e014d8f10845fc7e5ebdc8be2a065bf0164d4eec8b2fb9ccf",
                  "input_version": "168e545e1f3f85adc80e70ba343187137b3e1b4be375322593abdcbc90be1673",
                  "current": null,
                  "last_failure": {
                    "run_id": "<run>",
                    "asset": "big_regions",
                    "partition": "",
                    "outcome": "failed",
                    "error": "assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)",
                    "at": "<time>"
                  },
                  "partitions": null,
                  "failing_checks": [],
                  "health": "failed_run",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "running",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "daily"
                    },
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_never_materialized",
                      "name": "daily"
                    },
                    {
                      "cause": "earlier_partition_stale"
                    }
                  ],
                  "code_version": "528923e557fde20a0144e0c1fe0e391e2d434ca6933fcb00c5d212ac5859ac56",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 3,
                    "fresh": 1,
                    "stale": 1,
                    "missing": 1,
                    "failed": 0,
                    "rows": 2,
                    "last_committed_at": "<time>",
                    "stale_causes": [
                      "upstream daily is stale"
                    ],
                    "sla_warn": 0,
                    "sla_failed": 0,
                    "most_overdue": null,
                    "list": []
                  },
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "top",
                  "state": "never_materialized",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ],
                  "code_version": "98ee9a4a19458a0b3e3e5006d6a2707670c23a3e2b42ab8ad57a045f567e60b2",
                  "input_version": "c3729b94a6cd14e0998f8b4237e1d33acc722e53081c6ff8f7a8ab98adef8f7a",
                  "current": null,
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                },
                {
                  "name": "total",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ],
                  "code_version": "ba1ae3a29c1bb1d3b72978f4b7a8249d8872911814f0f868a949e233bc6885cc",
                  "input_version": "d8fcffcb9610be0095ace011f7931766f44b2381cd880742b6dbcdb002e64c97",
                  "current": {
                    "id": 7,
                    "run_id": "<run>",
                    "asset": "total",
                    "partition": "",
                    "code_version": "ba1ae3a29c1bb1d3b72978f4b7a8249d8872911814f0f868a949e233bc6885cc",
                    "input_version": "d8fcffcb9610be0095ace011f7931766f44b2381cd880742b6dbcdb002e64c97",
                    "data_version": "e59068f06d3d773c4aff9a71b1011ea2f283653349a212bf8409ab2159b5612c",
                    "row_count": 1,
                    "bytes_written": 484,
                    "wall_ms": 35,
                    "committed_at": "<time>"
                  },
                  "last_failure": null,
                  "partitions": null,
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                }
              ]
            }
        "#]].assert_eq(&redact(
            &json(|out| render_json(&statuses, out)),
            dir.path(),
        ));
        let mut running = ws
            .status(&["running".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        running.iter_mut().for_each(wall_fixed);
        expect![[r#"
            {
              "fresh": 0,
              "not_fresh": 1,
              "failing_checks": 0,
              "sla_failed": 0,
              "sla_warn": 0,
              "assets": [
                {
                  "name": "running",
                  "state": "stale",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "daily"
                    },
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_never_materialized",
                      "name": "daily"
                    },
                    {
                      "cause": "earlier_partition_stale"
                    }
                  ],
                  "code_version": "528923e557fde20a0144e0c1fe0e391e2d434ca6933fcb00c5d212ac5859ac56",
                  "input_version": null,
                  "current": null,
                  "last_failure": null,
                  "partitions": {
                    "total": 3,
                    "fresh": 1,
                    "stale": 1,
                    "missing": 1,
                    "failed": 0,
                    "rows": 2,
                    "last_committed_at": "<time>",
                    "stale_causes": [
                      "upstream daily is stale"
                    ],
                    "sla_warn": 0,
                    "sla_failed": 0,
                    "most_overdue": null,
                    "list": [
                      {
                        "key": "2024-01-01",
                        "state": "fresh",
                        "causes": [],
                        "input_version": null,
                        "current": {
                          "id": 5,
                          "run_id": "<run>",
                          "code_version": "528923e557fde20a0144e0c1fe0e391e2d434ca6933fcb00c5d212ac5859ac56",
                          "input_version": "0f17ac05d0a8a11a1c0719612c9cf5fe2c762e2c04c5d17c1c133fe88d75e196",
                          "data_version": "88aab2591cd2300ff6971cbbba5e5f6ee6583bd052c9b7580c514faae753b61b",
                          "row_count": 1,
                          "bytes_written": 722,
                          "wall_ms": 35,
                          "committed_at": "<time>"
                        },
                        "last_failure": null,
                        "health": "ok",
                        "sla": null
                      },
                      {
                        "key": "2024-01-02",
                        "state": "stale",
                        "causes": [
                          {
                            "cause": "upstream_stale",
                            "name": "daily"
                          }
                        ],
                        "input_version": null,
                        "current": {
                          "id": 6,
                          "run_id": "<run>",
                          "code_version": "528923e557fde20a0144e0c1fe0e391e2d434ca6933fcb00c5d212ac5859ac56",
                          "input_version": "45fb88750c92c3a19087d650a11197e1cda404f7bd20410aea73f06411caa8fa",
                          "data_version": "b696ec110ae3aca267adfe11a922ff388777b5505ccb7c3530644cc3cee99651",
                          "row_count": 1,
                          "bytes_written": 722,
                          "wall_ms": 35,
                          "committed_at": "<time>"
                        },
                        "last_failure": null,
                        "health": "ok",
                        "sla": null
                      },
                      {
                        "key": "2024-01-03",
                        "state": "never_materialized",
                        "causes": [
                          {
                            "cause": "never_materialized"
                          },
                          {
                            "cause": "upstream_never_materialized",
                            "name": "daily"
                          },
                          {
                            "cause": "earlier_partition_stale"
                          }
                        ],
                        "input_version": null,
                        "current": null,
                        "last_failure": null,
                        "health": "ok",
                        "sla": null
                      }
                    ]
                  },
                  "failing_checks": [],
                  "health": "ok",
                  "freshness": null,
                  "sla": null
                }
              ]
            }
        "#]].assert_eq(&redact(
            &json(|out| render_json(&running, out)),
            dir.path(),
        ));
    }
}
