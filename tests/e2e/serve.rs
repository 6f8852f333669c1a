//! `cairn serve` with a real gRPC client (Python grpcio, stubs generated
//! from the committed .proto at test time): health, reflection v1 and
//! v1alpha, Status / GetAsset / Lineage / Explain answering what the CLI
//! answers, the methods not built yet saying so, `/healthz` on the same
//! port, and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::{Project, states};

/// A running `cairn serve` on a free loopback port.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(p: &Project) -> Server {
        let mut child = p
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    /// One call through the Python client: its JSON reply.
    fn call(&self, method: &str, request: &str) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/grpc/client.py");
        let out = Command::new("python3")
            .args([script, &self.addr, method, request])
            .output()
            .expect("python3 with grpcio must be installed (tests/run.sh does it)");
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{method}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Stops it with SIGTERM; it must exit 0.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert_eq!(exit.code(), Some(0), "graceful stop");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

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

    let not_yet = server.call("Materialize", "{}");
    assert_eq!(not_yet["code"], "UNIMPLEMENTED", "{not_yet}");

    server.stop();
}
