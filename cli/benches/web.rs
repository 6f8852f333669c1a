//! The lineage web page's benchmark: how long headless Chromium takes to
//! show a generated project's whole graph, how long a frame takes while
//! panning and zooming, and how much the page loads.
//!
//! ```text
//! cargo bench -p cairn-cli --profile dev --bench web -- [--assets N,M,...] [--runs R]
//! ```
//!
//! For each N (default 1,000 and 10,000) it writes a project of N SQL
//! assets over 10 CSV sources — 12 layers, assets in 20 folders, each
//! reading one to three assets of earlier layers (a fixed pseudo-random
//! choice) — with no version built (the page shows every state the same
//! way; building 10,000 assets is another benchmark's work), starts `cairn
//! serve --listen 127.0.0.1:0` and runs `tests/web/drive.mjs` (Debian
//! Chromium through npm playwright-core; run `npm ci` in lineage-ui first):
//! the `graph` scenario R times (default 3; a fresh browser each time) for
//! the time from navigation to the first complete render (the page's own
//! `performance.now()` at its first full frame) and the bytes of API
//! replies it loaded (as JSON, and on the wire: gzip), then the `pan` scenario for frame draw times. Targets
//! (the issue's): first render < 1 s at 1,000 assets and < 3 s at 10,000.
//! Checked: every asset of the project is in the rendered graph.

#[path = "../../engine/benches/common/mod.rs"]
mod common;
#[path = "common/server.rs"]
mod server;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BoxResult, MinMedian, build_kind, ms, parse_count, target};
use server::Server;

/// Layers of the generated graph.
const LAYERS: usize = 12;
/// Folders the assets are spread over.
const FOLDERS: usize = 20;
/// Sources.
const SOURCES: usize = 10;

fn main() {
    if let Err(e) = run() {
        eprintln!("web benchmark: {e}");
        std::process::exit(1);
    }
}

fn run() -> BoxResult<()> {
    let mut sizes = vec![1_000, 10_000];
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--assets" => {
                let list = args.next().ok_or("--assets needs N[,M...]")?;
                sizes = list.split(',').map(parse_count).collect::<BoxResult<_>>()?;
            }
            "--runs" => runs = parse_count(&args.next().ok_or("--runs needs a count")?)?,
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    println!("cairn web page benchmark — server build: {}", build_kind());
    for n in sizes {
        bench(n, runs.max(1))?;
    }
    Ok(())
}

fn bench(n: usize, runs: usize) -> BoxResult<()> {
    let dir = tempfile::tempdir()?;
    write_project(dir.path(), n)?;
    let server = Server::start(dir.path())?;
    let shots = dir.path().join("shots");
    let mut renders = Vec::new();
    let mut bytes = 0.0;
    let mut wire = 0.0;
    for _ in 0..runs {
        let seen = drive(&server.addr, &shots, "graph")?;
        let nodes = seen["graph"]["nodes"].as_array().ok_or("no nodes")?;
        let assets = nodes.iter().filter(|n| n["kind"] == "asset").count();
        if assets != n {
            return Err(format!("{assets} assets rendered of {n}").into());
        }
        let first = seen["stats"]["firstRenderMs"]
            .as_f64()
            .ok_or("no firstRenderMs")?;
        renders.push(Duration::from_secs_f64(first / 1e3));
        bytes = seen["stats"]["bytesLoaded"].as_f64().unwrap_or_default();
        wire = seen["stats"]["wireBytes"].as_f64().unwrap_or_default();
    }
    let pan = drive(&server.addr, &shots, "pan")?;
    server.stop()?;
    let mut frames: Vec<Duration> = pan["frames"]
        .as_array()
        .ok_or("no frames")?
        .iter()
        .filter_map(|f| f.as_f64())
        .map(|f| Duration::from_secs_f64(f / 1e3))
        .collect();
    frames.sort();
    let p95 = frames
        .get(frames.len() * 95 / 100)
        .copied()
        .unwrap_or_default();
    let render = MinMedian::of(renders);
    let limit = Duration::from_millis(if n <= 1_000 { 1_000 } else { 3_000 });
    let mut out = String::new();
    writeln!(out, "\n{n} assets, {SOURCES} sources, {LAYERS} layers")?;
    writeln!(
        out,
        "  first complete render  min {}  median {}  ({})",
        ms(render.min),
        ms(render.median),
        target(render.median, limit)
    )?;
    writeln!(
        out,
        "  API replies loaded     {:>10.1} KiB ({:.1} KiB on the wire, gzip)",
        bytes / 1024.0,
        wire / 1024.0
    )?;
    let frame = MinMedian::of(frames.clone());
    writeln!(
        out,
        "  frame draw (pan/zoom)  median {}  p95 {}  ({} frames)",
        ms(frame.median),
        ms(p95),
        frames.len()
    )?;
    writeln!(
        out,
        "  nodes drawn last frame {:>10}",
        pan["stats"]["nodesDrawn"]
    )?;
    print!("{out}");
    Ok(())
}

