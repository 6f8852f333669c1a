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

#[test]
fn events_are_posted_to_an_http_receiver_valid_and_with_the_key() {
    let receiver = crate::http_receiver::Receiver::start();
    let p = Project::example();
    let toml = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!(
            "{toml}\n[openlineage]\nurl = \"http://{}\"\napi_key_env = \"CAIRN_E2E_OL_KEY\"\npath = \"lineage/events.jsonl\"\n",
            receiver.addr
        ),
    );
    let run = p
        .command(&["materialize"])
        .env("CAIRN_E2E_OL_KEY", "ol-key-123")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got: Vec<(String, String, String)> = receiver
        .requests()
        .into_iter()
        .map(|r| {
            let auth = r.header("authorization").unwrap_or_default().to_owned();
            (r.path, auth, r.body)
        })
        .collect();
    // Every event, as in the file: delivered before the command ended.
    let file = p.read("lineage/events.jsonl");
    assert_eq!(got.len(), 14, "START and COMPLETE of 7 assets");
    assert_eq!(got.len(), file.lines().count());
    for (path, auth, _) in &got {
        assert_eq!(path, "/api/v1/lineage");
        assert_eq!(auth, "Bearer ol-key-123");
    }
    let posted: Vec<String> = got.iter().map(|(_, _, body)| body.clone()).collect();
    let mut sorted_posted = posted.clone();
    sorted_posted.sort();
    let mut sorted_file: Vec<String> = file.lines().map(str::to_owned).collect();
    sorted_file.sort();
    assert_eq!(sorted_posted, sorted_file, "the same events");
    p.write("lineage/posted.jsonl", &format!("{}\n", posted.join("\n")));
    let (ok, report) = validate(&p, "lineage/posted.jsonl");
    assert!(ok, "{report}");

    // A missing key variable stops the run before anything is built.
    p.edit("assets/orders.sql", "select", "select distinct");
    let refused = p.run(&["materialize"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("CAIRN_E2E_OL_KEY"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_dead_receiver_neither_fails_nor_holds_up_runs_and_drops_are_told() {
    let port = crate::http_receiver::nobody_listening();
    let p = Project::example();
    let toml = p.read("cairn.toml");
    p.write(
        "cairn.toml",
        &format!("{toml}\n[openlineage]\nurl = \"http://127.0.0.1:{port}\"\ntimeout_seconds = 2\n"),
    );
    let started = std::time::Instant::now();
    let run = p.run(&["materialize", "--format", "json"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert!(
        run.stderr.contains("OpenLineage: 14 of 14 events of run"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("127.0.0.1:{port}/api/v1/lineage")),
        "{}",
        run.stderr
    );
    let status = p.json(&["status", "--format", "json"], 0);
    assert_eq!(status["fresh"], 7, "the run committed everything");

    // Nowhere to send events, or not an HTTP URL: refused with the fix.
    p.write(
        "cairn.toml",
        &format!("{toml}\n[openlineage]\nnamespace = \"x\"\n"),
    );
    crate::util::assert_refused(
        &p,
        &["status"],
        &["cairn.toml", "neither where to write events"],
    );
    p.write(
        "cairn.toml",
        &format!("{toml}\n[openlineage]\nurl = \"kafka://lineage.example.com\"\n"),
    );
    crate::util::assert_refused(
        &p,
        &["status"],
        &["[openlineage] url", "is not an http:// or https:// URL"],
    );
}
