//! The plan and the status, from small text fixtures (rust-analyzer
//! style): a project and the commands run on it in, the rendered status
//! and plan out.
//!
//! A fixture is a sequence of blocks. `//- PATH` starts a file (its lines
//! follow); `//$ materialize [--force] [SELECTION...]` runs a real
//! materialization (DataFusion, Parquet, SQLite) of the files written so
//! far; the last block may be `//$ plan [--force] [SELECTION...]`, the
//! materialization whose plan is rendered (default: everything);
//! `//$ now RFC3339` judges time at that instant from there on (which
//! partitions exist, freshness SLAs; commits keep the real clock). Files
//! written after the last command are the edits the status and plan see.

use std::path::Path;

use expect_test::{Expect, expect};

use crate::execute::report::NoProgress;
use crate::model::workspace::{Clock, Workspace};
use crate::plan::{MaterializeOptions, PartitionFilter};
use crate::state::freshness::Health;
use crate::state::status::{AssetState, AssetStatus, PartitionStatus};

/// Runs the fixture and compares the rendered status and plan.
fn check(fixture: &str, expected: Expect) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut plan_args: Vec<String> = Vec::new();
    let mut clock = Clock::System;
    let mut file: Option<(String, String)> = None;
    let flush = |file: &mut Option<(String, String)>| {
        if let Some((path, text)) = file.take() {
            write(root, &path, &text);
        }
    };
    for line in fixture.trim_start_matches('\n').lines() {
        if let Some(path) = line.strip_prefix("//- ") {
            flush(&mut file);
            file = Some((path.trim().to_owned(), String::new()));
        } else if let Some(command) = line.strip_prefix("//$ ") {
            flush(&mut file);
            let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            match words.first().map(String::as_str) {
                Some("materialize") => {
                    words.remove(0);
                    let ws = Workspace::open(root)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .with_clock(clock);
                    let report = runtime
                        .block_on(ws.materialize(&options(&words), &NoProgress))
                        .unwrap_or_else(|e| panic!("{e}"));
                    std::hint::black_box(report);
                }
                Some("plan") => {
                    words.remove(0);
                    plan_args = words;
                }
                Some("now") => {
                    let at = chrono::DateTime::parse_from_rfc3339(&words[1])
                        .unwrap_or_else(|e| panic!("{e}"));
                    clock = Clock::Fixed(at.to_utc());
                }
                other => panic!("unknown fixture command {other:?}"),
            }
        } else if let Some((_, text)) = &mut file {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&mut file);
    let ws = Workspace::open(root)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_clock(clock);
    expected.assert_eq(&render(&ws, &plan_args));
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
}

fn options(words: &[String]) -> MaterializeOptions {
    MaterializeOptions {
        selection: words.iter().filter(|w| *w != "--force").cloned().collect(),
        force: words.iter().any(|w| w == "--force"),
        jobs: 2,
        command: "fixture".to_owned(),
        partitions: PartitionFilter::All,
        backfill: None,
    }
}

/// `status:` one line per asset (and per partition not fresh), with its
/// health when not ok and its SLA verdict when past a limit; `plan:` one
/// line per unit considered.
fn render(ws: &Workspace, plan_args: &[String]) -> String {
    let mut out = String::from("status:\n");
    for s in ws.status(&[]).unwrap_or_else(|e| panic!("{e}")) {
        let mut causes: Vec<String> = s.causes.iter().map(ToString::to_string).collect();
        match &s.partitions {
            None => {
                causes.extend(verdict(&s, s.sla.as_ref().map(|r| ("", r))));
                out.push_str(&line(&s.name, s.state, &causes, s.health));
            }
            Some(p) => {
                let summary = s.sla_verdict().map(|v| format!("; {v}"));
                out.push_str(&format!(
                    "  {}  {}{}{}\n",
                    s.name,
                    p.describe(),
                    summary.unwrap_or_default(),
                    health(s.health)
                ));
                for u in p.list.iter().filter(|u| u.state != AssetState::Fresh) {
                    let mut causes: Vec<String> =
                        u.causes.iter().map(ToString::to_string).collect();
                    causes.extend(verdict(&s, unit_sla(u)));
                    let name = format!("  [{}]", u.key);
                    out.push_str(&line(&name, u.state, &causes, u.health));
                }
            }
        }
    }
    out.push_str("plan:\n");
    let units = ws
        .explain(&options(plan_args))
        .unwrap_or_else(|e| panic!("{e}"));
    for u in units {
        let name = if u.partition.is_empty() {
            u.asset.clone()
        } else {
            format!("{} [{}]", u.asset, u.partition)
        };
        let mut why: Vec<String> = Vec::new();
        if u.last_failure.is_some() {
            why.push("last attempt failed".to_owned());
        }
        why.extend(u.causes.iter().map(ToString::to_string));
        if why.is_empty() {
            out.push_str(&format!("  {name}: {}\n", u.decision.as_str()));
        } else {
            out.push_str(&format!(
                "  {name}: {} ({})\n",
                u.decision.as_str(),
                why.join("; ")
            ));
        }
    }
    out
}

