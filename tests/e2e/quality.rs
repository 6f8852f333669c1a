//! Checks, row changes and cost on real data.

use serde_json::Value;

use crate::util::{Project, outcomes, states, with_outcome};

const GOOD: &str = "id,status,parent_id,amount,ts\n1,a,10,5,2024-06-01T10:00:00\n2,b,20,7,2024-06-01T11:00:00\n3,a,10,0,2024-06-01T12:00:00\n";

fn project(check: &str, data: &str) -> Project {
    Project::with_files(&[
        (
            "cairn.toml",
            "[sources.raw]\npath = \"data/raw.csv\"\n[sources.raw_parents]\npath = \"data/parents.csv\"\n",
        ),
        ("data/raw.csv", data),
        ("data/parents.csv", "id\n10\n20\n"),
        ("assets/parents.sql", "select id from raw_parents"),
        (
            "assets/items.sql",
            &format!(
                "--- checks = [{check}]\nselect id, status, parent_id, amount, cast(ts as timestamp) as ts from raw"
            ),
        ),
        ("assets/item_count.sql", "select count(*) as n from items"),
    ])
}

fn run_json(p: &Project, args: &[&str]) -> (i32, Value) {
    let run = p
        .command(args)
        .env("CAIRN_NOW", "2024-06-02T00:00:00Z")
        .output()
        .unwrap();
    let code = run.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (code, value)
}

fn check_rows(p: &Project, check: &str) -> Vec<(i64, i64, String)> {
    let db = rusqlite::Connection::open(p.path(".cairn/catalog.db")).unwrap();
    let mut stmt = db
        .prepare("select passed, failing_rows, sample_json from check_results where name = ?1 order by id")
        .unwrap();
    stmt.query_map([check], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every kind: passes on good data; on bad data blocks the commit, keeps the
/// previous version readable, skips downstream and records failing rows.
#[test]
fn every_check_kind_passes_and_fails_on_real_data() {
    let cases: &[(&str, &str)] = &[
        ("not_null(status)", "4,,10,1,2024-06-01T13:00:00\n"),
        ("unique(id)", "3,b,20,1,2024-06-01T13:00:00\n"),
        (
            "accepted_values(status, ['a', 'b'])",
            "4,c,10,1,2024-06-01T13:00:00\n",
        ),
        (
            "relationships(parent_id, parents.id)",
            "4,a,99,1,2024-06-01T13:00:00\n",
        ),
        ("row_count(1, 3)", "4,a,10,1,2024-06-01T13:00:00\n"),
        ("expression(amount >= 0)", "4,a,10,-1,2024-06-01T13:00:00\n"),
        (
            "sql(select * from items where amount > 100)",
            "4,a,10,101,2024-06-01T13:00:00\n",
        ),
    ];
    for (check, bad_row) in cases {
        let p = project(&format!("\"{check}\""), GOOD);
        let (code, report) = run_json(&p, &["materialize", "--format", "json"]);
        assert_eq!(code, 0, "{check} on good data: {report}");
        assert_eq!(
            check_rows(&p, check).first().map(|r| r.0),
            Some(1),
            "{check} passed and recorded"
        );

        p.write("data/raw.csv", &format!("{GOOD}{bad_row}"));
        let (code, report) = run_json(&p, &["materialize", "--format", "json"]);
        assert_eq!(code, 1, "{check} on bad data must fail: {report}");
        let out = outcomes(&report);
        assert_eq!(
            with_outcome(&out, "failed"),
            vec!["items".to_owned()],
            "{check}: {report}"
        );
        assert_eq!(
            with_outcome(&out, "skipped"),
            vec!["item_count".to_owned()],
            "{check}: downstream blocked"
        );
        let failed = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["asset"] == "items")
            .unwrap();
        assert!(
            failed["error"].as_str().unwrap().contains(check),
            "{check}: {failed}"
        );
        let recorded = check_rows(&p, check);
        let last = recorded.last().unwrap();
        assert_eq!(last.0, 0, "{check}: failure recorded");
        assert!(last.1 >= 1, "{check}: failing rows counted");
        assert_ne!(last.2, "[]", "{check}: a sample of failing rows is kept");

        // The earlier version is still what readers get.
        let (_, rows) = run_json(
            &p,
            &[
                "query",
                "--format",
                "json",
                "select count(*) as n from items",
            ],
        );
        assert_eq!(rows[0]["n"], 3, "{check}: previous version readable");
        assert_eq!(
            states(&p.json(&["status", "--format", "json"], 0))["items"].0,
            "failed"
        );
    }
}

#[test]
fn freshness_check_uses_the_newest_value() {
    let p = project("\"freshness(ts, 1d)\"", GOOD);
    assert_eq!(run_json(&p, &["materialize", "--format", "json"]).0, 0);
    let stale = GOOD.replace("2024-06-01", "2024-05-01");
    p.write("data/raw.csv", &stale);
    let (code, report) = run_json(&p, &["materialize", "--format", "json"]);
    assert_eq!(code, 1, "{report}");
    assert!(report.to_string().contains("freshness(ts, 1d)"));
}

#[test]
fn warn_checks_commit_and_report() {
    let p = project(
        "{ check = \"accepted_values(status, ['a'])\", severity = \"warn\" }",
        GOOD,
    );
    let (code, report) = run_json(&p, &["materialize", "--format", "json"]);
    assert_eq!(code, 0, "{report}");
    let items = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == "items")
        .unwrap()
        .clone();
    assert_eq!(items["outcome"], "materialized");
    let check = &items["checks"][0];
    assert_eq!(check["passed"], false);
    assert_eq!(check["failing_rows"], 1);
    assert_eq!(check["sample"][0]["status"], "b");

    // Status tells the failing warn check apart from failing errors: the
    // asset stays healthy, and `status --check` passes.
    let (code, status) = run_json(&p, &["status", "items", "--format", "json"]);
    assert_eq!(code, 0, "{status}");
    let items = &status["assets"][0];
    assert_eq!(
        items["warning_checks"],
        serde_json::json!(["accepted_values(status, ['a'])"])
    );
    assert_eq!(items["failing_checks"], serde_json::json!([]));
    assert_eq!(items["health"], "ok");
    let text = p.run(&["status", "items", "--check"]);
    assert_eq!(text.code, 0, "{}", text.stdout);
    assert!(
        text.stdout
            .contains("check warning: accepted_values(status, ['a'])"),
        "{}",
        text.stdout
    );
}

