//! Orchestration overhead benchmark: how much time Cairn spends per asset
//! outside of DataFusion, and how fast a no-op `status` is on large projects.
//!
//! ```text
//! cargo bench -p cairn-engine --bench orchestration -- [N ...] [--rows R] [--no-row-changes] [--catalog URL] [--storage URL] [--engine URL]
//! cargo bench -p cairn-engine --bench orchestration -- --checks-overhead [N ...] [--rows R]
//! ```
//!
//! For each asset count N (default `100 1000`) it builds a temporary project
//! with one R-row Parquet source (default 1,000,000 rows) and N generated SQL
//! assets (`common/dag.rs`, shared with `cli/benches/serve.rs`):
//!
//! - `a0001`..`a0008` aggregate the source (the only heavy queries);
//! - every later asset `i` reads `a(i-8)` (eight parallel chains) and `a(i/2)`
//!   (fan-out / fan-in across the chains), alternating a join and a
//!   `union all` + group by; these tables hold ~1,000 rows each.
//!
//! It then measures a first full materialize (concurrent), a forced serial
//! materialize (`jobs = 1`, where "wall minus DataFusion time" is
//! meaningful: the headline overhead), a no-op materialize and no-op
//! `status` / `Workspace::open`.
//!
//! `--catalog URL` and `--storage URL` put the catalog and the outputs
//! elsewhere (`[catalog] url` / `[storage] url`): e.g. an empty PostgreSQL
//! database and an S3 bucket (with `AWS_*` in the environment), to compare
//! with the embedded SQLite and local files. `--engine df://HOST:PORT`
//! runs the queries on a Ballista cluster (`[engine] url`), e.g. the one
//! `cargo run -p cairn-cli --example ballista_cluster -- --executors 2`
//! hosts on this machine.
//!
//! With `--checks-overhead` (default N = 100) it instead builds the same
//! project twice, once without checks and once with three checks per asset
//! ([`CHECKS`]: every asset outputs `bucket, n, total`, one row per bucket),
//! and compares a cold first materialize and [`CHECK_REPEATS`] forced serial
//! materializes (`jobs = 1`, interleaved) of the two, against the target
//! "checks add < 20% to materialization time". It then splits the check
//! cost: `validate_before_run` before the run, and the check queries replayed
//! on every asset's committed output (plan / physical plan / execute).

mod common;
#[path = "common/dag.rs"]
mod dag;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_engine::NoProgress;
use cairn_engine::bench::read_only;
use cairn_engine::bench::{CommittedFile, new_session, register_committed};
use cairn_engine::{AssetOutcome, MaterializeOptions, RunReport, Workspace};
use common::{BoxResult, MinMedian, build_kind, ms, parse_count, target};
use dag::{LEVEL1, write_source};

/// Target: orchestration overhead per asset.
const TARGET_OVERHEAD: Duration = Duration::from_millis(5);
/// Target: no-op status on 1,000 assets.
const TARGET_STATUS_1000: Duration = Duration::from_millis(200);
/// Repetitions of the no-op status measurements.
const STATUS_REPEATS: usize = 5;
/// `--checks-overhead`: the checks declared on every asset. Every generated
/// asset outputs [`OUTPUT_COLUMNS`] with one row per `bucket`, and `total`
/// sums / averages non-negative amounts, so all three pass.
const CHECKS: [&str; 3] = [
    "not_null(bucket)",
    "unique(bucket)",
    "expression(total >= 0)",
];
/// The output columns of every generated asset.
const OUTPUT_COLUMNS: [&str; 3] = ["bucket", "n", "total"];
/// Target: checks add less than this fraction to materialization time.
const TARGET_CHECKS_OVERHEAD: f64 = 0.20;
/// Forced serial materializes per project in `--checks-overhead`.
const CHECK_REPEATS: usize = 3;

struct Args {
    counts: Vec<usize>,
    rows: usize,
    /// `--no-row-changes`: assets declare `count_row_changes = false`, to
    /// separate the rows-added/removed diff from the rest of a rebuild.
    no_row_changes: bool,
    /// `--checks-overhead`: compare materializing with and without checks.
    checks_overhead: bool,
    /// `--catalog URL` / `--storage URL` / `--engine URL`: `cairn.toml`
    /// lines for them.
    extra_toml: String,
}

