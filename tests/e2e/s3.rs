//! Storage on a real S3-protocol server: moto (PyPI `moto[server]`) on a
//! loopback port, path-style, plain http. The example projects run on it
//! end to end; a dead endpoint and refused credentials fail fast and
//! clearly, with nothing committed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Project, states, with_outcome};

pub(crate) const BUCKET: &str = "cairn-test";

/// A moto S3 server on a free loopback port, killed on drop.
pub(crate) struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto; with `enforce_auth`, every request must be signed by a
    /// key moto's IAM knows — none, so every key is refused (403).
    pub(crate) fn start(enforce_auth: bool) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if enforce_auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd
            .spawn()
            .expect("python3 -m moto.server (tests/run.sh installs moto[server])");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.http("GET", "/", &[]).is_err() {
            assert!(Instant::now() < deadline, "moto did not answer in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        if !enforce_auth {
            let (status, body) = moto.http("PUT", &format!("/{BUCKET}"), &[]).unwrap();
            assert_eq!(status, 200, "create bucket: {body}");
        }
        moto
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned HTTP/1.1 request (moto accepts them unless auth is
    /// enforced): status and body.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {text}")))?;
        Ok((status, text))
    }

    /// Keys and sizes of the objects under `prefix`, from moto's own
    /// ListObjectsV2 (not through Cairn).
    pub(crate) fn objects(&self, prefix: &str) -> Vec<(String, u64)> {
        let (status, body) = self
            .http(
                "GET",
                &format!("/{BUCKET}?list-type=2&max-keys=10000&prefix={prefix}"),
                &[],
            )
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let mut out = Vec::new();
        for contents in body.split("<Contents>").skip(1) {
            let field = |name: &str| {
                contents
                    .split(&format!("<{name}>"))
                    .nth(1)
                    .and_then(|r| r.split(&format!("</{name}>")).next())
                    .unwrap()
                    .to_owned()
            };
            out.push((field("Key"), field("Size").parse().unwrap()));
        }
        out.sort();
        out
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points `p` at `s3://BUCKET/wh` on `endpoint` (path-style, http), with
/// the test credentials in the environment only.
pub(crate) fn on_s3(p: &mut Project, endpoint: &str, secret: &str) {
    let toml = p.read("cairn.toml");
    let storage = format!(
        "[storage]\nurl = \"s3://{BUCKET}/wh\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\npath_style = true\n"
    );
    p.write(
        "cairn.toml",
        &toml.replace("[storage]\nurl = \"file://./warehouse\"\n", &storage),
    );
    assert!(p.read("cairn.toml").contains("s3://"));
    p.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        // Nothing from the machine's own AWS setup.
        ("AWS_ENDPOINT_URL".into(), String::new()),
        ("AWS_PROFILE".into(), "none".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn s3_warehouse_materializes_rebuilds_what_changed_and_reads_back() {
    warehouse_on_s3(false);
}

/// The full combination: outputs on the S3 server, catalog on PostgreSQL.
#[test]
fn s3_and_postgres_warehouse_materializes_rebuilds_what_changed_and_reads_back() {
    warehouse_on_s3(true);
}

/// The core scenarios on S3 (materialize, edit, early cutoff, time travel),
/// with the catalog on PostgreSQL when `postgres`.
fn warehouse_on_s3(postgres: bool) {
    let moto = Moto::start(false);
    let mut p = Project::example();
    on_s3(&mut p, &moto.endpoint(), "testing");
    if postgres {
        crate::postgres::on_postgres(&p, "s3_warehouse");
    }

    let (first, outcomes) = p.materialize(&[]);
    let first_run = first["run_id"].as_str().unwrap().to_owned();
    let all = [
        "stg_customers",
        "stg_orders",
        "stg_payments",
        "int_order_payments",
        "orders",
        "customers",
        "monthly_revenue",
    ];
    assert_eq!(with_outcome(&outcomes, "materialized"), sorted(&all));
    // The files are in the bucket, none on the local disk.
    let objects = moto.objects("wh/");
    for asset in all {
        assert!(
            objects
                .iter()
                .any(|(k, size)| k.starts_with(&format!("wh/{asset}/"))
                    && k.ends_with(".parquet")
                    && *size > 0),
            "{asset}: {objects:?}"
        );
    }
    assert!(!p.path("warehouse").exists());
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    assert_eq!(
        p.query_json("select count(*) as n from customers")[0]["n"],
        100
    );

    // An edit rebuilds exactly it and its downstream.
    p.edit(
        "assets/stg_payments.sql",
        "from raw_payments",
        "from raw_payments\nwhere payment_method <> 'gift_card'",
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["stg_payments"].0, "stale");
    assert_eq!(s["stg_orders"].0, "fresh");
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        sorted(&[
            "stg_payments",
            "int_order_payments",
            "orders",
            "customers",
            "monthly_revenue"
        ])
    );
    let gift =
        p.query_json("select count(*) as n from stg_payments where payment_method = 'gift_card'");
    assert_eq!(gift[0]["n"], 0);

    // Early cutoff: the same rows stop staleness there.
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere 1 = 1",
    );
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["stg_orders".to_owned()]
    );
    assert_eq!(
        with_outcome(&outcomes, "fresh (early cutoff)"),
        sorted(&["orders", "customers", "monthly_revenue"])
    );

    // Time travel reads a replaced version back from the bucket.
    let before = p.json(
        &[
            "query",
            "--as-of",
            &first_run,
            "--format",
            "json",
            "select count(*) as n from stg_payments where payment_method = 'gift_card'",
        ],
        0,
    );
    assert!(before[0]["n"].as_u64().unwrap() > 0, "{before}");
    let gc = p.json(&["gc", "--dry-run", "--format", "json"], 0);
    assert_eq!(gc["uncommitted"].as_array().map(Vec::len), Some(0), "{gc}");
}

#[test]
fn s3_partitioned_example_backfills_and_adds_up() {
    partitions_on_s3(false);
}

/// The full combination: outputs on the S3 server, catalog on PostgreSQL.
#[test]
fn s3_and_postgres_partitioned_example_backfills_and_adds_up() {
    partitions_on_s3(true);
}

/// Partitions, a backfill and checks on S3, with the catalog on PostgreSQL
/// when `postgres`.
fn partitions_on_s3(postgres: bool) {
    let moto = Moto::start(false);
    let mut p = Project::example_named("daily_sales");
    on_s3(&mut p, &moto.endpoint(), "testing");
    if postgres {
        crate::postgres::on_postgres(&p, "s3_partitions");
    }
    let first = p.json(
        &[
            "backfill",
            "daily_sales",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-10",
            "--format",
            "json",
        ],
        0,
    );
    assert!(!first.is_null());
    let days = moto
        .objects("wh/daily_sales/")
        .into_iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .count();
    assert_eq!(days, 10);

    let (_, outcomes) = p.materialize(&["--jobs", "2"]);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o == "materialized" || o == "fresh"),
        "{outcomes:?}"
    );
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    let checks = p.run(&["check"]);
    assert_eq!(checks.code, 0, "{}\n{}", checks.stdout, checks.stderr);
    // 31 committed daily files read as one table, from the bucket.
    let n = p.query_json("select count(distinct day) as n from daily_sales");
    assert_eq!(n[0]["n"], 31);
    let total = p.query_json(
        "select (select sum(revenue) from daily_sales) - (select revenue from month_summary) as d",
    );
    assert!(total[0]["d"].as_f64().unwrap().abs() < 0.01, "{total}");
}

