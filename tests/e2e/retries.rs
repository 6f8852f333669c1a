//! Retries of transient failures (`[retries]` in an asset's header), with
//! the test hook `CAIRN_TEST_FAIL_STORE_REQUESTS=N` failing the first N
//! writes of output files like an unreachable object store: a retry that
//! succeeds commits the same data version as a run without failures; every
//! failed attempt is recorded (seen through `GetRun`); SQL errors and
//! failing checks are never retried; a cancel or a drain interrupts the
//! wait before a retry.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Server;
use crate::util::{Project, outcomes, with_outcome};

const FAIL_STORE: &str = "CAIRN_TEST_FAIL_STORE_REQUESTS";

fn project() -> Project {
    let retries = |max: u32, backoff: &str| {
        format!("--- [retries]\n--- max_attempts = {max}\n--- backoff = \"{backoff}\"\n")
    };
    Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,name,amount\n1,a,10\n2,b,20\n3,c,-5\n"),
        (
            "assets/retried.sql",
            &format!(
                "{}select id, name, amount * 2 as doubled from raw",
                retries(3, "1s")
            ),
        ),
        (
            "assets/twice.sql",
            &format!("{}select id from raw", retries(2, "1s")),
        ),
        ("assets/once.sql", "select id, name from raw"),
        (
            "assets/bad_cast.sql",
            &format!(
                "{}select id, cast(name as int) as n from raw",
                retries(3, "1s")
            ),
        ),
        (
            "assets/checked.sql",
            &format!(
                "--- checks = [\"expression(amount >= 0)\"]\n{}select id, amount from raw",
                retries(3, "1s")
            ),
        ),
        (
            "assets/slow_retry.sql",
            &format!("{}select id from raw", retries(3, "1h")),
        ),
    ])
}

