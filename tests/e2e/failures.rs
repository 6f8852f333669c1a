//! A failing asset: nothing committed for it, its downstream skipped,
//! independent assets still built, the run recorded as failed.

use crate::util::{Project, states, with_outcome};

fn project() -> Project {
    Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,amount\n1,10\n2,20\n3,0\n"),
        (
            "assets/good.sql",
            "select id, amount * 2 as doubled from raw",
        ),
        ("assets/fragile.sql", "select id, amount from raw"),
        (
            "assets/after_fragile.sql",
            "select count(*) as n from fragile",
        ),
        (
            "assets/after_good.sql",
            "select sum(doubled) as total from good",
        ),
    ])
}

#[test]
fn failing_asset_skips_downstream_and_keeps_previous_version() {
    let p = project();
    p.materialize(&[]);
    let before = p.query_json("select * from fragile order by id");

    // The new definition fails at run time (a column that does not exist).
    p.write(
        "assets/fragile.sql",
        "select id, amount, missing_column from raw",
    );
    p.write("data/raw.csv", "id,amount\n1,10\n2,20\n3,0\n4,40\n");
    let run = p.run(&["materialize", "--format", "json"]);
    assert_eq!(
        run.code, 1,
        "a failure exits 1\n{}\n{}",
        run.stdout, run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let outcomes = crate::util::outcomes(&report);
    assert_eq!(
        with_outcome(&outcomes, "failed"),
        vec!["fragile".to_owned()]
    );
    assert_eq!(
        with_outcome(&outcomes, "skipped"),
        vec!["after_fragile".to_owned()]
    );
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["after_good".to_owned(), "good".to_owned()]
    );
    let error = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == "fragile")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("assets/fragile.sql") && error.contains("missing_column"),
        "{error}"
    );

    // The previous version is still what readers get.
    let after = p.query_json("select * from fragile order by id");
    assert_eq!(before, after);
    // Only committed files exist besides the failed attempt's, which was removed.
    assert!(
        !p.warehouse_files()
            .iter()
            .any(|f| f.starts_with("fragile/") && f.contains(report["run_id"].as_str().unwrap()))
    );

    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["fragile"].0, "failed");
    assert_eq!(s["after_fragile"].0, "stale");
    assert_eq!(s["good"].0, "fresh");
    let text = p.run(&["status"]);
    assert!(text.stdout.contains("missing_column"), "{}", text.stdout);

    // Fixing it recovers.
    p.write(
        "assets/fragile.sql",
        "select id, amount from raw where amount > 0",
    );
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["after_fragile".to_owned(), "fragile".to_owned()]
    );
    let n = p.query_json("select n from after_fragile");
    assert_eq!(n[0]["n"], 3);
}

#[test]
fn duplicate_output_column_names_are_a_clear_failure() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,amount\n1,10\n"),
        (
            "assets/twice.sql",
            "select a.id, b.id from raw a join raw b on a.id = b.id",
        ),
    ]);
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("two columns named `id`"),
        "{}",
        run.stdout
    );
}

/// An empty CSV source has no header, so no columns: the unit fails naming
/// the source, its path and the header it needs (not a column "not found"
/// in the asset), and `query` says the same; nothing is committed.
#[test]
fn an_empty_csv_source_names_itself_and_the_missing_header() {
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.people]\npath = \"data/people.csv\"\n",
        ),
        ("data/people.csv", ""),
        ("assets/names.sql", "select name from people"),
    ]);
    let expected = [
        "source `people` (data/people.csv)",
        "it has no columns: the CSV is empty",
        "header row",
    ];
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for fragment in expected.iter().chain(&["assets/names.sql"]) {
        assert!(
            run.stdout.contains(fragment),
            "{fragment:?} in {}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("No field named"), "{}", run.stdout);
    let committed = p.query_json("select count(*) as n from cairn.materializations");
    assert_eq!(committed[0]["n"], 0);
    let query = p.run(&["query", "select * from people"]);
    assert_eq!(query.code, 2, "{}\n{}", query.stdout, query.stderr);
    for fragment in expected {
        assert!(
            query.stderr.contains(fragment),
            "{fragment:?} in {}",
            query.stderr
        );
    }
}

/// Exit codes follow whose fault an error is, by DataFusion's error kind:
/// a bad query is the user's (2), an unreadable file the environment's (1).
#[test]
fn query_errors_exit_by_fault() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.parquet\"\n"),
        ("data/raw.parquet", "this is not a Parquet file"),
    ]);
    let bad_sql = p.run(&["query", "select nope from"]);
    assert_eq!(bad_sql.code, 2, "{}", bad_sql.stderr);
    let unreadable = p.run(&["query", "select * from raw"]);
    assert_eq!(unreadable.code, 1, "{}", unreadable.stderr);
    assert!(
        unreadable.stderr.contains("source `raw`"),
        "{}",
        unreadable.stderr
    );
    assert!(
        !unreadable.stderr.contains("panicked"),
        "{}",
        unreadable.stderr
    );
}

/// A panic — here one forced inside a build task by a test failpoint — is
/// reported as one "internal error" line, exit 101, no backtrace, and
/// commits nothing.
#[test]
fn a_panic_is_an_internal_error_line_not_a_backtrace() {
    let p = Project::example();
    let run = p
        .command(&["materialize", "--jobs", "1"])
        .env("CAIRN_TEST_PANIC_BEFORE_COMMIT", "stg_orders")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains("error: internal error in cairn")
            && stderr.contains("stg_orders [] panics before commit")
            && stderr.contains("this is a bug, please report it"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
    let status = p.json(&["status", "--format", "json"], 0);
    let states = crate::util::states(&status);
    assert_eq!(
        states["stg_orders"].0, "never_materialized",
        "nothing committed"
    );
}
