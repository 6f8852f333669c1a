//! The run queue behind `cairn serve`, driven by a real gRPC client
//! (Python grpcio): Materialize + WatchRun live, the same answers as the
//! CLI afterwards, deduplication of overlapping requests, the
//! `max_concurrent_runs` bound, cancel, and a SIGKILLed server resuming
//! its queue with every unit committed exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::server::Server;
use crate::util::{Project, states};

fn time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// Watches `run` to its end: its events.
fn watch(server: &Server, run: &str) -> Vec<Value> {
    let events = server.call_lines("WatchRun", &format!(r#"{{"run_id": "{run}"}}"#));
    let last = events
        .last()
        .unwrap_or_else(|| panic!("no events for {run}"));
    assert_eq!(last["event"], "finished", "{events:?}");
    events
}

/// Committed materializations per (asset, partition), from the catalog.
fn commits(p: &Project) -> BTreeMap<String, u64> {
    let rows = p.query_json("select asset, partition, count(*) as n from cairn.materializations group by asset, partition");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}[{}]",
                    r["asset"].as_str().unwrap(),
                    r["partition"].as_str().unwrap_or("")
                ),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls GetRun until `done` holds (at most a minute).
fn wait_for(server: &Server, run: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let r = server.call("GetRun", &format!(r#"{{"run_id": "{run}"}}"#));
        if done(&r) {
            return r;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn materialized(run: &Value) -> Vec<String> {
    run["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["outcome"] == "materialized")
        .map(|u| u["asset"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_client_materializes_watches_live_and_reads_what_the_cli_reads() {
    let p = Project::example();
    let server = Server::start(&p);
    let lines = server.call_lines("MaterializeAndWatch", r#"{"jobs": 1}"#);
    let accepted = &lines[0]["accepted"];
    assert_eq!(accepted["attached"], false, "{accepted}");
    let run = accepted["run_id"].as_str().unwrap();
    let events = &lines[1..];
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..2], ["queued", "started"], "{kinds:?}");
    let finished = events.last().unwrap();
    assert_eq!(
        (&finished["event"], &finished["status"]),
        (&Value::from("finished"), &Value::from("succeeded")),
        "{finished}"
    );
    assert!(events.iter().all(|e| e["run_id"] == run));
    // Each unit: started, then built, in dependency order.
    let mut built = Vec::new();
    for pair in kinds[2..kinds.len() - 1].chunks(2) {
        assert_eq!(pair, ["unit_started", "built"], "{kinds:?}");
    }
    for e in events.iter().filter(|e| e["event"] == "built") {
        assert!(
            e["rows"].as_str().unwrap().parse::<u64>().unwrap() > 0,
            "{e}"
        );
        built.push(e["asset"].as_str().unwrap().to_owned());
    }
    assert_eq!(built.len(), 7, "{built:?}");
    let position = |a: &str| built.iter().position(|b| b == a).unwrap();
    assert!(position("stg_orders") < position("orders"));
    assert!(position("orders") < position("monthly_revenue"));
    // Live: the client had unit events before the run finished (not a
    // replay read from the end).
    let end = time(&finished["at"]).timestamp_micros() as f64 / 1e6;
    let early = events
        .iter()
        .filter(|e| e["event"] == "built")
        .filter(|e| e["received_at"].as_f64().unwrap() < end)
        .count();
    assert!(
        early > 0,
        "every event arrived after the run ended: {events:?}"
    );

    // A watcher after the end gets the same story.
    let again = watch(&server, run);
    let again_kinds: Vec<&str> = again.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(again_kinds, kinds);

    // Status, GetAsset and Lineage answer what the CLI answers.
    let cli = states(&p.json(&["status", "--format", "json"], 0));
    let grpc = server.call("Status", "{}");
    for a in grpc["assets"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        assert_eq!(a["state"], "fresh", "{a}");
        assert_eq!(cli[name].0, "fresh", "{name}");
    }
    assert_eq!(grpc["assets"].as_array().unwrap().len(), cli.len());
    let show = p.json(&["show", "customers", "--format", "json"], 0);
    let asset = server.call("GetAsset", r#"{"name": "customers"}"#);
    assert_eq!(
        asset["current"]["data_version"], show["current"]["data_version"],
        "{asset}\n{show}"
    );
    assert_eq!(asset["current"]["run_id"], run);
    let cli_lineage = p.json(&["lineage", "orders", "--format", "json"], 0);
    let lineage = server.call("Lineage", r#"{"asset": "orders"}"#);
    for side in ["upstream", "downstream"] {
        let mut cli_side: Vec<&str> = cli_lineage[side]
            .as_array()
            .unwrap_or_else(|| panic!("{side}: {cli_lineage}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        cli_side.sort();
        let grpc_side: Vec<&str> = lineage[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(grpc_side, cli_side, "{side}");
    }
    // The run as recorded: by the API, every unit once.
    let recorded = server.call("GetRun", &format!(r#"{{"run_id": "{run}"}}"#));
    assert_eq!(recorded["status"], "succeeded");
    assert_eq!(recorded["trigger"], "api");
    assert!(!recorded["queued_at"].as_str().unwrap().is_empty());
    assert_eq!(materialized(&recorded).len(), 7);
    // Checks rerun on the committed versions, recorded under a run.
    let checks = server.call("Checks", "{}");
    assert_eq!(checks["failing"], "0", "{checks}");
    assert!(
        !checks["results"].as_array().unwrap().is_empty(),
        "{checks}"
    );
    assert!(!checks["run_id"].as_str().unwrap().is_empty(), "{checks}");
    // Nothing stale: a second request runs nothing.
    let second = server.call_lines("MaterializeAndWatch", "{}");
    assert!(
        second[1..]
            .iter()
            .all(|e| e["event"] != "built" && e["event"] != "unit_started"),
        "{second:?}"
    );
    // Bad input is refused with the CLI's message; nothing is queued.
    let runs_before = server.call("ListRuns", "{}")["runs"]
        .as_array()
        .unwrap()
        .len();
    let bad = server.call("Materialize", r#"{"selection": ["custmers"]}"#);
    assert_eq!(bad["code"], "INVALID_ARGUMENT", "{bad}");
    let cli_bad = p.run(&["materialize", "custmers"]);
    assert!(
        cli_bad.stderr.contains(bad["details"].as_str().unwrap()),
        "{bad}\n{}",
        cli_bad.stderr
    );
    let runs_after = server.call("ListRuns", "{}")["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs_after, runs_before);
    server.stop();
}

#[test]
fn overlapping_requests_build_every_unit_exactly_once() {
    let p = Project::example();
    let server = Server::start(&p);
    let replies = server.call(
        "Concurrent",
        r#"[{"selection": ["customers"], "jobs": 2},
            {"selection": ["+customers"], "jobs": 2},
            {"selection": ["stg_orders+"], "jobs": 2},
            {"selection": [], "jobs": 2},
            {"selection": ["+monthly_revenue"], "jobs": 2}]"#,
    );
    let mut runs: Vec<String> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["run_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{replies}"))
                .to_owned()
        })
        .collect();
    runs.sort();
    runs.dedup();
    for run in &runs {
        let events = watch(&server, run);
        let end = events.last().unwrap();
        assert_eq!(end["status"], "succeeded", "{run}: {events:?}");
    }
    let commits = commits(&p);
    assert_eq!(commits.len(), 7, "{commits:?}");
    assert!(commits.values().all(|n| *n == 1), "{commits:?}");
    server.stop();
}

#[test]
fn with_max_concurrent_runs_1_runs_never_overlap() {
    let p = Project::example();
    for name in ["a", "b", "c"] {
        p.write(&format!("assets/{name}.sql"), "select 1 as n");
    }
    let config = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{config}\n[server]\nmax_concurrent_runs = 1\n"),
    );
    p.materialize(&["--jobs", "1"]);
    let server = Server::start(&p);
    let replies = server.call(
        "Concurrent",
        r#"[{"selection": ["a"], "force": true}, {"selection": ["b"], "force": true},
            {"selection": ["c"], "force": true}, {"selection": ["stg_orders"], "force": true},
            {"selection": ["stg_payments"], "force": true}]"#,
    );
    let ids: Vec<String> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);
    let mut spans = Vec::new();
    for id in &ids {
        assert_eq!(watch(&server, id).last().unwrap()["status"], "succeeded");
        let run = server.call("GetRun", &format!(r#"{{"run_id": "{id}"}}"#));
        assert_eq!(materialized(&run).len(), 1, "{run}");
        spans.push((time(&run["started_at"]), time(&run["finished_at"])));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "runs overlap: {:?} starts before {:?} ends",
            pair[1],
            pair[0]
        );
    }
    server.stop();
}

#[test]
fn a_cancelled_run_stops_within_seconds_and_commits_nothing_more() {
    let p = Project::example();
    let server = Server::start_with(&p, &[("CAIRN_TEST_HANG_BEFORE_COMMIT", "orders")]);
    let accepted = server.call("Materialize", r#"{"jobs": 1}"#);
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    // Mid-way: the staging models are in, `orders` hangs before its commit.
    wait_for(&server, &run, "staging built", |r| {
        materialized(r).contains(&"int_order_payments".to_owned())
    });
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let cancelled = server.call("CancelRun", &format!(r#"{{"run_id": "{run}"}}"#));
    let took = asked.elapsed();
    let acknowledged = Utc::now();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert!(!cancelled["finished_at"].as_str().unwrap().is_empty());

    let before = commits(&p);
    assert!(!before.contains_key("orders[]"), "{before:?}");
    assert!(!before.contains_key("monthly_revenue[]"), "{before:?}");
    assert!(before.contains_key("int_order_payments[]"), "{before:?}");
    let latest = p.query_json("select max(committed_at) as t from cairn.materializations");
    let latest = time(&latest[0]["t"]);
    assert!(
        latest <= acknowledged,
        "{latest} after the cancel ({acknowledged})"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(commits(&p), before, "a unit committed after the cancel");

    // Nothing half-written is visible: `orders` was never committed.
    let status = p.run(&["status", "--format", "json"]);
    let status = states(&serde_json::from_str(&status.stdout).unwrap());
    assert_ne!(status["orders"].0, "fresh", "{status:?}");
    let read = p.run(&["query", "select count(*) from orders"]);
    assert_ne!(read.code, 0, "{}", read.stdout);
    let events = watch(&server, &run);
    assert_eq!(events.last().unwrap()["status"], "cancelled", "{events:?}");
    // Cancelling again answers the same; an unknown run is NOT_FOUND.
    let again = server.call("CancelRun", &format!(r#"{{"run_id": "{run}"}}"#));
    assert_eq!(again["status"], "cancelled");
    let unknown = server.call("CancelRun", r#"{"run_id": "nope"}"#);
    assert_eq!(unknown["code"], "NOT_FOUND", "{unknown}");
    server.stop();
}

#[test]
fn a_killed_server_resumes_its_queue_and_commits_every_unit_once() {
    let p = Project::example();
    let config = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{config}\n[server]\nmax_concurrent_runs = 1\n"),
    );
    let first = Server::start_with(&p, &[("CAIRN_TEST_HANG_BEFORE_COMMIT", "orders")]);
    let submit = |server: &Server, selection: &str| -> String {
        let r = server.call(
            "Materialize",
            &format!(r#"{{"selection": ["{selection}"]}}"#),
        );
        r["run_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    };
    let running = submit(&first, "+orders");
    let queued = [
        submit(&first, "customers"),
        submit(&first, "monthly_revenue"),
    ];
    wait_for(&first, &running, "upstream of orders built", |r| {
        materialized(r).contains(&"int_order_payments".to_owned())
    });
    for id in &queued {
        let r = first.call("GetRun", &format!(r#"{{"run_id": "{id}"}}"#));
        assert_eq!(r["status"], "queued", "{r}");
    }
    first.kill();

    let second = Server::start(&p);
    for id in std::iter::once(&running).chain(&queued) {
        let events = watch(&second, id);
        assert_eq!(
            events.last().unwrap()["status"],
            "succeeded",
            "{id}: {events:?}"
        );
    }
    let resumed = second.call("GetRun", &format!(r#"{{"run_id": "{running}"}}"#));
    assert!(
        materialized(&resumed).contains(&"orders".to_owned()),
        "{resumed}"
    );
    let commits = commits(&p);
    assert_eq!(commits.len(), 7, "{commits:?}");
    assert!(commits.values().all(|n| *n == 1), "{commits:?}");
    second.stop();
}

#[test]
fn sigterm_drains_and_the_next_start_finishes_the_run() {
    let p = Project::example();
    let config = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{config}\n[server]\nshutdown_grace_seconds = 1\n"),
    );
    let first = Server::start_with(&p, &[("CAIRN_TEST_HANG_BEFORE_COMMIT", "orders")]);
    let accepted = first.call("Materialize", r#"{"jobs": 1}"#);
    let run = accepted["run_id"].as_str().unwrap().to_owned();
    wait_for(&first, &run, "upstream of orders built", |r| {
        materialized(r).contains(&"int_order_payments".to_owned())
    });
    let asked = Instant::now();
    first.stop(); // SIGTERM; exits 0
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    let before = commits(&p);
    assert!(!before.contains_key("orders[]"), "{before:?}");

    let second = Server::start(&p);
    let events = watch(&second, &run);
    assert_eq!(events.last().unwrap()["status"], "succeeded", "{events:?}");
    let commits = commits(&p);
    assert_eq!(commits.len(), 7, "{commits:?}");
    assert!(commits.values().all(|n| *n == 1), "{commits:?}");
    second.stop();
}

/// Build spans `[start, end]` of an asset's materializations, from the
/// catalog (commit time minus wall time).
fn spans(p: &Project, assets: &[&str]) -> Vec<(i64, i64)> {
    let list = assets
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = p.query_json(&format!(
        "select committed_at, wall_ms from cairn.materializations where asset in ({list})"
    ));
    let mut spans: Vec<(i64, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let end = time(&r["committed_at"]).timestamp_micros();
            (end - r["wall_ms"].as_i64().unwrap() * 1000, end)
        })
        .collect();
    spans.sort();
    spans
}

#[test]
fn a_pool_lets_one_build_at_a_time_within_and_across_runs() {
    let p = Project::example();
    let config = p.read("cairn.toml");
    p.write("cairn.toml", &format!("{config}\n[pools]\nsingle = 1\n"));
    let heavy = "select count(*) as n, sum(a.x * b.x) as s \
                 from (select unnest(range(1, 600)) as x) a, (select unnest(range(1, 600)) as x) b";
    for name in ["p1", "p2", "p3"] {
        p.write(
            &format!("assets/{name}.sql"),
            &format!("--- pool = \"single\"\n{heavy}\n"),
        );
    }
    // The CLI: three jobs, one pool slot.
    p.materialize(&["p1", "p2", "p3", "--jobs", "3"]);
    let cli = spans(&p, &["p1", "p2", "p3"]);
    assert_eq!(cli.len(), 3);
    for pair in cli.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "builds overlap: {cli:?}");
    }
    // The server: three runs at once, one pool slot between them.
    let server = Server::start(&p);
    let replies = server.call(
        "Concurrent",
        r#"[{"selection": ["p1"], "force": true}, {"selection": ["p2"], "force": true},
            {"selection": ["p3"], "force": true}]"#,
    );
    for r in replies.as_array().unwrap() {
        let events = watch(&server, r["run_id"].as_str().unwrap());
        assert_eq!(events.last().unwrap()["status"], "succeeded", "{events:?}");
    }
    let all = spans(&p, &["p1", "p2", "p3"]);
    assert_eq!(all.len(), 6);
    for pair in all.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "builds overlap: {all:?}");
    }
    // An unknown pool is refused at load, naming file and line.
    p.write("assets/p4.sql", "--- pool = \"singel\"\nselect 1 as x\n");
    let refused = p.run(&["status"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("assets/p4.sql:1")
            && refused.stderr.contains("did you mean `single`?"),
        "{}",
        refused.stderr
    );
    server.stop();
}

#[test]
fn a_backfill_through_the_queue_records_and_runs_its_partitions() {
    let p = Project::example_named("daily_sales");
    let server = Server::start(&p);
    let accepted = server.call(
        "Backfill",
        r#"{"selection": ["daily_sales"], "from": "2024-01-03", "to": "2024-01-07", "jobs": 2}"#,
    );
    let run = accepted["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{accepted}"));
    let events = watch(&server, run);
    assert_eq!(events.last().unwrap()["status"], "succeeded", "{events:?}");
    let mut built: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "built")
        .map(|e| e["partition"].as_str().unwrap())
        .collect();
    built.sort();
    assert_eq!(
        built,
        [
            "2024-01-03",
            "2024-01-04",
            "2024-01-05",
            "2024-01-06",
            "2024-01-07"
        ]
    );
    let commits = commits(&p);
    assert_eq!(commits.len(), 5, "{commits:?}");
    // Recorded as a backfill, resumable by id like the CLI's.
    let backfill = p.query_json("select backfill_id from cairn.runs where backfill_id is not null");
    let id = backfill[0]["backfill_id"].as_str().unwrap().to_owned();
    let resumed = server.call("Backfill", &format!(r#"{{"resume": "{id}"}}"#));
    let again = watch(&server, resumed["run_id"].as_str().unwrap());
    assert_eq!(again.last().unwrap()["status"], "succeeded", "{again:?}");
    assert!(again.iter().all(|e| e["event"] != "built"), "{again:?}");

    // A bad partition: the CLI's message, nothing queued.
    let runs = server.call("ListRuns", "{}")["runs"]
        .as_array()
        .unwrap()
        .len();
    let bad = server.call(
        "Backfill",
        r#"{"selection": ["daily_sales"], "from": "2024-13-01"}"#,
    );
    assert_eq!(bad["code"], "INVALID_ARGUMENT", "{bad}");
    let cli = p.run(&["backfill", "daily_sales", "--from", "2024-13-01"]);
    assert_eq!(cli.code, 2);
    assert!(
        cli.stderr.contains(bad["details"].as_str().unwrap()),
        "{bad}\n{}",
        cli.stderr
    );
    assert_eq!(
        server.call("ListRuns", "{}")["runs"]
            .as_array()
            .unwrap()
            .len(),
        runs
    );
    server.stop();
}

#[test]
fn a_server_whose_stderr_closed_keeps_running_and_logging_nowhere() {
    let p = Project::example();
    let server = Server::start_with_stderr_closed(&p);
    // Each run logs queued/started/finished lines to the closed stderr.
    let lines = server.call_lines("MaterializeAndWatch", "{}");
    assert_eq!(lines.last().unwrap()["status"], "succeeded", "{lines:?}");
    assert_eq!(
        server.call("Status", "{}")["assets"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    server.stop();
}

#[test]
fn the_server_sees_definition_edits_at_the_next_call() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    let server = Server::start(&p);
    let state = |server: &Server, asset: &str| -> String {
        let status = server.call("Status", &format!(r#"{{"selection": ["{asset}"]}}"#));
        status["assets"][0]["state"]
            .as_str()
            .unwrap_or_else(|| panic!("{status}"))
            .to_owned()
    };
    assert_eq!(state(&server, "orders"), "fresh");
    // An edit: stale at once (the server reuses parsed definitions only
    // while no definition file changed).
    p.edit("assets/orders.sql", "select", "select 1 as edited,");
    assert_ne!(state(&server, "orders"), "fresh");
    // A broken edit: the load error, with file and line; fixed: served again.
    let good = p.read("assets/orders.sql");
    p.write("assets/orders.sql", "select * from nowhere_at_all");
    let broken = server.call("Status", "{}");
    assert_eq!(broken["code"], "INVALID_ARGUMENT", "{broken}");
    assert!(
        broken["details"]
            .as_str()
            .unwrap()
            .contains("assets/orders.sql:1"),
        "{broken}"
    );
    p.write("assets/orders.sql", &good);
    assert_ne!(state(&server, "orders"), "fresh");
    // A new asset appears.
    p.write("assets/extra.sql", "select count(*) as n from orders");
    assert_eq!(state(&server, "extra"), "never_materialized");
    server.stop();
}
