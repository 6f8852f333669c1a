//! The lineage web page in a real browser: headless Chromium (Debian's
//! `chromium`) driven by `tests/web/drive.mjs` (npm `playwright-core`)
//! against a real `cairn serve`, what it shows compared with what the CLI
//! says — states with `cairn status`, the panel with `cairn show`, the
//! highlighted columns with `cairn lineage --column` — an operator's
//! Materialize seen live and a viewer without buttons. Screenshots are
//! kept in `$TMPDIR/cairn-web-shots/<test>/` (CI artifacts). And the
//! committed bundle `lineage-ui/dist/` is what its sources build to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::server::Server;
use crate::tokens::{OPERATOR_SECRET as OPERATOR, VIEWER_SECRET as VIEWER, example_with_tokens};
use crate::util::Project;
use crate::web_api::start_with_tokens;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where a test's screenshots are kept after it ends.
fn shots(test: &str) -> PathBuf {
    std::env::temp_dir().join("cairn-web-shots").join(test)
}

/// Runs one scenario of the driver: what the page showed.
fn drive(server: &Server, token: Option<&str>, test: &str, scenario: &[&str]) -> Value {
    let dir = shots(test);
    let mut command = Command::new("node");
    command
        .arg(repo().join("tests/web/drive.mjs"))
        .arg(scenario[0])
        .arg(format!("http://{}", server.addr))
        .arg(&dir)
        .args(&scenario[1..]);
    if let Some(token) = token {
        command.env("CAIRN_WEB_TOKEN", token);
    }
    let out = command
        .output()
        .expect("node must be installed, with `npm ci` run in lineage-ui (tests/run.sh does both)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{scenario:?}: {e}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && seen.get("failed").is_none(),
        "{scenario:?}: {seen}"
    );
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "{scenario:?}: the page logged errors"
    );
    eprintln!("{test}: screenshots in {}", dir.display());
    seen
}

/// A warehouse in every state: some assets fresh, some stale (code of
/// `stg_payments` edited after it was built, so its downstream too), some
/// never built.
fn warehouse_in_every_state() -> Project {
    let p = example_with_tokens(None);
    let run = p.run(&["materialize", "+customers"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    p.edit(
        "assets/stg_payments.sql",
        "amount_cents / 100.0 as amount",
        "amount_cents / 100.00 as amount",
    );
    p
}

#[test]
fn the_graph_shows_every_asset_in_the_state_status_reports() {
    let p = warehouse_in_every_state();
    let server = start_with_tokens(&p);
    let seen = drive(&server, Some(VIEWER), "graph", &["graph"]);

    let status = p.json(&["status", "--format", "json"], 0);
    let expected: BTreeMap<String, (Value, Value)> = status["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                (a["state"].clone(), a["health"].clone()),
            )
        })
        .collect();
    let states: Vec<&Value> = expected.values().map(|(s, _)| s).collect();
    for state in ["fresh", "stale", "never_materialized"] {
        assert!(states.contains(&&Value::from(state)), "{state}: {status}");
    }
    let nodes = seen["graph"]["nodes"].as_array().unwrap();
    let rendered: BTreeMap<String, (Value, Value)> = nodes
        .iter()
        .filter(|n| n["kind"] == "asset")
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                (n["state"].clone(), n["health"].clone()),
            )
        })
        .collect();
    assert_eq!(
        rendered, expected,
        "every asset, in the state status reports"
    );
    let sources: Vec<&str> = nodes
        .iter()
        .filter(|n| n["kind"] == "source")
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["raw_customers", "raw_orders", "raw_payments"]);
    assert!(
        nodes
            .iter()
            .all(|n| n["kind"] != "source" || n["state"] == "source")
    );
    // Each upstream link once: 10 edges in the example.
    assert_eq!(seen["graph"]["edges"], 10);
    // Drawn inside the window, left to right along the edges.
    let x = |name: &str| {
        nodes.iter().find(|n| n["name"] == name).unwrap()["x"]
            .as_f64()
            .unwrap()
    };
    assert!(x("raw_payments") < x("stg_payments"));
    assert!(x("stg_payments") < x("int_order_payments"));
    assert!(x("int_order_payments") < x("customers"));
    // Check badges: the checks of the current version, as in `cairn show`.
    let int = nodes
        .iter()
        .find(|n| n["name"] == "int_order_payments")
        .unwrap();
    let shown = p.json(&["show", "int_order_payments", "--format", "json"], 0);
    let checks = shown["current"]["checks"].as_array().unwrap();
    assert_eq!(
        int["checks"]["passed"].as_u64().unwrap() + int["checks"]["failed"].as_u64().unwrap(),
        checks.len() as u64
    );
    assert!(Path::new(seen["screenshot"].as_str().unwrap()).exists());
    assert!(seen["stats"]["firstRenderMs"].as_f64().unwrap() > 0.0);
}

/// `table.column` of every node of `cairn lineage --column` JSON.
fn lineage_columns(node: &Value, out: &mut Vec<String>) {
    out.push(format!(
        "{}.{}",
        node["table"].as_str().unwrap(),
        node["column"].as_str().unwrap()
    ));
    for up in node["upstream"].as_array().unwrap() {
        lineage_columns(up, out);
    }
}