#[test]
fn s3_file_above_the_multipart_threshold_round_trips() {
    let moto = Moto::start(false);
    let digits: String = std::iter::once("n".to_owned())
        .chain((0..1000).map(|n| n.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let mut p = Project::with_files(&[
        (
            "cairn.toml",
            "[storage]\nurl = \"file://./warehouse\"\n[sources.nums]\npath = \"data/nums.csv\"\n",
        ),
        ("data/nums.csv", &digits),
        (
            "assets/big.sql",
            "select i, md5(cast(i as varchar)) || md5(cast(i + 1 as varchar)) as h \
             from (select a.n * 1000 + b.n as i from nums a cross join nums b) where i < 600000",
        ),
    ]);
    on_s3(&mut p, &moto.endpoint(), "testing");
    p.materialize(&[]);
    let objects = moto.objects("wh/big/");
    assert_eq!(objects.len(), 1, "{objects:?}");
    // Above object_store's BufWriter capacity (10 MiB): a multipart upload.
    assert!(objects[0].1 > 10 * 1024 * 1024, "{objects:?}");
    let rows = p.query_json("select count(*) as n, sum(i) as s, count(distinct h) as d from big");
    assert_eq!(rows[0]["n"], 600_000);
    assert_eq!(rows[0]["s"], 599_999u64 * 600_000 / 2);
    assert_eq!(rows[0]["d"], 600_000);
}

#[test]
fn s3_dead_endpoint_fails_fast_and_commits_nothing() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = Project::example();
    on_s3(&mut p, &format!("http://127.0.0.1:{closed}"), "testing");
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        run.stderr.contains(&format!("s3://{BUCKET}/wh"))
            && run.stderr.contains("endpoint is reachable"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert!(
        s.values().all(|(state, _)| state == "never_materialized"),
        "nothing committed: {s:?}"
    );
}

#[test]
fn s3_refused_credentials_are_named() {
    let moto = Moto::start(true);
    let mut p = Project::example();
    on_s3(&mut p, &moto.endpoint(), "wrong");
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        run.stderr.contains("credentials were refused")
            && run.stderr.contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        run.stderr
    );
}

#[test]
fn s3_credentials_in_cairn_toml_are_refused() {
    let p = Project::with_files(&[(
        "cairn.toml",
        "[storage]\nurl = \"s3://b/wh\"\nsecret_access_key = \"x\"\n",
    )]);
    crate::util::assert_refused(
        &p,
        &["status"],
        &["cairn.toml:3", "credentials", "AWS_SECRET_ACCESS_KEY"],
    );
}