fn parse_args() -> BoxResult<Args> {
    let mut counts = Vec::new();
    let mut rows = 1_000_000usize;
    let mut no_row_changes = false;
    let mut checks_overhead = false;
    let mut extra_toml = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--catalog" || arg == "--storage" || arg == "--engine" {
            let Some(url) = args.next() else {
                return Err(format!("{arg} needs a URL").into());
            };
            let table = arg.trim_start_matches('-');
            extra_toml.push_str(&format!("[{table}]\nurl = \"{url}\"\n"));
        } else if arg == "--rows" {
            let Some(v) = args.next() else {
                return Err("--rows needs a value".into());
            };
            rows = parse_count(&v)?;
        } else if let Some(v) = arg.strip_prefix("--rows=") {
            rows = parse_count(v)?;
        } else if arg == "--no-row-changes" {
            no_row_changes = true;
        } else if arg == "--checks-overhead" {
            checks_overhead = true;
        } else if arg.starts_with('-') {
            // `--bench` (added by cargo), `--profile-check` and anything else: ignored.
        } else {
            counts.push(parse_count(&arg)?);
        }
    }
    if counts.is_empty() {
        counts = if checks_overhead {
            vec![100]
        } else {
            vec![100, 1000]
        };
    }
    if counts.contains(&0) || rows == 0 {
        return Err("asset counts and --rows must be positive".into());
    }
    Ok(Args {
        counts,
        rows,
        no_row_changes,
        checks_overhead,
        extra_toml,
    })
}

fn main() -> BoxResult<()> {
    let args = parse_args()?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.checks_overhead {
        println!("cairn checks-overhead benchmark");
        println!(
            "  source rows: {}, asset counts: {:?}, checks per asset: {CHECKS:?}, jobs: 1, build: {}",
            args.rows,
            args.counts,
            build_kind()
        );
        for &n in &args.counts {
            runtime.block_on(bench_checks_overhead(n, &args))?;
        }
        return Ok(());
    }
    println!("cairn orchestration benchmark");
    println!(
        "  source rows: {}, asset counts: {:?}, concurrent jobs: {jobs}, build: {}",
        args.rows,
        args.counts,
        build_kind()
    );
    for &n in &args.counts {
        runtime.block_on(bench_one(n, &args, jobs))?;
    }
    Ok(())
}

