//! OpenLineage events from real runs validate against the official schemas.

use std::process::Command;

use crate::util::Project;

fn validate(p: &Project, file: &str) -> (bool, String) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/openlineage/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(p.path(file))
        .output()
        .expect("python3 must be installed (see tests/run.sh)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn runs_emit_valid_start_complete_and_fail_events() {
    let p = Project::example();
    let toml = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{toml}\n[openlineage]\npath = \"lineage/events.jsonl\"\n"),
    );
    p.materialize(&[]);
    let text = p.read("lineage/events.jsonl");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 14, "START and COMPLETE for each of 7 assets");
    let complete = events
        .iter()
        .find(|e| e["eventType"] == "COMPLETE" && e["job"]["name"] == "customers")
        .unwrap();
    let output = &complete["outputs"][0];
    assert_eq!(output["outputFacets"]["outputStatistics"]["rowCount"], 100);
    assert!(
        output["facets"]["schema"]["fields"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
    assert!(
        output["facets"]["columnLineage"]["fields"]["lifetime_value"].is_object(),
        "{output}"
    );
    assert!(
        output["facets"]["dataQualityAssertions"]["assertions"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    let inputs: Vec<&str> = complete["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        inputs,
        vec!["int_order_payments", "stg_customers", "stg_orders"]
    );
    let (ok, report) = validate(&p, "lineage/events.jsonl");
    assert!(ok, "{report}");

    // A failing asset emits FAIL with the error.
    p.edit(
        "assets/stg_orders.sql",
        "lower(status) as status",
        "upper(status) as status",
    );
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1);
    let text = p.read("lineage/events.jsonl");
    let fail = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["eventType"] == "FAIL")
        .expect("a FAIL event");
    assert_eq!(fail["job"]["name"], "stg_orders");
    assert!(
        fail["run"]["facets"]["errorMessage"]["message"]
            .as_str()
            .unwrap()
            .contains("accepted_values")
    );
    let (ok, report) = validate(&p, "lineage/events.jsonl");
    assert!(ok, "{report}");
}
