//! The web page's JSON API of `cairn serve` (`POST /api/v1/<Method>`),
//! over raw HTTP as a browser sends it: every method of the proto is
//! reachable, answers are the gRPC messages as JSON, mistakes are refused
//! with a JSON error, streams arrive line by line while the run goes on,
//! and tokens and roles hold exactly as for gRPC — while the page's own
//! files need no token.

use crate::server::{Server, api_call, api_stream, http_request};
use crate::tokens::{
    OPERATOR_SECRET as OPERATOR, SECRETS, VIEWER_SECRET as VIEWER, example_with_tokens,
};
use crate::util::Project;

/// Listens to `WatchRuns` in a thread until a `finished` event, returning
/// once the stream is open (events sent after that are all received).
fn watch_runs_until_finished(addr: &str) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
    let addr = addr.to_owned();
    let watcher = std::thread::spawn(move || {
        api_stream(&addr, "WatchRuns", "{}", |e| e["event"] == "finished")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    watcher
}

/// `event asset` of each event, e.g. `built orders`.
fn labels(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["asset"].as_str().unwrap()
            )
        })
        .collect()
}

/// A server on `p` knowing both tokens' secrets.
pub fn start_with_tokens(p: &Project) -> Server {
    Server::start_with(p, &SECRETS)
}

