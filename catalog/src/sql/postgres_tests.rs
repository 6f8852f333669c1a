//! Tests of what only PostgreSQL catalogs do: connecting (wrong
//! credentials, a missing database, an unreachable server, each one clear
//! error in bounded time), migrating once when several processes open a
//! fresh database at the same time, and sharing one database between
//! several catalogs (as between processes and servers).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::SqlCatalog;
use super::migrations::SUPPORTED_VERSION;
use super::postgres::POSTGRES_MIGRATIONS;
use super::test_support::{fresh_postgres_database, postgres_admin_url, with_database};
use crate::{Catalog, CatalogError, Enqueued, NewQueuedRun, NewRun, PartitionRef, RunId};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_700_000_000_000_000 + seconds * 1_000_000).unwrap()
}

fn error_text(result: crate::Result<SqlCatalog>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error @ CatalogError::Database { .. }) => error.to_string(),
        Err(other) => panic!("expected a database error, got {other}"),
    }
}

#[test]
fn wrong_credentials_are_named_as_such_and_the_password_is_never_shown() {
    let url = postgres_admin_url().replace(":cairn-test@", ":not-the-password@");
    let text = error_text(SqlCatalog::connect_postgres(&url));
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("wrong credentials"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
}

#[test]
fn a_missing_database_says_to_create_it() {
    let url = with_database(&postgres_admin_url(), "no_such_database");
    let text = error_text(SqlCatalog::connect_postgres(&url));
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("create the database first"), "{text}");
}

#[test]
fn an_unreachable_server_fails_fast_with_a_hint() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let text = error_text(SqlCatalog::connect_postgres(&format!(
        "postgres://cairn@127.0.0.1:{port}/cairn"
    )));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(text.contains("error connecting"), "{text}");
    assert!(text.contains("is the PostgreSQL server running"), "{text}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts connections but never speaks.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let text = error_text(SqlCatalog::connect_postgres(&format!(
        "postgres://cairn@127.0.0.1:{port}/cairn"
    )));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text.contains("timeout") || text.contains("no answer"),
        "{text}"
    );
    drop(listener);
}

#[test]
fn processes_opening_a_fresh_database_together_migrate_it_once() {
    let url = fresh_postgres_database();
    let barrier = Arc::new(Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                SqlCatalog::connect_postgres(&url).unwrap()
            })
        })
        .collect();
    let catalogs: Vec<SqlCatalog> = openers.into_iter().map(|t| t.join().unwrap()).collect();
    let migrations = i64::try_from(POSTGRES_MIGRATIONS.len()).unwrap();
    assert_eq!(
        catalogs[0].raw_i64("SELECT COUNT(*) FROM schema_migrations"),
        migrations
    );
    assert_eq!(
        catalogs[0].raw_i64("SELECT MAX(version) FROM schema_migrations"),
        SUPPORTED_VERSION
    );
    // Reopening migrates nothing more.
    drop(SqlCatalog::connect_postgres(&url).unwrap());
    assert_eq!(
        catalogs[1].raw_i64("SELECT COUNT(*) FROM schema_migrations"),
        migrations
    );
}

#[test]
fn a_database_from_a_newer_cairn_is_refused() {
    let url = fresh_postgres_database();
    let catalog = SqlCatalog::connect_postgres(&url).unwrap();
    catalog
        .raw_execute("INSERT INTO schema_migrations VALUES (999, '2030-01-01T00:00:00.000000Z')")
        .unwrap();
    match SqlCatalog::connect_postgres(&url) {
        Err(CatalogError::TooNew { found: 999, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn the_audit_log_cannot_be_truncated() {
    let catalog = SqlCatalog::connect_postgres(&fresh_postgres_database()).unwrap();
    let error = catalog.raw_execute("TRUNCATE audit_log").unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
}

fn queued(id: &str) -> NewQueuedRun {
    NewQueuedRun {
        run: NewRun {
            id: RunId(id.to_owned()),
            user: "ada".to_owned(),
            host: "box".to_owned(),
            pid: 1,
            command: "cairn serve".to_owned(),
            trigger: "api".to_owned(),
            started_at: at(0),
            backfill_id: None,
        },
        request: r#"{"materialize":{}}"#.to_owned(),
        claims: vec![PartitionRef {
            asset: "orders".to_owned(),
            partition: String::new(),
        }],
        attach: true,
    }
}

#[test]
fn servers_sharing_a_database_queue_one_run_for_the_same_units() {
    // Eight catalogs (eight connections, as eight servers) submit the same
    // request at once: the write lock makes one of them queue it and the
    // others attach to that run.
    let url = fresh_postgres_database();
    let barrier = Arc::new(Barrier::new(8));
    let submitters: Vec<_> = (0..8)
        .map(|i| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let catalog = SqlCatalog::connect_postgres(&url).unwrap();
                barrier.wait();
                catalog.enqueue_run(&queued(&format!("run-{i}"))).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<Enqueued> = submitters.into_iter().map(|t| t.join().unwrap()).collect();
    let queued_count = outcomes
        .iter()
        .filter(|o| matches!(o, Enqueued::Queued))
        .count();
    assert_eq!(queued_count, 1, "{outcomes:?}");
    let catalog = SqlCatalog::connect_postgres(&url).unwrap();
    let queue = catalog.queue().unwrap();
    assert_eq!(queue.len(), 1);
    for outcome in outcomes {
        if let Enqueued::Attached(run) = outcome {
            assert_eq!(run, queue[0].record.id);
        }
    }
    // Starting it happens once, whichever server tries.
    let starts: Vec<bool> = (0..3)
        .map(|_| {
            catalog
                .start_queued_run(&queue[0].record.id, "box", 2, at(1))
                .unwrap()
        })
        .collect();
    assert_eq!(starts, [true, false, false]);
}