/// `materialize --format json SELECTION` with `env`: exit code and report.
fn materialize(p: &Project, selection: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut args = vec!["materialize", "--format", "json"];
    args.extend_from_slice(selection);
    let out = p.command(&args).envs(env.iter().copied()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn result<'a>(report: &'a Value, asset: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {report}"))
}

/// The attempts a run recorded, as `GetRun` answers: (asset, outcome, error).
fn attempts(server: &Server, run: &str) -> Vec<(String, String, String)> {
    let r = server.call("GetRun", &format!(r#"{{"run_id": "{run}"}}"#));
    r["units"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|u| {
            (
                u["asset"].as_str().unwrap().to_owned(),
                u["outcome"].as_str().unwrap().to_owned(),
                u["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The wait a failed attempt's error announces, in seconds.
fn announced_wait(error: &str) -> f64 {
    let rest = error
        .split("retrying in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no wait in {error:?}"));
    rest.split("s:").next().unwrap().parse().unwrap()
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

#[test]
fn a_store_failing_twice_is_retried_to_the_same_data_version() {
    let p = project();
    let (code, report) = materialize(&p, &["retried"], &[(FAIL_STORE, "2")]);
    assert_eq!(code, 0, "{report}");
    let built = result(&report, "retried");
    assert_eq!(built["outcome"], "materialized", "{built}");

    // The same data as a run that never failed: the same data version.
    let fresh = project();
    let (code, clean) = materialize(&fresh, &["retried"], &[]);
    assert_eq!(code, 0, "{clean}");
    assert_eq!(
        built["data_version"],
        result(&clean, "retried")["data_version"]
    );
    assert_eq!(
        p.query_json("select * from retried order by id"),
        fresh.query_json("select * from retried order by id")
    );

    // Three attempts recorded: two failed and announced a retry after a
    // doubling backoff (1s, then 2s, each ±20%), then the commit.
    let run = report["run_id"].as_str().unwrap();
    let server = Server::start(&p);
    let recorded = attempts(&server, run);
    let outcomes: Vec<&str> = recorded.iter().map(|(_, o, _)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "materialized"],
        "{recorded:?}"
    );
    assert!(recorded.iter().all(|(a, _, _)| a == "retried"));
    for (n, (_, _, error)) in recorded[..2].iter().enumerate() {
        let prefix = format!("attempt {} of 3 failed (transient), retrying in ", n + 1);
        assert!(error.starts_with(&prefix), "{error}");
        assert!(
            error.contains("assets/retried.sql") && error.contains("injected failure"),
            "{error}"
        );
        let base = [1.0, 2.0][n];
        let wait = announced_wait(error);
        assert!(
            (base * 0.8 - 0.05..=base * 1.2 + 0.05).contains(&wait),
            "{error}"
        );
    }
    server.stop();

    // Nothing left failing: the asset is fresh.
    let status = p.json(&["status", "--format", "json", "retried"], 0);
    assert_eq!(crate::util::states(&status)["retried"].0, "fresh");
}

#[test]
fn sql_errors_and_failing_checks_are_attempted_once() {
    let p = project();
    let started = Instant::now();
    let (code, report) = materialize(&p, &["bad_cast", "checked"], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        with_outcome(&outcomes(&report), "failed"),
        ["bad_cast", "checked"]
    );
    // No backoff was waited (the first retry would wait at least 0.8s).
    assert!(started.elapsed() < Duration::from_secs(30));
    for asset in ["bad_cast", "checked"] {
        let error = result(&report, asset)["error"].as_str().unwrap().to_owned();
        assert!(!error.contains("attempts"), "{error}");
    }
    let run = report["run_id"].as_str().unwrap();
    let server = Server::start(&p);
    let mut recorded = attempts(&server, run);
    recorded.sort();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let (cast, check) = (&recorded[0], &recorded[1]);
    assert_eq!((cast.0.as_str(), cast.1.as_str()), ("bad_cast", "failed"));
    assert!(
        cast.2.contains("Cannot cast") && !cast.2.contains("attempt"),
        "{cast:?}"
    );
    assert_eq!((check.0.as_str(), check.1.as_str()), ("checked", "failed"));
    assert!(check.2.contains("checks failed"), "{check:?}");
    server.stop();
}

#[test]
fn retries_end_at_max_attempts_and_none_by_default() {
    let p = project();
    // Two attempts in all, both failing: the unit fails, recorded twice.
    let out = p
        .command(&["materialize", "twice"])
        .env(FAIL_STORE, "2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("twice")
            && l.contains("retry")
            && l.contains("attempt 1 of 2 failed (transient), retrying in")),
        "{stdout}"
    );
    assert!(stdout.contains("(after 2 attempts)"), "{stdout}");

    // Without [retries], one attempt.
    let (code, once) = materialize(&p, &["once"], &[(FAIL_STORE, "1")]);
    assert_eq!(code, 1, "{once}");
    let error = result(&once, "once")["error"].as_str().unwrap();
    assert!(
        error.contains("injected failure") && !error.contains("attempt"),
        "{error}"
    );

    let runs = p.query_json("select run_id, command from cairn.runs order by started_at");
    let run_of = |word: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["command"].as_str().unwrap().ends_with(word))
            .unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let server = Server::start(&p);
    let twice = attempts(&server, &run_of("twice"));
    let outcomes: Vec<&str> = twice.iter().map(|(_, o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["failed", "failed"], "{twice:?}");
    assert!(
        twice[0].2.starts_with("attempt 1 of 2 failed (transient)"),
        "{twice:?}"
    );
    assert!(twice[1].2.ends_with("(after 2 attempts)"), "{twice:?}");
    let once = attempts(&server, &run_of("once"));
    assert_eq!(once.len(), 1, "{once:?}");
    server.stop();
    let committed = p.query_json(
        "select count(*) as n from cairn.materializations where asset in ('twice', 'once')",
    );
    assert_eq!(committed[0]["n"], 0);
}

#[test]
fn watchers_see_retries_live_and_after_a_restart() {
    let p = project();
    let server = Server::start_with(&p, &[(FAIL_STORE, "1")]);
    let lines = server.call_lines("MaterializeAndWatch", r#"{"selection": ["retried"]}"#);
    let run = lines[0]["accepted"]["run_id"].as_str().unwrap().to_owned();
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect()
    };
    let live = &lines[1..];
    assert_eq!(
        kinds(live),
        [
            "queued",
            "started",
            "unit_started",
            "retrying",
            "built",
            "finished"
        ],
        "{live:?}"
    );
    let retrying = &live[3];
    assert_eq!(retrying["asset"], "retried");
    let message = retrying["error"].as_str().unwrap();
    assert!(
        message.starts_with("attempt 1 of 3 failed (transient), retrying in "),
        "{message}"
    );
    assert_eq!(live[5]["status"], "succeeded");
    server.stop();

    // Told from the catalog by a new process: the retried attempt is
    // still a retry, not the unit's end.
    let again = Server::start(&p);
    let told = again.call_lines("WatchRun", &format!(r#"{{"run_id": "{run}"}}"#));
    assert_eq!(
        kinds(&told),
        ["queued", "started", "retrying", "built", "finished"],
        "{told:?}"
    );
    assert_eq!(told[2]["error"], message);
    again.stop();
}

#[test]
fn a_cancel_or_a_drain_interrupts_the_wait_before_a_retry() {
    let p = project();
    let submit = |server: &Server| -> String {
        let r = server.call("Materialize", r#"{"selection": ["slow_retry"]}"#);
        r["run_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    };
    let failed_once = |r: &Value| {
        r["units"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["outcome"] == "failed"))
    };

    // Cancel: the run ends at once, not an hour later.
    let server = Server::start_with(&p, &[(FAIL_STORE, "1")]);
    let run = submit(&server);
    wait_for(&server, &run, "first attempt failed", failed_once);
    let asked = Instant::now();
    let cancelled = server.call("CancelRun", &format!(r#"{{"run_id": "{run}"}}"#));
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    server.stop();

    // Drain: SIGTERM stops the server without waiting out the backoff (or
    // its 20 s grace); the next server resumes the run, which succeeds.
    let server = Server::start_with(&p, &[(FAIL_STORE, "1")]);
    let run = submit(&server);
    wait_for(&server, &run, "first attempt failed", failed_once);
    let asked = Instant::now();
    server.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let resumed = Server::start(&p);
    let done = wait_for(&resumed, &run, "resumed run finished", |r| {
        r["status"] == "succeeded"
    });
    let outcomes: Vec<&str> = done["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "materialized"], "{done}");
    resumed.stop();
}
