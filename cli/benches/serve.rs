//! `cairn serve` benchmark: what a Status call costs through the server,
//! how fast the run queue drains single-asset runs, and what going through
//! the queue adds to a run compared with the CLI and the engine in-process.
//!
//! ```text
//! cargo bench -p cairn-cli --profile dev --bench serve -- \
//!     [--assets N] [--runs R] [--status-calls K] [--sequential S] [--submitters C]
//!     [--rows ROWS] [--keep DIR]
//! ```
//!
//! (`--profile dev`: an optimized build of this workspace takes most of an
//! hour on a small machine; the header says which build measured.)
//!
//! It generates the orchestration benchmark's project
//! (`engine/benches/common/dag.rs`: N SQL assets, default 1,000, over one
//! Parquet source of ROWS rows, default 10,000; tables of ~1,000 rows) with
//! `[server] max_concurrent_runs = 4`, materializes it once in-process,
//! starts `cairn serve --listen 127.0.0.1:0` as a child process (the
//! address from its "listening on" line) and talks to it with the Rust
//! tonic client:
//!
//! 1. **Status** (target < 50 ms for 1,000 assets, warm): K round trips
//!    (default 50) after a warm-up, min / median / p95, alternating with
//!    the same work in-process, `Workspace::open` + `status` (which the
//!    server does for every request), and a health Check round trip (the
//!    gRPC floor: a call that does no work); what is left of the round
//!    trip is the server's own.
//! 2. **Queue throughput**: R Materialize requests (default 200), each
//!    `force` for a different single asset (the last R assets), submitted
//!    as fast as possible (C calls in flight, default 4), each watched
//!    (WatchRun) to `finished`; the submit rate, the drain time, runs/s
//!    and how many runs executed at once (from the runs' event times).
//!    Checked: every run succeeded and built exactly its one unit (its
//!    events; ListRuns; one committed materialization per run in
//!    `cairn.materializations`), and never more than 4 ran at once.
//! 3. **Per-run overhead**: S single-asset forced runs (default
//!    min(20, R)), one at a time, each three ways (order rotated): through
//!    the queue (submit -> `finished` seen by the client), `cairn
//!    materialize ASSET --force` as a process, and in-process
//!    `Workspace::open` + `Workspace::materialize`; the per-run differences
//!    and where a queued run's time goes (from the run's event times).
//!    Checked: each asset gained exactly three committed versions.
//!
//! `--keep DIR` writes and materializes the project in DIR once and reuses
//! it on later runs (it must hold N assets, all fresh). Any failed check
//! ends the benchmark with an error: it never reports numbers for work that
//! did not happen.

#[path = "../../engine/benches/common/mod.rs"]
mod common;
#[path = "../../engine/benches/common/dag.rs"]
mod dag;
#[path = "common/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cairn_engine::{
    AssetOutcome, AssetState, MaterializeOptions, NoProgress, PartitionFilter, Workspace,
};
use cairn_proto::v1 as pb;
use cairn_proto::v1::cairn_client::CairnClient;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, Int64Array, StringArray};
use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use common::{BoxResult, MinMedian, build_kind, ms, parse_count, target};
use dag::asset_name;
use server::{SERVER_ENV, Server};

/// `[server] max_concurrent_runs` of the generated project.
const MAX_CONCURRENT_RUNS: usize = 4;
/// Target: a Status round trip on 1,000 assets, warm.
const TARGET_STATUS: Duration = Duration::from_millis(50);
/// The asset count the Status target is stated for.
const TARGET_STATUS_ASSETS: usize = 1000;
/// Untimed Status calls before the timed ones.
const STATUS_WARMUP: usize = 3;
/// The WatchRun events that end a unit.
const UNIT_OUTCOMES: [&str; 5] = ["built", "early_cutoff", "fresh", "failed", "skipped"];
/// How long a single run may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: serve [--assets N] [--runs R] [--status-calls K] [--sequential S] [--submitters C] [--rows ROWS] [--keep DIR]";

