//! Provenance, time travel, the audit log and garbage collection.

use crate::util::Project;

fn as_user(p: &Project, user: &str, args: &[&str]) -> i32 {
    let out = p.command(args).env("USER", user).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code().unwrap_or(-1)
}

#[test]
fn provenance_and_as_of_show_old_and_new_versions() {
    let p = Project::example();
    let first = p.json(&["materialize", "--format", "json"], 0);
    let first_run = first["run_id"].as_str().unwrap().to_owned();
    let old = p.json(&["audit", "stg_customers", "--format", "json"], 0);
    let before = p.query_json("select count(*) as n from customers");

    let original = p.read("data/raw_customers.csv");
    p.write(
        "data/raw_customers.csv",
        &format!("{original}101,Ada,Lovelace,ada@example.com,2024-12-10,GB\n"),
    );
    p.materialize(&[]);
    let new = p.json(&["audit", "stg_customers", "--format", "json"], 0);
    assert_ne!(old["materialization"], new["materialization"]);
    assert_ne!(
        old["inputs"][0]["data_version"], new["inputs"][0]["data_version"],
        "old and new versions read different source versions"
    );
    assert_eq!(new["inputs"][0]["kind"], "source");
    assert_eq!(new["run"]["trigger"], "cli");

    // The old version by id, and the chain from a mart back to the sources.
    let by_id = p.json(
        &[
            "audit",
            "stg_customers",
            "--version",
            &old["materialization"].to_string(),
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(by_id["data_version"], old["data_version"]);
    let chain = p.run(&["audit", "customers"]);
    assert_eq!(chain.code, 0);
    assert!(
        chain.stdout.contains("source raw_customers"),
        "{}",
        chain.stdout
    );

    // Time travel.
    let as_of = p.json(
        &[
            "query",
            "--as-of",
            &first_run,
            "--format",
            "json",
            "select count(*) as n from customers",
        ],
        0,
    );
    assert_eq!(as_of, before);
    let now = p.query_json("select count(*) as n from customers");
    assert_eq!(now[0]["n"], 101);
}

#[test]
fn every_state_changing_command_is_in_the_append_only_audit_log() {
    let p = Project::example();
    assert_eq!(as_user(&p, "alice", &["materialize"]), 0);
    assert_eq!(
        as_user(&p, "bob", &["materialize", "--force", "customers"]),
        0
    );
    assert_eq!(as_user(&p, "carol", &["check"]), 0);
    assert_eq!(as_user(&p, "dave", &["gc"]), 0);
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere 1 = 1",
    );
    assert_eq!(as_user(&p, "erin", &["materialize"]), 0);

    let log = p.json(&["audit", "--log", "--format", "json"], 0);
    let actions: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |who: &str, what: &str| {
        assert!(
            actions.contains(&(who.to_owned(), what.to_owned())),
            "missing {who} {what} in {actions:?}"
        );
    };
    expect("alice", "config_changed");
    expect("alice", "materialize");
    expect("bob", "force");
    expect("carol", "check");
    expect("dave", "gc");
    expect("erin", "config_changed");
    expect("erin", "materialize");
    let erin_change = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["principal"] == "erin" && e["action"] == "config_changed")
        .unwrap();
    assert_eq!(erin_change["target"], "asset:stg_orders");
    let only_bob = p.json(&["audit", "--log", "--who", "bob", "--format", "json"], 0);
    assert_eq!(only_bob.as_array().unwrap().len(), 1);
    // Read-only commands are not state changes.
    let before = log.as_array().unwrap().len();
    p.run(&["status"]);
    p.run(&["query", "select 1"]);
    p.run(&["materialize"]); // nothing stale: no run, no entry
    assert_eq!(
        p.json(&["audit", "--log", "--format", "json"], 0)
            .as_array()
            .unwrap()
            .len(),
        before
    );

    // No Cairn command can modify it, and the database itself refuses.
    assert_ne!(p.run(&["query", "delete from cairn.runs"]).code, 0);
    let db = rusqlite::Connection::open(p.path(".cairn/catalog.db")).unwrap();
    assert!(
        db.execute("update audit_log set principal = 'mallory'", [])
            .is_err()
    );
    assert!(db.execute("delete from audit_log", []).is_err());
}

