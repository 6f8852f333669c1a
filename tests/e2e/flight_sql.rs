//! Arrow Flight SQL on `cairn serve`'s port with a real client (ADBC's
//! Flight SQL driver from Python, `tests/grpc/flight_client.py`): queries
//! and prepared statements answer the rows `cairn query` answers, writes
//! are refused and change nothing, bad SQL gets the CLI's message, and
//! catalog browsing lists what can be read.

use std::process::Command;

use serde_json::Value;

use crate::server::Server;
use crate::util::Project;

/// One run of the Flight SQL client: its JSON answer.
fn flight(server: &Server, mode: &str, sql: &str) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/grpc/flight_client.py"
    );
    let out = Command::new("python3")
        .args([script, &server.addr, mode, sql])
        .env_remove("CAIRN_GRPC_TOKEN")
        .output()
        .expect("python3 with adbc-driver-flightsql must be installed (tests/run.sh does it)");
    assert!(
        out.status.success(),
        "{mode} {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{mode} {sql}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Rows in a stable order, to compare results of a query without ORDER BY.
fn sorted(rows: &Value) -> Vec<String> {
    let mut rows: Vec<String> = rows
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {rows}"))
        .iter()
        .map(Value::to_string)
        .collect();
    rows.sort();
    rows
}

/// The column names `cairn query` prints, in order (its CSV header).
fn cli_columns(p: &Project, sql: &str) -> Vec<String> {
    let run = p.run(&["query", "--format", "csv", sql]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let header = run.stdout.lines().next().unwrap_or_default();
    header.split(',').map(str::to_owned).collect()
}

/// What `cairn query` prints on stderr for a refused SQL, without `error: `.
fn cli_error(p: &Project, sql: &str) -> String {
    let run = p.run(&["query", sql]);
    assert_eq!(run.code, 2, "{sql} is refused by the CLI: {}", run.stdout);
    run.stderr
        .trim()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("{}", run.stderr))
        .to_owned()
}

/// A refusal: INVALID_ARGUMENT (ADBC's status for it) carrying `message`.
fn assert_invalid_argument(reply: &Value, message: &str) {
    assert_eq!(reply["status"], "INVALID_ARGUMENT", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains(message),
        "{message:?} not in {reply}"
    );
}

/// The tables `objects` lists in `schema` of the one catalog.
fn tables_in<'a>(objects: &'a Value, schema: &str) -> Vec<&'a Value> {
    let catalogs = objects["catalogs"].as_array().unwrap();
    assert_eq!(catalogs.len(), 1, "{objects}");
    catalogs[0]["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == schema)
        .unwrap_or_else(|| panic!("no schema {schema}: {objects}"))["tables"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn flight_sql_answers_what_cairn_query_answers() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    let server = Server::start(&p);

    for sql in [
        "select * from customers",
        "select asset, rows from cairn.materializations",
        "select c.country_code, count(*) as n, round(sum(o.amount), 2) as amount from customers c join orders o using (customer_id) group by c.country_code",
    ] {
        let cli = p.query_json(sql);
        assert!(!cli.as_array().unwrap().is_empty(), "{sql}");
        for mode in ["query", "prepared"] {
            let reply = flight(&server, mode, sql);
            assert_eq!(sorted(&reply["rows"]), sorted(&cli), "{mode}: {sql}");
            assert_eq!(
                reply["columns"],
                serde_json::json!(cli_columns(&p, sql)),
                "{mode}: {sql}"
            );
        }
    }

    // An empty result still has its columns.
    let empty = flight(
        &server,
        "query",
        "select customer_id, email from customers where customer_id < 0",
    );
    assert_eq!(empty["rows"], serde_json::json!([]), "{empty}");
    assert_eq!(
        empty["columns"],
        serde_json::json!(["customer_id", "email"])
    );

    server.stop();
}

#[test]
fn flight_sql_refuses_writes_and_bad_sql_as_the_cli_does() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    let server = Server::start(&p);
    let files = p.warehouse_files();
    let audit = p.query_json("select count(*) as n from cairn.audit_log");

    for sql in [
        "create table x as select 1",
        "insert into customers select * from customers",
        "copy (select 1) to 'out.csv'",
        "set datafusion.execution.batch_size = 10",
    ] {
        let message = cli_error(&p, sql);
        for mode in ["query", "prepared"] {
            assert_invalid_argument(&flight(&server, mode, sql), &message);
        }
    }
    let update = flight(&server, "update", "create table x as select 1");
    assert_invalid_argument(&update, "read-only");

    // Nothing changed: no file, no table, no catalog record.
    assert_eq!(p.warehouse_files(), files);
    assert!(!p.path("out.csv").exists());
    assert_eq!(
        p.query_json("select count(*) as n from cairn.audit_log"),
        audit
    );
    let gone = flight(&server, "query", "select * from x");
    assert_invalid_argument(&gone, &cli_error(&p, "select * from x"));

    // Bad SQL: the CLI's message, whose fault it is included.
    for sql in [
        "select * from custmers",
        "select nope from customers",
        "selec 1",
        "select * from cairn.nope",
    ] {
        let message = cli_error(&p, sql);
        for mode in ["query", "prepared"] {
            assert_invalid_argument(&flight(&server, mode, sql), &message);
        }
    }

    server.stop();
}

