//! The core loop on the bundled example: build, no-op, code change,
//! early cutoff, source change, selection, force.

use crate::util::{Project, states, with_outcome};

const ALL: [&str; 7] = [
    "customers",
    "int_order_payments",
    "monthly_revenue",
    "orders",
    "stg_customers",
    "stg_orders",
    "stg_payments",
];

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn first_run_builds_everything_and_second_does_no_datafusion_work() {
    let p = Project::example();
    let (report, outcomes) = p.materialize(&[]);
    assert!(report["run_id"].is_string());
    assert_eq!(with_outcome(&outcomes, "materialized"), sorted(&ALL));
    // Every asset has committed files on disk.
    let files = p.warehouse_files();
    for asset in ALL {
        assert!(
            files.iter().any(|f| f.starts_with(&format!("{asset}/"))),
            "{asset}: {files:?}"
        );
    }

    let second = p.run(&["materialize"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stdout.contains("no DataFusion work done"),
        "{}",
        second.stdout
    );
    let (report, outcomes) = p.materialize(&[]);
    assert!(
        report["run_id"].is_null(),
        "a no-op must not start a run: {report}"
    );
    assert_eq!(with_outcome(&outcomes, "fresh"), sorted(&ALL));
    assert_eq!(p.warehouse_files(), files, "a no-op writes nothing");

    let status = p.json(&["status", "--check", "--format", "json"], 0);
    assert_eq!(status["not_fresh"], 0);
    let rows = p.query_json("select count(*) as n from customers");
    assert_eq!(rows[0]["n"], 100);
}

#[test]
fn editing_a_staging_model_makes_exactly_it_and_its_downstream_stale() {
    let p = Project::example();
    p.materialize(&[]);
    p.edit(
        "assets/stg_payments.sql",
        "from raw_payments",
        "from raw_payments\nwhere payment_method <> 'gift_card'",
    );

    let status = p.json(&["status", "--format", "json"], 0);
    let s = states(&status);
    assert_eq!(
        s["stg_payments"],
        ("stale".into(), vec!["code_changed".into()])
    );
    assert_eq!(
        s["int_order_payments"],
        ("stale".into(), vec!["upstream_stale stg_payments".into()])
    );
    assert_eq!(s["orders"].0, "stale");
    assert_eq!(s["customers"].0, "stale");
    assert_eq!(
        s["monthly_revenue"],
        ("stale".into(), vec!["upstream_stale orders".into()])
    );
    for fresh in ["stg_customers", "stg_orders"] {
        assert_eq!(s[fresh], ("fresh".into(), vec![]), "{fresh}");
    }
    let check = p.run(&["status", "--check"]);
    assert_eq!(check.code, 1, "--check fails when anything is stale");
    assert!(check.stdout.contains("code changed"), "{}", check.stdout);

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
    assert_eq!(
        with_outcome(&outcomes, "fresh"),
        sorted(&["stg_customers", "stg_orders"])
    );
    let gift =
        p.query_json("select count(*) as n from stg_payments where payment_method = 'gift_card'");
    assert_eq!(gift[0]["n"], 0);
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
}

#[test]
fn identical_output_stops_staleness_there() {
    let p = Project::example();
    p.materialize(&[]);
    // Semantically the same rows: the asset is rebuilt, its data version is
    // unchanged, so nothing downstream is recomputed.
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere 1 = 1",
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["stg_orders"].0, "stale");
    assert_eq!(s["orders"].0, "stale");

    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["stg_orders".to_owned()]
    );
    assert_eq!(
        with_outcome(&outcomes, "fresh (early cutoff)"),
        sorted(&["orders", "customers", "monthly_revenue"])
    );
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
}

#[test]
fn comments_and_formatting_do_not_change_the_code_version() {
    let p = Project::example();
    p.materialize(&[]);
    let text = p.read("assets/stg_customers.sql");
    p.write(
        "assets/stg_customers.sql",
        &format!("-- reformatted\n{}\n\n", text.replace("    ", "\t")),
    );
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
}

#[test]
fn editing_a_source_file_makes_its_downstream_stale_by_content() {
    let p = Project::example();
    p.materialize(&[]);

    // Rewriting identical bytes (new mtime) is not a change.
    let original = p.read("data/raw_customers.csv");
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.write("data/raw_customers.csv", &original);
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );

    p.write(
        "data/raw_customers.csv",
        &format!("{original}101,Ada,Lovelace,ada@example.com,2024-12-10,GB\n"),
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(
        s["stg_customers"],
        ("stale".into(), vec!["source_changed raw_customers".into()])
    );
    assert_eq!(
        s["customers"],
        ("stale".into(), vec!["upstream_stale stg_customers".into()])
    );
    for fresh in [
        "stg_orders",
        "stg_payments",
        "int_order_payments",
        "orders",
        "monthly_revenue",
    ] {
        assert_eq!(s[fresh].0, "fresh", "{fresh}");
    }
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        sorted(&["stg_customers", "customers"])
    );
    let n = p.query_json("select count(*) as n from customers");
    assert_eq!(n[0]["n"], 101);
}

#[test]
fn selection_refreshes_stale_upstream_on_the_way_and_force_rebuilds() {
    let p = Project::example();
    // Only what `orders` needs is built.
    let (_, outcomes) = p.materialize(&["orders"]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        sorted(&["orders", "stg_orders", "stg_payments", "int_order_payments"])
    );
    let s = states(&p.json(&["status", "--format", "json"], 0));
    assert_eq!(s["customers"].0, "never_materialized");
    assert_eq!(s["stg_customers"].0, "never_materialized");

    // Downstream selection.
    let (_, outcomes) = p.materialize(&["stg_customers+"]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        sorted(&["stg_customers", "customers"])
    );

    // --force rebuilds the selection only; +name forces upstream too.
    let (_, outcomes) = p.materialize(&["--force", "customers"]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        vec!["customers".to_owned()]
    );
    let (_, outcomes) = p.materialize(&["--force", "+monthly_revenue"]);
    assert_eq!(
        with_outcome(&outcomes, "materialized"),
        sorted(&[
            "monthly_revenue",
            "orders",
            "stg_orders",
            "stg_payments",
            "int_order_payments"
        ])
    );
}

#[test]
fn show_and_lineage_describe_the_asset() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    let show = p.json(&["show", "customers", "--format", "json"], 0);
    assert_eq!(show["file"], "assets/customers.sql");
    assert_eq!(show["current"]["row_count"], 100);
    let inputs: Vec<&str> = show["current"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        inputs,
        vec!["int_order_payments", "stg_customers", "stg_orders"]
    );
    assert_eq!(show["history"].as_array().unwrap().len(), 1);
    let text = p.run(&["show", "customers"]);
    assert_eq!(text.code, 0);
    // Its minimum is a float zero, which Parquet footers store as -0.0.
    let lifetime_value = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("lifetime_value"))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(
        lifetime_value.contains(" 0 .. "),
        "a float zero prints as 0: {lifetime_value}"
    );

    let lineage = p.run(&["lineage", "customers", "--upstream"]);
    assert_eq!(lineage.code, 0, "{}", lineage.stderr);
    assert!(
        lineage.stdout.contains("raw_payments (source)"),
        "{}",
        lineage.stdout
    );
    let down = p.json(
        &["lineage", "stg_orders", "--downstream", "--format", "json"],
        0,
    );
    assert_eq!(
        down["downstream"],
        serde_json::json!(["customers", "monthly_revenue", "orders"])
    );
}