#[test]
fn gc_removes_only_uncommitted_and_expired_files() {
    let p = Project::example();
    p.materialize(&[]);
    let committed = p.warehouse_files();
    // An uncommitted file, as a crashed run leaves behind.
    p.write(
        "warehouse/customers/01a00000-0000-7000-8000-000000000000-00000.parquet",
        "not committed",
    );
    let dry = p.json(&["gc", "--dry-run", "--format", "json"], 0);
    assert_eq!(
        dry["uncommitted"],
        serde_json::json!(["customers/01a00000-0000-7000-8000-000000000000-00000.parquet"])
    );
    assert_eq!(
        p.warehouse_files().len(),
        committed.len() + 1,
        "dry run removes nothing"
    );
    let run = p.run(&["gc"]);
    assert!(
        run.stdout.contains("removed customers/01a00000"),
        "{}",
        run.stdout
    );
    assert_eq!(p.warehouse_files(), committed, "current versions untouched");

    // With zero-day retention, replaced versions expire; time travel to them says so.
    let first = p.query_json("select run_id from cairn.runs")[0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.materialize(&["--force", "stg_customers"]);
    let toml = p.read("cairn.toml");
    p.write("cairn.toml", &format!("{toml}\n[retention]\ndays = 0\n"));
    let report = p.json(&["gc", "--format", "json"], 0);
    assert_eq!(report["expired"].as_array().unwrap().len(), 1, "{report}");
    let expired = p.run(&[
        "query",
        "--as-of",
        &first,
        "select count(*) from stg_customers",
    ]);
    assert_eq!(expired.code, 2, "{}", expired.stderr);
    assert!(
        expired.stderr.contains("removed by retention"),
        "{}",
        expired.stderr
    );
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
}

/// A chain of `levels` diamonds over one source: `l{i}a` and `l{i}b` both
/// read `m{i-1}`, `m{i}` joins them. Every column of `m{i}` reaches the
/// source through 2^i paths.
fn diamonds(levels: usize) -> Project {
    let mut files = vec![
        (
            "cairn.toml".to_owned(),
            "[storage]\nurl = \"file://./warehouse\"\n[catalog]\nurl = \"sqlite://.cairn/catalog.db\"\n\
             [sources.s]\npath = \"data/s.csv\"\nformat = \"csv\"\n"
                .to_owned(),
        ),
        ("data/s.csv".to_owned(), "id,v\n1,10\n2,20\n".to_owned()),
        ("assets/m0.sql".to_owned(), "select id, v from s".to_owned()),
    ];
    for i in 1..=levels {
        for side in ["a", "b"] {
            files.push((
                format!("assets/l{i}{side}.sql"),
                format!("select id, v from m{}", i - 1),
            ));
        }
        files.push((
            format!("assets/m{i}.sql"),
            format!("select a.id, a.v + b.v as v from l{i}a a join l{i}b b on a.id = b.id"),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    Project::with_files(&files)
}

/// Nodes of a JSON tree whose children are under `key`, and how many of
/// them carry their subtree (not `shown_above`), per label.
fn tree_nodes(
    node: &serde_json::Value,
    key: &str,
    label: &dyn Fn(&serde_json::Value) -> String,
    out: &mut std::collections::BTreeMap<String, (usize, usize)>,
) {
    let entry = out.entry(label(node)).or_default();
    entry.0 += 1;
    if !node[key].as_array().unwrap().is_empty() {
        entry.1 += 1;
    }
    for child in node[key].as_array().unwrap() {
        tree_nodes(child, key, label, out);
    }
}

#[test]
fn shared_upstreams_are_told_once_in_column_lineage_and_provenance() {
    // 2^24 paths: a tree repeating shared upstreams could not be built.
    let levels = 24;
    let p = diamonds(levels);
    let top = format!("m{levels}");
    let lineage = p.json(&["lineage", &top, "--column", "v", "--format", "json"], 0);
    let mut columns = std::collections::BTreeMap::new();
    let label = |n: &serde_json::Value| {
        format!(
            "{}.{}",
            n["table"].as_str().unwrap(),
            n["column"].as_str().unwrap()
        )
    };
    tree_nodes(&lineage, "upstream", &label, &mut columns);
    // Every column of the chain is there, its upstream told exactly once;
    // a second appearance says where to look.
    // `v` and the join keys `id` of every asset but the top's `id`, and
    // the source's two.
    assert_eq!(columns.len(), 2 * (3 * levels + 1) - 1 + 2, "{columns:?}");
    for (column, (seen, expanded)) in &columns {
        if column.starts_with("s.") {
            assert_eq!(*expanded, 0, "a source has no upstream");
        } else {
            assert_eq!(*expanded, 1, "{column} seen {seen} times");
        }
    }
    let text = p.run(&["lineage", &top, "--column", "v"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("(its upstream: above)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.lines().count() < 20 * levels, "{}", text.stdout);

    // Provenance: the chain's versions, each followed once.
    let small = diamonds(6);
    small.materialize(&[]);
    let provenance = small.json(&["audit", "m6", "--format", "json"], 0);
    let mut versions = std::collections::BTreeMap::new();
    let label = |n: &serde_json::Value| n["name"].as_str().unwrap().to_owned();
    tree_nodes(&provenance, "inputs", &label, &mut versions);
    assert_eq!(versions.len(), 3 * 6 + 2, "{versions:?}");
    for (name, (seen, expanded)) in &versions {
        if name != "s" {
            assert_eq!(*expanded, 1, "{name} seen {seen} times");
        }
    }
    let shown_above = provenance
        .to_string()
        .matches("\"shown_above\":true")
        .count();
    assert_eq!(shown_above, 6, "m0..m5 are each read twice: {provenance}");
}
