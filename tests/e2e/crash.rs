//! A process killed between writing files and committing them: readers
//! keep the previous version, the catalog stays consistent, a rerun
//! completes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Project, states, with_outcome};

#[test]
fn killed_mid_materialization_leaves_previous_version_and_rerun_completes() {
    let p = Project::example();
    p.materialize(&[]);
    let before = p.query_json("select first_name from customers order by customer_id limit 3");
    let files_before = p.warehouse_files();

    p.edit(
        "assets/stg_customers.sql",
        "first_name",
        "upper(first_name) as first_name",
    );
    let mut child = p
        .command(&["materialize"])
        .env("CAIRN_TEST_HANG_BEFORE_COMMIT", "customers")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the run never reached the commit of customers"
        );
        match lines.next() {
            Some(Ok(line)) if line.contains("hanging before commit") => break,
            Some(Ok(_)) => {}
            other => panic!("cairn ended before the hook: {other:?}"),
        }
    }
    child.kill().unwrap(); // SIGKILL: no cleanup code runs
    child.wait().unwrap();

    // The uncommitted file of customers exists but is not what readers see.
    let orphans: Vec<String> = p
        .warehouse_files()
        .into_iter()
        .filter(|f| f.starts_with("customers/") && !files_before.contains(f))
        .collect();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let during = p.query_json("select first_name from customers order by customer_id limit 3");
    assert_eq!(
        during, before,
        "readers still get the previous committed version"
    );

    // Catalog consistent: stg_customers committed before the kill, customers not.
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["stg_customers"].0, "fresh");
    assert_eq!(
        s["customers"],
        (
            "stale".into(),
            vec!["upstream_changed stg_customers".into()]
        )
    );
    let db = rusqlite::Connection::open(p.path(".cairn/catalog.db")).unwrap();
    let crashed: i64 = db
        .query_row(
            "select count(*) from runs where status = 'crashed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(crashed, 1, "the killed run is recorded as crashed");
    let running: i64 = db
        .query_row(
            "select count(*) from runs where status = 'running'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(running, 0);

    // Rerun completes and serves the new data.
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["customers".to_owned()]
    );
    let after = p.query_json("select first_name from customers order by customer_id limit 3");
    let names: Vec<&str> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["first_name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| *n == n.to_uppercase()), "{names:?}");
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
}
