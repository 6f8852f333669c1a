//! The real `cairn` binary on a PostgreSQL catalog (the throwaway server
//! `tests/run.sh` starts, URL in `CAIRN_TEST_POSTGRES_URL`): the example
//! runs and reads back as on SQLite, `cairn catalog migrate` moves a
//! SQLite catalog there, two processes materializing the same selection
//! commit every unit exactly once, and bad connection settings give one
//! clear error.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Server;
use crate::util::{Project, outcomes, with_outcome};

/// The test server's URL (a superuser on its `postgres` database).
fn admin_url() -> String {
    std::env::var("CAIRN_TEST_POSTGRES_URL").expect(
        "CAIRN_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server; \
         run the suite with tests/run.sh, which starts one on loopback",
    )
}

/// Runs SQL on the test server (`psql`), returning its unaligned output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (Debian postgresql-client) runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A new, empty database on the test server; its URL.
fn fresh_database(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("cairn_e2e_{tag}_{}_{nanos}", std::process::id());
    let admin = admin_url();
    psql(&admin, &format!("CREATE DATABASE {name}"));
    admin.replace("/postgres", &format!("/{name}"))
}

/// `project` with its catalog in a fresh PostgreSQL database; its URL.
pub(crate) fn on_postgres(project: &Project, tag: &str) -> String {
    let url = fresh_database(tag);
    project.edit(
        "cairn.toml",
        "url = \"sqlite://.cairn/catalog.db\"",
        &format!("url = \"{url}\""),
    );
    url
}