struct Args {
    assets: usize,
    runs: usize,
    status_calls: usize,
    sequential: usize,
    submitters: usize,
    rows: usize,
    keep: Option<PathBuf>,
}

fn parse_args() -> BoxResult<Args> {
    let mut out = Args {
        assets: 1000,
        runs: 200,
        status_calls: 50,
        sequential: 0,
        submitters: 4,
        rows: 10_000,
        keep: None,
    };
    let mut sequential = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        // Added by `cargo bench`.
        if flag == "--bench" {
            continue;
        }
        let known = [
            "--assets",
            "--runs",
            "--status-calls",
            "--sequential",
            "--submitters",
            "--rows",
            "--keep",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown argument `{arg}`\n{USAGE}").into());
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?,
        };
        match flag.as_str() {
            "--keep" => out.keep = Some(value.into()),
            "--assets" => out.assets = parse_count(&value)?,
            "--runs" => out.runs = parse_count(&value)?,
            "--status-calls" => out.status_calls = parse_count(&value)?,
            "--sequential" => sequential = Some(parse_count(&value)?),
            "--submitters" => out.submitters = parse_count(&value)?,
            _ => out.rows = parse_count(&value)?,
        }
    }
    out.sequential = sequential.unwrap_or(out.runs.min(20));
    if [
        out.assets,
        out.runs,
        out.status_calls,
        out.sequential,
        out.rows,
    ]
    .contains(&0)
    {
        return Err(format!("every count must be positive\n{USAGE}").into());
    }
    if out.runs > out.assets || out.sequential > out.assets {
        return Err(format!(
            "--runs ({}) and --sequential ({}) name one asset per run: at most --assets ({})",
            out.runs, out.sequential, out.assets
        )
        .into());
    }
    Ok(out)
}

fn main() -> BoxResult<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("cairn serve benchmark");
    println!(
        "  assets: {}, source rows: {}, status calls: {}, queued runs: {} (max_concurrent_runs = {MAX_CONCURRENT_RUNS}, {} submitting at once), sequential runs: {}",
        args.assets, args.rows, args.status_calls, args.runs, args.submitters, args.sequential
    );
    println!(
        "  build: {}; cores: {cores}; load average at start: {}",
        build_kind(),
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(&args, cores))?;
    println!();
    println!("  load average at end: {}", load_average());
    Ok(())
}

async fn bench(args: &Args, cores: usize) -> BoxResult<()> {
    let temp = tempfile::tempdir()?;
    let root = args.keep.as_deref().unwrap_or(temp.path()).to_path_buf();
    prepare_project(&root, args, cores).await?;

    let server = Server::start(&root)?;
    let channel = Endpoint::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await?;
    let mut client = CairnClient::new(channel.clone());
    println!("  server: {} (pid {})", server.addr, server.child.id());

    bench_status(&mut client, HealthClient::new(channel), &root, args).await?;
    bench_queue(&client, &root, args).await?;
    bench_sequential(&client, &root, args).await?;

    // Forced rebuilds of identical logic give identical data versions:
    // everything is still fresh.
    let status = client
        .status(pb::StatusRequest::default())
        .await?
        .into_inner();
    expect_fresh(&status, args.assets)?;
    drop(client);
    server.stop()
}