async fn bench_one(n: usize, args: &Args, jobs: usize) -> BoxResult<()> {
    let rows = args.rows;
    let dir = tempfile::tempdir()?;
    let root = dir.path();

    let t = Instant::now();
    write_project(root, n, rows, args.no_row_changes, false, &args.extra_toml)?;
    let setup = t.elapsed();

    let t = Instant::now();
    let ws = Workspace::open(root)?;
    let first_open = t.elapsed();

    println!();
    println!(
        "== N = {n} assets ({rows} source rows, row-change counting {}) ==",
        if args.no_row_changes {
            "off"
        } else {
            "on (default)"
        }
    );
    println!(
        "  project setup (source parquet + {n} SQL files)   {}",
        ms(setup)
    );
    println!(
        "  first Workspace::open                              {}",
        ms(first_open)
    );

    // 1. First full materialize, concurrent.
    let (wall, report) = materialize(&ws, false, jobs, "bench: first").await?;
    let first = Sums::of(&report, n)?;
    println!();
    println!("  first materialize (everything, jobs = {jobs})");
    first.print(wall, n);

    // 2. Forced serial rebuild: the headline overhead.
    let (wall, report) = materialize(&ws, true, 1, "bench: forced serial").await?;
    let serial = Sums::of(&report, n)?;
    println!();
    println!("  forced materialize (everything, jobs = 1)  <- headline");
    serial.print(wall, n);

    // 3. No-op materialize.
    let (noop_wall, report) = materialize(&ws, false, jobs, "bench: no-op").await?;
    let fresh = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, AssetOutcome::Fresh { .. }))
        .count();
    if report.run_id.is_some() || fresh != n {
        return Err(format!(
            "no-op materialize was not a no-op: {fresh}/{n} fresh, run {:?}",
            report.run_id
        )
        .into());
    }

    // 4. A source change reaching every asset, rebuilt serially: what
    // counting rows added and removed costs on real changes.
    write_source(&root.join("data/events.parquet"), rows, 1)?;
    let (wall, report) = materialize(&ws, false, 1, "bench: source changed").await?;
    let changed = Sums::collect(&report);
    let (mut counted, mut added, mut removed) = (0usize, 0u64, 0u64);
    for r in &report.results {
        if let AssetOutcome::Materialized(m) = &r.outcome
            && let (Some(a), Some(d)) = (m.rows_added, m.rows_removed)
        {
            counted += 1;
            added += a;
            removed += d;
        }
    }
    println!();
    println!(
        "  after a source change ({} of {n} assets rebuilt, jobs = 1)",
        changed.materialized
    );
    changed.print(wall, n);
    println!(
        "    row changes counted                              {counted} assets, {added} rows added, {removed} removed"
    );
    println!(
        "    sum counting rows added / removed                {}   ({} / asset)",
        ms(changed.row_changes),
        ms(changed.row_changes / u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    );

    // 5. No-op status, on the open workspace and with a fresh open.
    let mut status = Vec::with_capacity(STATUS_REPEATS);
    let mut open = Vec::with_capacity(STATUS_REPEATS);
    let mut open_status = Vec::with_capacity(STATUS_REPEATS);
    for _ in 0..STATUS_REPEATS {
        let t = Instant::now();
        let statuses = ws.status(&[])?;
        status.push(t.elapsed());
        check_all_fresh(&statuses, n)?;

        let t = Instant::now();
        let reopened = Workspace::open(root)?;
        let opened = t.elapsed();
        let statuses = reopened.status(&[])?;
        open.push(opened);
        open_status.push(t.elapsed());
        check_all_fresh(&statuses, n)?;
    }
    // Where `Workspace::open` and a no-op materialize spend their time.
    let mut load = Vec::with_capacity(STATUS_REPEATS);
    let mut build = Vec::with_capacity(STATUS_REPEATS);
    let mut ancestors = Vec::with_capacity(STATUS_REPEATS);
    for _ in 0..STATUS_REPEATS {
        let t = Instant::now();
        let project = cairn_assets::Project::load(root)?;
        load.push(t.elapsed());
        let t = Instant::now();
        let graph = cairn_engine::AssetGraph::build(&project)?;
        build.push(t.elapsed());
        let t = Instant::now();
        let total: usize = project
            .assets
            .keys()
            .map(|a| graph.ancestors(a).len())
            .sum();
        ancestors.push(t.elapsed());
        std::hint::black_box(total);
    }
    let load = MinMedian::of(load);
    let build = MinMedian::of(build);
    let ancestors = MinMedian::of(ancestors);
    let status = MinMedian::of(status);
    let open = MinMedian::of(open);
    let open_status = MinMedian::of(open_status);

    println!();
    println!(
        "  no-op (nothing stale)                              min / median of {STATUS_REPEATS}"
    );
    println!(
        "    materialize (no-op)                              {}",
        ms(noop_wall)
    );
    println!(
        "    status (open workspace)                          {} / {}   {}",
        ms(status.min),
        ms(status.median),
        status_target(n, status.median)
    );
    println!(
        "    Workspace::open                                  {} / {}",
        ms(open.min),
        ms(open.median)
    );
    println!(
        "    open + status (what `cairn status` does)         {} / {}   {}",
        ms(open_status.min),
        ms(open_status.median),
        status_target(n, open_status.median)
    );
    println!(
        "      of open: Project::load (read + parse SQL)     {} / {}",
        ms(load.min),
        ms(load.median)
    );
    println!(
        "      of open: AssetGraph::build                    {} / {}",
        ms(build.min),
        ms(build.median)
    );
    println!(
        "    graph.ancestors() of every asset                 {} / {}   (materialize does this for its candidates)",
        ms(ancestors.min),
        ms(ancestors.median)
    );
    Ok(())
}

/// One materialize of a project: its wall time and per-asset sums.
struct Timed {
    wall: Duration,
    sums: Sums,
}

/// One number taken from a timed materialize.
type Component = fn(&Timed) -> Duration;

