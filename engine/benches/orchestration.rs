//! Orchestration overhead benchmark: how much time Cairn spends per asset
//! outside of DataFusion, and how fast a no-op `status` is on large projects.
//!
//! ```text
//! cargo bench -p cairn-engine --bench orchestration -- [N ...] [--rows R] [--no-row-changes]
//! cargo bench -p cairn-engine --bench orchestration -- --checks-overhead [N ...] [--rows R]
//! ```
//!
//! For each asset count N (default `100 1000`) it builds a temporary project
//! with one R-row Parquet source (default 1,000,000 rows) and N generated SQL
//! assets:
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
//! With `--checks-overhead` (default N = 100) it instead builds the same
//! project twice, once without checks and once with three checks per asset
//! ([`CHECKS`]: every asset outputs `bucket, n, total`, one row per bucket),
//! and compares a cold first materialize and [`CHECK_REPEATS`] forced serial
//! materializes (`jobs = 1`, interleaved) of the two, against the target
//! "checks add < 20% to materialization time". It then splits the check
//! cost: `validate_checks` before the run, and the check queries replayed
//! on every asset's committed output (plan / physical plan / execute).

use std::collections::BTreeSet;
use std::error::Error;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_engine::run::NoProgress;
use cairn_engine::{AssetOutcome, MaterializeOptions, RunReport, Workspace};
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{SessionConfig, SessionContext};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Level-1 assets: the ones that read the big source.
const LEVEL1: usize = 8;
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
}

fn parse_args() -> BoxResult<Args> {
    let mut counts = Vec::new();
    let mut rows = 1_000_000usize;
    let mut no_row_changes = false;
    let mut checks_overhead = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rows" {
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
    })
}

fn parse_count(s: &str) -> BoxResult<usize> {
    s.replace('_', "")
        .parse::<usize>()
        .map_err(|e| format!("not a count: `{s}` ({e})").into())
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
    write_project(root, n, rows, args.no_row_changes, false)?;
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

    // 4. No-op status, on the open workspace and with a fresh open.
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
    level1_datafusion: Duration,
    slowest: Option<(String, Duration)>,
}

impl Sums {
    fn of(report: &RunReport, n: usize) -> BoxResult<Sums> {
        let mut s = Sums {
            materialized: 0,
            asset_wall: Duration::ZERO,
            datafusion: Duration::ZERO,
            write: Duration::ZERO,
            hashing: Duration::ZERO,
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
                if level(&r.asset) <= LEVEL1 {
                    s.level1_datafusion += m.datafusion;
                }
                if s.slowest.as_ref().is_none_or(|(_, w)| m.wall > *w) {
                    s.slowest = Some((r.asset.clone(), m.wall));
                }
            }
        }
        if s.materialized != n {
            return Err(format!("expected {n} materialized assets, got {}", s.materialized).into());
        }
        Ok(s)
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

struct MinMedian {
    min: Duration,
    median: Duration,
}

impl MinMedian {
    fn of(mut v: Vec<Duration>) -> MinMedian {
        v.sort();
        MinMedian {
            min: v.first().copied().unwrap_or_default(),
            median: v.get(v.len() / 2).copied().unwrap_or_default(),
        }
    }
}

fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "debug assertions ON (unoptimized profile: numbers are pessimistic)"
    } else {
        "optimized"
    }
}

fn ms(d: Duration) -> String {
    format!("{:>10.2} ms", d.as_secs_f64() * 1e3)
}

fn target(value: Duration, limit: Duration) -> String {
    let verdict = if value < limit { "ok" } else { "MISSED" };
    format!("target < {} ms: {verdict}", limit.as_millis())
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

fn asset_name(i: usize) -> String {
    format!("a{i:04}")
}

/// Writes `cairn.toml`, `data/events.parquet` and `assets/*.sql`; with
/// `checks`, every asset declares [`CHECKS`].
fn write_project(
    root: &Path,
    n: usize,
    rows: usize,
    no_row_changes: bool,
    checks: bool,
) -> BoxResult<()> {
    let mut header = String::new();
    if no_row_changes {
        header.push_str("--- count_row_changes = false\n");
    }
    if checks {
        let list: Vec<String> = CHECKS.iter().map(|c| format!("\"{c}\"")).collect();
        header.push_str(&format!("--- checks = [{}]\n", list.join(", ")));
    }
    fs::create_dir_all(root.join("data"))?;
    fs::create_dir_all(root.join("assets"))?;
    fs::write(
        root.join("cairn.toml"),
        "[sources.events]\npath = \"data/events.parquet\"\n",
    )?;
    write_source(&root.join("data/events.parquet"), rows)?;
    for i in 1..=n {
        fs::write(
            root.join("assets").join(format!("{}.sql", asset_name(i))),
            format!("{header}{}", asset_sql(i)),
        )?;
    }
    Ok(())
}

/// The SQL of asset `i` (1-based).
fn asset_sql(i: usize) -> String {
    if i <= LEVEL1 {
        // `id / 1000` rather than `id` so that every level-1 asset covers all
        // 1,000 buckets and the joins downstream are not empty.
        return format!(
            "select bucket, count(*) as n, sum(amount) as total\nfrom events\nwhere (id / 1000) % {LEVEL1} = {}\ngroup by bucket\n",
            i - 1
        );
    }
    let p = asset_name(i - LEVEL1);
    let q = asset_name(i / 2);
    if p == q {
        return format!("select bucket, n, total from {p}\n");
    }
    if i.is_multiple_of(2) {
        format!(
            "select p.bucket, (p.n + q.n) / 2 as n, (p.total + q.total) / 2 as total\nfrom {p} as p\njoin {q} as q on p.bucket = q.bucket\n"
        )
    } else {
        format!(
            "select bucket, max(n) as n, min(total) as total\nfrom (\n    select bucket, n, total from {p}\n    union all\n    select bucket, n, total from {q}\n) as u\ngroup by bucket\n"
        )
    }
}

/// `id Int64`, `bucket Int64 = id % 1000`, `amount Float64`.
fn write_source(path: &Path, rows: usize) -> BoxResult<()> {
    const BATCH: usize = 65_536;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("bucket", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let file = fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None)?;
    let mut start = 0usize;
    while start < rows {
        let end = (start + BATCH).min(rows);
        let ids: Vec<i64> = (start..end)
            .map(|i| i64::try_from(i).unwrap_or(i64::MAX))
            .collect();
        let buckets: Vec<i64> = ids.iter().map(|id| id % 1000).collect();
        let amounts: Vec<f64> = ids
            .iter()
            .map(|id| ((id * 7919) % 10_000) as f64 / 100.0)
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int64Array::from(buckets)),
                Arc::new(Float64Array::from(amounts)),
            ],
        )?;
        writer.write(&batch)?;
        start = end;
    }
    writer.close()?;
    Ok(())
}
