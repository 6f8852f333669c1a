//! Storage on a real S3-protocol server: moto (PyPI `moto[server]`) on a
//! loopback port, path-style, plain http. The example projects run on it
//! end to end; a dead endpoint and refused credentials fail fast and
//! clearly, with nothing committed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    DAILY_SALES_FIRST_WEEK, Project, assert_nothing_committed, python, states, versions,
    with_outcome,
};

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

    /// Writes `body` at `key` in the bucket (an unsigned PUT).
    pub(crate) fn put(&self, key: &str, body: &[u8]) {
        let (status, text) = self.http("PUT", &format!("/{BUCKET}/{key}"), body).unwrap();
        assert_eq!(status, 200, "PUT {key}: {text}");
    }

    /// Overwrites the object at `key` with `body`: a signed PUT through
    /// boto3 (installed with moto), as moto refuses unsigned overwrites.
    fn overwrite(&self, key: &str, body: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), body).unwrap();
        python(
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\
             .upload_file(sys.argv[2], sys.argv[3], sys.argv[4])",
            [
                std::ffi::OsStr::new(&self.endpoint()),
                file.path().as_os_str(),
                BUCKET.as_ref(),
                key.as_ref(),
            ],
        );
    }

    /// Uploads every file under `dir` to `prefix/` (same relative names).
    fn upload_dir(&self, dir: &std::path::Path, prefix: &str) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                self.upload_dir(&path, &format!("{prefix}/{name}"));
            } else {
                self.put(&format!("{prefix}/{name}"), &std::fs::read(&path).unwrap());
            }
        }
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
    warehouse_scenario(&p, &|prefix| moto.objects(prefix));
}

/// The core scenarios on a remote store (materialize, edit, early cutoff,
/// time travel) for the example warehouse `p` writing under `wh/`, whose
/// objects `objects(prefix)` lists with the store's own client: shared by
/// the S3 and Azure tests.
pub(crate) fn warehouse_scenario(p: &Project, objects: &dyn Fn(&str) -> Vec<(String, u64)>) {
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
    let objects = objects("wh/");
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
    assert_nothing_committed(&p);
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

/// Moves the example warehouse's three CSV sources into the bucket
/// (`raw/`): uploaded, declared by URL, deleted from the project folder.
pub(crate) fn warehouse_sources_on_s3(p: &Project, moto: &Moto) {
    moto.upload_dir(&p.path("data"), "raw");
    for name in ["raw_customers", "raw_orders", "raw_payments"] {
        p.edit(
            "cairn.toml",
            &format!("path = \"data/{name}.csv\""),
            &format!("path = \"s3://{BUCKET}/raw/{name}.csv\""),
        );
    }
    std::fs::remove_dir_all(p.path("data")).unwrap();
}

/// The warehouse with its three CSV sources in the bucket (and its
/// outputs): the same data versions as reading them from the project
/// folder; a rewritten object makes its readers stale, an unchanged one
/// nothing; a missing one is named.
#[test]
fn s3_sources_are_read_from_the_bucket_like_local_files() {
    let moto = Moto::start(false);
    let local = Project::example();
    let mut p = Project::example();
    on_s3(&mut p, &moto.endpoint(), "testing");
    warehouse_sources_on_s3(&p, &moto);

    let (report, outcomes) = p.materialize(&[]);
    assert_eq!(with_outcome(&outcomes, "materialized").len(), 7, "{report}");
    let (local_report, _) = local.materialize(&[]);
    assert_eq!(versions(&report), versions(&local_report));
    // Unchanged objects: nothing to do (their e-tags are the fingerprint).
    let (_, outcomes) = p.materialize(&[]);
    assert!(outcomes.iter().all(|(_, o)| o == "fresh"), "{outcomes:?}");

    // A rewritten object: its readers are stale, then rebuilt from it.
    let payments = std::fs::read_to_string(local.path("data/raw_payments.csv")).unwrap();
    let fewer: Vec<&str> = payments.lines().take(11).collect();
    moto.overwrite(
        "raw/raw_payments.csv",
        format!("{}\n", fewer.join("\n")).as_bytes(),
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["stg_payments"].0, "stale");
    assert_eq!(s["stg_orders"].0, "fresh");
    let (_, outcomes) = p.materialize(&[]);
    assert!(
        with_outcome(&outcomes, "materialized").contains(&"stg_payments".to_owned()),
        "{outcomes:?}"
    );
    assert_eq!(
        p.query_json("select count(*) as n from stg_payments")[0]["n"],
        10
    );

    // A source object that is not there is named, with nothing built.
    p.edit("cairn.toml", "raw/raw_orders.csv", "raw/missing_orders.csv");
    let run = p.run(&["materialize"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("raw_orders")
            && run
                .stderr
                .contains(&format!("s3://{BUCKET}/raw/missing_orders.csv"))
            && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    // A folder with no file of the format is named too.
    p.edit(
        "cairn.toml",
        "raw/missing_orders.csv\"",
        "raw/empty/\"\nformat = \"csv\"",
    );
    let run = p.run(&["status"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("no .csv files under s3://{BUCKET}/raw/empty/")),
        "{}",
        run.stderr
    );
}

/// daily_sales with its partitioned source folder in the bucket: a
/// backfill reads each day's folder there, with the local data versions.
#[test]
fn s3_partitioned_source_folder_is_read_from_the_bucket() {
    let moto = Moto::start(false);
    let local = Project::example_named("daily_sales");
    let mut p = Project::example_named("daily_sales");
    on_s3(&mut p, &moto.endpoint(), "testing");
    moto.upload_dir(&p.path("data/sales"), "sales");
    p.edit(
        "cairn.toml",
        "path = \"data/sales\"",
        &format!("path = \"s3://{BUCKET}/sales/\""),
    );
    std::fs::remove_dir_all(p.path("data")).unwrap();
    p.json(&DAILY_SALES_FIRST_WEEK, 0);
    local.json(&DAILY_SALES_FIRST_WEEK, 0);
    let (report, _) = p.materialize(&["--jobs", "2"]);
    let (local_report, _) = local.materialize(&["--jobs", "2"]);
    assert!(versions(&report).len() > 7, "{report}");
    assert_eq!(versions(&report), versions(&local_report));
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    let sql = "select count(distinct day) as n, sum(sales) as s from daily_sales";
    assert_eq!(p.query_json(sql), local.query_json(sql));

    // One day's object rewritten: that day alone is stale.
    let day = "date=2024-01-03";
    let (key, _) = moto
        .objects(&format!("sales/{day}/"))
        .into_iter()
        .next()
        .unwrap();
    let name = key.rsplit('/').next().unwrap();
    let mut content = std::fs::read(local.path(&format!("data/sales/{day}/{name}"))).unwrap();
    let last_line = content[..content.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    content.truncate(last_line + 1);
    moto.overwrite(&key, &content);
    let status = p.json(&["status", "--format", "json"], 0);
    let daily = status["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "daily_sales")
        .unwrap();
    assert_eq!(daily["partitions"]["stale"], 1, "{daily}");
    assert_eq!(
        daily["partitions"]["stale_causes"][0],
        "source sales changed"
    );
}