/// Wall-clock splits of one check query, summed over assets.
#[derive(Clone, Copy, Default)]
struct Phases {
    /// `SessionContext::sql`: parse and logical plan.
    logical: Duration,
    /// `SessionState::optimize`: analyzer and logical optimizer rules.
    optimize: Duration,
    /// `QueryPlanner::create_physical_plan`: physical plan and physical
    /// optimizer rules.
    physical: Duration,
    /// `collect`: execute (read the output back, filter / aggregate).
    execute: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.logical + self.optimize + self.physical + self.execute
    }

    fn add(&mut self, other: &Phases) {
        self.logical += other.logical;
        self.optimize += other.optimize;
        self.physical += other.physical;
        self.execute += other.execute;
    }
}

/// `--checks-overhead`: the same project without and with [`CHECKS`] on
/// every asset, cold and forced serial materializes of both.
async fn bench_checks_overhead(n: usize, args: &Args) -> BoxResult<()> {
    let rows = args.rows;
    let plain_dir = tempfile::tempdir()?;
    let checked_dir = tempfile::tempdir()?;
    let t = Instant::now();
    write_project(plain_dir.path(), n, rows, args.no_row_changes, false, "")?;
    write_project(checked_dir.path(), n, rows, args.no_row_changes, true, "")?;
    let setup = t.elapsed();
    let plain = Workspace::open(plain_dir.path())?;
    let checked = Workspace::open(checked_dir.path())?;

    println!();
    println!(
        "== N = {n} assets ({rows} source rows): no checks vs {} checks per asset, jobs = 1 ==",
        CHECKS.len()
    );
    println!(
        "  project setup (2 x source parquet + {n} SQL files)  {}",
        ms(setup)
    );

    // The projects declare what we think, and the checks name real columns.
    let names: BTreeSet<String> = checked.project().assets.keys().cloned().collect();
    for (name, asset) in &checked.project().assets {
        let declared: Vec<&str> = asset.checks.iter().map(|c| c.name.as_str()).collect();
        if declared != CHECKS {
            return Err(
                format!("{name}: declared checks {declared:?}, expected {CHECKS:?}").into(),
            );
        }
    }
    if let Some((name, _)) = plain
        .project()
        .assets
        .iter()
        .find(|(_, a)| !a.checks.is_empty())
    {
        return Err(format!("{name}: the project without checks declares checks").into());
    }
    let schemas = cairn_engine::bench::output_schemas(&checked, &names).await?;
    for name in &names {
        let columns: Vec<String> = schemas
            .get(name)
            .map(|s| s.fields().iter().map(|f| f.name().clone()).collect())
            .unwrap_or_default();
        if columns != OUTPUT_COLUMNS {
            return Err(format!(
                "{name}: output columns {columns:?}, the checks expect {OUTPUT_COLUMNS:?}"
            )
            .into());
        }
    }
    println!(
        "  every asset outputs ({}); checks: {}",
        OUTPUT_COLUMNS.join(", "),
        CHECKS.join(", ")
    );

    // 1. Cold first materialize of each (nothing committed yet).
    let (wall, report) = materialize(&plain, false, 1, "bench: cold, no checks").await?;
    expect_checks(&report, 0)?;
    let cold_plain = Timed {
        wall,
        sums: Sums::of(&report, n)?,
    };
    let (wall, report) = materialize(&checked, false, 1, "bench: cold, checks").await?;
    expect_checks(&report, CHECKS.len())?;
    let output_rows: u64 = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            AssetOutcome::Materialized(m) => Some(m.rows),
            _ => None,
        })
        .sum();
    let cold_checked = Timed {
        wall,
        sums: Sums::of(&report, n)?,
    };

    // 2. Forced serial rebuilds, interleaved (alternating which goes first)
    //    so that drift from other load on the machine hits both alike.
    let mut plain_runs = Vec::with_capacity(CHECK_REPEATS);
    let mut checked_runs = Vec::with_capacity(CHECK_REPEATS);
    let mut last_checked = None;
    for rep in 0..CHECK_REPEATS {
        for with_checks in [rep % 2 == 1, rep % 2 == 0] {
            if with_checks {
                let (wall, report) =
                    materialize(&checked, true, 1, "bench: forced, checks").await?;
                expect_checks(&report, CHECKS.len())?;
                checked_runs.push(Timed {
                    wall,
                    sums: Sums::of(&report, n)?,
                });
                last_checked = Some(report);
            } else {
                let (wall, report) =
                    materialize(&plain, true, 1, "bench: forced, no checks").await?;
                expect_checks(&report, 0)?;
                plain_runs.push(Timed {
                    wall,
                    sums: Sums::of(&report, n)?,
                });
            }
        }
    }
    let Some(last_checked) = last_checked else {
        return Err("no forced materialize with checks ran".into());
    };

    let plain_wall = MinMedian::of(plain_runs.iter().map(|r| r.wall).collect());
    let checked_wall = MinMedian::of(checked_runs.iter().map(|r| r.wall).collect());
    println!();
    println!(
        "  materialize (jobs = 1)                      without checks      with checks   overhead"
    );
    println!(
        "    cold first materialize                   {}    {}   {:>+7.1} %",
        ms(cold_plain.wall),
        ms(cold_checked.wall),
        ratio(cold_checked.wall, cold_plain.wall) * 100.0
    );
    let verdict = |r: f64| {
        format!(
            "target < {:.0} %: {}",
            TARGET_CHECKS_OVERHEAD * 100.0,
            if r < TARGET_CHECKS_OVERHEAD {
                "ok"
            } else {
                "MISSED"
            }
        )
    };
    let min_ratio = ratio(checked_wall.min, plain_wall.min);
    let median_ratio = ratio(checked_wall.median, plain_wall.median);
    println!(
        "    forced, min of {CHECK_REPEATS}                          {}    {}   {:>+7.1} %   {}",
        ms(plain_wall.min),
        ms(checked_wall.min),
        min_ratio * 100.0,
        verdict(min_ratio)
    );
    println!(
        "    forced, median of {CHECK_REPEATS}  <- headline          {}    {}   {:>+7.1} %   {}",
        ms(plain_wall.median),
        ms(checked_wall.median),
        median_ratio * 100.0,
        verdict(median_ratio)
    );
    let all = |runs: &[Timed]| {
        runs.iter()
            .map(|r| format!("{:.0}", r.wall.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "    (forced walls in ms, run order: without [{}], with [{}])",
        all(&plain_runs),
        all(&checked_runs)
    );

    // Per-component medians of the forced runs, and the cold runs.
    let median_of =
        |runs: &[Timed], f: Component| MinMedian::of(runs.iter().map(f).collect()).median;
    let components: [(&str, Component); 6] = [
        ("sum DataFusion (asset query)", |r| r.sums.datafusion),
        ("sum Parquet write", |r| r.sums.write),
        ("sum hashing", |r| r.sums.hashing),
        ("sum per-asset wall (before commit)", |r| r.sums.asset_wall),
        ("  of which not DF/write/hash", |r| {
            r.sums
                .asset_wall
                .saturating_sub(r.sums.datafusion + r.sums.write + r.sums.hashing)
        }),
        ("outside per-asset wall", |r| {
            r.wall.saturating_sub(r.sums.asset_wall)
        }),
    ];
    println!();
    println!(
        "  components                                  without checks      with checks   difference"
    );
    for &(label, f) in &components {
        let without = median_of(&plain_runs, f);
        let with = median_of(&checked_runs, f);
        println!(
            "    forced (median): {label:<34}{}    {}   {}",
            ms(without),
            ms(with),
            ms_signed(with, without)
        );
    }
    for &(label, f) in &components {
        let without = f(&cold_plain);
        let with = f(&cold_checked);
        println!(
            "    cold:            {label:<34}{}    {}   {}",
            ms(without),
            ms(with),
            ms_signed(with, without)
        );
    }

    // 3. Where the check time goes.
    // 3a. Before anything runs: validate_before_run plans every asset's query.
    let mut validate = Vec::with_capacity(CHECK_REPEATS);
    for _ in 0..CHECK_REPEATS {
        let t = Instant::now();
        cairn_engine::bench::validate_before_run(&checked, &names).await?;
        validate.push(t.elapsed());
    }
    let validate = MinMedian::of(validate);

    // 3b. The check queries on every asset's output, as `write_and_check`
    //     runs them: a fresh session, the output registered under the
    //     asset's name, `run_checks`. Then the same queries in another fresh
    //     session, split by phase.
    let now = chrono::Utc::now();
    let mut register = Duration::ZERO;
    let mut run_checks = Duration::ZERO;
    let mut phases = [Phases::default(); CHECKS.len()];
    let mut queries = 0usize;
    for result in &last_checked.results {
        let AssetOutcome::Materialized(m) = &result.outcome else {
            continue;
        };
        let name = result.asset.as_str();
        let Some(asset) = checked.project().assets.get(name) else {
            return Err(format!("{name}: not in the project").into());
        };

        // Sizes unknown here: registering HEADs them, as a reader without
        // the catalog would.
        let files: Vec<CommittedFile> = m.files.iter().map(CommittedFile::size_unknown).collect();
        let ctx = new_session(cairn_engine::bench::storage(&checked))?;
        let t = Instant::now();
        register_committed(
            &ctx,
            cairn_engine::bench::storage(&checked),
            name,
            &files,
            &[],
            false,
        )
        .await?;
        register += t.elapsed();
        let t = Instant::now();
        let outcomes = cairn_engine::bench::run_checks(
            &ctx,
            &asset.checks,
            name,
            now,
            &std::collections::HashMap::new(),
        )
        .await;
        run_checks += t.elapsed();
        if let Some(bad) = outcomes.iter().find(|c| !c.passed) {
            return Err(format!(
                "{name}: check {} did not pass on replay ({} failing rows, {:?})",
                bad.name, bad.failing_rows, bad.error
            )
            .into());
        }

        let ctx = new_session(cairn_engine::bench::storage(&checked))?;
        register_committed(
            &ctx,
            cairn_engine::bench::storage(&checked),
            name,
            &files,
            &[],
            false,
        )
        .await?;
        for (check, phase) in asset.checks.iter().zip(phases.iter_mut()) {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM ({}) AS __failing",
                cairn_engine::bench::failing_rows_sql(check, name, now)
            );
            let t = Instant::now();
            let df = ctx.sql_with_options(&sql, read_only()).await?;
            let planned = Instant::now();
            let (state, logical) = df.into_parts();
            let optimized = state.optimize(&logical)?;
            let optimized_at = Instant::now();
            let plan = state
                .query_planner()
                .create_physical_plan(&optimized, &state)
                .await?;
            let physical = Instant::now();
            let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
            let done = Instant::now();
            std::hint::black_box(batches);
            phase.logical += planned - t;
            phase.optimize += optimized_at - planned;
            phase.physical += physical - optimized_at;
            phase.execute += done - physical;
            queries += 1;
        }
    }
    let mut phase_total = Phases::default();
    for p in &phases {
        phase_total.add(p);
    }

    let per_query = |d: Duration| d / u32::try_from(queries.max(1)).unwrap_or(u32::MAX);
    println!();
    println!(
        "  where the check time goes ({n} assets x {} checks = {queries} queries; outputs hold {} rows per asset on average)",
        CHECKS.len(),
        output_rows / u64::try_from(n).unwrap_or(1).max(1)
    );
    println!(
        "    validate_before_run before the run (plans all {n} asset queries)  min / median {} / {}",
        ms(validate.min),
        ms(validate.median)
    );
    println!(
        "    read back the written output (engine does it with or without checks)   {}",
        ms(register)
    );
    println!(
        "    run_checks on every asset's output (replayed)                  {}   ({} / query)",
        ms(run_checks),
        ms(per_query(run_checks))
    );
    println!(
        "    split by phase, fresh session   parse + logical    logical optimize   physical plan          execute            total"
    );
    for (label, p) in CHECKS
        .iter()
        .zip(phases.iter())
        .chain(std::iter::once((&"all checks", &phase_total)))
    {
        println!(
            "      {label:<24}{}    {}    {}    {}    {}",
            ms(p.logical),
            ms(p.optimize),
            ms(p.physical),
            ms(p.execute),
            ms(p.total())
        );
    }
    // The same overhead from the components checks can touch (per-asset
    // time outside DataFusion / write / hashing, and time outside the
    // per-asset walls), which leaves out run-to-run noise in the asset
    // queries themselves.
    let extra = |runs: &[Timed]| {
        MinMedian::of(
            runs.iter()
                .map(|r| {
                    let s = &r.sums;
                    s.asset_wall
                        .saturating_sub(s.datafusion + s.write + s.hashing)
                        + r.wall.saturating_sub(s.asset_wall)
                })
                .collect(),
        )
        .median
    };
    let extra_delta = extra(&checked_runs).saturating_sub(extra(&plain_runs));
    let extra_ratio = extra_delta.as_secs_f64() / plain_wall.median.as_secs_f64().max(1e-9);
    println!(
        "    overhead from components: (median non-DF/write/hash time with - without) / median wall without = {} / {} = {:+.1} %   {}",
        ms(extra_delta).trim_start(),
        ms(plain_wall.median).trim_start(),
        extra_ratio * 100.0,
        verdict(extra_ratio)
    );
    let delta = checked_wall.median.as_secs_f64() - plain_wall.median.as_secs_f64();
    let rest = delta - validate.median.as_secs_f64() - run_checks.as_secs_f64();
    println!(
        "    forced median difference {:.2} ms = validate_before_run {:.2} ms + check queries {:.2} ms + rest {:.2} ms (recording results, noise)",
        delta * 1e3,
        validate.median.as_secs_f64() * 1e3,
        run_checks.as_secs_f64() * 1e3,
        rest * 1e3
    );
    Ok(())
}