#[test]
fn an_asset_panel_matches_show_and_a_column_lights_its_lineage() {
    let p = warehouse_in_every_state();
    let server = start_with_tokens(&p);
    let seen = drive(
        &server,
        Some(VIEWER),
        "panel",
        &["asset", "customers", "customer_id"],
    );

    let shown = p.json(&["show", "customers", "--format", "json"], 0);
    assert_eq!(seen["rows"], shown["current"]["row_count"], "{seen}");
    let checks: Vec<Value> = shown["current"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c["name"], "passed": c["passed"], "failing_rows": c["failing_rows"],
            })
        })
        .collect();
    assert!(!checks.is_empty());
    assert_eq!(seen["checks"], Value::from(checks));

    let lineage = p.json(
        &[
            "lineage",
            "customers",
            "--column",
            "customer_id",
            "--format",
            "json",
        ],
        0,
    );
    let mut columns = Vec::new();
    lineage_columns(&lineage, &mut columns);
    columns.sort();
    columns.dedup();
    assert!(columns.len() > 3, "{columns:?}");
    assert_eq!(seen["highlighted"], Value::from(columns.clone()));
    let mut tables: Vec<String> = columns
        .iter()
        .map(|c| c.split('.').next().unwrap().to_owned())
        .collect();
    tables.dedup();
    tables.sort();
    tables.dedup();
    assert_eq!(seen["highlightedNodes"], Value::from(tables));

    // Deep links and the back button.
    assert_eq!(seen["hashAfterClick"], "#/asset/customers");
    assert_eq!(
        seen["hashAfterColumn"],
        "#/asset/customers/column/customer_id"
    );
    assert_eq!(seen["hashAfterBack"], "#/asset/customers");
    assert_eq!(seen["panelAfterBack"], true);
}

#[test]
fn an_operator_materializes_live_and_a_viewer_cannot() {
    let p = warehouse_in_every_state();
    let server = start_with_tokens(&p);

    let viewer = drive(&server, Some(VIEWER), "viewer", &["viewer", "orders"]);
    assert_eq!(
        viewer["buttons"], 0,
        "a viewer sees no run buttons: {viewer}"
    );
    assert_eq!(viewer["direct"]["status"], 403, "{viewer}");
    assert_eq!(viewer["direct"]["body"]["code"], "permission_denied");

    let operator = drive(
        &server,
        Some(OPERATOR),
        "operator",
        &["materialize", "orders"],
    );
    assert_eq!(operator["before"], "never_materialized", "{operator}");
    assert_eq!(operator["after"], "fresh", "{operator}");
    // Seen change without a reload: from its old state to fresh.
    let seen: Vec<&str> = operator["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(seen.first(), Some(&"never_materialized"), "{seen:?}");
    assert_eq!(seen.last(), Some(&"fresh"), "{seen:?}");

    let status = p.json(&["status", "orders", "--format", "json"], 0);
    assert_eq!(status["assets"][0]["state"], "fresh", "{status}");
    let runs = crate::server::api_call(&server.addr, Some(VIEWER), "ListRuns", "{}").json();
    assert_eq!(
        runs["runs"][0]["user"], "ops",
        "run by the operator: {runs}"
    );
}

#[test]
fn a_partition_deep_link_shows_every_partition_in_its_state_and_its_versions() {
    let p = Project::example_named("daily_sales");
    let run = p.run(&[
        "backfill",
        "daily_sales",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-10",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // One day's source changes afterwards: that partition alone is stale.
    let day = "data/sales/date=2024-01-03/sales.csv";
    let text = p.read(day);
    p.write(day, &text.replacen('\n', "\n\n", 1));
    let server = Server::start(&p);
    let seen = drive(
        &server,
        None,
        "partition",
        &["partition", "daily_sales", "2024-01-05"],
    );
    let status = p.json(
        &["status", "daily_sales", "--partitions", "--format", "json"],
        0,
    );
    let expected: Vec<Value> = status["assets"][0]["partitions"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| serde_json::json!({"key": u["key"], "state": u["state"]}))
        .collect();
    assert_eq!(expected.len(), 31);
    assert_eq!(
        seen["cells"],
        Value::from(expected),
        "one cell per day, in its state"
    );
    let states: Vec<&str> = seen["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states[2], "stale", "{states:?}");
    assert_eq!(states[4], "fresh");
    assert_eq!(states[20], "never_materialized");
    assert_eq!(seen["versions"], 1, "2024-01-05 was built once");
    assert_eq!(seen["hash"], "#/asset/daily_sales/partition/2024-01-05");
}

#[test]
fn the_committed_bundle_is_what_its_sources_build() {
    let ui = repo().join("lineage-ui");
    let out = tempfile::tempdir().unwrap();
    let build = Command::new("npm")
        .args(["run", "--silent", "build", "--", "--outDir"])
        .arg(out.path())
        .arg("--emptyOutDir")
        .current_dir(&ui)
        .output()
        .expect("npm must be installed, with `npm ci` run in lineage-ui (tests/run.sh does both)");
    assert!(
        build.status.success(),
        "npm run build: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let mut built: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    assert_eq!(
        built,
        ["app.css", "app.js", "index.html"],
        "what cairn serve embeds"
    );
    for name in &built {
        let fresh = std::fs::read(out.path().join(name)).unwrap();
        let committed = std::fs::read(ui.join("dist").join(name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "lineage-ui/dist/{name} is stale: run `npm run build` in lineage-ui and commit dist/"
        );
    }
}