#[test]
fn cairn_check_reruns_checks_and_status_check_fails_on_them() {
    let p = project("\"relationships(parent_id, parents.id)\"", GOOD);
    assert_eq!(run_json(&p, &["materialize", "--format", "json"]).0, 0);
    let (code, out) = run_json(&p, &["check", "items", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["failing"], 0);

    // A parent disappears; only `parents` is rebuilt, so items is untouched.
    p.write("data/parents.csv", "id\n10\n");
    assert_eq!(
        run_json(&p, &["materialize", "parents", "--format", "json"]).0,
        0
    );
    let files_before = p.warehouse_files();
    let (code, out) = run_json(&p, &["check", "items", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["results"][0]["checks"][0]["failing_rows"], 1);
    assert_eq!(
        p.warehouse_files(),
        files_before,
        "check does not rematerialize"
    );
    let status = p.run(&["status", "--check"]);
    assert_eq!(status.code, 1);
    assert!(
        status
            .stdout
            .contains("check failing: relationships(parent_id, parents.id)"),
        "{}",
        status.stdout
    );

    // The check is taken out of the definition: it is not failing any more.
    p.edit(
        "assets/items.sql",
        "--- checks = [\"relationships(parent_id, parents.id)\"]\n",
        "",
    );
    let status = p.json(&["status", "items", "--format", "json"], 0);
    assert_eq!(
        status["assets"][0]["failing_checks"],
        serde_json::json!([]),
        "{status}"
    );
    assert_ne!(status["assets"][0]["health"], "failing_check", "{status}");
}

#[test]
fn rows_added_and_removed_are_exact() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,v\n1,a\n2,b\n3,c\n4,d\n5,e\n"),
        ("assets/t.sql", "select id, v from raw"),
    ]);
    p.materialize(&[]);
    p.write("data/raw.csv", "id,v\n1,a\n2,b\n3,c\n6,f\n7,g\n8,h\n");
    p.materialize(&[]);
    let show = p.json(&["show", "t", "--format", "json"], 0);
    let m = &show["current"]["metrics"];
    assert_eq!(m["rows_added"], 3, "{m}");
    assert_eq!(m["rows_removed"], 2, "{m}");
    // Per-column statistics from the Parquet footer.
    let id = m["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "id")
        .unwrap();
    assert_eq!(
        (
            id["min"].as_str(),
            id["max"].as_str(),
            id["null_count"].as_i64()
        ),
        (Some("1"), Some("8"), Some(0))
    );
}