/// Every materialized asset ran `expected` checks and all passed.
fn expect_checks(report: &RunReport, expected: usize) -> BoxResult<()> {
    for r in &report.results {
        let AssetOutcome::Materialized(m) = &r.outcome else {
            return Err(format!("{}: not materialized", r.asset).into());
        };
        if m.checks.len() != expected {
            return Err(format!(
                "{}: {} check results, expected {expected}",
                r.asset,
                m.checks.len()
            )
            .into());
        }
        if let Some(bad) = m.checks.iter().find(|c| !c.passed) {
            return Err(format!(
                "{}: check {} failed ({} rows)",
                r.asset, bad.name, bad.failing_rows
            )
            .into());
        }
    }
    Ok(())
}

/// `(with - without) / without`.
fn ratio(with: Duration, without: Duration) -> f64 {
    let base = without.as_secs_f64();
    if base > 0.0 {
        (with.as_secs_f64() - base) / base
    } else {
        0.0
    }
}

fn ms_signed(with: Duration, without: Duration) -> String {
    format!(
        "{:>+10.2} ms",
        (with.as_secs_f64() - without.as_secs_f64()) * 1e3
    )
}

async fn materialize(
    ws: &Workspace,
    force: bool,
    jobs: usize,
    command: &str,
) -> BoxResult<(Duration, RunReport)> {
    let opts = MaterializeOptions {
        selection: Vec::new(),
        force,
        jobs,
        command: command.to_owned(),
        partitions: cairn_engine::PartitionFilter::All,
        backfill: None,
    };
    let t = Instant::now();
    let report = ws.materialize(&opts, &NoProgress).await?;
    let wall = t.elapsed();
    if let Some(failed) = report.results.iter().find_map(|r| match &r.outcome {
        AssetOutcome::Failed { error, .. } => Some(format!("{}: {error}", r.asset)),
        AssetOutcome::Skipped { upstream, .. } => {
            Some(format!("{}: skipped, upstream {upstream} failed", r.asset))
        }
        _ => None,
    }) {
        return Err(format!("{command}: {failed}").into());
    }
    Ok((wall, report))
}

