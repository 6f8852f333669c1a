//! The peers' benchmark: the DAG dbt-duckdb, SQLMesh and Dagster were
//! measured on, run by the `cairn` binary as a user runs it, beside
//! DataFusion running the same SQL with no orchestration (the floor).
//!
//! ```text
//! cargo bench -p cairn-cli --bench peers -- [N ...] [--rows R] [--repeats K] [--keep DIR]
//! ```
//!
//! For each model count N (default `100 1000`), `peers/peers_dag.py`
//! (python3 with numpy and pyarrow) writes the project: a `raw_events`
//! Parquet source of R rows (default 1,000,000) and N SQL models, exactly
//! the peers' (seed 42). Then, timing each command's wall clock as the
//! peers' figures do (process start included):
//!
//! 1. **DataFusion floor**: every model's SQL in order on one default
//!    `SessionContext` (all cores per query), each written to Parquet and
//!    registered for the models that read it. K times, min / median.
//! 2. **full build**: `cairn materialize` on an empty catalog and
//!    warehouse, K times (both removed between), min / median. Each takes
//!    its turn right after a floor run, and the ratio printed is the median
//!    of the K turns' own ratios, so that the machine's slow spells fall on
//!    both sides.
//! 3. **no-op**: `cairn materialize` with nothing stale (5 times).
//! 4. **edit one model**: the peers' edited model gets a new threshold
//!    (variant k of K), then `cairn materialize`: the model and its
//!    downstream are rebuilt, or the model alone when the new threshold
//!    happens to drop no row (early cutoff).
//! 5. **what would run**: after a further edit, `cairn materialize
//!    --explain` (5 times), then the edit is undone.
//!
//! Checked, or the benchmark ends with an error: the full build wrote as
//! many rows as the floor, in every model; the no-op built nothing; an edit
//! rebuilt the edited model and nothing outside its downstream; `--explain`
//! named exactly them.
//!
//! `--keep DIR` generates into DIR and reuses the source there when it
//! already has R rows (generating 1M rows takes a second; 10M, ten).
//! Build with `--profile dev` for a quick check; the numbers worth quoting
//! are an optimized build's (the header says which).

#[path = "../../engine/benches/common/mod.rs"]
#[expect(
    dead_code,
    reason = "helpers shared by the benchmarks; this one uses a few"
)]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BoxResult, MinMedian, build_kind, parse_count};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// Repetitions of the quick commands (no-op, what would run).
const QUICK_REPEATS: usize = 5;

struct Args {
    counts: Vec<usize>,
    rows: usize,
    repeats: usize,
    keep: Option<PathBuf>,
}

fn parse_args() -> BoxResult<Args> {
    let mut args = Args {
        counts: Vec::new(),
        rows: 1_000_000,
        repeats: 1,
        keep: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rows" => args.rows = parse_count(&value("--rows")?)?,
            "--repeats" => args.repeats = parse_count(&value("--repeats")?)?,
            "--keep" => args.keep = Some(PathBuf::from(value("--keep")?)),
            // `--bench` (added by cargo) and anything else: ignored.
            a if a.starts_with('-') => {}
            a => args.counts.push(parse_count(a)?),
        }
    }
    if args.counts.is_empty() {
        args.counts = vec![100, 1000];
    }
    if args.counts.contains(&0) || args.rows == 0 || args.repeats == 0 {
        return Err("model counts, --rows and --repeats must be positive".into());
    }
    Ok(args)
}

fn main() -> BoxResult<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("the peers' DAG: cairn against DataFusion running the same SQL");
    println!(
        "  source rows: {}, model counts: {:?}, repeats: {}, cores: {cores}, build: {}",
        args.rows,
        args.counts,
        args.repeats,
        build_kind()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for &n in &args.counts {
        let temp = tempfile::tempdir()?;
        let out = match &args.keep {
            Some(dir) => dir.join(format!("n{n}")),
            None => temp.path().to_path_buf(),
        };
        bench_one(&runtime, n, &args, &out)?;
    }
    Ok(())
}

/// What `peers_dag.py` wrote.
struct Dag {
    project: PathBuf,
    models: Vec<String>,
    changed: String,
    /// The edited model and its downstream.
    rebuilt_by_edit: BTreeSet<String>,
    /// `variants/<changed>.<k>.sql`.
    variants: PathBuf,
}

