//! Alerts against a real HTTP receiver on 127.0.0.1: one alert per
//! incident however often it is seen again, a `recovered` when it clears,
//! and a receiver that is down leaves the runs as they were and the alert
//! recorded as undelivered (in `cairn.alerts` and `cairn status`).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_receiver;
use crate::util::{Project, assert_refused, outcomes};

/// A webhook receiver on `/hook`: answers every POST with 200 and keeps
/// its body.
struct Receiver {
    url: String,
    inner: http_receiver::Receiver,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Receiver {
        let inner = http_receiver::Receiver::on(listener);
        Receiver {
            url: format!("http://{}/hook", inner.addr),
            inner,
        }
    }

    /// The bodies received so far, as JSON; each was a JSON POST to /hook.
    fn received(&self) -> Vec<Value> {
        for r in self.inner.requests() {
            assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        self.inner.bodies()
    }
}

/// An http URL on a loopback port nobody listens on.
fn nobody_listening() -> String {
    format!(
        "http://127.0.0.1:{}/hook",
        http_receiver::nobody_listening()
    )
}

const BROKEN: &str = "select id, amount, missing_column from raw";
const FIXED: &str = "select id, amount from raw";

/// `fragile` fails at run time (a column that does not exist); `good` and
/// its downstream are independent of it.
fn project(alerts: &str) -> Project {
    Project::with_files(&[
        (
            "cairn.toml",
            &format!("[sources.raw]\npath = \"data/raw.csv\"\n\n{alerts}"),
        ),
        ("data/raw.csv", "id,amount\n1,10\n2,20\n"),
        (
            "assets/good.sql",
            "select id, amount * 2 as doubled from raw",
        ),
        ("assets/fragile.sql", BROKEN),
    ])
}

fn slack_to(url: &str) -> String {
    format!("[[alerts]]\nurl = \"{url}\"\nformat = \"slack\"\n")
}

/// `cairn materialize --format json` with quick delivery retries: its
/// exit code and the outcome of each asset.
fn materialize(p: &Project) -> (i32, Vec<(String, String)>) {
    let run = p
        .command(&["materialize", "--format", "json"])
        .env("CAIRN_TEST_ALERT_BACKOFF_MS", "10")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (run.status.code().unwrap_or(-1), outcomes(&report))
}

fn alerts_table(p: &Project) -> Vec<Value> {
    let rows = p.query_json(
        "select kind, asset, event, status, attempts, last_error, closed_at is not null as closed \
         from cairn.alerts order by delivery_id",
    );
    rows.as_array().unwrap().clone()
}

#[test]
fn one_run_failed_alert_however_often_it_fails_and_one_recovered() {
    let receiver = Receiver::start();
    let p = project(&slack_to(&receiver.url));
    for attempt in 1..=3 {
        let (code, outcomes) = materialize(&p);
        assert_eq!(code, 1, "run {attempt} fails");
        assert!(outcomes.contains(&("fragile".to_owned(), "failed".to_owned())));
    }
    // `cairn check` (no checks here) and status see it again: nothing sent.
    p.run(&["check"]);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "one alert for the failure: {received:?}");
    let text = received[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(":red_circle: run failed: fragile — "),
        "{text}"
    );
    assert!(text.contains("missing_column"), "the error: {text}");
    assert_eq!(received[0]["blocks"][0]["text"]["text"], text);
    let context = received[0]["blocks"][2]["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(context.starts_with("project `p` · run `"), "{context}");

    // Fixed: one `recovered`.
    p.write("assets/fragile.sql", FIXED);
    let (code, _) = materialize(&p);
    assert_eq!(code, 0);
    materialize(&p);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let text = received[1]["text"].as_str().unwrap();
    assert!(
        text.starts_with(":large_green_circle: recovered: fragile — run failed since "),
        "{text}"
    );

    // Broken again: a new incident, a new alert.
    p.write("assets/fragile.sql", BROKEN);
    materialize(&p);
    assert_eq!(receiver.received().len(), 3);

    let rows = alerts_table(&p);
    let summary: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
                r["closed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("run_failed".to_owned(), "delivered".to_owned(), true),
            ("recovered".to_owned(), "delivered".to_owned(), true),
            ("run_failed".to_owned(), "delivered".to_owned(), false),
        ]
    );
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:?}");
    let status = p.run(&["status"]);
    assert!(!status.stdout.contains("undelivered"), "{}", status.stdout);
}

#[test]
fn a_receiver_that_is_down_changes_nothing_and_the_alert_is_recorded_undelivered() {
    let without = project("");
    let (code_without, outcomes_without) = materialize(&without);

    let p = project(&slack_to(&nobody_listening()));
    let started = Instant::now();
    let run = p
        .command(&["materialize", "--format", "json"])
        .env("CAIRN_TEST_ALERT_BACKOFF_MS", "10")
        .output()
        .unwrap();
    let (code, report) = (
        run.status.code().unwrap_or(-1),
        serde_json::from_slice::<Value>(&run.stdout).unwrap(),
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        (code, outcomes(&report)),
        (code_without, outcomes_without),
        "the run is as it is without alerts"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("1 alert(s) undelivered after every attempt"),
        "{stderr}"
    );

    // Retried with backoff, every attempt counted, then given up.
    let rows = alerts_table(&p);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["event"], "run_failed");
    assert_eq!(rows[0]["status"], "undelivered");
    assert_eq!(rows[0]["attempts"], 5);
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(error.contains("Connection refused"), "{error}");

    let status = p.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("1 alert(s) undelivered in the last 24 h (see cairn.alerts)"),
        "{}",
        status.stdout
    );
    // Through a server, the same words.
    let server = crate::server::Server::start(&p);
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(elsewhere.path())
        .args(["--server", &server.addr, "status"])
        .env_remove("CAIRN_SERVER")
        .env_remove("CAIRN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        status.stdout,
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    drop(server);
    // The failure seen again opens nothing more to send.
    materialize(&p);
    assert_eq!(alerts_table(&p).len(), 1);
}

#[test]
fn a_failing_error_check_is_a_check_incident_until_check_passes() {
    let receiver = Receiver::start();
    let p = Project::with_files(&[
        (
            "cairn.toml",
            &format!(
                "[sources.raw_items]\npath = \"data/items.csv\"\n[sources.raw_parents]\npath = \"data/parents.csv\"\n\n\
                 [[alerts]]\nurl = \"{}\"\nformat = \"json\"\non = [\"check_failed\", \"recovered\"]\n",
                receiver.url
            ),
        ),
        ("data/items.csv", "id,parent_id\n1,10\n2,20\n"),
        ("data/parents.csv", "id\n10\n20\n"),
        ("assets/parents.sql", "select id from raw_parents"),
        (
            "assets/items.sql",
            "--- checks = [\"relationships(parent_id, parents.id)\"]\nselect id, parent_id from raw_items",
        ),
    ]);
    assert_eq!(materialize(&p).0, 0);
    // A parent disappears: the committed items now fail their check.
    p.write("data/parents.csv", "id\n10\n");
    p.json(&["materialize", "parents", "--format", "json"], 0);
    for _ in 0..2 {
        assert_eq!(p.run(&["check", "items"]).code, 1);
    }
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let alert = &received[0];
    assert_eq!(
        (
            &alert["event"],
            &alert["kind"],
            &alert["asset"],
            &alert["partition"]
        ),
        (
            &Value::from("check_failed"),
            &Value::from("check_failed"),
            &Value::from("items"),
            &Value::from("")
        )
    );
    let detail = alert["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("relationships(parent_id, parents.id) (1 failing rows)"),
        "{detail}"
    );
    assert_eq!(alert["project"], "p");
    assert!(alert["run_id"].is_string());

    p.write("data/parents.csv", "id\n10\n20\n");
    p.json(&["materialize", "parents", "--format", "json"], 0);
    assert_eq!(p.run(&["check", "items"]).code, 0);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[1]["event"], "recovered");
    assert_eq!(received[1]["kind"], "check_failed");
    assert!(received[1]["closed_at"].is_string());
}

/// An HTTPS receiver (`https_receiver.py`) with a certificate for
/// 127.0.0.1 made by openssl: its URL, the certificate's path and the file
/// its bodies go to, one a line.
struct HttpsReceiver {
    child: std::process::Child,
    url: String,
    cert: std::path::PathBuf,
    out: std::path::PathBuf,
}

impl HttpsReceiver {
    fn start(dir: &std::path::Path) -> HttpsReceiver {
        use std::io::BufRead;
        let (cert, key, out) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("got"));
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl must be installed");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/e2e/https_receiver.py"
        );
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args([&cert, &key, &out])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        HttpsReceiver {
            child,
            url: format!("https://127.0.0.1:{}/hook", port.trim()),
            cert,
            out,
        }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_webhooks_are_delivered_over_verified_tls_only() {
    let p = project("");
    let receiver = HttpsReceiver::start(&p.root);
    p.write(
        "cairn.toml",
        &format!(
            "[sources.raw]\npath = \"data/raw.csv\"\n\n{}",
            slack_to(&receiver.url)
        ),
    );
    // Its certificate is trusted by no one: the alert is not delivered,
    // and the record says why.
    let (code, _) = materialize(&p);
    assert_eq!(code, 1);
    assert!(receiver.received().is_empty());
    let alerts = alerts_table(&p);
    assert_eq!(alerts[0]["status"], "undelivered", "{alerts:?}");
    let error = alerts[0]["last_error"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(error.contains("certificate"), "{error}");

    // Trusted (SSL_CERT_FILE, as for a private CA): delivered over TLS.
    p.write("assets/fragile.sql", FIXED);
    let run = p
        .command(&["materialize", "--format", "json"])
        .env("CAIRN_TEST_ALERT_BACKOFF_MS", "10")
        .env("SSL_CERT_FILE", &receiver.cert)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let received = receiver.received();
    assert!(!received.is_empty(), "{:?}", alerts_table(&p));
    assert!(
        received
            .iter()
            .any(|r| r["text"].as_str().unwrap_or_default().contains("recovered")),
        "{received:?}"
    );

    // Not a webhook at all: refused when the project loads.
    let other = project(&slack_to("ftp://hooks.example.com/x"));
    assert_refused(
        &other,
        &["status"],
        &["cairn.toml:5", "is not an http:// or https:// URL"],
    );
}

#[test]
fn an_alert_a_command_left_pending_is_delivered_by_the_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = project(&slack_to(&format!("http://127.0.0.1:{port}/hook")));
    // The receiver is down: the command tries within its budget (about
    // 3 s, the default 1 s backoff) and leaves the alert pending.
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        run.stderr
            .contains("1 alert(s) not delivered yet (error sending request"),
        "{}",
        run.stderr
    );
    let rows = alerts_table(&p);
    assert_eq!(rows[0]["status"], "pending", "{rows:?}");
    let tried = rows[0]["attempts"].as_i64().unwrap();
    assert!((1..5).contains(&tried), "{rows:?}");

    // The receiver comes up; the server's background task delivers it.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = Receiver::on(listener);
    let server = crate::server::Server::start(&p);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = receiver.received();
    assert_eq!(received.len(), 1, "delivered once by the server");
    assert!(
        received[0]["text"]
            .as_str()
            .unwrap()
            .starts_with(":red_circle: run failed: fragile")
    );
    server.stop();
    let rows = alerts_table(&p);
    assert_eq!(rows[0]["status"], "delivered", "{rows:?}");
    assert_eq!(rows[0]["attempts"].as_i64().unwrap(), tried + 1);
}

#[test]
fn a_failure_retried_three_times_and_seen_again_alerts_once() {
    let receiver = Receiver::start();
    let p = project(&slack_to(&receiver.url));
    p.write(
        "assets/flaky.sql",
        "--- [retries]\n--- max_attempts = 3\n--- backoff = \"1s\"\nselect id from raw",
    );
    p.write("assets/fragile.sql", FIXED);
    // Every write fails like an unreachable store: 3 attempts per run.
    for _ in 0..2 {
        let run = p
            .command(&["materialize", "flaky", "--format", "json"])
            .env("CAIRN_TEST_FAIL_STORE_REQUESTS", "1000")
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(1));
    }
    let received = receiver.received();
    assert_eq!(
        received.len(),
        1,
        "one alert for 2 runs x 3 attempts: {received:?}"
    );
    let text = received[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(":red_circle: run failed: flaky — "),
        "{text}"
    );
    assert!(text.contains("(after 3 attempts)"), "{text}");

    // The store is back: built, and one `recovered`.
    assert_eq!(materialize(&p).0, 0);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        received[1]["text"]
            .as_str()
            .unwrap()
            .starts_with(":large_green_circle: recovered: flaky"),
        "{received:?}"
    );
}

#[test]
fn a_missed_freshness_sla_alerts_once_from_ticks_and_recovers_when_built() {
    let receiver = Receiver::start();
    let p = Project::with_files(&[
        (
            "cairn.toml",
            &format!(
                "[sources.events]\npath = \"data/events\"\nformat = \"csv\"\npartitions = {{ type = \"daily\", start = \"2024-01-01\", end = \"2024-01-03\" }}\n\n[[alerts]]\nurl = \"{}\"\nformat = \"json\"\n",
                receiver.url
            ),
        ),
        (
            "assets/daily.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\n\
             --- [freshness]\n--- fail_after = \"6h\"\n\
             --- [automation]\n--- cron = \"0 23 * * *\"\n\
             select sum(n) as n from events",
        ),
    ]);
    for day in 1..=3 {
        p.write(
            &format!("data/events/date=2024-01-0{day}/e.csv"),
            &format!("n\n{day}\n"),
        );
    }
    let tick = |at: &str| {
        let run = p
            .command(&["tick", "--at", at, "--format", "json"])
            .env("CAIRN_TEST_ALERT_BACKOFF_MS", "50")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    };
    let missed = || -> Vec<Value> {
        receiver
            .received()
            .into_iter()
            .filter(|b| b["event"] == "freshness_missed")
            .collect()
    };
    // 2024-01-04 07:00: all three days closed more than 6h ago, none built
    // (the cron is due at 23:00 only): three incidents, one alert each.
    tick("2024-01-04T07:00:00Z");
    tick("2024-01-04T08:00:00Z");
    tick("2024-01-04T09:00:00Z");
    let alerts = missed();
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts.iter().all(|a| a["asset"] == "daily"), "{alerts:?}");
    // The 23:00 tick builds them: each incident recovers, once.
    tick("2024-01-04T23:00:00Z");
    tick("2024-01-05T01:00:00Z");
    let recovered: Vec<Value> = receiver
        .received()
        .into_iter()
        .filter(|b| b["event"] == "recovered")
        .collect();
    assert_eq!(recovered.len(), 3, "{recovered:?}");
    assert_eq!(missed().len(), 3, "no new freshness alert once built");
}

#[test]
fn a_failure_across_retries_and_five_ticks_alerts_once() {
    let receiver = Receiver::start();
    let p = project(&slack_to(&receiver.url));
    p.write("assets/fragile.sql", FIXED);
    p.write(
        "assets/flaky.sql",
        "--- [automation]\n--- cron = \"0 * * * *\"\n--- [retries]\n--- max_attempts = 3\n--- backoff = \"1s\"\nselect id from raw",
    );
    // Five hourly ticks, each running `flaky` with every write failing
    // like an unreachable store: 5 runs x 3 attempts, one incident.
    for hour in 0..5 {
        let run = p
            .command(&["tick", "--at", &format!("2026-01-01T0{hour}:00:00Z")])
            .env("CAIRN_TEST_FAIL_STORE_REQUESTS", "1000")
            .env("CAIRN_TEST_ALERT_BACKOFF_MS", "50")
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(1),
            "tick {hour}: {}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
    let failed_attempts = p.query_json(
        "select count(*) as n from cairn.runs where trigger = 'automation' and status = 'failed'",
    );
    assert_eq!(failed_attempts[0]["n"], 5, "five runs failed");
    let received = receiver.received();
    assert_eq!(received.len(), 1, "one alert: {received:?}");
    assert!(
        received[0]["text"]
            .as_str()
            .unwrap()
            .starts_with(":red_circle: run failed: flaky — "),
        "{received:?}"
    );
}
