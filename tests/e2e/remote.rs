//! `cairn --server URL` (or `CAIRN_SERVER`): `status`, `show`, `lineage`,
//! `materialize` (and `--explain`) and `backfill` through a running
//! `cairn serve`, from a folder with no project, print what the local
//! commands print — byte for byte for reads, up to timings and ids for
//! runs — with the same exit codes and the same refusals; an unreachable
//! server, a missing or wrong `CAIRN_TOKEN` and local-only commands and
//! options are refused with what to do.

use std::process::Command;

use crate::server::Server;
use crate::tokens;
use crate::util::{Project, Run, states};

/// `cairn serve` on `p` with extra environment variables, its log (the
/// run queue's lines) read and dropped.
fn serve(p: &Project, env: &[(&str, &str)]) -> Server {
    Server::start_collecting_stderr(p, env).0
}

/// `cairn --server ADDR args...` run from an empty folder (nothing local
/// to open), with the client variables cleared; `env` adds some.
fn remote_with(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let here = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .current_dir(here.path())
        .args(["--server", addr])
        .args(args)
        .env_remove("CAIRN_SERVER")
        .env_remove("CAIRN_TOKEN")
        .env_remove("CAIRN_NOW")
        .envs(env.iter().copied());
    Run::from(command.output().unwrap())
}

fn remote(server: &Server, args: &[&str]) -> Run {
    remote_with(&server.addr, args, &[])
}

/// Asserts that `args` gives the same stdout, stderr and exit code
/// locally and through the server (after `normalize`): the exit code.
fn assert_same(p: &Project, server: &Server, args: &[&str], normalize: fn(&str) -> String) -> i32 {
    let local = p.run(args);
    let through = remote(server, args);
    assert_eq!(
        (
            normalize(&through.stdout),
            normalize(&through.stderr),
            through.code
        ),
        (
            normalize(&local.stdout),
            normalize(&local.stderr),
            local.code
        ),
        "cairn {args:?}: through the server (left) and locally (right)"
    );
    local.code
}

fn as_is(text: &str) -> String {
    text.to_owned()
}