/// Writes and materializes the project in `root`, or checks that a kept
/// one holds `args.assets` fresh assets.
async fn prepare_project(root: &Path, args: &Args, cores: usize) -> BoxResult<()> {
    let n = args.assets;
    if root.join("cairn.toml").exists() {
        let ws = Workspace::open(root)?;
        let statuses = ws.status(&[])?;
        let fresh = statuses
            .iter()
            .filter(|s| s.state == AssetState::Fresh)
            .count();
        if statuses.len() != n || fresh != n {
            return Err(format!(
                "{}: a kept project of {} assets ({fresh} fresh); expected {n} fresh assets (remove it, or pass --assets {})",
                root.display(),
                statuses.len(),
                statuses.len()
            )
            .into());
        }
        println!("  project: {} (kept, {n} assets fresh)", root.display());
        return Ok(());
    }
    let t = Instant::now();
    dag::write_project(
        root,
        n,
        args.rows,
        "",
        &format!("\n[server]\nmax_concurrent_runs = {MAX_CONCURRENT_RUNS}\n"),
    )?;
    let written = t.elapsed();
    let t = Instant::now();
    let ws = Workspace::open(root)?;
    let report = ws
        .materialize(
            &MaterializeOptions {
                selection: Vec::new(),
                force: false,
                jobs: cores,
                command: "bench: first materialize".to_owned(),
                partitions: PartitionFilter::All,
                backfill: None,
            },
            &NoProgress,
        )
        .await?;
    let built = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, AssetOutcome::Materialized(_)))
        .count();
    if built != n {
        return Err(format!("first materialize: {built} of {n} assets materialized").into());
    }
    println!(
        "  project: {} (written in {}, first materialize {}, jobs = {cores})",
        root.display(),
        ms(written).trim_start(),
        ms(t.elapsed()).trim_start()
    );
    Ok(())
}

/// 1. Status round trips against in-process open + status.
async fn bench_status(
    client: &mut CairnClient<Channel>,
    mut health: HealthClient<Channel>,
    root: &Path,
    args: &Args,
) -> BoxResult<()> {
    let n = args.assets;
    // The floor: a call on the same connection that does no work.
    let check = || HealthCheckRequest {
        service: "cairn.v1.Cairn".to_owned(),
    };
    for _ in 0..STATUS_WARMUP {
        health.check(check()).await?;
    }
    let mut floor = Vec::with_capacity(args.status_calls);
    for _ in 0..args.status_calls {
        let t = Instant::now();
        let reply = health.check(check()).await?.into_inner();
        floor.push(t.elapsed());
        if reply.status != 1 {
            return Err(format!(
                "health check: status {}, expected SERVING (1)",
                reply.status
            )
            .into());
        }
    }
    for _ in 0..STATUS_WARMUP {
        let reply = client.status(pb::StatusRequest::default()).await?;
        expect_fresh(&reply.into_inner(), n)?;
    }
    // Round trips and in-process runs alternate, so that other work on
    // the machine weighs on both alike.
    let mut round_trips = Vec::with_capacity(args.status_calls);
    let mut open = Vec::with_capacity(args.status_calls);
    let mut status = Vec::with_capacity(args.status_calls);
    let mut both = Vec::with_capacity(args.status_calls);
    for _ in 0..args.status_calls {
        let t = Instant::now();
        let reply = client.status(pb::StatusRequest::default()).await?;
        round_trips.push(t.elapsed());
        expect_fresh(&reply.into_inner(), n)?;

        let t = Instant::now();
        let ws = Workspace::open(root)?;
        let opened = t.elapsed();
        let statuses = ws.status(&[])?;
        let total = t.elapsed();
        open.push(opened);
        status.push(total - opened);
        both.push(total);
        let fresh = statuses
            .iter()
            .filter(|s| s.state == AssetState::Fresh)
            .count();
        if statuses.len() != n || fresh != n {
            return Err(format!(
                "in-process status: {fresh} of {} fresh, expected {n}",
                statuses.len()
            )
            .into());
        }
    }
    let rtt = Spread::of(round_trips);
    let floor = Spread::of(floor);
    let open = Spread::of(open);
    let status = Spread::of(status);
    let both = Spread::of(both);
    println!();
    println!(
        "== 1. Status, {n} assets (warm: {STATUS_WARMUP} calls first; {} timed) ==",
        args.status_calls
    );
    Spread::header();
    rtt.row(
        "gRPC Status round trip (tonic client)",
        &if n == TARGET_STATUS_ASSETS {
            target(rtt.median, TARGET_STATUS)
        } else {
            format!(
                "(target < {} ms is for {TARGET_STATUS_ASSETS} assets)",
                TARGET_STATUS.as_millis()
            )
        },
    );
    floor.row("gRPC health Check round trip (no work)", "");
    both.row("in-process Workspace::open + status", "");
    open.row("  of which Workspace::open", "");
    status.row("  of which status(&[])", "");
    println!(
        "  in-process open + status is {:.0} % of the median round trip (the server opens the project per request), the no-work floor {:.0} %; round trip - both: {} (conversion, encoding, scheduling, waiting in the server)",
        share(both.median, rtt.median) * 100.0,
        share(floor.median, rtt.median) * 100.0,
        signed_ms(rtt.median, both.median + floor.median)
    );
    Ok(())
}