fn check_all_fresh(statuses: &[cairn_engine::AssetStatus], n: usize) -> BoxResult<()> {
    let fresh = statuses
        .iter()
        .filter(|s| s.state == cairn_engine::AssetState::Fresh)
        .count();
    if statuses.len() != n || fresh != n {
        return Err(format!(
            "status: expected {n} fresh assets, got {fresh} of {}",
            statuses.len()
        )
        .into());
    }
    Ok(())
}

/// Per-asset durations of a run, summed.
struct Sums {
    materialized: usize,
    asset_wall: Duration,
    datafusion: Duration,
    write: Duration,
    hashing: Duration,
    row_changes: Duration,
    level1_datafusion: Duration,
    slowest: Option<(String, Duration)>,
}

impl Sums {
    fn of(report: &RunReport, n: usize) -> BoxResult<Sums> {
        let s = Sums::collect(report);
        if s.materialized != n {
            return Err(format!("expected {n} materialized assets, got {}", s.materialized).into());
        }
        Ok(s)
    }

    /// Sums over the materialized assets, however many.
    fn collect(report: &RunReport) -> Sums {
        let mut s = Sums {
            materialized: 0,
            asset_wall: Duration::ZERO,
            datafusion: Duration::ZERO,
            write: Duration::ZERO,
            hashing: Duration::ZERO,
            row_changes: Duration::ZERO,
            level1_datafusion: Duration::ZERO,
            slowest: None,
        };
        for r in &report.results {
            if let AssetOutcome::Materialized(m) = &r.outcome {
                s.materialized += 1;
                s.asset_wall += m.wall;
                s.datafusion += m.datafusion;
                s.write += m.write;
                s.hashing += m.hashing;
                s.row_changes += m.row_changes;
                if level(&r.asset) <= LEVEL1 {
                    s.level1_datafusion += m.datafusion;
                }
                if s.slowest.as_ref().is_none_or(|(_, w)| m.wall > *w) {
                    s.slowest = Some((r.asset.clone(), m.wall));
                }
            }
        }
        s
    }

