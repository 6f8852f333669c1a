//! Execution on an Apache DataFusion Ballista cluster (`[engine] url =
//! "df://..."`): a scheduler and an executor hosted by this test process
//! on loopback ports — the gRPC and Arrow Flight services the
//! `ballista-scheduler` and `ballista-executor` binaries run — reached over
//! the network by the `cairn` binary, another process. The example
//! projects give the data versions and row counts of a local run; a query
//! failing on an executor fails its unit alone, with nothing committed for
//! it; a cluster that is not there fails fast and clearly, with nothing
//! committed; another scheme is refused when the project loads. The full
//! combination — catalog on PostgreSQL, outputs on an S3-protocol server
//! (moto), two executors reading them with the `ballista-executor`
//! binary's own S3 registry — runs the core scenarios too.

use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../support/ballista_host.rs"]
mod ballista_host;
use ballista_host::{BallistaHost, free_port};

use crate::s3::{Moto, on_s3, warehouse_sources_on_s3};
use crate::util::{
    DAILY_SALES_FIRST_WEEK, Project, assert_nothing_committed, assert_refused, states, versions,
    with_outcome,
};

/// The cluster of a test: one executor, or two for the full combination,
/// holding the S3 credentials moto takes as their own.
struct Cluster(BallistaHost);

impl Cluster {
    fn start() -> Cluster {
        Cluster::with_executors(1)
    }

    fn with_executors(executors: usize) -> Cluster {
        Cluster(BallistaHost::start(
            executors,
            2,
            Some(("testing", "testing")),
        ))
    }

    fn url(&self) -> String {
        self.0.url()
    }
}

/// Runs `p`'s queries on the cluster at `url`.
fn on_cluster(p: &Project, url: &str) {
    let toml = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{toml}\n[engine]\nurl = \"{url}\"\n"),
    );
}

/// Materializes `args` on `p` and says how long it took.
fn timed_materialize(p: &Project, args: &[&str]) -> (Value, Duration) {
    let started = Instant::now();
    let (report, _) = p.materialize(args);
    (report, started.elapsed())
}

const WAREHOUSE: [&str; 7] = [
    "stg_customers",
    "stg_orders",
    "stg_payments",
    "int_order_payments",
    "orders",
    "customers",
    "monthly_revenue",
];

/// Where the project run on the cluster keeps its catalog and outputs
/// (SQLite and local files unless said otherwise).
#[derive(Clone, Copy, Default)]
struct Backends {
    postgres: bool,
    s3: bool,
}

/// The moto server of a project on S3, if it is, to be kept until the end.
fn set_up(remote: &mut Project, backends: Backends, tag: &str) -> Option<Moto> {
    if backends.postgres {
        crate::postgres::on_postgres(remote, tag);
    }
    backends.s3.then(|| {
        let moto = Moto::start(false);
        on_s3(remote, &moto.endpoint(), "testing");
        moto
    })
}

/// Parquet files under `prefix` in the bucket.
fn parquet_in_bucket(moto: &Moto, prefix: &str) -> usize {
    moto.objects(prefix)
        .into_iter()
        .filter(|(key, _)| key.ends_with(".parquet"))
        .count()
}

#[test]
fn ballista_cluster_materializes_the_warehouse_with_the_local_data_versions() {
    warehouse_on_cluster(Cluster::start(), Backends::default());
}

/// The cluster with the catalog on PostgreSQL: the same scenarios.
#[test]
fn ballista_and_postgres_materialize_the_warehouse_with_the_local_data_versions() {
    let postgres = Backends {
        postgres: true,
        ..Backends::default()
    };
    warehouse_on_cluster(Cluster::start(), postgres);
}

/// The full combination: two executors, the catalog on PostgreSQL, the
/// sources and outputs on the S3 server, which the executors read.
#[test]
fn ballista_postgres_and_s3_materialize_the_warehouse_with_the_local_data_versions() {
    let all = Backends {
        postgres: true,
        s3: true,
    };
    warehouse_on_cluster(Cluster::with_executors(2), all);
}