/// What a watcher saw of one run.
struct Watched {
    run_id: String,
    asset: String,
    /// When the client received `finished`.
    finished: Instant,
    events: Vec<pb::RunEvent>,
}

/// Watches `run_id` to its `finished` event.
async fn watch(
    mut client: CairnClient<Channel>,
    run_id: String,
    asset: String,
) -> Result<Watched, String> {
    let fail = |e: tonic::Status| format!("WatchRun {run_id} ({asset}): {e}");
    let mut stream = client
        .watch_run(watch_request(&run_id))
        .await
        .map_err(fail)?
        .into_inner();
    let mut events = Vec::new();
    let within = tokio::time::timeout(RUN_TIMEOUT, async {
        while let Some(e) = stream.message().await.map_err(fail)? {
            let finished = e.event == "finished";
            events.push(e);
            if finished {
                return Ok(Instant::now());
            }
        }
        Err(format!(
            "WatchRun {run_id} ({asset}): the stream ended without `finished`"
        ))
    })
    .await
    .map_err(|_| format!("run {run_id} ({asset}) did not finish within {RUN_TIMEOUT:?}"))?;
    let finished = within?;
    Ok(Watched {
        run_id,
        asset,
        finished,
        events,
    })
}

impl Watched {
    /// It succeeded, building exactly its one asset once.
    fn check(&self) -> BoxResult<()> {
        let what = format!("run {} ({})", self.run_id, self.asset);
        let Some(last) = self.events.last() else {
            return Err(format!("{what}: no events").into());
        };
        if last.status != "succeeded" {
            return Err(format!("{what}: finished {} ({})", last.status, last.error).into());
        }
        let units: Vec<(&str, &str)> = self
            .events
            .iter()
            .filter(|e| UNIT_OUTCOMES.contains(&e.event.as_str()))
            .map(|e| (e.asset.as_str(), e.event.as_str()))
            .collect();
        if units != [(self.asset.as_str(), "built")] {
            return Err(format!("{what}: expected one `built` of its asset, got {units:?}").into());
        }
        Ok(())
    }

    /// The server's time of its first `event`.
    fn at(&self, event: &str) -> BoxResult<DateTime<Utc>> {
        let e = self
            .events
            .iter()
            .find(|e| e.event == event)
            .ok_or_else(|| format!("run {}: no `{event}` event", self.run_id))?;
        Ok(DateTime::parse_from_rfc3339(&e.at)
            .map_err(|x| format!("run {}: `{}`: {x}", self.run_id, e.at))?
            .with_timezone(&Utc))
    }
}

// The cairn.v1 messages grow fields; the benchmark sets what it needs and
// leaves the rest at their defaults, whichever fields a version has.
#[allow(
    clippy::needless_update,
    reason = "no field may be left to the default in this version of cairn.v1"
)]
fn materialize_request(asset: &str) -> pb::MaterializeRequest {
    pb::MaterializeRequest {
        selection: vec![asset.to_owned()],
        force: true,
        jobs: 1,
        ..Default::default()
    }
}

