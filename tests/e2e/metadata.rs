//! The catalog as read-only SQL tables in `cairn query`.

use crate::util::Project;

#[test]
fn metadata_tables_agree_with_show_and_join_with_data() {
    let p = Project::example();
    p.materialize(&[]);
    let rows = p.query_json(
        "select asset, sum(rows) as rows from cairn.materializations group by 1 order by 1",
    );
    assert_eq!(rows.as_array().unwrap().len(), 7);
    for r in rows.as_array().unwrap() {
        let asset = r["asset"].as_str().unwrap();
        let show = p.json(&["show", asset, "--format", "json"], 0);
        assert_eq!(r["rows"], show["current"]["row_count"], "{asset}");
    }
    let runs = p.query_json("select status, trigger, count(*) as n from cairn.runs group by 1, 2");
    assert_eq!(
        runs,
        serde_json::json!([{"status": "succeeded", "trigger": "cli", "n": 1}])
    );
    let joined = p.query_json("select count(*) as n from customers c join cairn.lineage l on l.asset = 'customers' and l.upstream = 'stg_customers'");
    assert_eq!(joined[0]["n"], 100);
    let checks = p.query_json("select count(*) as n from cairn.checks where not passed");
    assert_eq!(checks[0]["n"], 0);
    let cost =
        p.query_json("select count(*) as n from cairn.cost where cost_usd > 0 and is_current");
    assert_eq!(cost[0]["n"], 7);

    let audit = p.query_json("select action from cairn.audit_log order by id");
    assert_eq!(
        audit,
        serde_json::json!([{"action": "config_changed"}, {"action": "materialize"}])
    );
    let col = p.query_json("select upstream, upstream_column, kind from cairn.column_lineage where asset = 'stg_customers' and \"column\" = 'customer_id'");
    assert_eq!(
        col,
        serde_json::json!([{"upstream": "raw_customers", "upstream_column": "id", "kind": "direct"}])
    );

    // Read-only: statements are refused, and the catalog is unchanged.
    let refused = p.run(&["query", "delete from cairn.runs"]);
    assert_ne!(refused.code, 0);
    let unknown = p.run(&["query", "select * from cairn.nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("cairn.materializations"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn column_lineage_walks_to_source_columns() {
    let p = Project::example();
    let tree = p.json(
        &[
            "lineage",
            "customers",
            "--column",
            "lifetime_value",
            "--format",
            "json",
        ],
        0,
    );
    fn leaves(n: &serde_json::Value, out: &mut Vec<(String, String, String)>) {
        let ups = n["upstream"].as_array().unwrap();
        if ups.is_empty() {
            out.push((
                n["table"].as_str().unwrap().to_owned(),
                n["column"].as_str().unwrap().to_owned(),
                n["kind"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        for u in ups {
            leaves(u, out);
        }
    }
    let mut found = Vec::new();
    leaves(&tree, &mut found);
    assert!(
        found
            .iter()
            .any(|(t, c, _)| t == "raw_payments" && c == "amount_cents"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(t, _, _)| t.starts_with("raw_")),
        "every walk ends at a source: {found:?}"
    );
    // One level only.
    let shallow = p.json(
        &[
            "lineage",
            "customers",
            "--column",
            "lifetime_value",
            "--depth",
            "1",
            "--format",
            "json",
        ],
        0,
    );
    for u in shallow["upstream"].as_array().unwrap() {
        assert!(u["upstream"].as_array().unwrap().is_empty());
    }
    let wrong = p.run(&["lineage", "customers", "--column", "lifetime_valu"]);
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("did you mean `lifetime_value`?"),
        "{}",
        wrong.stderr
    );
}