/// Materialize, measure, no-op, edit and early cutoff on the cluster
/// against a local run, the cluster's catalog and outputs on `backends`.
fn warehouse_on_cluster(cluster: Cluster, backends: Backends) {
    let local = Project::example();
    let mut remote = Project::example();
    on_cluster(&remote, &cluster.url());
    let moto = set_up(&mut remote, backends, "ballista_warehouse");
    if let Some(moto) = &moto {
        // The sources too: the executors read them from the bucket.
        warehouse_sources_on_s3(&remote, moto);
    }

    let (local_report, local_wall) = timed_materialize(&local, &[]);
    let (remote_report, remote_wall) = timed_materialize(&remote, &[]);
    eprintln!("example warehouse: local {local_wall:?}, on the cluster {remote_wall:?}");
    let (local_versions, remote_versions) = (versions(&local_report), versions(&remote_report));
    assert_eq!(local_versions.len(), WAREHOUSE.len(), "{local_report}");
    assert_eq!(remote_versions, local_versions);
    if let Some(moto) = &moto {
        assert_eq!(parquet_in_bucket(moto, "wh/"), WAREHOUSE.len());
    }

    // The catalog agrees: everything fresh, the same rows read back.
    assert_eq!(
        remote.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    for asset in WAREHOUSE {
        let sql = format!("select count(*) as n from {asset}");
        assert_eq!(remote.query_json(&sql), local.query_json(&sql), "{asset}");
    }
    // What Cairn measures is still recorded for every asset.
    let costs = remote.json(&["cost", "--format", "json"], 0);
    for asset in costs.as_array().unwrap() {
        let own = &asset["own"];
        assert_eq!(own["materializations"], 1, "{asset}");
        for figure in ["bytes_read", "bytes_written", "requests"] {
            assert!(own[figure].as_u64().unwrap() > 0, "{figure}: {asset}");
        }
        for figure in ["cpu_seconds", "wall_seconds", "cost_usd"] {
            assert!(own[figure].as_f64().unwrap() > 0.0, "{figure}: {asset}");
        }
    }

    // Nothing stale: nothing runs, on the cluster or here.
    let (_, outcomes) = remote.materialize(&[]);
    assert!(outcomes.iter().all(|(_, o)| o == "fresh"), "{outcomes:?}");

    // An edit rebuilds it and its downstream on the cluster, with the
    // local run's versions and early cutoff.
    for p in [&local, &remote] {
        p.edit(
            "assets/stg_payments.sql",
            "from raw_payments",
            "from raw_payments\nwhere payment_method <> 'gift_card'",
        );
        p.edit(
            "assets/stg_orders.sql",
            "from raw_orders",
            "from raw_orders\nwhere 1 = 1",
        );
    }
    let (local_report, local_outcomes) = local.materialize(&[]);
    let (remote_report, remote_outcomes) = remote.materialize(&[]);
    assert_eq!(versions(&remote_report), versions(&local_report));
    assert_eq!(remote_outcomes, local_outcomes);
    let rebuilt = with_outcome(&remote_outcomes, "materialized");
    assert!(
        rebuilt.contains(&"stg_payments".to_owned()) && rebuilt.contains(&"stg_orders".to_owned()),
        "{remote_outcomes:?}"
    );
    // An edit that changes no rows: rebuilt, and its downstream is fresh by
    // early cutoff, as locally.
    for p in [&local, &remote] {
        p.edit("assets/stg_orders.sql", "where 1 = 1", "where 2 = 2");
    }
    let (local_report, local_outcomes) = local.materialize(&[]);
    let (remote_report, cutoff_outcomes) = remote.materialize(&[]);
    assert_eq!(versions(&remote_report), versions(&local_report));
    assert_eq!(cutoff_outcomes, local_outcomes);
    assert_eq!(
        with_outcome(&cutoff_outcomes, "materialized"),
        ["stg_orders"]
    );
    assert!(
        !with_outcome(&cutoff_outcomes, "fresh (early cutoff)").is_empty(),
        "{cutoff_outcomes:?}"
    );
    if let Some(moto) = &moto {
        assert_eq!(
            parquet_in_bucket(moto, "wh/"),
            WAREHOUSE.len() + rebuilt.len() + 1
        );
    }
}

#[test]
fn ballista_cluster_backfills_partitions_with_the_local_data_versions() {
    partitions_on_cluster(Cluster::start(), Backends::default());
}

/// The cluster with the catalog on PostgreSQL: the same scenario.
#[test]
fn ballista_and_postgres_backfill_partitions_with_the_local_data_versions() {
    let postgres = Backends {
        postgres: true,
        ..Backends::default()
    };
    partitions_on_cluster(Cluster::start(), postgres);
}

/// The full combination: two executors, PostgreSQL and the S3 server.
#[test]
fn ballista_postgres_and_s3_backfill_partitions_with_the_local_data_versions() {
    let all = Backends {
        postgres: true,
        s3: true,
    };
    partitions_on_cluster(Cluster::with_executors(2), all);
}

/// A backfill, the rest of daily_sales and its checks on the cluster
/// against a local run, the cluster's catalog and outputs on `backends`.
fn partitions_on_cluster(cluster: Cluster, backends: Backends) {
    let local = Project::example_named("daily_sales");
    let mut remote = Project::example_named("daily_sales");
    on_cluster(&remote, &cluster.url());
    let moto = set_up(&mut remote, backends, "ballista_partitions");
    local.json(&DAILY_SALES_FIRST_WEEK, 0);
    remote.json(&DAILY_SALES_FIRST_WEEK, 0);
    if let Some(moto) = &moto {
        assert_eq!(parquet_in_bucket(moto, "wh/daily_sales/"), 7);
    }
    // Everything else, reading the committed daily partitions.
    let (local_report, _) = local.materialize(&["--jobs", "2"]);
    let (remote_report, _) = remote.materialize(&["--jobs", "2"]);
    let remote_versions = versions(&remote_report);
    assert!(
        remote_versions.len() > 7,
        "partitioned assets and their downstream: {remote_report}"
    );
    assert_eq!(remote_versions, versions(&local_report));
    assert_eq!(
        remote.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    // Rounded: `cairn query` runs on several partitions, so a float sum's
    // last bits depend on how files are split (local disk vs a bucket).
    let sql = "select count(distinct day) as n, round(sum(revenue), 2) as r from daily_sales";
    assert_eq!(remote.query_json(sql), local.query_json(sql));
    // The checks pass on what the cluster built, as on the local outputs.
    for p in [&local, &remote] {
        let checks = p.run(&["check"]);
        assert_eq!(checks.code, 0, "{}\n{}", checks.stdout, checks.stderr);
    }
}

#[test]
fn ballista_unreachable_cluster_fails_fast_and_commits_nothing() {
    let closed = free_port();
    let url = format!("df://127.0.0.1:{closed}");
    let p = Project::example();
    on_cluster(&p, &url);
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // One error, naming the URL and the fix.
    assert_eq!(run.stderr.matches(&url).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("ballista-scheduler") && run.stderr.contains("remove [engine] url"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_nothing_committed(&p);
    assert_eq!(p.warehouse_files(), Vec::<String>::new());
}

/// A job the cluster never runs (a scheduler without executors keeps it
/// queued) fails its unit at `[engine] query_timeout_seconds`, clearly,
/// with nothing committed — instead of hanging the run.
#[test]
fn ballista_query_no_executor_takes_times_out_and_commits_nothing() {
    let cluster = BallistaHost::start(0, 2, None);
    let p = Project::example();
    on_cluster(&p, &cluster.url());
    p.edit(
        "cairn.toml",
        "[engine]\n",
        "[engine]\nquery_timeout_seconds = 2\n",
    );
    let started = Instant::now();
    let run = p.run(&["materialize", "stg_customers"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("did not finish within 2 s")
            && said.contains("query_timeout_seconds")
            && said.contains(&cluster.url()),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    // Its last attempt failed; nothing was ever committed.
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["stg_customers"].0, "failed");
    let shown = p.json(&["show", "stg_customers", "--format", "json"], 0);
    assert!(shown["current"].is_null(), "{shown}");
    assert_eq!(
        shown["history"].as_array().map(Vec::len),
        Some(0),
        "{shown}"
    );
}

#[test]
fn ballista_engine_url_of_another_scheme_is_refused_at_load() {
    let p = Project::with_files(&[(
        "cairn.toml",
        "[storage]\nurl = \"file://./warehouse\"\n\n[engine]\nurl = \"grpc://127.0.0.1:50050\"\n",
    )]);
    assert_refused(
        &p,
        &["status"],
        &[
            "cairn.toml:5",
            "`grpc://` scheme is not supported",
            "df://HOST:50050",
        ],
    );
}

#[test]
fn ballista_query_failing_on_the_cluster_commits_nothing_for_it() {
    let cluster = Cluster::start();
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,code\n1,10\n2,20\n3,x3\n"),
        ("assets/good.sql", "select id, code from raw"),
        // Plans fine; the cast fails on the executor, at the third row.
        (
            "assets/bad.sql",
            "select id, cast(code as int) as code from raw",
        ),
        ("assets/after_bad.sql", "select count(*) as n from bad"),
    ]);
    on_cluster(&p, &cluster.url());
    let run = p.run(&["materialize", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let outcomes = crate::util::outcomes(&report);
    assert_eq!(with_outcome(&outcomes, "materialized"), ["good"]);
    assert_eq!(with_outcome(&outcomes, "failed"), ["bad"]);
    assert_eq!(with_outcome(&outcomes, "skipped"), ["after_bad"]);
    let error = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == "bad")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("assets/bad.sql")
            && error.contains(&format!("on the Ballista cluster {}", cluster.url()))
            && error.contains("x3"),
        "{error}"
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    // Failed, and still never materialized: nothing of it was committed.
    assert_eq!(
        s["bad"],
        ("failed".to_owned(), vec!["never_materialized".to_owned()])
    );
    // The failed unit's file was removed: only good's is there.
    let files = p.warehouse_files();
    assert!(
        files.len() == 1 && files[0].starts_with("good/"),
        "{files:?}"
    );
}

/// Float sums and averages over many groups, a join of two aggregates and
/// a scalar subquery (the reproducibility test's project): their last bits
/// depend on the order values are added in, which the cluster keeps.
#[test]
fn ballista_cluster_float_aggregates_give_the_local_data_versions() {
    use crate::reproducible::{data_versions, project, write_events};
    let cluster = Cluster::start();
    let events = tempfile::tempdir().unwrap();
    write_events(events.path());
    let local = project(events.path());
    local.materialize(&[]);
    let remote = project(events.path());
    on_cluster(&remote, &cluster.url());
    let (_, outcomes) = remote.materialize(&["--jobs", "4"]);
    assert_eq!(
        with_outcome(&outcomes, "materialized").len(),
        4,
        "{outcomes:?}"
    );
    assert_eq!(data_versions(&remote), data_versions(&local));
}
