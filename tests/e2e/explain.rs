//! `cairn materialize --explain`: the plan shown is the plan run, with the
//! causes status reports, and showing it writes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::{Project, states, with_outcome};

/// Every file under the project's catalog and storage, with its bytes.
fn catalog_and_storage(p: &Project) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                // The parsed-SQL cache is neither: loading an edited
                // project rightly records the edit's parse.
                if rel != cairn_assets::PARSE_CACHE_FILE {
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&p.path(".cairn"), &p.root, &mut out);
    walk(&p.path("warehouse"), &p.root, &mut out);
    out
}

/// `(asset, decision)` of the units that are not fresh.
type Decisions = Vec<(String, String)>;
/// Each unit's causes as text.
type Causes = BTreeMap<String, Vec<String>>;

fn planned(plan: &Value) -> (Decisions, Causes) {
    let mut decisions = Vec::new();
    let mut causes = BTreeMap::new();
    for u in plan["units"].as_array().unwrap() {
        let asset = u["asset"].as_str().unwrap().to_owned();
        let decision = u["decision"].as_str().unwrap().to_owned();
        if decision != "fresh" {
            decisions.push((asset.clone(), decision));
        }
        let c: Vec<String> = u["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| match c["name"].as_str() {
                Some(n) => format!("{} {n}", c["cause"].as_str().unwrap()),
                None => c["cause"].as_str().unwrap().to_owned(),
            })
            .collect();
        causes.insert(asset, c);
    }
    (decisions, causes)
}

#[test]
fn explain_after_an_edit_is_what_materialize_then_does_and_writes_nothing() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere id > 3",
    );

    let before = catalog_and_storage(&p);
    let plan = p.json(&["materialize", "--explain", "--format", "json"], 0);
    let text = p.run(&["materialize", "--dry-run"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(
        catalog_and_storage(&p),
        before,
        "--explain must not write to the catalog or the storage"
    );

    let (decisions, causes) = planned(&plan);
    assert_eq!(
        decisions,
        [
            ("stg_orders", "build"),
            ("customers", "build_unless_upstream_unchanged"),
            ("orders", "build_unless_upstream_unchanged"),
            ("monthly_revenue", "build_unless_upstream_unchanged"),
        ]
        .map(|(a, d)| (a.to_owned(), d.to_owned()))
    );
    // The same causes as status.
    let status = states(&p.json(&["status", "--format", "json"], 0));
    for (asset, (_, status_causes)) in &status {
        assert_eq!(&causes[asset], status_causes, "causes of {asset}");
    }
    assert!(
        text.stdout
            .contains("stg_orders          build — code changed"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("orders              build unless its upstream comes out unchanged — upstream stg_orders is stale"),
        "{}",
        text.stdout
    );

    // The run builds exactly the planned units (the edit changes data, so
    // no early cutoff).
    let (_, outcomes) = p.materialize(&[]);
    let mut built = with_outcome(&outcomes, "materialized");
    let mut planned_units: Vec<String> = decisions.into_iter().map(|(a, _)| a).collect();
    built.sort();
    planned_units.sort();
    assert_eq!(built, planned_units);
}

#[test]
fn explain_shows_forced_fresh_and_retried_units() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    let plan = p.json(
        &[
            "materialize",
            "--explain",
            "--force",
            "stg_orders",
            "--format",
            "json",
        ],
        0,
    );
    let (decisions, _) = planned(&plan);
    assert_eq!(decisions, [("stg_orders".to_owned(), "forced".to_owned())]);
    assert_eq!(plan["fresh"], 0, "only the selection is considered: {plan}");

    // A failing build is retried, and the plan says why.
    p.edit("assets/stg_payments.sql", "select", "select 1 / 0 as boom,");
    let _ = p.run(&["materialize"]);
    let text = p.run(&["materialize", "--explain"]);
    let line = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("stg_payments"))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(
        line.contains("build — retry: the last attempt failed: ")
            && line.contains("Divide by zero")
            && line.ends_with("; code changed"),
        "{line}"
    );
}