#[test]
fn every_method_of_the_proto_answers_json() {
    let p = Project::example();
    p.run(&["materialize"]);
    let server = Server::start(&p);
    let proto = include_str!("../../proto/cairn/v1/cairn.proto");
    let methods: Vec<&str> = proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .filter_map(|l| l.split('(').next())
        .collect();
    assert!(methods.len() >= 19, "{methods:?}");
    for method in methods {
        if method.starts_with("Watch") {
            continue; // Streams: below.
        }
        // An empty request; what matters is that the method is reached
        // and answers JSON (some refuse the empty request, by name).
        let reply = api_call(&server.addr, None, method, "{}");
        let body = reply.json();
        assert!(
            !body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("no method"),
            "{method}: {body}"
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{method}"
        );
    }

    let status = api_call(&server.addr, None, "Status", "").json();
    assert_eq!(status["fresh"], 7, "{status}");
    assert_eq!(status["assets"].as_array().unwrap().len(), 7);
    // The same numbers as the CLI's.
    let cli = p.json(&["status", "--format", "json"], 0);
    for (api, cli) in status["assets"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cli["assets"].as_array().unwrap())
    {
        assert_eq!(api["name"], cli["name"]);
        assert_eq!(api["state"], cli["state"]);
        assert_eq!(api["current"]["row_count"], cli["current"]["row_count"]);
    }

    let graph = api_call(&server.addr, None, "Graph", "{}").json();
    let nodes = graph["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10, "3 sources + 7 assets: {graph}");
    let customers = nodes.iter().find(|n| n["name"] == "customers").unwrap();
    assert_eq!(customers["kind"], "asset");
    assert_eq!(customers["file"], "assets/customers.sql");
    assert_eq!(customers["owner"], "analytics");
    assert!(!customers["checks"].as_array().unwrap().is_empty());
    // Dependency order: every node after its upstream.
    let position = |name: &serde_json::Value| nodes.iter().position(|n| n["name"] == *name);
    for (i, n) in nodes.iter().enumerate() {
        for up in n["upstream"].as_array().unwrap() {
            assert!(position(up) < Some(i), "{} before {up}", n["name"]);
        }
    }

    let who = api_call(&server.addr, None, "WhoAmI", "").json();
    assert_eq!(
        who,
        serde_json::json!({"name": "", "role": "operator", "tokens": false})
    );
}

#[test]
fn mistakes_are_refused_with_a_json_error_and_nothing_runs() {
    let p = Project::example();
    let server = Server::start(&p);
    // A misspelt field is refused, not ignored: `{"selections": [...]}`
    // must not mean "everything".
    let misspelt = api_call(
        &server.addr,
        None,
        "Materialize",
        r#"{"selections": ["orders"]}"#,
    );
    assert_eq!(misspelt.status, 400, "{}", misspelt.body);
    let body = misspelt.json();
    assert_eq!(body["code"], "invalid_argument");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("unknown field `selections`"), "{message}");
    assert!(message.contains("`selection`"), "{message}");

    let not_json = api_call(&server.addr, None, "Status", "{selection");
    assert_eq!(not_json.status, 400);

    let bad_asset = api_call(&server.addr, None, "GetAsset", r#"{"name": "custmers"}"#);
    assert_eq!(bad_asset.status, 400, "{}", bad_asset.body);
    assert!(
        bad_asset.json()["message"]
            .as_str()
            .unwrap()
            .contains("customers"),
        "did-you-mean: {}",
        bad_asset.body
    );

    let unknown = api_call(&server.addr, None, "Materialise", "{}");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "not_found");

    let no_run = api_call(&server.addr, None, "GetRun", r#"{"run_id": "nope"}"#);
    assert_eq!(no_run.status, 404, "{}", no_run.body);

    let get = http_request(&server.addr, "GET", "/api/v1/Status", &[], "");
    assert_eq!(get.status, 405, "only POST: {}", get.body);

    let runs = api_call(&server.addr, None, "ListRuns", "{}").json();
    assert_eq!(runs["runs"], serde_json::json!([]), "nothing ran: {runs}");
}

#[test]
fn streams_arrive_while_the_run_goes_on() {
    let p = Project::example();
    let server = Server::start(&p);
    // Watch every run, then start one: its events arrive on the open
    // stream, in order, up to its end.
    let watcher = watch_runs_until_finished(&server.addr);
    let accepted = api_call(
        &server.addr,
        None,
        "Materialize",
        r#"{"selection": ["+orders"]}"#,
    );
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let run_id = accepted.json()["run_id"].as_str().unwrap().to_owned();
    let events = watcher.join().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"queued"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"finished"), "{kinds:?}");
    assert!(events.iter().all(|e| e["run_id"] == run_id.as_str()));
    let built: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "built")
        .map(|e| e["asset"].as_str().unwrap())
        .collect();
    // Upstream first, `orders` last; each unit started before it was built.
    assert_eq!(built.last(), Some(&"orders"), "{kinds:?}");
    assert!(built.len() >= 3, "{built:?}");
    for asset in &built {
        let started = events
            .iter()
            .position(|e| e["event"] == "unit_started" && e["asset"] == *asset);
        let done = events
            .iter()
            .position(|e| e["event"] == "built" && e["asset"] == *asset);
        assert!(started < done && started.is_some(), "{asset}: {kinds:?}");
    }
    assert_eq!(events.last().unwrap()["status"], "succeeded");

    // WatchRun of the finished run tells it all again, then ends.
    let again = api_stream(
        &server.addr,
        "WatchRun",
        &format!(r#"{{"run_id": "{run_id}"}}"#),
        |_| false,
    );
    assert_eq!(
        again.iter().map(|e| e["event"].clone()).collect::<Vec<_>>(),
        events
            .iter()
            .map(|e| e["event"].clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn tokens_and_roles_hold_for_the_json_api_and_the_page_needs_none() {
    let p = example_with_tokens(None);
    let server = start_with_tokens(&p);

    // The page's files hold no data: served without a token, with a
    // policy that only lets them talk to this server.
    let page = http_request(&server.addr, "GET", "/", &[], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("app.js"), "{}", page.body);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    for file in ["/app.js", "/app.css"] {
        assert_eq!(http_request(&server.addr, "GET", file, &[], "").status, 200);
    }

    let anonymous = api_call(&server.addr, None, "Status", "{}");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], "unauthenticated");
    let wrong = api_call(&server.addr, Some("not-a-secret"), "Status", "{}");
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("not-a-secret"));

    let viewer = api_call(&server.addr, Some(VIEWER), "WhoAmI", "{}").json();
    assert_eq!(
        viewer,
        serde_json::json!({"name": "ci", "role": "viewer", "tokens": true})
    );
    assert_eq!(
        api_call(&server.addr, Some(VIEWER), "Status", "{}").status,
        200
    );
    for method in ["Materialize", "Backfill", "CancelRun", "Checks", "Tick"] {
        let refused = api_call(&server.addr, Some(VIEWER), method, "{}");
        assert_eq!(refused.status, 403, "{method}: {}", refused.body);
        let body = refused.json();
        assert_eq!(body["code"], "permission_denied");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("role = \"operator\""),
            "{body}"
        );
    }
    // A percent-encoded method name reaches no method at all.
    let sneaky = http_request(
        &server.addr,
        "POST",
        "/api/v1/Materi%61lize",
        &[("authorization", &format!("Bearer {VIEWER}"))],
        "{}",
    );
    assert_eq!(sneaky.status, 404, "{}", sneaky.body);
    let runs = api_call(&server.addr, Some(VIEWER), "ListRuns", "{}").json();
    assert_eq!(
        runs["runs"],
        serde_json::json!([]),
        "the viewer started nothing"
    );

    let operator = api_call(&server.addr, Some(OPERATOR), "WhoAmI", "{}").json();
    assert_eq!(operator["role"], "operator");
    let accepted = api_call(
        &server.addr,
        Some(OPERATOR),
        "Materialize",
        r#"{"selection": ["stg_customers"]}"#,
    );
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let runs = api_call(&server.addr, Some(OPERATOR), "ListRuns", "{}").json();
    assert_eq!(runs["runs"][0]["user"], "ops", "{runs}");
}