fn unit_sla(u: &PartitionStatus) -> Option<(&str, &crate::state::freshness::SlaReading)> {
    u.sla.as_ref().map(|r| (u.key.as_str(), r))
}

/// The SLA verdict of a unit of `s`, when past a limit.
fn verdict(
    s: &AssetStatus,
    reading: Option<(&str, &crate::state::freshness::SlaReading)>,
) -> Option<String> {
    let (key, r) = reading?;
    r.verdict(key, s.freshness.as_ref()?)
}

/// ` [health]` when not ok.
fn health(h: Health) -> String {
    if h == Health::Ok {
        String::new()
    } else {
        format!(" [{}]", h.as_str())
    }
}

fn line(name: &str, state: AssetState, causes: &[String], h: Health) -> String {
    if causes.is_empty() {
        format!("  {name}  {}{}\n", state.as_str(), health(h))
    } else {
        format!(
            "  {name}  {}: {}{}\n",
            state.as_str(),
            causes.join("; "),
            health(h)
        )
    }
}

/// `raw` (a CSV source) -> `a` -> `b`, and `c` reading `raw` directly.
const CHAIN: &str = r#"
//- cairn.toml
[sources.raw]
path = "data/raw.csv"
//- data/raw.csv
id,v
1,x
2,y
//- assets/a.sql
select id, v from raw
//- assets/b.sql
select id from a
//- assets/c.sql
select count(*) as n from raw
"#;

fn with(base: &str, rest: &str) -> String {
    format!("{base}{rest}")
}

#[test]
fn nothing_built_yet_builds_everything() {
    check(
        CHAIN,
        expect![[r#"
            status:
              a  never materialized: never materialized
              b  never materialized: never materialized; upstream a never materialized
              c  never materialized: never materialized
            plan:
              a: build (never materialized)
              b: build (never materialized; upstream a never materialized)
              c: build (never materialized)
        "#]],
    );
}

#[test]
fn a_fresh_project_plans_nothing() {
    check(
        &with(CHAIN, "//$ materialize\n"),
        expect![[r#"
        status:
          a  fresh
          b  fresh
          c  fresh
        plan:
          a: fresh
          b: fresh
          c: fresh
    "#]],
    );
}

#[test]
fn a_code_change_builds_it_and_waits_downstream() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\nselect id, v from raw where id > 1\n",
        ),
        expect![[r#"
            status:
              a  stale: code changed
              b  stale: upstream a is stale
              c  fresh
            plan:
              a: build (code changed)
              b: build unless upstream unchanged (upstream a is stale)
              c: fresh
        "#]],
    );
}

#[test]
fn comments_and_formatting_are_not_a_change() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\n-- the raw rows\nSELECT id,\n       v\nFROM raw\n",
        ),
        expect![[r#"
            status:
              a  fresh
              b  fresh
              c  fresh
            plan:
              a: fresh
              b: fresh
              c: fresh
        "#]],
    );
}

#[test]
fn a_source_change_builds_its_direct_readers() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- data/raw.csv\nid,v\n1,x\n2,y\n3,z\n",
        ),
        expect![[r#"
            status:
              a  stale: source raw changed
              b  stale: upstream a is stale
              c  stale: source raw changed
            plan:
              a: build (source raw changed)
              b: build unless upstream unchanged (upstream a is stale)
              c: build (source raw changed)
        "#]],
    );
}

#[test]
fn early_cutoff_leaves_downstream_fresh_after_the_run() {
    // `a` changes code but not data: after the run, `b` was never rebuilt
    // and everything is fresh.
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\nselect id, v from raw where id > 0\n//$ materialize\n",
        ),
        expect![[r#"
            status:
              a  fresh
              b  fresh
              c  fresh
            plan:
              a: fresh
              b: fresh
              c: fresh
        "#]],
    );
}

#[test]
fn forced_selection_rebuilds_fresh_units() {
    check(
        &with(CHAIN, "//$ materialize\n//$ plan --force a\n"),
        expect![[r#"
            status:
              a  fresh
              b  fresh
              c  fresh
            plan:
              a: build (forced)
        "#]],
    );
}

#[test]
fn selecting_an_asset_refreshes_its_stale_upstream() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\nselect id, v from raw where id > 1\n//$ plan b\n",
        ),
        expect![[r#"
            status:
              a  stale: code changed
              b  stale: upstream a is stale
              c  fresh
            plan:
              a: build (code changed)
              b: build unless upstream unchanged (upstream a is stale)
        "#]],
    );
}

#[test]
fn selection_with_upstream_plus() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- data/raw.csv\nid,v\n1,x\n2,yy\n//$ plan +b\n",
        ),
        expect![[r#"
            status:
              a  stale: source raw changed
              b  stale: upstream a is stale
              c  stale: source raw changed
            plan:
              a: build (source raw changed)
              b: build unless upstream unchanged (upstream a is stale)
        "#]],
    );
}

#[test]
fn selection_with_downstream_plus() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\nselect id, v from raw where id > 1\n//$ plan a+\n",
        ),
        expect![[r#"
            status:
              a  stale: code changed
              b  stale: upstream a is stale
              c  fresh
            plan:
              a: build (code changed)
              b: build unless upstream unchanged (upstream a is stale)
        "#]],
    );
}