fn generate(n: usize, rows: usize, out: &Path, variants: usize) -> BoxResult<Dag> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/peers_dag.py");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--n", &n.to_string(), "--rows", &rows.to_string()])
        .args(["--variants", &variants.to_string(), "--out"])
        .arg(out)
        .status()?;
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); it needs numpy and pyarrow",
            script.display()
        )
        .into());
    }
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("meta.json"))?)?;
    let changed = meta["changed"]
        .as_str()
        .ok_or("meta.json has no `changed`")?
        .to_owned();
    let mut rebuilt_by_edit: BTreeSet<String> = meta["downstream"]
        .as_array()
        .ok_or("meta.json has no `downstream`")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    rebuilt_by_edit.insert(changed.clone());
    let project = out.join("cairn");
    let mut models: Vec<String> = std::fs::read_dir(project.join("assets"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".sql")
                .map(str::to_owned)
        })
        .collect();
    // The generator names models in a topological order.
    models.sort();
    Ok(Dag {
        project,
        models,
        changed,
        rebuilt_by_edit,
        variants: out.join("variants"),
    })
}

fn bench_one(
    runtime: &tokio::runtime::Runtime,
    n: usize,
    args: &Args,
    out: &Path,
) -> BoxResult<()> {
    let t = Instant::now();
    let dag = generate(n, args.rows, out, args.repeats + 1)?;
    println!();
    println!(
        "== N = {n} models ({} source rows; generated in {:.1} s) ==",
        args.rows,
        t.elapsed().as_secs_f64()
    );
    println!("                                                 min / median of runs");

    // The floor and the full build take turns, so that a slow spell of
    // this (shared, noisy) machine falls on both; the ratio is the median
    // of each turn's own.
    let (mut floor, mut full, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut total_rows = 0;
    for _ in 0..args.repeats {
        let (floor_wall, floor_rows) =
            runtime.block_on(datafusion_floor(&dag, &out.join("floor")))?;
        let full_wall = full_build(&dag, n, &floor_rows)?;
        total_rows = floor_rows.iter().sum::<u64>();
        floor.push(floor_wall);
        full.push(full_wall);
        ratios.push(full_wall.as_secs_f64() / floor_wall.as_secs_f64().max(1e-9));
    }
    ratios.sort_by(f64::total_cmp);
    line(
        "DataFusion, the SQL run directly (the floor)",
        &MinMedian::of(floor),
        "",
    );
    line(
        "cairn: full build",
        &MinMedian::of(full),
        &format!(
            "({:.2}x the floor, median of turns)",
            ratios[ratios.len() / 2]
        ),
    );

    let mut noop = Vec::new();
    for _ in 0..QUICK_REPEATS {
        let (wall, report) = cairn(&dag.project, &["materialize"])?;
        if !materialized(&report)?.is_empty() {
            return Err("the no-op materialize built something".into());
        }
        noop.push(wall);
    }
    line("cairn: no-op", &MinMedian::of(noop), "");

    let asset_file = dag
        .project
        .join("assets")
        .join(format!("{}.sql", dag.changed));
    let original = std::fs::read(&asset_file)?;
    let variant = |k: usize| dag.variants.join(format!("{}.{k}.sql", dag.changed));
    let (mut edit, mut rebuilt) = (Vec::new(), Vec::new());
    for k in 1..=args.repeats {
        std::fs::copy(variant(k), &asset_file)?;
        let (wall, report) = cairn(&dag.project, &["materialize"])?;
        // Its downstream is rebuilt unless the edit left its rows as they
        // were (early cutoff: the peers rebuild it regardless).
        let built: BTreeSet<String> = materialized(&report)?.into_iter().map(|(m, _)| m).collect();
        if !built.contains(&dag.changed) || !built.is_subset(&dag.rebuilt_by_edit) {
            return Err(
                format!("the edit rebuilt {built:?}, not {:?}", dag.rebuilt_by_edit).into(),
            );
        }
        rebuilt.push(built.len());
        edit.push(wall);
    }
    line(
        "cairn: edit one model",
        &MinMedian::of(edit),
        &format!(
            "(rebuilt {rebuilt:?} of {}: it and its downstream)",
            dag.rebuilt_by_edit.len()
        ),
    );

    std::fs::copy(variant(args.repeats + 1), &asset_file)?;
    let mut what_if = Vec::new();
    for _ in 0..QUICK_REPEATS {
        let (wall, plan) = cairn(&dag.project, &["materialize", "--explain"])?;
        let to_build: BTreeSet<String> = plan["units"]
            .as_array()
            .ok_or("--explain printed no units")?
            .iter()
            .filter(|u| u["decision"] != "fresh")
            .filter_map(|u| u["asset"].as_str().map(str::to_owned))
            .collect();
        if to_build != dag.rebuilt_by_edit {
            return Err(format!(
                "--explain would build {to_build:?}, not {:?}",
                dag.rebuilt_by_edit
            )
            .into());
        }
        what_if.push(wall);
    }
    std::fs::write(&asset_file, original)?;
    line(
        "cairn: what would run (--explain)",
        &MinMedian::of(what_if),
        "",
    );
    println!("  rows written by the {n} models: {total_rows} (cairn and DataFusion alike)");
    Ok(())
}

/// One full build on an empty catalog and warehouse: its wall time, after
/// checking that every model wrote the floor's rows.
fn full_build(dag: &Dag, n: usize, floor_rows: &[u64]) -> BoxResult<Duration> {
    for dir in [".cairn", "warehouse"] {
        let path = dag.project.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(path)?;
        }
    }
    let (wall, report) = cairn(&dag.project, &["materialize"])?;
    let built = materialized(&report)?;
    if built.len() != n {
        return Err(format!("the full build materialized {} of {n} models", built.len()).into());
    }
    for (model, rows) in dag.models.iter().zip(floor_rows) {
        let cairn_rows = built.iter().find(|(m, _)| m == model).map(|(_, r)| *r);
        if cairn_rows != Some(*rows) {
            return Err(
                format!("{model}: cairn wrote {cairn_rows:?} rows, DataFusion {rows}").into(),
            );
        }
    }
    Ok(wall)
}