#[allow(
    clippy::needless_update,
    reason = "no field may be left to the default in this version of cairn.v1"
)]
fn watch_request(run_id: &str) -> pb::WatchRunRequest {
    pb::WatchRunRequest {
        run_id: run_id.to_owned(),
        ..Default::default()
    }
}

#[allow(
    clippy::needless_update,
    reason = "no field may be left to the default in this version of cairn.v1"
)]
fn list_runs_request(limit: u32) -> pb::ListRunsRequest {
    pb::ListRunsRequest {
        limit,
        ..Default::default()
    }
}

/// Submits a forced single-asset run: its id.
async fn submit(client: &mut CairnClient<Channel>, asset: &str) -> BoxResult<String> {
    let accepted = client
        .materialize(materialize_request(asset))
        .await?
        .into_inner();
    if accepted.attached {
        return Err(format!(
            "Materialize {asset}: attached to run {} instead of queueing one",
            accepted.run_id
        )
        .into());
    }
    Ok(accepted.run_id)
}

/// 2. R single-asset runs submitted back to back, drained at max 4.
async fn bench_queue(client: &CairnClient<Channel>, root: &Path, args: &Args) -> BoxResult<()> {
    let n = args.assets;
    let r = args.runs;
    let assets: Vec<String> = (n - r + 1..=n).map(asset_name).collect();
    let mut watchers = Vec::with_capacity(r);
    let mut submits = Vec::with_capacity(r);
    let t0 = Instant::now();
    // Up to `--submitters` calls in flight, started in asset order.
    let mut accepted = futures::stream::iter(assets.iter().map(|asset| {
        let mut client = client.clone();
        async move {
            let t = Instant::now();
            let run_id = submit(&mut client, asset).await?;
            BoxResult::Ok((asset, run_id, t.elapsed()))
        }
    }))
    .buffer_unordered(args.submitters);
    while let Some(done) = accepted.next().await {
        let (asset, run_id, took) = done?;
        submits.push(took);
        watchers.push(tokio::spawn(watch(client.clone(), run_id, asset.clone())));
    }
    let submitted = t0.elapsed();
    let mut runs = Vec::with_capacity(r);
    for w in watchers {
        runs.push(w.await??);
    }
    let last = runs
        .iter()
        .map(|w| w.finished)
        .max()
        .unwrap_or_else(Instant::now);
    let drain = last - t0;
    for w in &runs {
        w.check()?;
    }

    // The record agrees: ListRuns' newest R are these, all succeeded, and
    // each committed exactly one version, of its asset.
    let listed = client
        .clone()
        .list_runs(list_runs_request(u32::try_from(r)?))
        .await?
        .into_inner()
        .runs;
    let ours: BTreeSet<&str> = runs.iter().map(|w| w.run_id.as_str()).collect();
    let listed_ids: BTreeSet<&str> = listed.iter().map(|l| l.run_id.as_str()).collect();
    if listed_ids != ours {
        return Err(format!(
            "ListRuns: the newest {r} runs are not the {r} submitted ({} in common)",
            listed_ids.intersection(&ours).count()
        )
        .into());
    }
    if let Some(bad) = listed.iter().find(|l| l.status != "succeeded") {
        return Err(format!("ListRuns: run {} is {}", bad.run_id, bad.status).into());
    }
    let commits = commits_by_run(root).await?;
    for w in &runs {
        let got = commits.get(&w.run_id).cloned().unwrap_or_default();
        if got != [(w.asset.clone(), 1)] {
            return Err(format!(
                "run {} ({}): committed {got:?}, expected one version of {}",
                w.run_id, w.asset, w.asset
            )
            .into());
        }
    }

    // From the server's event times: how long runs executed and how many
    // overlapped.
    let mut intervals = Vec::with_capacity(r);
    let mut waits = Vec::with_capacity(r);
    let mut executing = Vec::with_capacity(r);
    for w in &runs {
        let (queued, started, finished) = (w.at("queued")?, w.at("started")?, w.at("finished")?);
        intervals.push((started, finished));
        waits.push(to_duration(started - queued));
        executing.push(to_duration(finished - started));
    }
    let peak = peak_overlap(&intervals);
    if peak > MAX_CONCURRENT_RUNS {
        return Err(format!(
            "{peak} runs executed at once; max_concurrent_runs is {MAX_CONCURRENT_RUNS}"
        )
        .into());
    }
    let busy: Duration = executing.iter().sum();
    let submits = Spread::of(submits);
    let waits = Spread::of(waits);
    let executing = Spread::of(executing);
    println!();
    println!(
        "== 2. Queue: {r} forced single-asset runs ({} .. {}), max_concurrent_runs = {MAX_CONCURRENT_RUNS} ==",
        assets.first().map_or("", String::as_str),
        assets.last().map_or("", String::as_str)
    );
    println!(
        "  all submitted ({} call(s) in flight)      {}   ({:.2} submits/s)",
        args.submitters,
        ms(submitted),
        per_second(r, submitted)
    );
    println!(
        "  first submit -> last `finished`           {}   ({:.2} runs/s)  <- throughput",
        ms(drain),
        per_second(r, drain)
    );
    let tail = drain.saturating_sub(submitted);
    let in_tail = runs.iter().filter(|w| w.finished > t0 + submitted).count();
    println!(
        "  last submit -> last `finished` (tail)     {}   ({in_tail} runs finished in it: {:.2} runs/s with no submits competing)",
        ms(tail),
        per_second(in_tail, tail)
    );
    println!(
        "  runs executing at once                    mean {:.2}, peak {peak} (sum of started->finished / drain)",
        busy.as_secs_f64() / drain.as_secs_f64().max(1e-9)
    );
    Spread::header();
    submits.row("Materialize call (submit, run id back)", "");
    waits.row("queued -> started (server times)", "");
    executing.row("started -> finished (server times)", "");
    println!(
        "  checked: {r} runs succeeded (events, ListRuns), each committed exactly one version of its asset (cairn.materializations)"
    );
    Ok(())
}