    fn print(&self, wall: Duration, n: usize) {
        let work = self.datafusion + self.write + self.hashing;
        let in_build_other = self.asset_wall.saturating_sub(work);
        let outside_build = wall.saturating_sub(self.asset_wall);
        let per = |d: Duration| d / u32::try_from(n).unwrap_or(u32::MAX);
        println!(
            "    total wall                                       {}",
            ms(wall)
        );
        println!(
            "    sum DataFusion (plan + execute)                  {}   (level-1 source scans: {})",
            ms(self.datafusion),
            ms(self.level1_datafusion)
        );
        println!(
            "    sum Parquet write                                {}",
            ms(self.write)
        );
        println!(
            "    sum hashing                                      {}",
            ms(self.hashing)
        );
        println!(
            "    sum per-asset wall (before commit)               {}   (of which not DF/write/hash: {})",
            ms(self.asset_wall),
            ms(in_build_other)
        );
        println!(
            "    outside per-asset wall (snapshot, commit, ...)  {}   ({} / asset)",
            ms(outside_build),
            ms(per(outside_build))
        );
        if let Some((name, w)) = &self.slowest {
            println!(
                "    slowest asset                                    {name} {}",
                ms(*w)
            );
        }
        let overhead = per(wall.saturating_sub(self.datafusion));
        let strict = per(wall.saturating_sub(work));
        println!(
            "    overhead / asset: (wall - DF) / N                {}   {}",
            ms(overhead),
            target(overhead, TARGET_OVERHEAD)
        );
        println!(
            "    overhead / asset: (wall - DF - write - hash) / N {}   {}",
            ms(strict),
            target(strict, TARGET_OVERHEAD)
        );
        if self.datafusion > wall {
            println!(
                "    (summed DataFusion time exceeds wall: assets ran concurrently, subtraction saturates)"
            );
        }
    }
}

fn status_target(n: usize, value: Duration) -> String {
    if n == 1000 {
        target(value, TARGET_STATUS_1000)
    } else {
        format!(
            "(target < {} ms is for 1,000 assets)",
            TARGET_STATUS_1000.as_millis()
        )
    }
}

/// The number in an asset name (`a0012` -> 12).
fn level(name: &str) -> usize {
    name.trim_start_matches('a').parse().unwrap_or(usize::MAX)
}

/// Writes the [`dag`] project; with `checks`, every asset declares
/// [`CHECKS`].
fn write_project(
    root: &Path,
    n: usize,
    rows: usize,
    no_row_changes: bool,
    checks: bool,
    extra_toml: &str,
) -> BoxResult<()> {
    let mut header = String::new();
    if no_row_changes {
        header.push_str("--- count_row_changes = false\n");
    }
    if checks {
        let list: Vec<String> = CHECKS.iter().map(|c| format!("\"{c}\"")).collect();
        header.push_str(&format!("--- checks = [{}]\n", list.join(", ")));
    }
    dag::write_project(root, n, rows, &header, extra_toml)
}
