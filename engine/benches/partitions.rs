//! Partition-scale benchmark: `status` over hundreds of thousands of
//! committed partition versions, and planning a large backfill.
//!
//! ```text
//! cargo bench -p cairn-engine --bench partitions -- [--assets N] [--plan-assets M] [--keep DIR] [--catalog URL]
//! ```
//!
//! `--catalog postgres://...` measures status on that (empty, or seeded by
//! an earlier run) PostgreSQL database instead of SQLite: the project is
//! seeded in SQLite as usual, then copied there with `cairn catalog
//! migrate`'s copy.
//!
//! `--keep DIR` seeds the status project in DIR once and reuses it on later
//! runs (seeding 365,000 commits takes a minute and a half).
//!
//! Both measurements use a temporary project with one daily-partitioned CSV
//! source `events` (365 tiny partition folders, 2024-01-01..2024-12-30) and
//! daily-partitioned SQL assets `p0000`..: `p0000` reads `events`, `p<i>`
//! reads `p<(i-1)/2>` (a binary tree: chains and fan-out), all with the
//! default identity mapping.
//!
//! 1. Status (N assets, default 1,000: N x 365 partition versions). The
//!    catalog is seeded so that every partition is fresh *without* running
//!    DataFusion: for every asset partition the input version is computed
//!    exactly as the engine does (upstream units from the partition index,
//!    source data versions from the snapshot, fake data versions for
//!    upstream assets) and committed through
//!    `Catalog::commit_materialization`. The seeded state is checked (every
//!    asset and every partition fresh) before anything is measured. Then:
//!    `Workspace::open`, `Workspace::status(&[])`, `Workspace::snapshot()`,
//!    one automation tick (every asset has `[automation]` with a daily
//!    cron, `on_missing` and `on_upstream_change`: each tick finds every
//!    cron instant due and nothing stale — checked — and records its
//!    evaluations) and a breakdown of the snapshot's stages.
//! 2. Planning (M assets, default 100: M x 365 partitions, empty catalog):
//!    `cairn_engine::bench::plan` for every asset over the whole range, and
//!    the snapshot it needs (cold: source content hashed; warm: cached).
//!
//! Targets: status of 1,000 x 365 < 1 s; planning 100 x 365 < 1 s.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_catalog::{
    FileRecord, MaterializationId, NewMaterialization, NewRun, RunId, RunStatus, UpstreamKind,
    UpstreamVersion,
};
use cairn_engine::NodeKind;
use cairn_engine::bench::Unit;
use cairn_engine::bench::{UpstreamInput, input_version};
use cairn_engine::bench::{last_tick_at, plan, tick};
use cairn_engine::{AssetState, AssetStatus, MaterializeOptions, PartitionFilter, Workspace};
use chrono::{NaiveDate, Utc};

use common::{BoxResult, MinMedian, build_kind, ms, parse_count, target};

const FIRST_DAY: &str = "2024-01-01";
const LAST_DAY: &str = "2024-12-30";
/// Days from `FIRST_DAY` to `LAST_DAY` inclusive (2024 is a leap year).
const DAYS: usize = 365;
/// Target: status of 1,000 assets x 365 partitions.
const TARGET_STATUS: Duration = Duration::from_secs(1);
/// Target: planning a backfill of 100 assets x 365 partitions.
const TARGET_PLAN: Duration = Duration::from_secs(1);
/// The asset counts the targets are stated for.
const TARGET_STATUS_ASSETS: usize = 1000;
const TARGET_PLAN_ASSETS: usize = 100;
/// Repetitions of each timed measurement.
const REPEATS: usize = 5;

struct Args {
    assets: usize,
    plan_assets: usize,
    keep: Option<std::path::PathBuf>,
    catalog: Option<String>,
}

const USAGE: &str =
    "usage: partitions [--assets N] [--plan-assets M] [--keep DIR] [--catalog postgres://...]";

fn parse_args() -> BoxResult<Args> {
    let mut out = Args {
        assets: TARGET_STATUS_ASSETS,
        plan_assets: TARGET_PLAN_ASSETS,
        keep: None,
        catalog: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if flag == "--keep" {
            let dir = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("--keep needs a directory\n{USAGE}"))?,
            };
            out.keep = Some(dir.into());
            continue;
        }
        if flag == "--catalog" {
            let url = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("--catalog needs a URL\n{USAGE}"))?,
            };
            out.catalog = Some(url);
            continue;
        }
        let slot = match flag.as_str() {
            // Added by `cargo bench`.
            "--bench" => continue,
            "--assets" => &mut out.assets,
            "--plan-assets" => &mut out.plan_assets,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}").into()),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?,
        };
        *slot = parse_count(&value)?;
    }
    if out.assets == 0 || out.plan_assets == 0 {
        return Err("--assets and --plan-assets must be positive".into());
    }
    Ok(out)
}