#[test]
fn flight_sql_catalog_lists_what_can_be_read() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    // Declared but never materialized: not readable, so not listed.
    p.write("assets/not_yet.sql", "select 1 as x\n");
    let server = Server::start(&p);

    let objects = flight(&server, "objects", "");
    assert_eq!(objects["info"]["vendor_name"], "cairn", "{objects}");
    assert_eq!(
        objects["info"]["vendor_version"],
        env!("CARGO_PKG_VERSION"),
        "{objects}"
    );
    assert_eq!(objects["table_types"], serde_json::json!(["TABLE"]));
    assert_eq!(objects["catalogs"][0]["name"], "datafusion", "{objects}");

    let data = tables_in(&objects, "public");
    let names: Vec<&str> = data.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "customers",
            "int_order_payments",
            "monthly_revenue",
            "orders",
            "raw_customers",
            "raw_orders",
            "raw_payments",
            "stg_customers",
            "stg_orders",
            "stg_payments",
        ],
        "sources and materialized assets, not `not_yet`"
    );
    let customers = data.iter().find(|t| t["name"] == "customers").unwrap();
    assert_eq!(customers["type"], "TABLE");
    assert_eq!(
        customers["columns"],
        serde_json::json!(cli_columns(&p, "select * from customers"))
    );

    // The metadata tables: exactly those `cairn query` knows (it lists them
    // when asked for one that does not exist).
    let refusal = cli_error(&p, "select * from cairn.nope");
    let known: Vec<&str> = refusal
        .split("there are ")
        .nth(1)
        .unwrap_or_else(|| panic!("{refusal}"))
        .split(", ")
        .map(|t| t.trim().trim_start_matches("cairn."))
        .collect();
    let metadata = tables_in(&objects, "cairn");
    let mut listed: Vec<&str> = metadata
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut known_sorted = known.clone();
    known_sorted.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, known_sorted);
    let materializations = metadata
        .iter()
        .find(|t| t["name"] == "materializations")
        .unwrap();
    let columns = materializations["columns"].as_array().unwrap();
    assert!(
        columns.contains(&Value::from("asset")),
        "{materializations}"
    );
    assert!(columns.contains(&Value::from("rows")), "{materializations}");

    // Reading the unlisted asset says what the CLI says.
    assert_invalid_argument(
        &flight(&server, "query", "select * from not_yet"),
        &cli_error(&p, "select * from not_yet"),
    );

    server.stop();
}