/// The generated project: sources `s00`..`s09`, assets
/// `assets/gNN/aNNNNN.sql`.
fn write_project(root: &Path, n: usize) -> BoxResult<()> {
    let mut toml = String::from(
        "[storage]\nurl = \"file://./warehouse\"\n\n[catalog]\nurl = \"sqlite://.cairn/catalog.db\"\n",
    );
    std::fs::create_dir_all(root.join("data"))?;
    for s in 0..SOURCES {
        std::fs::write(
            root.join(format!("data/s{s:02}.csv")),
            "id,amount\n1,10\n2,20\n",
        )?;
        write!(
            toml,
            "\n[sources.s{s:02}]\npath = \"data/s{s:02}.csv\"\nformat = \"csv\"\nowner = \"team{}\"\n",
            s % 4
        )?;
    }
    std::fs::write(root.join("cairn.toml"), toml)?;
    // Layer of asset i: even spread; reads from earlier layers only.
    let layer = |i: usize| i * LAYERS / n;
    let mut first_of_layer = [n; LAYERS + 1];
    for i in (0..n).rev() {
        first_of_layer[layer(i)] = i;
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let folder = root.join(format!("assets/g{:02}", i % FOLDERS));
        std::fs::create_dir_all(&folder)?;
        let l = layer(i);
        let inputs: Vec<String> = if l == 0 {
            vec![format!("s{:02}", i % SOURCES)]
        } else {
            let k = 1 + (next() % 3) as usize;
            let mut picked: Vec<String> = (0..k)
                .map(|_| {
                    // Mostly the layer just before, sometimes further back.
                    let from_layer = if next() % 4 == 0 {
                        (next() as usize) % l
                    } else {
                        l - 1
                    };
                    let lo = first_of_layer[from_layer];
                    let hi = first_of_layer[from_layer + 1].max(lo + 1);
                    format!("a{:05}", lo + (next() as usize) % (hi - lo))
                })
                .collect();
            picked.sort();
            picked.dedup();
            picked
        };
        let body = inputs
            .iter()
            .map(|t| format!("select id, amount from {t}"))
            .collect::<Vec<_>>()
            .join("\nunion all\n");
        std::fs::write(
            folder.join(format!("a{i:05}.sql")),
            format!(
                "--- owner = \"team{}\"\n--- tags = [\"layer{l}\"]\n{body}\n",
                i % 4
            ),
        )?;
    }
    Ok(())
}

/// One scenario of the page driver: what it printed.
fn drive(addr: &str, shots: &Path, scenario: &str) -> BoxResult<serde_json::Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/web/drive.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(scenario)
        .arg(format!("http://{addr}"))
        .arg(shots)
        .output()?;
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{scenario}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if !out.status.success() || seen.get("failed").is_some() {
        return Err(format!("{scenario}: {seen}").into());
    }
    Ok(seen)
}