fn main() -> BoxResult<()> {
    let args = parse_args()?;
    println!("cairn partitions benchmark");
    println!(
        "  status: {} assets x {DAYS} days; planning: {} assets x {DAYS} days; build: {}",
        args.assets,
        args.plan_assets,
        build_kind()
    );
    let status = bench_status(args.assets, args.keep.as_deref(), args.catalog.as_deref())?;
    let planning = bench_plan(args.plan_assets)?;

    println!();
    println!("== summary (min / median of {REPEATS}) ==");
    println!(
        "  {:<52} {:>12} {:>12}   target",
        "measurement", "min", "median"
    );
    let row = |label: String, m: &MinMedian, verdict: String| {
        println!("  {label:<52} {} {}   {verdict}", ms(m.min), ms(m.median));
    };
    let n = args.assets;
    let versions = n * DAYS;
    row(
        format!("status, open workspace ({n} x {DAYS} = {versions})"),
        &status.status,
        verdict(n, TARGET_STATUS_ASSETS, status.status.median, TARGET_STATUS),
    );
    row(
        "open + status (what `cairn status` does)".to_owned(),
        &status.open_status,
        verdict(
            n,
            TARGET_STATUS_ASSETS,
            status.open_status.median,
            TARGET_STATUS,
        ),
    );
    row(
        "  of which Workspace::open".to_owned(),
        &status.open,
        String::new(),
    );
    row(
        "snapshot() alone".to_owned(),
        &status.snapshot,
        String::new(),
    );
    let m = args.plan_assets;
    row(
        format!("plan(), {m} x {DAYS} = {} missing units", m * DAYS),
        &planning.plan,
        verdict(m, TARGET_PLAN_ASSETS, planning.plan.median, TARGET_PLAN),
    );
    row(
        "snapshot() (warm) + plan()".to_owned(),
        &planning.snapshot_plan,
        verdict(
            m,
            TARGET_PLAN_ASSETS,
            planning.snapshot_plan.median,
            TARGET_PLAN,
        ),
    );
    println!(
        "  {:<52} {}   (one-off: seeding, not a target)",
        format!("seed {versions} commits"),
        ms(status.seed)
    );
    Ok(())
}

struct StatusNumbers {
    seed: Duration,
    open: MinMedian,
    status: MinMedian,
    open_status: MinMedian,
    snapshot: MinMedian,
}

fn bench_status(n: usize, keep: Option<&Path>, catalog: Option<&str>) -> BoxResult<StatusNumbers> {
    let temp = tempfile::tempdir()?;
    let root = keep.unwrap_or(temp.path());
    println!();
    println!("== status: {n} assets x {DAYS} daily partitions ==");
    let marker = root.join(format!(".seeded-{n}"));
    if marker.exists() {
        println!("  reusing the project seeded in {}", root.display());
        let ws = Workspace::open(root)?;
        check_all_fresh(&ws.status(&[])?, n)?;
        drop(ws);
        return measure_status_on(root, n, Duration::ZERO, catalog);
    }
    fs::create_dir_all(root)?;

    let t = Instant::now();
    write_project(root, n)?;
    println!(
        "  project setup ({DAYS} source folders + {n} SQL files)  {}",
        ms(t.elapsed())
    );

    let t = Instant::now();
    let ws = Workspace::open(root)?;
    println!(
        "  first Workspace::open (empty catalog)                {}",
        ms(t.elapsed())
    );

    let t = Instant::now();
    let commits = seed(&ws)?;
    let seed_time = t.elapsed();
    println!(
        "  seeding: {commits} commit_materialization calls       {}   ({:.0} commits/s)",
        ms(seed_time),
        commits as f64 / seed_time.as_secs_f64().max(1e-9)
    );
    if commits != n * DAYS {
        return Err(format!("seeded {commits} partitions, expected {}", n * DAYS).into());
    }
    let t = Instant::now();
    check_all_fresh(&ws.status(&[])?, n)?;
    println!(
        "  verified: every asset and partition fresh (first status after seeding: {})",
        ms(t.elapsed()).trim()
    );
    drop(ws);
    fs::write(&marker, "")?;
    measure_status_on(root, n, seed_time, catalog)
}