/// One run of each kind, for one asset.
#[derive(Default)]
struct Sequential {
    queue: Vec<Duration>,
    queue_submit: Vec<Duration>,
    /// `queued` -> `started` (server times): dispatch.
    queue_dispatch: Vec<Duration>,
    /// `started` -> `unit_started`: the run opens and plans.
    queue_prepare: Vec<Duration>,
    /// `unit_started` -> `built`: the unit.
    queue_unit: Vec<Duration>,
    /// `built` -> `finished`: recording the end.
    queue_finish: Vec<Duration>,
    /// `finished` (server) -> the client has it.
    queue_notify: Vec<Duration>,
    cli: Vec<Duration>,
    in_process: Vec<Duration>,
    in_process_open: Vec<Duration>,
    in_process_materialize: Vec<Duration>,
}

/// 3. Runs one at a time: queue vs CLI process vs in-process.
async fn bench_sequential(
    client: &CairnClient<Channel>,
    root: &Path,
    args: &Args,
) -> BoxResult<()> {
    let n = args.assets;
    let s = args.sequential;
    let assets: Vec<String> = (n - s + 1..=n).map(asset_name).collect();
    let before = commits_by_asset(root).await?;
    let mut out = Sequential::default();
    let mut client = client.clone();
    for (i, asset) in assets.iter().enumerate() {
        // Rotate the order, so that no way always goes first (or last).
        for k in 0..3 {
            match (i + k) % 3 {
                0 => queued_run(&mut client, asset, &mut out).await?,
                1 => cli_run(root, asset, &mut out)?,
                _ => in_process_run(root, asset, &mut out).await?,
            }
        }
    }
    let after = commits_by_asset(root).await?;
    for asset in &assets {
        let (was, is) = (
            before.get(asset).copied().unwrap_or(0),
            after.get(asset).copied().unwrap_or(0),
        );
        if is != was + 3 {
            return Err(format!(
                "{asset}: {was} committed versions before, {is} after; expected three more"
            )
            .into());
        }
    }

    let queue = Spread::of(out.queue);
    let cli = Spread::of(out.cli);
    let in_process = Spread::of(out.in_process);
    println!();
    println!(
        "== 3. Per-run overhead: {s} forced single-asset runs, one at a time, each three ways ({} .. {}) ==",
        assets.first().map_or("", String::as_str),
        assets.last().map_or("", String::as_str)
    );
    Spread::header();
    queue.row("queue: Materialize -> `finished` received", "");
    Spread::of(out.queue_submit).row("  Materialize call (open, plan, validate, enqueue)", "");
    Spread::of(out.queue_dispatch).row("  queued -> started (dispatch)", "");
    Spread::of(out.queue_prepare).row("  started -> unit_started (open, plan)", "");
    Spread::of(out.queue_unit).row("  unit_started -> built (the unit)", "");
    Spread::of(out.queue_finish).row("  built -> finished (recording the end)", "");
    Spread::of(out.queue_notify).row("  finished -> client has it", "");
    cli.row("`cairn materialize ASSET --force` process", "");
    in_process.row("in-process Workspace::open + materialize", "");
    Spread::of(out.in_process_open).row("  of which Workspace::open", "");
    Spread::of(out.in_process_materialize).row("  of which materialize", "");
    println!(
        "  median differences per run: queue - in-process {}, CLI process - in-process {}, queue - CLI process {}",
        signed_ms(queue.median, in_process.median),
        signed_ms(cli.median, in_process.median),
        signed_ms(queue.median, cli.median)
    );
    println!(
        "  checked: every run succeeded and each asset gained exactly three committed versions"
    );
    Ok(())
}