fn diamond() -> Project {
    Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "id,v\n1,10\n2,20\n3,30\n"),
        ("assets/a.sql", "select id, v from raw"),
        ("assets/b.sql", "select id, v * 2 as v from a"),
        ("assets/c.sql", "select id, v + 1 as v from a"),
        (
            "assets/d.sql",
            "select b.id, b.v + c.v as v from b join c on b.id = c.id",
        ),
    ])
}

#[test]
fn cost_is_measured_and_rolls_up_once_per_upstream() {
    let p = diamond();
    p.materialize(&["--jobs", "1"]);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    for asset in ["a", "b", "c", "d"] {
        let show = p.json(&["show", asset, "--format", "json"], 0);
        let cur = &show["current"];
        let m = &cur["metrics"];
        // Bytes written through the store are the file's size on disk.
        let file = cur["files"][0]["path"].as_str().unwrap();
        let on_disk = std::fs::metadata(p.path("warehouse").join(file))
            .unwrap()
            .len();
        assert_eq!(m["bytes_written"].as_u64(), Some(on_disk), "{asset}");
        assert_eq!(cur["bytes_written"].as_u64(), Some(on_disk), "{asset}");
        // One small file: one PUT; reads went through the counted store.
        assert_eq!(m["write_requests"], 1, "{asset}: {m}");
        assert!(m["read_requests"].as_u64().unwrap() >= 1, "{asset}");
        assert!(m["bytes_read"].as_u64().unwrap() > 0, "{asset}");
        let cpu = m["cpu_seconds"].as_f64().unwrap();
        let wall = cur["wall_ms"].as_f64().unwrap() / 1000.0;
        assert!(cpu > 0.0, "{asset}: cpu {cpu}");
        assert!(
            cpu <= wall.max(0.001) * cores,
            "{asset}: cpu {cpu} > wall {wall} x {cores}"
        );
        if asset == "d" {
            // A hash join reserves memory from the pool; a plain projection may not.
            assert!(m["peak_memory_bytes"].as_u64().unwrap() > 0, "{asset}: {m}");
        }
        assert!(m["cost_usd"].as_f64().unwrap() > 0.0, "{asset}");
    }
    let costs = p.json(&["cost", "--rollup", "--format", "json"], 0);
    let own = |name: &str| -> f64 {
        costs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["asset"] == name)
            .unwrap()["own"]["cost_usd"]
            .as_f64()
            .unwrap()
    };
    let d = costs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["asset"] == "d")
        .unwrap();
    let expected = own("a") + own("b") + own("c") + own("d");
    let rolled = d["rollup"]["cost_usd"].as_f64().unwrap();
    assert!(
        (rolled - expected).abs() < 1e-12,
        "rollup {rolled} != {expected}"
    );
    assert_eq!(d["rollup"]["materializations"], 4, "a counted once");
    assert_eq!(d["rollup_assets"], serde_json::json!(["a", "b", "c"]));
    // A window covering the run counts the same materializations.
    let window = p.json(
        &["cost", "d", "--since", "1h", "--rollup", "--format", "json"],
        0,
    );
    assert_eq!(window[0]["rollup"]["materializations"], 4);
    let sorted = p.run(&["cost", "--sort", "cost"]);
    assert_eq!(sorted.code, 0);
}

