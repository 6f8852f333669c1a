//! Data larger than memory: `--memory-limit` / `[engine] memory_limit`
//! bound what DataFusion holds, spilling past it, with results identical to
//! an unbounded run and the process's resident memory near the limit; a
//! query that cannot fit names its asset, the operator and what to raise.

use crate::util::{Project, assert_refused, versions};

/// The bound of the bounded runs: the smallest accepted, so that ten
/// times it stays quick to compute in an unoptimized build.
const LIMIT: &str = "16MiB";
const LIMIT_BYTES: u64 = 16 << 20;

/// Rows of `events`: ~62 bytes each in memory (two integers and a
/// 40-character string with its offset), ~170 MB, ten times [`LIMIT`].
const EVENTS: u64 = 2_700_000;

/// Groups of `totals`: their aggregate state is many times [`LIMIT`].
const GROUPS: u64 = 250_000;

fn project() -> Project {
    Project::with_files(&[
        ("cairn.toml", ""),
        (
            "assets/events.sql",
            &format!(
                "with a as (select unnest(range(0, 1000)) as i), \
                 b as (select unnest(range(0, {})) as j), \
                 ids as (select j * 1000 + i as id from b cross join a) \
                 select id, id % 1000 as k, \
                 concat('event-', lpad(cast(id as varchar), 10, '0'), '-', repeat('x', 24)) as pad \
                 from ids",
                EVENTS / 1000
            ),
        ),
        (
            "assets/dims.sql",
            "select k, concat('group ', cast(k % 7 as varchar)) as name \
             from (select unnest(range(0, 1000)) as k)",
        ),
        // A join (a small build side) and an aggregate of [`GROUPS`]
        // groups: its state is many times the limit, so it must spill.
        (
            "assets/totals.sql",
            &format!(
                "select e.id % {GROUPS} as bucket, d.name, count(*) as n, \
                 sum(length(e.pad)) as chars, min(e.pad) as first_pad \
                 from events e join dims d on e.k = d.k group by 1, 2"
            ),
        ),
        // Streams `events` through: what reading and writing it holds.
        ("assets/copy.sql", "select * from events"),
        // A sort holds its whole input unbounded (~3 times `events` in
        // memory); bounded, it sorts runs that fit and merges them.
        (
            "assets/sorted.sql",
            "select id, pad from events order by pad desc",
        ),
        // A hash join holds its build side whole: `events` cannot fit.
        (
            "assets/self_join.sql",
            "select a.id, b.pad from events a join events b on a.id = b.id",
        ),
    ])
}

/// `totals` under a 16 MiB limit equals `totals` unbounded, bit for bit
/// in its data version; the bounded run spilled, DataFusion never held
/// more than the limit while unbounded it held more, and the process's
/// peak resident memory is reported.
#[test]
fn a_join_and_aggregate_over_ten_times_the_limit_spills_to_the_same_result() {
    let p = project();
    let (report, _) = p.materialize(&["events", "dims"]);
    let rows: u64 = versions(&report).values().map(|(_, rows)| rows).sum();
    assert_eq!(rows, EVENTS + 1000);

    let bounded = p.json(
        &[
            "materialize",
            "totals",
            "--memory-limit",
            LIMIT,
            "--format",
            "json",
        ],
        0,
    );
    let memory = &bounded["memory"];
    assert_eq!(memory["limit_bytes"], LIMIT_BYTES, "{memory}");
    let spilled = memory["spilled_bytes"].as_u64().unwrap_or(0);
    assert!(
        spilled > LIMIT_BYTES,
        "spilled only {spilled} bytes: {memory}"
    );
    let unit = &bounded["results"][0];
    assert_eq!(unit["asset"], "totals");
    assert!(
        unit["metrics"]["peak_memory_bytes"]
            .as_u64()
            .unwrap_or(u64::MAX)
            <= LIMIT_BYTES,
        "DataFusion held more than the limit: {}",
        unit["metrics"]
    );
    let bounded_rss = memory["peak_rss_bytes"].as_u64().unwrap_or(u64::MAX);

    let unbounded = p.json(&["materialize", "totals", "--force", "--format", "json"], 0);
    assert_eq!(unbounded.get("memory"), None, "no limit, no memory line");
    let key = ("totals".to_owned(), String::new());
    let (bounded_version, bounded_rows) = &versions(&bounded)[&key];
    let (unbounded_version, unbounded_rows) = &versions(&unbounded)[&key];
    assert_eq!(bounded_rows, unbounded_rows);
    assert_eq!(*bounded_rows, GROUPS);
    assert_eq!(
        bounded_version, unbounded_version,
        "a spilled aggregate must give the unbounded run's rows"
    );
    let unbounded_peak = unbounded["results"][0]["metrics"]["peak_memory_bytes"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        unbounded_peak > 2 * LIMIT_BYTES,
        "the unbounded run should need more than the limit, held {unbounded_peak}"
    );
    // The process holds more than the pool (its code, the runtime, Parquet
    // read and write buffers); `peak_resident_memory_stays_near_the_limit`
    // bounds what it holds beyond that.
    assert!(bounded_rss > 0, "peak RSS reported on Linux: {memory}");
}