async fn queued_run(
    client: &mut CairnClient<Channel>,
    asset: &str,
    out: &mut Sequential,
) -> BoxResult<()> {
    let t = Instant::now();
    let run_id = submit(client, asset).await?;
    let answered = t.elapsed();
    let watched = watch(client.clone(), run_id, asset.to_owned()).await?;
    let total = watched.finished - t;
    let received_at = SystemTime::now() - watched.finished.elapsed();
    watched.check()?;
    let (queued, started, unit_started, built, finished) = (
        watched.at("queued")?,
        watched.at("started")?,
        watched.at("unit_started")?,
        watched.at("built")?,
        watched.at("finished")?,
    );
    out.queue.push(total);
    out.queue_submit.push(answered);
    out.queue_dispatch.push(to_duration(started - queued));
    out.queue_prepare.push(to_duration(unit_started - started));
    out.queue_unit.push(to_duration(built - unit_started));
    out.queue_finish.push(to_duration(finished - built));
    out.queue_notify
        .push(to_duration(DateTime::<Utc>::from(received_at) - finished));
    Ok(())
}

fn cli_run(root: &Path, asset: &str, out: &mut Sequential) -> BoxResult<()> {
    let t = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--project")
        .arg(root)
        .args(["materialize", asset, "--force"])
        // The local command, not one sent to a server.
        .env_remove(SERVER_ENV)
        .stdin(Stdio::null())
        .output()?;
    let wall = t.elapsed();
    if !run.status.success() {
        return Err(format!(
            "cairn materialize {asset} --force: {}\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        )
        .into());
    }
    out.cli.push(wall);
    Ok(())
}

async fn in_process_run(root: &Path, asset: &str, out: &mut Sequential) -> BoxResult<()> {
    let t = Instant::now();
    let ws = Workspace::open(root)?;
    let opened = t.elapsed();
    let report = ws
        .materialize(
            &MaterializeOptions {
                selection: vec![asset.to_owned()],
                force: true,
                jobs: 1,
                command: "bench: in-process".to_owned(),
                partitions: PartitionFilter::All,
                backfill: None,
            },
            &NoProgress,
        )
        .await?;
    let total = t.elapsed();
    let built: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, AssetOutcome::Materialized(_)))
        .map(|r| r.asset.as_str())
        .collect();
    if built != [asset] || report.results.len() != 1 {
        return Err(format!(
            "in-process materialize {asset} --force: built {built:?} of {} results",
            report.results.len()
        )
        .into());
    }
    out.in_process.push(total);
    out.in_process_open.push(opened);
    out.in_process_materialize.push(total - opened);
    Ok(())
}