/// [`measure_status`] on the project's SQLite catalog, or on a copy of it
/// in the PostgreSQL database `catalog` (made unless an earlier run made
/// it), the project pointed there while measuring.
fn measure_status_on(
    root: &Path,
    n: usize,
    seed_time: Duration,
    catalog: Option<&str>,
) -> BoxResult<StatusNumbers> {
    let Some(url) = catalog else {
        return measure_status(root, n, seed_time);
    };
    let t = Instant::now();
    match cairn_engine::migrate_catalog("sqlite://.cairn/catalog.db", url, root) {
        Ok(copy) => println!(
            "  copied to PostgreSQL: {} rows                  {}",
            copy.tables.iter().map(|(_, rows)| rows).sum::<u64>(),
            ms(t.elapsed())
        ),
        Err(cairn_engine::EngineError::Catalog(cairn_catalog::CatalogError::NotEmpty {
            ..
        })) => println!("  reusing the PostgreSQL copy in {url}"),
        Err(e) => return Err(e.into()),
    }
    let config = root.join("cairn.toml");
    let sqlite_config = fs::read_to_string(&config)?;
    fs::write(
        &config,
        format!("[catalog]\nurl = \"{url}\"\n\n{sqlite_config}"),
    )?;
    let measured = measure_status(root, n, seed_time);
    fs::write(&config, sqlite_config)?;
    measured
}

fn measure_status(root: &Path, n: usize, seed_time: Duration) -> BoxResult<StatusNumbers> {
    let mut open = Vec::with_capacity(REPEATS);
    let mut open_status = Vec::with_capacity(REPEATS);
    let mut status = Vec::with_capacity(REPEATS);
    let mut snapshot = Vec::with_capacity(REPEATS);
    let mut last = None;
    for _ in 0..REPEATS {
        drop(last.take());
        let t = Instant::now();
        let ws = Workspace::open(root)?;
        let opened = t.elapsed();
        let statuses = ws.status(&[])?;
        open.push(opened);
        open_status.push(t.elapsed());
        check_all_fresh(&statuses, n)?;
        drop(statuses);
        last = Some(ws);
    }
    let ws = last.ok_or("no workspace")?;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let statuses = ws.status(&[])?;
        status.push(t.elapsed());
        check_all_fresh(&statuses, n)?;
    }
    // What a no-op `cairn materialize` decides: nothing to run.
    let mut noop_plan = Vec::with_capacity(REPEATS);
    let opts = MaterializeOptions {
        selection: Vec::new(),
        force: false,
        jobs: 1,
        command: "bench: no-op materialize".to_owned(),
        partitions: PartitionFilter::All,
        backfill: None,
    };
    for _ in 0..REPEATS {
        let t = Instant::now();
        let snap = ws.snapshot()?;
        snapshot.push(t.elapsed());
        let t = Instant::now();
        let planned = plan(&ws, &snap, &opts)?;
        noop_plan.push(t.elapsed());
        if !planned.run_set.is_empty() {
            return Err(format!(
                "no-op plan: {} units would run, expected none",
                planned.run_set.len()
            )
            .into());
        }
    }
    let noop_plan = MinMedian::of(noop_plan);
    // One automation tick (what `cairn tick` evaluates): every asset's cron
    // instant is due, every unit is fresh, nothing is requested (checked).
    let mut ticks = Vec::with_capacity(REPEATS);
    // After any tick a kept project already saw (each tick must find its
    // instant due).
    let first_tick = chrono::DateTime::parse_from_rfc3339("2024-12-31T06:00:00Z")?
        .with_timezone(&Utc)
        .max(
            last_tick_at(&ws)?.unwrap_or_default()
                + chrono::TimeDelta::try_days(1).ok_or("days")?,
        );
    for i in 0..REPEATS {
        let at = first_tick + chrono::TimeDelta::try_days(i as i64).ok_or("days")?;
        let ticking = Workspace::open(root)?.with_clock(cairn_engine::Clock::Fixed(at));
        let t = Instant::now();
        let report = tick(&ticking, at)?;
        ticks.push(t.elapsed());
        let due = report.conditions.iter().filter(|c| c.due.is_some()).count();
        if !report.requested.is_empty() || due != n {
            return Err(format!(
                "tick at {at}: {} units requested (expected none), cron due for {due} of {n} assets (re-seed a kept project without --keep if it predates [automation])",
                report.requested.len()
            )
            .into());
        }
    }
    let ticks = MinMedian::of(ticks);
    let open = MinMedian::of(open);
    let open_status = MinMedian::of(open_status);
    let status = MinMedian::of(status);
    let snapshot = MinMedian::of(snapshot);
    println!();
    println!("  measured                                        min / median of {REPEATS}");
    println!(
        "    Workspace::open                         {} / {}",
        ms(open.min),
        ms(open.median)
    );
    println!(
        "    open + status                           {} / {}   {}",
        ms(open_status.min),
        ms(open_status.median),
        verdict(n, TARGET_STATUS_ASSETS, open_status.median, TARGET_STATUS)
    );
    println!(
        "    status (open workspace)                 {} / {}   {}",
        ms(status.min),
        ms(status.median),
        verdict(n, TARGET_STATUS_ASSETS, status.median, TARGET_STATUS)
    );
    println!(
        "    snapshot() alone                        {} / {}",
        ms(snapshot.min),
        ms(snapshot.median)
    );
    println!(
        "    plan() of a no-op materialize           {} / {}   (after the snapshot; nothing to run, checked)",
        ms(noop_plan.min),
        ms(noop_plan.median)
    );
    println!(
        "    automation tick over every unit         {} / {}   {}",
        ms(ticks.min),
        ms(ticks.median),
        verdict(n, TARGET_STATUS_ASSETS, ticks.median, TARGET_STATUS)
    );
    breakdown(&ws)?;
    Ok(StatusNumbers {
        seed: seed_time,
        open,
        status,
        open_status,
        snapshot,
    })
}