/// The process's peak resident memory under the limit stays within the
/// limit (and some slack) of what streaming the same rows through, with
/// nothing held, costs: the code, the runtime and the Parquet read and
/// write buffers are the part the limit does not bound. Unbounded, the
/// same sort holds several times more.
#[test]
fn peak_resident_memory_stays_near_the_limit() {
    let p = project();
    p.materialize(&["events"]);
    let peak_rss = |asset: &str, limit: &str| {
        let report = p.json(
            &[
                "materialize",
                asset,
                "--force",
                "--memory-limit",
                limit,
                "--format",
                "json",
            ],
            0,
        );
        let memory = &report["memory"];
        let rss = memory["peak_rss_bytes"].as_u64().unwrap_or(0);
        assert!(rss > 0, "peak RSS reported on Linux: {memory}");
        let spilled = memory["spilled_bytes"].as_u64().unwrap_or(0);
        let peak = report["results"][0]["metrics"]["peak_memory_bytes"]
            .as_u64()
            .unwrap_or(u64::MAX);
        let key = (asset.to_owned(), String::new());
        (rss, spilled, versions(&report)[&key].clone(), peak)
    };
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let (streaming, _, _, writer_held) = peak_rss("copy", LIMIT);
    // Nothing but the row group being written is held, and it is counted.
    assert!(
        writer_held > 0 && writer_held <= LIMIT_BYTES,
        "the Parquet writer's row group in the pool: {writer_held} bytes"
    );
    let (bounded, spilled, bounded_version, _) = peak_rss("sorted", LIMIT);
    // Large enough never to spill: the sort's own appetite.
    let (unbounded, unbounded_spilled, unbounded_version, _) = peak_rss("sorted", "16GiB");
    assert!(
        spilled > 4 * LIMIT_BYTES,
        "the bounded sort spilled {spilled} bytes"
    );
    assert_eq!(unbounded_spilled, 0);
    assert_eq!(
        bounded_version, unbounded_version,
        "a spilled sort must give the unbounded run's rows"
    );
    assert!(
        bounded <= streaming + 2 * LIMIT_BYTES,
        "under a {} MiB limit the sort peaked at {:.0} MiB resident, streaming the same rows at {:.0} MiB",
        mib(LIMIT_BYTES),
        mib(bounded),
        mib(streaming)
    );
    assert!(
        unbounded > streaming + 8 * LIMIT_BYTES,
        "unbounded, the sort should hold far more than the limit: {:.0} MiB resident, streaming {:.0} MiB",
        mib(unbounded),
        mib(streaming)
    );
}

/// A hash join's build side does not spill: under the limit the unit fails
/// with its asset, the operator and the setting to raise; nothing of it is
/// committed and the run says so in the text report too.
#[test]
fn a_query_that_cannot_fit_names_its_asset_operator_and_what_to_raise() {
    let p = project();
    p.materialize(&["events"]);
    let run = p.run(&["materialize", "self_join", "--memory-limit", "16MiB"]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let text = format!("{}{}", run.stdout, run.stderr);
    for fragment in [
        "self_join",
        "HashJoin",
        "[engine] memory_limit, or --memory-limit",
        "raise the limit",
        "memory: limit 16 MiB",
    ] {
        assert!(text.contains(fragment), "missing {fragment:?} in:\n{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
    let committed =
        p.query_json("select count(*) as n from cairn.materializations where asset = 'self_join'");
    assert_eq!(
        committed[0]["n"], 0,
        "self_join must have no committed version"
    );
}

/// A limit that is not a size, or too small to work with, is refused where
/// it is written: the file and line, or the flag.
#[test]
fn a_memory_limit_that_is_not_a_size_is_refused() {
    let p = Project::with_files(&[
        ("cairn.toml", "[engine]\nmemory_limit = \"lots\"\n"),
        ("assets/one.sql", "select 1 as x"),
    ]);
    assert_refused(
        &p,
        &["status"],
        &["cairn.toml:2", "[engine] memory_limit", "`lots`", "512MB"],
    );
    let p = Project::with_files(&[("assets/one.sql", "select 1 as x")]);
    assert_refused(
        &p,
        &["materialize", "--memory-limit", "1MB"],
        &["--memory-limit", "below the smallest memory limit, 16MiB"],
    );
}
