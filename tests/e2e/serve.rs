//! `cairn serve` with a real gRPC client (Python grpcio, stubs generated
//! from the committed .proto at test time): health, reflection v1 and
//! v1alpha, Status / GetAsset / Lineage / Explain answering what the CLI
//! answers, the methods not built yet saying so, `/healthz` on the same
//! port, and a graceful stop on SIGTERM.

use serde_json::Value;

use crate::server::{Server, http_get};
use crate::util::{Project, states};

#[test]
fn the_grpc_api_answers_what_the_cli_answers() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere id > 3",
    );
    let server = Server::start(&p);

    assert_eq!(server.call("health", "{}")["status"], "SERVING");
    let reflection = server.call("reflection", "{}");
    for version in ["v1", "v1alpha"] {
        let services: Vec<&str> = reflection[version]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(services.contains(&"cairn.v1.Cairn"), "{reflection}");
    }
    let healthz = http_get(&server.addr, "/healthz");
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");

    // Status: the same states and causes as the CLI's JSON.
    let cli = states(&p.json(&["status", "--format", "json"], 0));
    let grpc = server.call("Status", "{}");
    for a in grpc["assets"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let causes: Vec<String> = a["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| match c["name"].as_str() {
                Some(n) if !n.is_empty() => format!("{} {n}", c["cause"].as_str().unwrap()),
                _ => c["cause"].as_str().unwrap().to_owned(),
            })
            .collect();
        assert_eq!(
            (a["state"].as_str().unwrap().to_owned(), causes),
            cli[name].clone(),
            "{name}"
        );
    }
    assert_eq!(grpc["assets"].as_array().unwrap().len(), cli.len());

    // Explain: the CLI's plan.
    let cli_plan = p.json(&["materialize", "--explain", "--format", "json"], 0);
    let grpc_plan = server.call("Explain", "{}");
    let decisions = |plan: &Value| -> Vec<(String, String)> {
        plan["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["asset"].as_str().unwrap().to_owned(),
                    u["decision"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(decisions(&grpc_plan), decisions(&cli_plan));

    let asset = server.call("GetAsset", r#"{"name": "customers"}"#);
    assert_eq!(asset["current"]["row_count"], "100", "{asset}");
    assert_eq!(asset["file"], "assets/customers.sql");
    let unknown = server.call("GetAsset", r#"{"name": "custmers"}"#);
    assert_eq!(unknown["code"], "INVALID_ARGUMENT", "{unknown}");
    assert!(
        unknown["details"].as_str().unwrap().contains("customers"),
        "{unknown}"
    );

    let lineage = server.call("Lineage", r#"{"asset": "stg_orders", "downstream": true}"#);
    assert_eq!(
        lineage["downstream"],
        serde_json::json!(["customers", "monthly_revenue", "orders"])
    );

    // Cost, provenance, the audit log and column lineage: the CLI's answers.
    let cli_cost = p.json(&["cost", "--format", "json"], 0);
    let grpc_cost = server.call("Cost", "{}");
    let assets = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["asset"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(assets(&grpc_cost["assets"]), assets(&cli_cost));
    let provenance = server.call("Provenance", r#"{"asset": "customers"}"#);
    assert_eq!(provenance["kind"], "asset", "{provenance}");
    assert_eq!(provenance["rows"], "100");
    assert_eq!(
        provenance["inputs"].as_array().unwrap().len(),
        3,
        "{provenance}"
    );
    let log = server.call("AuditLog", "{}");
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "materialize"),
        "{log}"
    );
    let bad_time = server.call("AuditLog", r#"{"since": "yesterday"}"#);
    assert_eq!(bad_time["code"], "INVALID_ARGUMENT", "{bad_time}");
    let column = server.call(
        "ColumnLineage",
        r#"{"asset": "customers", "column": "customer_id"}"#,
    );
    assert_eq!(column["table"], "customers", "{column}");
    assert!(
        !column["upstream"].as_array().unwrap().is_empty(),
        "{column}"
    );

    let runs = server.call("ListRuns", r#"{"limit": 5}"#);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "one materialize so far: {runs:?}");
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(
        runs[0]["command"].as_str().unwrap().contains("materialize"),
        "{runs:?}"
    );

    let run_id = runs[0]["run_id"].as_str().unwrap();
    let run = server.call("GetRun", &format!(r#"{{"run_id": "{run_id}"}}"#));
    let units = run["units"].as_array().unwrap();
    assert_eq!(units.len(), 7, "the example's 7 assets: {run}");
    assert!(
        units.iter().all(|u| u["outcome"] == "materialized"),
        "{run}"
    );
    let missing = server.call("GetRun", r#"{"run_id": "nope"}"#);
    assert_eq!(missing["code"], "NOT_FOUND", "{missing}");

    server.stop();
}