/// Commits a fake materialization of every asset partition, with the input
/// version the engine would compute, so that everything is fresh. Returns
/// the number of commits.
fn seed(ws: &Workspace) -> BoxResult<usize> {
    let snapshot = ws.snapshot()?;
    let run_id = RunId(uuid::Uuid::now_v7().to_string());
    cairn_engine::bench::catalog(ws).begin_run(&NewRun {
        id: run_id.clone(),
        user: "bench".to_owned(),
        host: "bench".to_owned(),
        pid: std::process::id(),
        command: "bench: seed partitions".to_owned(),
        trigger: "bench".to_owned(),
        started_at: Utc::now(),
        backfill_id: None,
    })?;
    let total: usize = ws
        .graph()
        .assets_in_order()
        .map(|a| snapshot.index.keys(a).len())
        .sum();
    let mut committed: HashMap<Unit, (String, MaterializationId)> = HashMap::with_capacity(total);
    let started = Instant::now();
    let mut next_report = total / 10;
    for name in ws.graph().assets_in_order() {
        let asset = ws
            .project()
            .assets
            .get(name)
            .ok_or_else(|| format!("asset `{name}` is in the graph but not the project"))?;
        let code = snapshot
            .code_versions
            .get(name)
            .ok_or_else(|| format!("no code version for `{name}`"))?;
        for key in snapshot.index.keys(name) {
            let mut inputs = Vec::new();
            for (up, up_key) in snapshot.index.upstream_units(ws.project(), asset, key) {
                let unit = (up, up_key);
                let (kind, data_version, materialization) = match ws.graph().kind(&unit.0) {
                    Some(NodeKind::Source) => {
                        let v = snapshot.source_versions.get_unit(&unit).ok_or_else(|| {
                            format!("no data version for source {}@{}", unit.0, unit.1)
                        })?;
                        (UpstreamKind::Source, v.clone(), None)
                    }
                    Some(NodeKind::Asset) => {
                        let (v, id) = committed.get(&unit).ok_or_else(|| {
                            format!(
                                "{name}@{key} reads {}@{}, which was not seeded before it",
                                unit.0, unit.1
                            )
                        })?;
                        (UpstreamKind::Asset, v.clone(), Some(*id))
                    }
                    None => return Err(format!("unknown upstream `{}`", unit.0).into()),
                };
                let (up_name, up_partition) = unit;
                inputs.push(UpstreamVersion {
                    name: up_name,
                    kind,
                    partition: up_partition,
                    data_version,
                    materialization,
                });
            }
            let refs: Vec<UpstreamInput<'_>> = inputs.iter().map(UpstreamInput::from).collect();
            let input = input_version(code, key, &refs);
            let data_version = blake3::hash(format!("{name}/{key}").as_bytes())
                .to_hex()
                .to_string();
            let id = cairn_engine::bench::catalog(ws).commit_materialization(&NewMaterialization {
                run_id: run_id.clone(),
                asset: name.to_owned(),
                partition: key.clone(),
                code_version: code.clone(),
                input_version: input,
                data_version: data_version.clone(),
                row_count: 1,
                bytes_written: 512,
                wall_ms: 1,
                schema_json: r#"[{"name":"event_date","type":"Utf8","nullable":true},{"name":"amount","type":"Int64","nullable":true}]"#.to_owned(),
                inputs,
                files: vec![FileRecord {
                    path: format!("{name}/date={key}/x.parquet"),
                    size_bytes: 512,
                    row_count: 1,
                }],
                committed_at: Utc::now(),
                metrics: Default::default(),
                checks: Vec::new(),
            })?;
            committed.insert((name.to_owned(), key.clone()), (data_version, id));
            if committed.len() == next_report && next_report < total {
                let done = committed.len();
                let elapsed = started.elapsed();
                eprintln!(
                    "    seeding: {done}/{total} ({:.0}%), {:.1} s, ~{:.0} s left",
                    100.0 * done as f64 / total as f64,
                    elapsed.as_secs_f64(),
                    elapsed.as_secs_f64() * (total - done) as f64 / done as f64
                );
                next_report += total / 10;
            }
        }
    }
    cairn_engine::bench::catalog(ws).finish_run(&run_id, RunStatus::Succeeded, None)?;
    Ok(committed.len())
}