/// `text` with each `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS[.f]Z`
/// replaced by `<time>` (partition keys, dates alone, stay).
fn without_times(text: &str) -> String {
    let shape = "0000-00-00 00:00:00";
    let matches = |rest: &[u8]| {
        rest.len() >= shape.len()
            && shape.bytes().zip(rest).all(|(p, &c)| match p {
                b'0' => c.is_ascii_digit(),
                b' ' => c == b' ' || c == b'T',
                p => p == c,
            })
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if matches(rest.as_bytes()) {
            out.push_str("<time>");
            rest = &rest[shape.len()..];
            if let Some(fraction) = rest.strip_prefix('.') {
                rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
            }
            rest = rest.strip_prefix('Z').unwrap_or(rest);
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Asserts that `args` run on `local` prints what it prints run through
/// `server` (on another copy, in the same state) up to [`timeless`]: the
/// exit code.
fn same_run(local: &Project, server: &Server, args: &[&str]) -> i32 {
    let here = local.run(args);
    let there = remote(server, args);
    assert_eq!(
        (timeless(&there.stdout), timeless(&there.stderr), there.code),
        (timeless(&here.stdout), timeless(&here.stderr), here.code),
        "cairn {args:?}: through the server (left) and locally (right)"
    );
    here.code
}

/// What differs between two runs of the same work: run and backfill ids
/// (not whether there is one), times, durations and what the clock
/// measured (CPU, memory, cost).
fn timeless(text: &str) -> String {
    let text = without_times(text);
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words: Vec<String> = Vec::new();
        for word in line.split(' ') {
            let w = word.trim_end_matches([',', ':', ';']);
            let bare = w.trim_matches('"');
            let id = bare.len() == 36 && bare.chars().filter(|c| *c == '-').count() == 4;
            let suffix = &word[w.len()..];
            if id {
                words.push(word.replace(bare, "<id>"));
            } else if let Some(last) = words.last_mut()
                && (w == "ms" || w == "s")
                && last.parse::<f64>().is_ok()
            {
                *last = format!("<time>{suffix}");
            } else {
                words.push(word.to_owned());
            }
        }
        let mut line = words.join(" ");
        for key in [
            "\"secs\"",
            "\"nanos\"",
            "\"wall_ms\"",
            "\"cpu_seconds\"",
            "\"datafusion_seconds\"",
            "\"peak_memory_bytes\"",
            "\"cost_usd\"",
        ] {
            if let Some(at) = line.find(&format!("{key}: ")) {
                let comma = if line.ends_with(',') { "," } else { "" };
                line = format!("{}{key}: <varies>{comma}", &line[..at]);
            }
        }
        // The run's files are named by its id.
        if let Some(at) = line.find("-00000.parquet") {
            let start = line[..at].rfind('/').map_or(0, |s| s + 1);
            line = format!("{}<id>{}", &line[..start], &line[at..]);
        }
        out.push(line);
    }
    out.join("\n")
}

#[test]
fn reads_print_exactly_what_the_local_commands_print() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    p.edit(
        "assets/stg_orders.sql",
        "from raw_orders",
        "from raw_orders\nwhere id > 3",
    );
    let server = serve(&p, &[]);
    for args in [
        &["status"][..],
        &["status", "--format", "json"],
        &["status", "--check"],
        &["status", "orders", "--partitions", "--format", "json"],
        &["show", "customers"],
        &["show", "customers", "--format", "json"],
        &["show", "stg_orders"],
        &["lineage", "orders"],
        &["lineage", "orders", "--format", "json"],
        &["lineage", "raw_orders", "--downstream"],
        &["lineage", "customers", "--upstream", "--format", "json"],
        &["lineage", "customers", "--column", "lifetime_value"],
        &[
            "lineage",
            "customers",
            "--column",
            "customer_id",
            "--depth",
            "1",
            "--format",
            "json",
        ],
        &["materialize", "--explain"],
        &["materialize", "--explain", "--format", "json"],
        &["materialize", "orders", "--explain", "--force"],
    ] {
        assert_same(&p, &server, args, as_is);
    }
    server.stop();
}

#[test]
fn mistakes_are_refused_as_the_local_commands_refuse_them() {
    let p = Project::example_named("daily_sales");
    let server = serve(&p, &[]);
    for args in [
        &["status", "ordrs"][..],
        &["show", "daily_sale"],
        &["lineage", "daily_sale"],
        &["lineage", "daily_sales", "--column", "nope"],
        &["materialize", "daily_sale+"],
        &["materialize", "--explain", "+nope"],
        &["backfill", "--from", "2024-02-30"],
        &["backfill", "--from", "2024-01-09", "--to", "2024-01-02"],
        &["backfill", "--resume", "nope"],
        &["backfill", "daily_sales", "--resume", "x"],
    ] {
        assert_eq!(assert_same(&p, &server, args, as_is), 2, "{args:?}");
    }
    server.stop();
}

#[test]
fn a_materialize_through_a_server_is_a_run_of_the_server() {
    let p = Project::example();
    let server = serve(&p, &[]);
    let run = remote(&server, &["materialize", "--jobs", "1"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("run ") && lines[0].ends_with(": 7 asset(s) to check"),
        "{}",
        run.stdout
    );
    let id = lines[0]
        .strip_prefix("run ")
        .and_then(|l| l.split(':').next())
        .unwrap();
    assert!(
        lines[1].starts_with("  stg_customers") && lines[1].contains("materialized  100 rows"),
        "{}",
        run.stdout
    );
    assert!(
        lines[8].starts_with(&format!(
            "run {id}: 7 materialized, 0 fresh, 0 failed, 0 skipped in "
        )),
        "{}",
        run.stdout
    );

    // Locally: everything fresh, and the run's units in the catalog.
    let status = states(&p.json(&["status", "--format", "json"], 0));
    assert!(status.values().all(|(s, _)| s == "fresh"), "{status:?}");
    let rows = p.query_json(&format!(
        "select asset from cairn.materializations where run_id = '{id}' order by asset"
    ));
    assert_eq!(rows.as_array().unwrap().len(), 7, "{rows}");

    // Nothing stale: the local command's words, and no run id in JSON.
    let again = remote(&server, &["materialize"]);
    assert_eq!(
        (again.stdout.as_str(), again.code),
        (
            "Everything is up to date (7 asset(s) fresh): no DataFusion work done.\n",
            0
        )
    );
    server.stop();
}

/// The same edits on two copies, one materialized locally and one through
/// a server: the same output, text and JSON, and the same exit codes,
/// failures and skipped assets included.
#[test]
fn runs_through_a_server_print_what_local_runs_print() {
    let local = Project::example();
    let served = Project::example();
    let server = serve(&served, &[]);
    let both = |args: &[&str]| same_run(&local, &server, args);
    let edit = |file: &str, from: &str, to: &str| {
        local.edit(file, from, to);
        served.edit(file, from, to);
    };
    assert_eq!(both(&["materialize", "--jobs", "1", "--format", "json"]), 0);
    // A failure, and what reads it skipped.
    edit(
        "assets/int_order_payments.sql",
        "count(*) as payment_count",
        "count(*) / 0 as payment_count",
    );
    assert_eq!(both(&["materialize", "--jobs", "1"]), 1);
    assert_eq!(both(&["status", "--check"]), 1);
    // A failed check (its rows sampled in the JSON).
    edit(
        "assets/int_order_payments.sql",
        "count(*) / 0 as payment_count",
        "count(*) as payment_count",
    );
    edit(
        "assets/customers.sql",
        "round(coalesce(co.lifetime_value, 0), 2) as lifetime_value",
        "-1 - round(coalesce(co.lifetime_value, 0), 2) as lifetime_value",
    );
    assert_eq!(both(&["materialize", "--jobs", "1", "--format", "json"]), 1);
    // Rebuilt with identical data: "data unchanged", early cutoff below.
    edit(
        "assets/customers.sql",
        "-1 - round(coalesce(co.lifetime_value, 0), 2) as lifetime_value",
        "round(coalesce(co.lifetime_value, 0), 2) as lifetime_value",
    );
    assert_eq!(both(&["materialize", "--jobs", "1"]), 0);
    assert_eq!(
        both(&["materialize", "stg_orders+", "--force", "--jobs", "1"]),
        0
    );
    assert_eq!(both(&["materialize"]), 0);
    assert_eq!(both(&["materialize", "--format", "json"]), 0);
    server.stop();
}

#[test]
fn backfills_through_a_server_print_what_local_backfills_print() {
    let local = Project::example_named("daily_sales");
    let served = Project::example_named("daily_sales");
    let server = serve(&served, &[]);
    let both = |args: &[&str]| assert_eq!(same_run(&local, &server, args), 0, "{args:?}");
    both(&[
        "backfill",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
        "--jobs",
        "1",
    ]);
    both(&[
        "backfill",
        "daily_sales",
        "--partitions",
        "2024-01-04, 2024-01-05",
        "--jobs",
        "1",
        "--format",
        "json",
    ]);
    both(&["status", "--partitions"]);
    both(&["show", "rolling_7d"]);
    both(&["lineage", "revenue_to_date"]);
    server.stop();
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    // A port nobody listens on.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let run = remote_with(&addr, &["status"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot reach a Cairn server at http://{addr} ("
        )) && run.stderr.contains("is `cairn serve` running there?"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    // Refused before connecting: what a server cannot do.
    for (args, env, fragment) in [
        (
            &["query", "select 1"][..],
            &[][..],
            "`cairn query` works on a project folder",
        ),
        (&["gc"], &[], "`cairn gc`"),
        (
            &["--project", ".", "status"],
            &[],
            "--project names a project folder here",
        ),
        (
            &["status"],
            &[("CAIRN_NOW", "2024-06-01T00:00:00Z")],
            "CAIRN_NOW is set",
        ),
        (
            &["lineage", "orders", "--column", "order_id", "--depth", "0"],
            &[],
            "--depth 0",
        ),
        (&["status"], &[("CAIRN_TOKEN", "two words")], "CAIRN_TOKEN"),
    ] {
        let run = remote_with(&addr, args, env);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(fragment), "{args:?}: {}", run.stderr);
    }
    let run = remote_with("https://127.0.0.1:1", &["status"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no TLS"), "{}", run.stderr);
}

#[test]
fn a_server_with_tokens_needs_cairn_token() {
    let p = tokens::example_with_tokens(None);
    let server = serve(&p, &tokens::SECRETS);
    let as_token = |token: Option<&str>, args: &[&str]| {
        let env: Vec<(&str, &str)> = token.map(|t| ("CAIRN_TOKEN", t)).into_iter().collect();
        remote_with(&server.addr, args, &env)
    };
    let run = as_token(None, &["status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs a token: set CAIRN_TOKEN"),
        "{}",
        run.stderr
    );
    let run = as_token(Some("guess"), &["status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("does not accept the secret in CAIRN_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(tokens::VIEWER_SECRET),
        "{}",
        run.stderr
    );

    let status = as_token(Some(tokens::VIEWER_SECRET), &["status"]);
    assert_eq!(
        (status.code, status.stdout.clone()),
        (0, p.run(&["status"]).stdout)
    );
    let refused = as_token(Some(tokens::VIEWER_SECRET), &["materialize"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused the token in CAIRN_TOKEN")
            && refused.stderr.contains("role = \"operator\""),
        "{}",
        refused.stderr
    );
    let built = as_token(
        Some(tokens::OPERATOR_SECRET),
        &["materialize", "--jobs", "1"],
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stdout.contains(": 7 materialized, 0 fresh"),
        "{}",
        built.stdout
    );
    server.stop();
}