#[test]
fn check_mistakes_are_load_errors_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "\"not_null(stauts)\"",
            "assets/items.sql:1: check `not_null(stauts)`: unknown column `stauts`",
        ),
        (
            "\"expression(amount >= )\"",
            "assets/items.sql:1: invalid check `expression(amount >= )`: malformed predicate",
        ),
        (
            "{ check = \"unique(id)\", severity = \"fatal\" }",
            "assets/items.sql:1: unknown severity",
        ),
        (
            "\"relationships(parent_id, parents.idd)\"",
            "unknown column `idd`",
        ),
    ];
    for (check, fragment) in cases {
        let p = project(check, GOOD);
        let run = p.run(&["materialize"]);
        assert_eq!(run.code, 2, "{check}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(fragment),
            "{check}: stderr lacks {fragment:?}:\n{}",
            run.stderr
        );
        assert!(!p.path("warehouse").exists(), "{check}: nothing run");
    }
}

#[test]
fn a_selected_asset_refreshes_the_target_of_its_relationships_check() {
    let p = project("\"relationships(parent_id, parents.id)\"", GOOD);
    assert_eq!(run_json(&p, &["materialize", "--format", "json"]).0, 0);
    // A new item points at a new parent: both sources change. Materializing
    // only `items` brings `parents` (not an upstream: the target of its
    // check) up to date first, so the check passes against the new parents.
    p.write("data/parents.csv", "id\n10\n20\n30\n");
    let mut data = GOOD.to_owned();
    data.push_str("4,a,30,9,2024-06-01T13:00:00\n");
    p.write("data/raw.csv", &data);
    let (code, report) = run_json(&p, &["materialize", "items", "--format", "json"]);
    assert_eq!(code, 0, "{report}");
    let outcomes = outcomes(&report);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["items".to_owned(), "parents".to_owned()]
    );
    // item_count is downstream, not selected: it stays stale.
    let status = p.json(&["status", "item_count", "--format", "json"], 0);
    assert_eq!(states(&status)["item_count"].0, "stale");
}

/// A rebuild failing an `error` check keeps the previous version: status
/// says the failure belongs to the attempt, not to the version served.
#[test]
fn status_says_a_failed_check_belongs_to_the_attempt_not_the_current_version() {
    let p = project("\"not_null(status)\"", GOOD);
    assert_eq!(run_json(&p, &["materialize", "--format", "json"]).0, 0);
    p.write(
        "data/raw.csv",
        "id,status,parent_id,amount,ts\n1,,10,5,2024-06-01T10:00:00\n",
    );
    assert_eq!(run_json(&p, &["materialize", "--format", "json"]).0, 1);
    let status = p.run(&["status", "items"]);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("items "))
        .unwrap_or_else(|| panic!("{}", status.stdout));
    let masked: String = line
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ");
    // Times vary: mask them.
    let masked = mask_times(&masked);
    assert_eq!(
        masked,
        "items | failed | <time> | 3 | the last attempt (<time>) failed its checks and was not committed: not_null(status) (1 failing rows); the current version (committed <time>) passed its checks and stays current; source raw changed"
    );
}

/// Replaces every `YYYY-MM-DD HH:MM:SS` by `<time>`.
fn mask_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let candidate = text.get(i..i + 19).unwrap_or("");
        let is_time = candidate.len() == 19
            && candidate.char_indices().all(|(j, c)| match j {
                4 | 7 => c == '-',
                10 => c == ' ',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            });
        if is_time {
            out.push_str("<time>");
            i += 19;
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}