#[test]
fn a_late_watcher_of_every_run_first_hears_what_running_runs_did() {
    let p = Project::example();
    // `orders` hangs before its commit: the run stays running.
    let server = Server::start_with(&p, &[("CAIRN_TEST_HANG_BEFORE_COMMIT", "orders")]);
    let accepted = api_call(
        &server.addr,
        None,
        "Materialize",
        r#"{"selection": ["+orders"]}"#,
    );
    let run_id = accepted.json()["run_id"].as_str().unwrap().to_owned();
    // Joined after `orders` started: what the run did so far comes first.
    let mut past = Vec::new();
    for _ in 0..600 {
        past = api_stream(&server.addr, "WatchRuns", "{}", |e| {
            e["event"] == "unit_started" && e["asset"] == "orders"
        });
        if past.last().is_some_and(|e| e["asset"] == "orders") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kinds: Vec<String> = past
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["asset"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("queued "),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"built stg_orders".to_owned()), "{kinds:?}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("unit_started orders")
    );
    assert!(past.iter().all(|e| e["run_id"] == run_id.as_str()));
    // Finished runs are not told again.
    let cancelled = api_call(
        &server.addr,
        None,
        "CancelRun",
        &format!(r#"{{"run_id": "{run_id}"}}"#),
    );
    assert_eq!(
        cancelled.json()["status"],
        "cancelled",
        "{}",
        cancelled.body
    );
    let second = api_call(
        &server.addr,
        None,
        "Materialize",
        r#"{"selection": ["stg_customers"], "force": true}"#,
    );
    let second = second.json()["run_id"].as_str().unwrap().to_owned();
    let later = api_stream(&server.addr, "WatchRuns", "{}", |e| {
        e["event"] == "finished"
    });
    assert!(
        later.iter().all(|e| e["run_id"] == second.as_str()),
        "only the new run: {later:?}"
    );
}

#[test]
fn runs_a_cli_process_starts_beside_the_server_are_told_too() {
    let p = Project::example();
    let server = Server::start(&p);
    let watcher = watch_runs_until_finished(&server.addr);
    // Not through the server: a `cairn materialize` in a terminal.
    let report = p.json(&["materialize", "+orders", "--format", "json"], 0);
    let run_id = report["run_id"].as_str().unwrap().to_owned();
    let events = watcher.join().unwrap();
    assert!(
        events.iter().all(|e| e["run_id"] == run_id.as_str()),
        "{events:?}"
    );
    let kinds = labels(&events);
    assert!(kinds.contains(&"built orders".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"built stg_orders".to_owned()), "{kinds:?}");
    assert_eq!(events.last().unwrap()["status"], "succeeded", "{kinds:?}");
    // Told once: a second watcher hears nothing of it any more.
    let later = watch_runs_until_finished(&server.addr);
    // Past the queue's next look at the catalog (every 2 s).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let second = p.json(
        &[
            "materialize",
            "stg_customers",
            "--force",
            "--format",
            "json",
        ],
        0,
    );
    let events = later.join().unwrap();
    assert!(
        events.iter().all(|e| e["run_id"] == second["run_id"]),
        "only the new run: {events:?}"
    );
}