fn line(what: &str, m: &MinMedian, note: &str) {
    println!(
        "  {what:<46} {:>9.3} s / {:>9.3} s  {note}",
        m.min.as_secs_f64(),
        m.median.as_secs_f64()
    );
}

/// Runs `cairn --format json ARGS` in `project`: its wall time and JSON.
fn cairn(project: &Path, args: &[&str]) -> BoxResult<(Duration, serde_json::Value)> {
    let t = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .args(["--format", "json", "--project"])
        .arg(project)
        .output()?;
    let wall = t.elapsed();
    if !output.status.success() {
        return Err(format!(
            "cairn {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok((wall, serde_json::from_slice(&output.stdout)?))
}

/// The models a `materialize` report says it built, with their rows.
fn materialized(report: &serde_json::Value) -> BoxResult<Vec<(String, u64)>> {
    let results = report["results"]
        .as_array()
        .ok_or("no results in the report")?;
    Ok(results
        .iter()
        .filter(|r| r["outcome"] == "materialized")
        .filter_map(|r| Some((r["asset"].as_str()?.to_owned(), r["rows"].as_u64()?)))
        .collect())
}

/// Every model's SQL in order, each result written to `out/<model>.parquet`
/// and registered under its name: the wall time and each model's rows.
async fn datafusion_floor(dag: &Dag, out: &Path) -> BoxResult<(Duration, Vec<u64>)> {
    if out.exists() {
        std::fs::remove_dir_all(out)?;
    }
    std::fs::create_dir_all(out)?;
    let t = Instant::now();
    let ctx = SessionContext::new();
    let source = dag.project.join("data/raw_events.parquet");
    ctx.register_parquet(
        "raw_events",
        path_str(&source)?,
        ParquetReadOptions::default(),
    )
    .await?;
    let mut rows = Vec::with_capacity(dag.models.len());
    for model in &dag.models {
        let sql = std::fs::read_to_string(dag.project.join("assets").join(format!("{model}.sql")))?;
        let file = out.join(format!("{model}.parquet"));
        let written = ctx
            .sql(&sql)
            .await?
            .write_parquet(
                path_str(&file)?,
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await?;
        rows.push(written_rows(&written)?);
        ctx.register_parquet(
            model.as_str(),
            path_str(&file)?,
            ParquetReadOptions::default(),
        )
        .await?;
    }
    Ok((t.elapsed(), rows))
}

fn path_str(path: &Path) -> BoxResult<&str> {
    path.to_str()
        .ok_or_else(|| format!("not UTF-8: {}", path.display()).into())
}

/// The row count a DataFusion write returns (one `count` row).
fn written_rows(batches: &[datafusion::arrow::array::RecordBatch]) -> BoxResult<u64> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::UInt64Type;
    let counts: Option<Arc<dyn Array>> = batches.first().map(|b| Arc::clone(b.column(0)));
    counts
        .as_ref()
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .filter(|c| !c.is_empty())
        .map(|c| c.value(0))
        .ok_or_else(|| "DataFusion's write returned no row count".into())
}
