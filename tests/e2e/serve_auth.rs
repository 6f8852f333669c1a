//! `cairn serve` with `[server.tokens]`, called by a real gRPC client and
//! raw HTTP: no token or a wrong one is UNAUTHENTICATED (401 for HTTP),
//! a viewer reads but may not start runs (PERMISSION_DENIED), health and
//! reflection are guarded too, and the secrets never reach stderr. At
//! startup: a token whose variable is missing, or a non-loopback address
//! without tokens, is refused with the fix; `[server] listen` is used when
//! `--listen` is not given.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::server::{Server, http_get, http_get_with};
use crate::tokens::{
    OPERATOR_ENV, OPERATOR_SECRET, VIEWER_ENV, VIEWER_SECRET, example_with, example_with_tokens,
};
use crate::util::{Project, Run, assert_refused};

fn code(reply: &serde_json::Value) -> &str {
    reply["code"].as_str().unwrap_or("OK")
}

#[test]
fn tokens_and_roles_guard_every_call() {
    let p = example_with_tokens(None);
    let (server, stderr) = Server::start_collecting_stderr(
        &p,
        &[
            (VIEWER_ENV, VIEWER_SECRET),
            (OPERATOR_ENV, OPERATOR_SECRET),
            // Everything Cairn and its libraries log, to show no secret
            // is among it.
            ("CAIRN_LOG", "debug"),
        ],
    );

    let anonymous = server.call("Status", "{}");
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    assert!(
        anonymous["details"]
            .as_str()
            .unwrap()
            .contains("authorization: Bearer <secret>"),
        "says what to send: {anonymous}"
    );
    // Wrong secrets, of the same length as a real one and not.
    for wrong in ["viewer-5b0c7e1f2b", "viewer", "x".repeat(200).as_str()] {
        let reply = server.call_as(Some(wrong), "Status", "{}");
        assert_eq!(code(&reply), "UNAUTHENTICATED", "{wrong}: {reply}");
        assert!(
            !reply.to_string().contains(wrong),
            "echoes the secret: {reply}"
        );
    }

    let status = server.call_as(Some(VIEWER_SECRET), "Status", "{}");
    assert_eq!(code(&status), "OK", "{status}");
    assert_eq!(status["assets"].as_array().unwrap().len(), 7, "{status}");
    let runs = server.call_as(Some(VIEWER_SECRET), "ListRuns", "{}");
    assert_eq!(code(&runs), "OK", "{runs}");

    let denied = server.call_as(Some(VIEWER_SECRET), "Materialize", "{}");
    assert_eq!(code(&denied), "PERMISSION_DENIED", "{denied}");
    let details = denied["details"].as_str().unwrap();
    assert!(
        details.contains("`ci` is a viewer") && details.contains("operator"),
        "{denied}"
    );
    // The operator's Materialize queues a run; the run, and every state
    // change in the audit log, names the token.
    let operator = server.call_as(Some(OPERATOR_SECRET), "Materialize", "{}");
    assert_eq!(code(&operator), "OK", "{operator}");
    let run_id = operator["run_id"].as_str().unwrap().to_owned();
    let get_run = format!(r#"{{"run_id": "{run_id}"}}"#);
    let started = std::time::Instant::now();
    let run = loop {
        let run = server.call_as(Some(VIEWER_SECRET), "GetRun", &get_run);
        if run["finished_at"] != "" {
            break run;
        }
        assert!(started.elapsed().as_secs() < 60, "{run}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(
        (&run["status"], &run["user"]),
        (&"succeeded".into(), &"ops".into()),
        "{run}"
    );
    let viewer_cancel = server.call_as(Some(VIEWER_SECRET), "CancelRun", &get_run);
    assert_eq!(code(&viewer_cancel), "PERMISSION_DENIED", "{viewer_cancel}");
    let log = p.json(&["audit", "--log", "--format", "json"], 0);
    let by = |action: &str| -> Vec<String> {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["principal"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(by("queue_run"), ["ops"], "{log}");
    assert_eq!(by("materialize"), ["ops"], "{log}");
    let operator_reads = server.call_as(Some(OPERATOR_SECRET), "Status", "{}");
    assert_eq!(code(&operator_reads), "OK", "{operator_reads}");

    // gRPC health and reflection are calls like any other.
    let health = server.call("health", "{}");
    assert_eq!(code(&health), "UNAUTHENTICATED", "{health}");
    let health = server.call_as(Some(VIEWER_SECRET), "health", "{}");
    assert_eq!(health["status"], "SERVING", "{health}");
    let reflection = server.call("reflection", "{}");
    assert_eq!(code(&reflection), "UNAUTHENTICATED", "{reflection}");
    let reflection = server.call_as(Some(VIEWER_SECRET), "reflection", "{}");
    assert!(
        reflection["v1"].to_string().contains("cairn.v1.Cairn"),
        "{reflection}"
    );

    // Plain HTTP: 401 asking for a bearer token, 200 with one.
    let healthz = http_get(&server.addr, "/healthz");
    assert!(healthz.starts_with("HTTP/1.1 401"), "{healthz}");
    assert!(
        healthz
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{healthz}"
    );
    assert!(
        healthz.contains("authorization: Bearer <secret>"),
        "{healthz}"
    );
    let wrong = http_get_with(
        &server.addr,
        "/healthz",
        &[("Authorization", "Bearer operator-91d2aa3c45")],
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let viewer = http_get_with(
        &server.addr,
        "/healthz",
        &[("Authorization", &format!("Bearer {VIEWER_SECRET}"))],
    );
    assert!(viewer.starts_with("HTTP/1.1 200"), "{viewer}");
    assert!(viewer.ends_with("ok\n"), "{viewer}");

    server.stop();
    let stderr = stderr.join().unwrap();
    assert!(stderr.contains("listening on"), "{stderr}");
    for secret in [VIEWER_SECRET, OPERATOR_SECRET] {
        assert!(!stderr.contains(secret), "a secret on stderr:\n{stderr}");
    }
}

#[test]
fn a_token_without_its_secret_refuses_to_start() {
    let p = example_with_tokens(None);
    let neither = assert_refused(
        &p,
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            "token `ci`",
            VIEWER_ENV,
            "token `ops`",
            OPERATOR_ENV,
            &format!("export {VIEWER_ENV}="),
        ],
    );
    assert!(neither.stdout.is_empty(), "{}", neither.stdout);

    let one = Run::from(
        p.command(&["serve", "--listen", "127.0.0.1:0"])
            .env(OPERATOR_ENV, OPERATOR_SECRET)
            .output()
            .unwrap(),
    );
    assert_eq!(one.code, 2, "{}", one.stderr);
    assert!(one.stderr.contains(VIEWER_ENV), "{}", one.stderr);
    assert!(!one.stderr.contains(OPERATOR_ENV), "{}", one.stderr);
    assert!(!one.stderr.contains(OPERATOR_SECRET), "{}", one.stderr);

    let shared = Run::from(
        p.command(&["serve", "--listen", "127.0.0.1:0"])
            .env(VIEWER_ENV, OPERATOR_SECRET)
            .env(OPERATOR_ENV, OPERATOR_SECRET)
            .output()
            .unwrap(),
    );
    assert_eq!(shared.code, 2, "{}", shared.stderr);
    assert!(shared.stderr.contains("same secret"), "{}", shared.stderr);
    assert!(
        !shared.stderr.contains(OPERATOR_SECRET),
        "{}",
        shared.stderr
    );
}

#[test]
fn without_tokens_it_listens_on_loopback_only() {
    let p = Project::example();
    assert_refused(
        &p,
        &["serve", "--listen", "0.0.0.0:0"],
        &["0.0.0.0:0", "[server.tokens]", "listen on 127.0.0.1"],
    );
    let from_config = example_with("[server]\nlisten = \"0.0.0.0:0\"");
    assert_refused(&from_config, &["serve"], &["[server.tokens]"]);
}

#[test]
fn the_listen_address_comes_from_cairn_toml_unless_given() {
    // With tokens any address is allowed; the one in cairn.toml is used.
    let p = example_with_tokens(Some("0.0.0.0:0"));
    let mut child = p
        .command(&["serve"])
        .env(VIEWER_ENV, VIEWER_SECRET)
        .env(OPERATOR_ENV, OPERATOR_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("listening on 0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("not on cairn.toml's 0.0.0.0: {line:?}"))
        .to_owned();
    // Stopped when dropped, whatever happens below.
    let server = Server {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    let healthz = http_get(&server.addr, "/healthz");
    assert!(healthz.starts_with("HTTP/1.1 401"), "{healthz}");
    drop(server);

    let bad = example_with("[server]\nlisten = \"localhost\"");
    assert_refused(
        &bad,
        &["serve"],
        &["[server] listen in cairn.toml", "localhost"],
    );
}