#[test]
fn the_example_runs_on_postgres_as_on_sqlite() {
    let sqlite = Project::example();
    let postgres = Project::example();
    let url = on_postgres(&postgres, "example");
    let (report, outcomes_pg) = postgres.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes_pg, "materialized").len(),
        7,
        "{report}"
    );
    let (_, outcomes_lite) = sqlite.materialize(&[]);
    assert_eq!(outcomes_pg, outcomes_lite);
    // Same data versions, row counts and states.
    let versions = |p: &Project| -> Vec<(String, String, u64)> {
        let status = p.json(&["status", "--format", "json"], 0);
        status["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["current"]["data_version"].as_str().unwrap().to_owned(),
                    a["current"]["row_count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(versions(&postgres), versions(&sqlite));
    assert!(!postgres.path(".cairn/catalog.db").exists());
    assert_eq!(psql(&url, "SELECT COUNT(*) FROM materializations"), "7");
    // A no-op and an edit behave the same too.
    let (_, again) = postgres.materialize(&[]);
    assert!(with_outcome(&again, "materialized").is_empty());
    postgres.edit(
        "assets/monthly_revenue.sql",
        "count(*) as order_count",
        "count(*) as order_count, 1 as edited",
    );
    let (_, edited) = postgres.materialize(&[]);
    assert_eq!(with_outcome(&edited, "materialized"), ["monthly_revenue"]);
    // The audit log is append-only in PostgreSQL too.
    let out = Command::new("psql")
        .args([&url, "-X", "-q", "-c", "DELETE FROM audit_log"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"));
}

#[test]
fn catalog_migrate_moves_a_sqlite_catalog_to_postgres() {
    let p = Project::example();
    p.materialize(&[]);
    let before = p.json(&["status", "--format", "json"], 0);
    let history = p.json(&["show", "orders", "--format", "json"], 0);
    let url = fresh_database("migrate");
    let copied = p.json(
        &[
            "catalog",
            "migrate",
            "--from",
            "sqlite://.cairn/catalog.db",
            "--to",
            &url,
            "--format",
            "json",
        ],
        0,
    );
    let rows = |table: &str| -> u64 {
        copied["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("materializations"), 7);
    assert_eq!(rows("runs"), 1);
    // Pointed at the copy, the project reads the same.
    p.edit(
        "cairn.toml",
        "url = \"sqlite://.cairn/catalog.db\"",
        &format!("url = \"{url}\""),
    );
    assert_eq!(p.json(&["status", "--format", "json"], 0), before);
    assert_eq!(p.json(&["show", "orders", "--format", "json"], 0), history);
    let (_, outcomes) = p.materialize(&[]);
    assert!(with_outcome(&outcomes, "materialized").is_empty());
    // Again into the same (now used) database: refused, nothing changes.
    let refused = p.run(&[
        "catalog",
        "migrate",
        "--from",
        "sqlite://.cairn/catalog.db",
        "--to",
        &url,
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("is not empty"),
        "{}",
        refused.stderr
    );
    // A source that is not there is named, not copied as empty.
    let missing = p.run(&[
        "catalog",
        "migrate",
        "--from",
        "sqlite://typo.db",
        "--to",
        &url,
    ]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("there is no catalog at"),
        "{}",
        missing.stderr
    );
    assert!(!p.path("typo.db").exists());
    // (The no-op above recorded no run: nothing to do.)
    assert_eq!(psql(&url, "SELECT COUNT(*) FROM runs"), "1");
}

/// Counts of commits per (asset, partition) that were committed more than
/// once.
fn committed_twice(url: &str) -> String {
    psql(
        url,
        r#"SELECT string_agg(asset || '[' || "partition" || '] x' || n, ', ')
           FROM (SELECT asset, "partition", COUNT(*) AS n FROM materializations
                 GROUP BY 1, 2 HAVING COUNT(*) > 1) AS twice"#,
    )
}

#[test]
fn two_processes_materializing_the_same_selection_commit_every_unit_once() {
    let p = Project::example_named("daily_sales");
    let url = on_postgres(&p, "concurrent");
    let plan = p.json(&["materialize", "--explain", "--format", "json"], 0);
    let units = plan["build"].as_u64().unwrap();
    assert!(units > 100, "{plan}");
    let spawn = || {
        p.command(&["materialize", "--jobs", "2", "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report =
        |out: &std::process::Output| -> Value { serde_json::from_slice(&out.stdout).unwrap() };
    let built: Vec<Vec<String>> = [report(&a), report(&b)]
        .iter()
        .map(|r| with_outcome(&outcomes(r), "materialized"))
        .collect();
    assert_eq!(committed_twice(&url), "", "units committed twice");
    let committed: u64 = psql(&url, "SELECT COUNT(*) FROM materializations")
        .parse()
        .unwrap();
    assert_eq!(
        (built[0].len() + built[1].len()) as u64,
        committed,
        "each process reports what it committed: {built:?}"
    );
    assert_eq!(committed, units);
    // The two really ran side by side: each built part of the work.
    assert!(
        !built[0].is_empty() && !built[1].is_empty(),
        "one process did everything: {built:?}"
    );
    // Both saw the whole project fresh at the end.
    let (_, after) = p.materialize(&[]);
    assert!(with_outcome(&after, "materialized").is_empty());
}

#[test]
fn bad_connection_settings_give_one_clear_error_fast() {
    let p = Project::example();
    let url = admin_url().replace(":cairn-test@", ":wrong@");
    p.edit(
        "cairn.toml",
        "url = \"sqlite://.cairn/catalog.db\"",
        &format!("url = \"{url}\""),
    );
    let run = p.run(&["status"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("wrong credentials"), "{}", run.stderr);
    assert!(
        !run.stderr.contains(":wrong@"),
        "password shown: {}",
        run.stderr
    );

    // The password may come from PGPASSWORD instead.
    let no_password = admin_url().replace(":cairn-test@", "@");
    p.edit("cairn.toml", &url, &no_password);
    let ok = p
        .command(&["status"])
        .env("PGPASSWORD", "cairn-test")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Nothing listens: refused at once, with a hint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.edit(
        "cairn.toml",
        &no_password,
        &format!("postgres://cairn@127.0.0.1:{port}/cairn"),
    );
    let started = Instant::now();
    let run = p.run(&["materialize"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is the PostgreSQL server running"),
        "{}",
        run.stderr
    );
    assert!(p.warehouse_files().is_empty(), "nothing written");
}

#[test]
fn two_servers_sharing_one_database_build_every_unit_once() {
    let p = Project::example_named("daily_sales");
    let url = on_postgres(&p, "servers");
    let plan = p.json(&["materialize", "--explain", "--format", "json"], 0);
    let units = plan["build"].as_u64().unwrap();
    let (a, b) = (Server::start(&p), Server::start(&p));
    // The same request to both at once, and a narrower one to each.
    let requests = [
        (&a, r#"{"selection": [], "jobs": 2}"#),
        (&b, r#"{"selection": [], "jobs": 2}"#),
        (&a, r#"{"selection": ["+rolling_7d"], "jobs": 2}"#),
        (&b, r#"{"selection": ["daily_sales+"], "jobs": 2}"#),
    ];
    std::thread::scope(|scope| {
        for (server, request) in requests {
            scope.spawn(move || {
                let reply = server.call("Materialize", request);
                assert!(reply["run_id"].is_string(), "{reply}");
            });
        }
    });
    let started = Instant::now();
    while psql(
        &url,
        "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')",
    ) != "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "runs still unfinished: {}",
            psql(&url, "SELECT id, status FROM runs")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        psql(&url, "SELECT string_agg(DISTINCT status, ',') FROM runs"),
        "succeeded"
    );
    assert_eq!(committed_twice(&url), "", "units committed twice");
    assert_eq!(
        psql(&url, "SELECT COUNT(*) FROM materializations"),
        units.to_string()
    );
    a.stop();
    b.stop();
}