/// Every asset fresh, with every one of its `DAYS` partitions fresh.
fn check_all_fresh(statuses: &[AssetStatus], n: usize) -> BoxResult<()> {
    if statuses.len() != n {
        return Err(format!("status: expected {n} assets, got {}", statuses.len()).into());
    }
    for s in statuses {
        let Some(p) = &s.partitions else {
            return Err(format!("status: `{}` is not partitioned", s.name).into());
        };
        if s.state != AssetState::Fresh || p.total != DAYS || p.fresh != DAYS {
            let example = p
                .list
                .iter()
                .find(|u| u.state != AssetState::Fresh)
                .map(|u| {
                    let causes: Vec<String> = u.causes.iter().map(ToString::to_string).collect();
                    format!(
                        "; e.g. {} is {} ({})",
                        u.key,
                        u.state.as_str(),
                        causes.join(", ")
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "status: `{}` is {} with {} of {} partitions fresh (expected {DAYS}){example}",
                s.name,
                s.state.as_str(),
                p.fresh,
                p.total
            )
            .into());
        }
    }
    Ok(())
}

/// The stages of `Workspace::snapshot`, as it times them itself, and the
/// drop of what it built.
fn breakdown(ws: &Workspace) -> BoxResult<()> {
    let mut stages: Vec<(&'static str, Vec<Duration>)> = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..REPEATS {
        let (snapshot, timings) = ws.snapshot_timed()?;
        let t = Instant::now();
        drop(snapshot);
        let dropped = t.elapsed();
        counts = (timings.current_versions, timings.failures);
        for (i, (label, d)) in timings
            .stages
            .into_iter()
            .chain(std::iter::once(("drop of the snapshot", dropped)))
            .enumerate()
        {
            if stages.len() <= i {
                stages.push((label, Vec::with_capacity(REPEATS)));
            }
            stages[i].1.push(d);
        }
    }
    println!();
    println!(
        "  snapshot breakdown ({} current versions, {} failed units)   min / median of {REPEATS}",
        counts.0, counts.1
    );
    let mut sum = Duration::ZERO;
    for (label, times) in stages {
        let m = MinMedian::of(times);
        sum += m.median;
        println!("    {label:<52} {} / {}", ms(m.min), ms(m.median));
    }
    println!("    {:<52} {:>13}   {}", "sum of medians", "", ms(sum));
    Ok(())
}

struct PlanNumbers {
    plan: MinMedian,
    snapshot_plan: MinMedian,
}

fn bench_plan(m: usize) -> BoxResult<PlanNumbers> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    println!();
    println!("== planning: backfill of {m} assets x {DAYS} daily partitions, empty catalog ==");
    write_project(root, m)?;
    let t = Instant::now();
    let ws = Workspace::open(root)?;
    println!(
        "  Workspace::open                                      {}",
        ms(t.elapsed())
    );
    let t = Instant::now();
    let snapshot = ws.snapshot()?;
    println!(
        "  snapshot(), cold (hashes {DAYS} source partitions)      {}",
        ms(t.elapsed())
    );
    drop(snapshot);

    let opts = MaterializeOptions {
        selection: Vec::new(),
        force: false,
        jobs: 1,
        command: "bench: plan backfill".to_owned(),
        partitions: PartitionFilter::Range {
            from: FIRST_DAY.to_owned(),
            to: LAST_DAY.to_owned(),
        },
        backfill: None,
    };
    let expected = m * DAYS;
    let mut snapshots = Vec::with_capacity(REPEATS);
    let mut plans = Vec::with_capacity(REPEATS);
    let mut both = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let t = Instant::now();
        let snapshot = ws.snapshot()?;
        let snapped = t.elapsed();
        let t = Instant::now();
        let planned = plan(&ws, &snapshot, &opts)?;
        let planning = t.elapsed();
        snapshots.push(snapped);
        plans.push(planning);
        both.push(snapped + planning);
        if planned.run_set.len() != expected || planned.chosen.len() != expected {
            return Err(format!(
                "plan: expected {expected} units to run, got run_set {} (chosen {})",
                planned.run_set.len(),
                planned.chosen.len()
            )
            .into());
        }
        let missing = snapshot
            .statuses
            .iter()
            .filter(|s| s.state == AssetState::NeverMaterialized)
            .count();
        if missing != m {
            return Err(
                format!("plan: expected {m} never-materialized assets, got {missing}").into(),
            );
        }
    }
    let snapshots = MinMedian::of(snapshots);
    let plans = MinMedian::of(plans);
    let both = MinMedian::of(both);
    println!("  measured (run_set = {expected} units, checked)          min / median of {REPEATS}");
    println!(
        "    snapshot(), warm                        {} / {}",
        ms(snapshots.min),
        ms(snapshots.median)
    );
    println!(
        "    plan()                                  {} / {}   {}",
        ms(plans.min),
        ms(plans.median),
        verdict(m, TARGET_PLAN_ASSETS, plans.median, TARGET_PLAN)
    );
    println!(
        "    snapshot() + plan()                     {} / {}   {}",
        ms(both.min),
        ms(both.median),
        verdict(m, TARGET_PLAN_ASSETS, both.median, TARGET_PLAN)
    );
    Ok(PlanNumbers {
        plan: plans,
        snapshot_plan: both,
    })
}