#[test]
fn a_fresh_selection_with_a_stale_sibling_plans_nothing() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/c.sql\nselect count(*) + 0 as n from raw\n//$ plan b\n",
        ),
        expect![[r#"
            status:
              a  fresh
              b  fresh
              c  stale: code changed
            plan:
              b: fresh
        "#]],
    );
}

#[test]
fn an_upstream_never_materialized() {
    check(
        &with(CHAIN, "//$ materialize c\n"),
        expect![[r#"
        status:
          a  never materialized: never materialized
          b  never materialized: never materialized; upstream a never materialized
          c  fresh
        plan:
          a: build (never materialized)
          b: build (never materialized; upstream a never materialized)
          c: fresh
    "#]],
    );
}

#[test]
fn a_new_asset_is_never_materialized() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/d.sql\nselect id * 2 as id2 from b\n",
        ),
        expect![[r#"
            status:
              a  fresh
              b  fresh
              c  fresh
              d  never materialized: never materialized
            plan:
              a: fresh
              b: fresh
              c: fresh
              d: build (never materialized)
        "#]],
    );
}

#[test]
fn a_failed_build_is_retried_and_its_downstream_waits() {
    check(
        &with(
            CHAIN,
            "//$ materialize\n//- assets/a.sql\nselect id / 0 as id, v from raw\n//$ materialize\n",
        ),
        expect![[r#"
            status:
              a  failed: code changed [failed run]
              b  stale: upstream a is stale
              c  fresh
            plan:
              a: build (last attempt failed; code changed)
              b: build unless upstream unchanged (upstream a is stale)
              c: fresh
        "#]],
    );
}

/// `events` daily source folders, `daily` reads its day, `rolling` the
/// three days ending with its own, `total` everything.
const DAILY: &str = r#"
//- cairn.toml
[sources.events]
path = "data/events"
format = "csv"
partitions = { type = "daily", start = "2024-01-01", end = "2024-01-04" }
//- data/events/date=2024-01-01/e.csv
n
1
//- data/events/date=2024-01-02/e.csv
n
2
//- data/events/date=2024-01-03/e.csv
n
3
//- data/events/date=2024-01-04/e.csv
n
4
//- assets/daily.sql
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-04"
select sum(n) as n from events
//- assets/rolling.sql
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-04"
--- [upstream.daily]
--- mapping = "window"
--- lag = 2
select sum(n) as n3 from daily
//- assets/total.sql
select sum(n) as n from daily
"#;

#[test]
fn daily_partitions_never_built() {
    check(
        DAILY,
        expect![[r#"
        status:
          daily  0 fresh, 4 missing
            [2024-01-01]  never materialized: never materialized
            [2024-01-02]  never materialized: never materialized
            [2024-01-03]  never materialized: never materialized
            [2024-01-04]  never materialized: never materialized
          rolling  0 fresh, 4 missing
            [2024-01-01]  never materialized: never materialized; upstream daily never materialized
            [2024-01-02]  never materialized: never materialized; upstream daily never materialized
            [2024-01-03]  never materialized: never materialized; upstream daily never materialized
            [2024-01-04]  never materialized: never materialized; upstream daily never materialized
          total  never materialized: never materialized; upstream daily never materialized
        plan:
          daily [2024-01-01]: build (never materialized)
          daily [2024-01-02]: build (never materialized)
          daily [2024-01-03]: build (never materialized)
          daily [2024-01-04]: build (never materialized)
          rolling [2024-01-01]: build (never materialized; upstream daily never materialized)
          rolling [2024-01-02]: build (never materialized; upstream daily never materialized)
          rolling [2024-01-03]: build (never materialized; upstream daily never materialized)
          rolling [2024-01-04]: build (never materialized; upstream daily never materialized)
          total: build (never materialized; upstream daily never materialized)
    "#]],
    );
}

#[test]
fn a_changed_day_restales_its_partition_and_the_windows_reading_it() {
    check(
        &with(
            DAILY,
            "//$ materialize\n//- data/events/date=2024-01-02/e.csv\nn\n20\n",
        ),
        expect![[r#"
            status:
              daily  3 fresh, 1 stale: source events changed
                [2024-01-02]  stale: source events changed
              rolling  1 fresh, 3 stale: upstream daily is stale
                [2024-01-02]  stale: upstream daily is stale
                [2024-01-03]  stale: upstream daily is stale
                [2024-01-04]  stale: upstream daily is stale
              total  stale: upstream daily is stale
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: build (source events changed)
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              rolling [2024-01-01]: fresh
              rolling [2024-01-02]: build unless upstream unchanged (upstream daily is stale)
              rolling [2024-01-03]: build unless upstream unchanged (upstream daily is stale)
              rolling [2024-01-04]: build unless upstream unchanged (upstream daily is stale)
              total: build unless upstream unchanged (upstream daily is stale)
        "#]],
    );
}

#[test]
fn forcing_a_partitioned_asset_forces_every_partition() {
    check(
        &with(DAILY, "//$ materialize\n//$ plan --force daily\n"),
        expect![[r#"
        status:
          daily  4 fresh
          rolling  4 fresh
          total  fresh
        plan:
          daily [2024-01-01]: build (forced)
          daily [2024-01-02]: build (forced)
          daily [2024-01-03]: build (forced)
          daily [2024-01-04]: build (forced)
    "#]],
    );
}

#[test]
fn a_partition_window_extended_adds_missing_partitions() {
    check(
        &with(
            DAILY,
            "//$ materialize\n//- data/events/date=2024-01-05/e.csv\nn\n5\n//- cairn.toml\n[sources.events]\npath = \"data/events\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-01-05\" }\n//- assets/daily.sql\n--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-05\"\nselect sum(n) as n from events\n",
        ),
        expect![[r#"
            status:
              daily  4 fresh, 1 missing
                [2024-01-05]  never materialized: never materialized
              rolling  4 fresh
              total  stale: upstream daily never materialized
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              daily [2024-01-05]: build (never materialized)
              rolling [2024-01-01]: fresh
              rolling [2024-01-02]: fresh
              rolling [2024-01-03]: fresh
              rolling [2024-01-04]: fresh
              total: build (upstream daily never materialized)
        "#]],
    );
}

/// A running balance reading its own previous day.
const BALANCE: &str = r#"
//- cairn.toml
[sources.events]
path = "data/events"
format = "csv"
partitions = { type = "daily", start = "2024-01-01", end = "2024-01-03" }
//- data/events/date=2024-01-01/e.csv
n
1
//- data/events/date=2024-01-02/e.csv
n
2
//- data/events/date=2024-01-03/e.csv
n
3
//- assets/balance.sql
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-03"
--- [upstream.balance]
--- mapping = "window"
--- offset = -1
--- [columns]
--- total = "BIGINT"
select (select sum(n) from events) + coalesce((select max(total) from balance), 0) as total
"#;

#[test]
fn a_self_reading_asset_restales_every_later_day() {
    check(
        &with(
            BALANCE,
            "//$ materialize\n//- data/events/date=2024-01-02/e.csv\nn\n22\n",
        ),
        expect![[r#"
            status:
              balance  1 fresh, 2 stale: source events changed, an earlier partition is stale
                [2024-01-02]  stale: source events changed
                [2024-01-03]  stale: an earlier partition is stale
            plan:
              balance [2024-01-01]: fresh
              balance [2024-01-02]: build (source events changed)
              balance [2024-01-03]: build unless upstream unchanged (an earlier partition is stale)
        "#]],
    );
}

#[test]
fn static_partitions_and_an_unpartitioned_reader() {
    check(
        r#"
//- cairn.toml
[sources.raw]
path = "data/raw.csv"
//- data/raw.csv
region,n
eu,1
us,2
//- assets/by_region.sql
--- [partitions]
--- type = "static"
--- values = ["eu", "us"]
select sum(n) as n from raw where region = {{partition_key}}
//- assets/all_regions.sql
select sum(n) as n from by_region
//$ materialize
//- assets/by_region.sql
--- [partitions]
--- type = "static"
--- values = ["eu", "us", "apac"]
select sum(n) as n from raw where region = {{partition_key}}
"#,
        expect![[r#"
            status:
              by_region  2 fresh, 1 missing
                [apac]  never materialized: never materialized
              all_regions  stale: upstream by_region never materialized
            plan:
              by_region [apac]: build (never materialized)
              by_region [eu]: fresh
              by_region [us]: fresh
              all_regions: build (upstream by_region never materialized)
        "#]],
    );
}

#[test]
fn a_relationships_target_is_kept_up_to_date() {
    check(
        r#"
//- cairn.toml
[sources.raw]
path = "data/raw.csv"
[sources.raw_parents]
path = "data/parents.csv"
//- data/raw.csv
id,parent_id
1,10
//- data/parents.csv
id
10
//- assets/parents.sql
select id from raw_parents
//- assets/items.sql
--- checks = ["relationships(parent_id, parents.id)"]
select id, parent_id from raw
//$ materialize
//- data/raw.csv
id,parent_id
1,10
2,20
//- data/parents.csv
id
10
20
//$ plan items
"#,
        expect![[r#"
            status:
              items  stale: source raw changed
              parents  stale: source raw_parents changed
            plan:
              items: build (source raw changed)
              parents: build (source raw_parents changed)
        "#]],
    );
}

/// `daily` (SLA: warn 2h, fail 6h) reads a daily source through
/// 2024-01-05; `total` (fail 6h) rolls every day up.
const SLA_FILES: &str = r#"
//- cairn.toml
[sources.events]
path = "data/events"
format = "csv"
partitions = { type = "daily", start = "2024-01-01", end = "2024-01-05" }
//- data/events/date=2024-01-01/e.csv
n
1
//- data/events/date=2024-01-02/e.csv
n
2
//- data/events/date=2024-01-03/e.csv
n
3
//- data/events/date=2024-01-04/e.csv
n
4
//- data/events/date=2024-01-05/e.csv
n
5
//- assets/daily.sql
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-05"
--- [freshness]
--- warn_after = "2h"
--- fail_after = "6h"
select sum(n) as n from events
//- assets/total.sql
--- [freshness]
--- fail_after = "6h"
select sum(n) as n from daily
"#;

/// [`SLA_FILES`] built on the 5th at noon, when the 5th is not over yet.
fn sla() -> String {
    with(SLA_FILES, "//$ now 2024-01-05T12:00:00Z\n//$ materialize\n")
}

#[test]
fn a_day_not_built_within_its_sla_is_ok() {
    check(
        &with(&sla(), "//$ now 2024-01-06T01:00:00Z\n"),
        expect![[r#"
            status:
              daily  4 fresh, 1 missing
                [2024-01-05]  never materialized: never materialized
              total  stale: upstream daily never materialized
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              daily [2024-01-05]: build (never materialized)
              total: build (upstream daily never materialized)
        "#]],
    );
}

#[test]
fn a_day_not_built_past_warn_after_warns() {
    check(
        &with(&sla(), "//$ now 2024-01-06T03:00:00Z\n"),
        expect![[r#"
            status:
              daily  4 fresh, 1 missing; sla warn: 2024-01-05 not built 3h after its window closed (warn_after 2h) [warn]
                [2024-01-05]  never materialized: never materialized; sla warn: 2024-01-05 not built 3h after its window closed (warn_after 2h) [warn]
              total  stale: upstream daily never materialized
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              daily [2024-01-05]: build (never materialized)
              total: build (upstream daily never materialized)
        "#]],
    );
}

#[test]
fn a_day_not_built_past_fail_after_fails_its_sla_and_its_roll_ups() {
    // `total` is behind since the 5th closed, as the day it lacks is.
    check(
        &with(&sla(), "//$ now 2024-01-06T07:00:00Z\n"),
        expect![[r#"
            status:
              daily  4 fresh, 1 missing; sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h) [sla failed]
                [2024-01-05]  never materialized: never materialized; sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h) [sla failed]
              total  stale: upstream daily never materialized; sla failed: stale for 7h (fail_after 6h) [sla failed]
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              daily [2024-01-05]: build (never materialized)
              total: build (upstream daily never materialized)
        "#]],
    );
}

#[test]
fn building_the_late_day_clears_its_sla() {
    check(
        &with(
            &sla(),
            "//$ now 2024-01-06T07:00:00Z\n//$ materialize daily\n//$ plan\n",
        ),
        expect![[r#"
            status:
              daily  5 fresh
              total  stale: upstream daily changed
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: fresh
              daily [2024-01-04]: fresh
              daily [2024-01-05]: fresh
              total: build (upstream daily changed)
        "#]],
    );
}

#[test]
fn never_materialized_without_a_window_misses_its_sla_at_once() {
    // No instant to count from: failed with fail_after, a warning with
    // only warn_after; a static partition is the same.
    check(
        r#"
//- cairn.toml
[sources.raw]
path = "data/raw.csv"
//- data/raw.csv
region,n
eu,1
//- assets/strict.sql
--- [freshness]
--- fail_after = "1d"
select sum(n) as n from raw
//- assets/lenient.sql
--- [freshness]
--- warn_after = "1d"
select sum(n) as n from raw
//- assets/by_region.sql
--- [partitions]
--- type = "static"
--- values = ["eu", "us"]
--- [freshness]
--- fail_after = "1d"
select sum(n) as n from raw where region = {{partition_key}}
//$ materialize by_region
//- assets/by_region.sql
--- [partitions]
--- type = "static"
--- values = ["eu", "us", "apac"]
--- [freshness]
--- fail_after = "1d"
select sum(n) as n from raw where region = {{partition_key}}
//$ plan strict
"#,
        expect![[r#"
            status:
              by_region  2 fresh, 1 missing; sla failed: apac never materialized (fail_after 1d) [sla failed]
                [apac]  never materialized: never materialized; sla failed: apac never materialized (fail_after 1d) [sla failed]
              lenient  never materialized: never materialized; sla warn: never materialized (warn_after 1d) [warn]
              strict  never materialized: never materialized; sla failed: never materialized (fail_after 1d) [sla failed]
            plan:
              strict: build (never materialized)
        "#]],
    );
}

#[test]
fn a_fresh_asset_is_within_its_sla_however_old_its_commit() {
    // Rebuilding it would give the same data: its age is zero.
    check(
        r#"
//- cairn.toml
[sources.raw]
path = "data/raw.csv"
//- data/raw.csv
n
1
//- assets/a.sql
--- [freshness]
--- fail_after = "1h"
select n from raw
//$ materialize
//$ now 2099-01-01T00:00:00Z
"#,
        expect![[r#"
            status:
              a  fresh
            plan:
              a: fresh
        "#]],
    );
}

#[test]
fn several_late_days_are_each_late_and_the_oldest_leads() {
    check(
        &with(
            SLA_FILES,
            "//$ now 2024-01-03T12:00:00Z\n//$ materialize daily\n//$ now 2024-01-06T07:00:00Z\n//$ plan daily\n",
        ),
        expect![[r#"
            status:
              daily  2 fresh, 3 missing; sla failed: 3 partitions, the most overdue 2024-01-03 not built 2d 7h after its window closed (fail_after 6h) [sla failed]
                [2024-01-03]  never materialized: never materialized; sla failed: 2024-01-03 not built 2d 7h after its window closed (fail_after 6h) [sla failed]
                [2024-01-04]  never materialized: never materialized; sla failed: 2024-01-04 not built 1d 7h after its window closed (fail_after 6h) [sla failed]
                [2024-01-05]  never materialized: never materialized; sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h) [sla failed]
              total  never materialized: never materialized; upstream daily never materialized; sla failed: never materialized (fail_after 6h) [sla failed]
            plan:
              daily [2024-01-01]: fresh
              daily [2024-01-02]: fresh
              daily [2024-01-03]: build (never materialized)
              daily [2024-01-04]: build (never materialized)
              daily [2024-01-05]: build (never materialized)
        "#]],
    );
}