/// Committed versions per run: (asset, count) pairs, from
/// `cairn.materializations`.
async fn commits_by_run(root: &Path) -> BoxResult<HashMap<String, Vec<(String, i64)>>> {
    let rows = query_counts(
        root,
        "select run_id, asset, count(*) as n from cairn.materializations group by run_id, asset order by run_id, asset",
    )
    .await?;
    let mut out: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for (run, asset, count) in rows {
        out.entry(run).or_default().push((asset, count));
    }
    Ok(out)
}

/// Committed versions per asset, from `cairn.materializations`.
async fn commits_by_asset(root: &Path) -> BoxResult<BTreeMap<String, i64>> {
    let rows = query_counts(
        root,
        "select asset, asset as same, count(*) as n from cairn.materializations group by asset",
    )
    .await?;
    Ok(rows.into_iter().map(|(a, _, n)| (a, n)).collect())
}

/// Runs `sql` (two string columns and a count) in-process.
async fn query_counts(root: &Path, sql: &str) -> BoxResult<Vec<(String, String, i64)>> {
    let ws = Workspace::open(root)?;
    let (_, batches) = ws.query(sql).await?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| format!("{sql}: column {i} is not text"))
        };
        let (first, second) = (text(0)?, text(1)?);
        let counts = b
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| format!("{sql}: column 2 is not a count"))?;
        for row in 0..b.num_rows() {
            if first.is_null(row) || second.is_null(row) {
                return Err(format!("{sql}: a null in row {row}").into());
            }
            out.push((
                first.value(row).to_owned(),
                second.value(row).to_owned(),
                counts.value(row),
            ));
        }
    }
    Ok(out)
}

fn expect_fresh(status: &pb::StatusResponse, n: usize) -> BoxResult<()> {
    let fresh = status.assets.iter().filter(|a| a.state == "fresh").count();
    if status.assets.len() != n || fresh != n || status.fresh != u64::try_from(n)? {
        return Err(format!(
            "Status: {fresh} of {} assets fresh (fresh = {}), expected {n}",
            status.assets.len(),
            status.fresh
        )
        .into());
    }
    Ok(())
}

/// The most intervals that hold at one instant.
fn peak_overlap(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    // Ends sort before starts at the same instant: back-to-back runs do
    // not overlap.
    let mut edges: Vec<(DateTime<Utc>, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    edges.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

/// A server-side time difference (negative ones, clock noise, as zero).
fn to_duration(d: chrono::TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

fn per_second(count: usize, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(1e-9)
}

fn share(part: Duration, whole: Duration) -> f64 {
    part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
}

fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.2} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1e3)
}

/// `/proc/loadavg`'s first three fields (other work on the machine).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Min, median and 95th percentile of repeated timings.
struct Spread {
    count: usize,
    min: Duration,
    median: Duration,
    p95: Duration,
}

impl Spread {
    fn of(mut v: Vec<Duration>) -> Spread {
        v.sort();
        let count = v.len();
        let p95 = v
            .get((count * 95).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        let MinMedian { min, median } = MinMedian::of(v);
        Spread {
            count,
            min,
            median,
            p95,
        }
    }

    fn header() {
        println!(
            "  {:<52} {:>13} {:>13} {:>13}   n",
            "", "min", "median", "p95"
        );
    }

    fn row(&self, label: &str, note: &str) {
        println!(
            "  {label:<52} {} {} {}   {}   {note}",
            ms(self.min),
            ms(self.median),
            ms(self.p95),
            self.count
        );
    }
}