/// The verdict against a target stated for `target_n` assets.
fn verdict(n: usize, target_n: usize, value: Duration, limit: Duration) -> String {
    if n != target_n {
        return format!(
            "(target < {} ms is for {target_n} assets)",
            limit.as_millis()
        );
    }
    target(value, limit)
}

fn asset_name(i: usize) -> String {
    format!("p{i:04}")
}

const PARTITIONS: &str = "{ type = \"daily\", start = \"2024-01-01\", end = \"2024-12-30\" }";

/// Writes `cairn.toml`, `data/events/date=*/part.csv` and `assets/*.sql`.
fn write_project(root: &Path, n: usize) -> BoxResult<()> {
    fs::create_dir_all(root.join("assets"))?;
    fs::write(
        root.join("cairn.toml"),
        format!(
            "[sources.events]\npath = \"data/events\"\nformat = \"csv\"\npartitions = {PARTITIONS}\n"
        ),
    )?;
    let first = NaiveDate::parse_from_str(FIRST_DAY, "%Y-%m-%d")?;
    for (i, day) in first.iter_days().take(DAYS).enumerate() {
        let day = day.format("%Y-%m-%d").to_string();
        let dir = root.join("data/events").join(format!("date={day}"));
        fs::create_dir_all(&dir)?;
        fs::write(
            dir.join("part.csv"),
            format!("event_date,amount\n{day},{i}\n{day},{}\n", i + 1),
        )?;
    }
    if first
        .iter_days()
        .nth(DAYS - 1)
        .map(|d| d.format("%Y-%m-%d").to_string())
        != Some(LAST_DAY.to_owned())
    {
        return Err(format!("{DAYS} days from {FIRST_DAY} do not end on {LAST_DAY}").into());
    }
    let header = format!(
        "--- [automation]\n--- cron = \"0 6 * * *\"\n--- on_missing = true\n--- on_upstream_change = true\n\
         --- [partitions]\n--- type = \"daily\"\n--- start = \"{FIRST_DAY}\"\n--- end = \"{LAST_DAY}\"\n"
    );
    for i in 0..n {
        let sql = if i == 0 {
            "select event_date, amount from events\n".to_owned()
        } else {
            format!("select * from {}\n", asset_name((i - 1) / 2))
        };
        fs::write(
            root.join("assets").join(format!("{}.sql", asset_name(i))),
            format!("{header}{sql}"),
        )?;
    }
    Ok(())
}
