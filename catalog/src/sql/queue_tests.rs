//! Tests of the run queue in the SQLite catalog: queueing and attaching,
//! starting, cancelling, requeueing after a crash, and the migration that
//! rebuilt the runs table under existing references.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::SqlCatalog;
use super::migrations::MIGRATIONS;
use super::rows::timestamp;
use super::test_support::{fresh, on_both_databases};
use crate::{
    AttemptOutcome, Catalog, Enqueued, NewAttempt, NewQueuedRun, NewRun, PartitionRef, RunId,
    RunStatus, UnitClaim, UnitClaimed,
};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_700_000_000_000_000 + seconds * 1_000_000).unwrap()
}

fn unit(asset: &str, partition: &str) -> PartitionRef {
    PartitionRef {
        asset: asset.to_owned(),
        partition: partition.to_owned(),
    }
}

fn queued(id: &str, claims: &[(&str, &str)]) -> NewQueuedRun {
    NewQueuedRun {
        run: NewRun {
            id: RunId(id.to_owned()),
            user: "ops".to_owned(),
            host: "box".to_owned(),
            pid: 7,
            command: "Materialize orders".to_owned(),
            trigger: "api".to_owned(),
            started_at: at(0),
            backfill_id: None,
        },
        request: format!(r#"{{"selection":["{id}"]}}"#),
        claims: claims.iter().map(|(a, p)| unit(a, p)).collect(),
        attach: true,
    }
}

fn id(s: &str) -> RunId {
    RunId(s.to_owned())
}

fn status(c: &SqlCatalog, run: &str) -> RunStatus {
    c.run(&id(run)).unwrap().unwrap().0.status
}

fn a_request_covered_by_an_active_run_attaches_to_it() {
    let c = fresh();
    let a = queued("a", &[("orders", ""), ("customers", "")]);
    assert_eq!(c.enqueue_run(&a).unwrap(), Enqueued::Queued);
    // A subset attaches; nothing is written.
    assert_eq!(
        c.enqueue_run(&queued("b", &[("orders", "")])).unwrap(),
        Enqueued::Attached(id("a"))
    );
    assert!(c.run(&id("b")).unwrap().is_none());
    // More than any one run claims: queued.
    assert_eq!(
        c.enqueue_run(&queued("c", &[("orders", ""), ("revenue", "")]))
            .unwrap(),
        Enqueued::Queued
    );
    // No claims (nothing known to build): queued, never attached.
    assert_eq!(c.enqueue_run(&queued("d", &[])).unwrap(), Enqueued::Queued);
    // Work that must not attach is queued even when covered.
    let own = NewQueuedRun {
        attach: false,
        ..queued("f", &[("orders", "")])
    };
    assert_eq!(c.enqueue_run(&own).unwrap(), Enqueued::Queued);

    let queue = c.queue().unwrap();
    let ids: Vec<&str> = queue.iter().map(|q| q.record.id.0.as_str()).collect();
    assert_eq!(ids, ["a", "c", "d", "f"]);
    assert_eq!(queue[0].claims, [unit("customers", ""), unit("orders", "")]);
    assert_eq!(queue[0].request, r#"{"selection":["a"]}"#);
    assert_eq!(queue[0].record.status, RunStatus::Queued);
    assert_eq!(queue[0].record.queued_at, Some(at(0)));
    assert!(!queue[0].cancel_requested);
    assert_eq!(c.runs(10).unwrap().len(), 4);

    // Still attaches while the run runs; not once it finished.
    assert!(c.start_queued_run(&id("a"), "host2", 99, at(5)).unwrap());
    assert_eq!(
        c.enqueue_run(&queued("e", &[("customers", "")])).unwrap(),
        Enqueued::Attached(id("a"))
    );
    c.finish_run(&id("a"), RunStatus::Succeeded, None).unwrap();
    assert_eq!(
        c.enqueue_run(&queued("e", &[("customers", "")])).unwrap(),
        Enqueued::Queued
    );
}

fn starting_records_the_process_and_happens_once() {
    let c = fresh();
    c.enqueue_run(&queued("a", &[("orders", "")])).unwrap();
    assert!(c.start_queued_run(&id("a"), "worker", 99, at(5)).unwrap());
    assert!(!c.start_queued_run(&id("a"), "worker", 99, at(6)).unwrap());
    let (run, _) = c.run(&id("a")).unwrap().unwrap();
    assert_eq!(
        (
            run.status,
            run.host.as_str(),
            run.pid,
            run.started_at,
            run.queued_at
        ),
        (RunStatus::Running, "worker", 99, at(5), Some(at(0)))
    );
    assert!(
        !c.start_queued_run(&id("unknown"), "worker", 99, at(6))
            .unwrap()
    );
}

fn cancelling_ends_a_queued_run_and_marks_a_running_one() {
    let c = fresh();
    c.enqueue_run(&queued("a", &[("orders", "")])).unwrap();
    c.enqueue_run(&queued("b", &[("customers", "")])).unwrap();
    assert!(c.start_queued_run(&id("b"), "box", 7, at(1)).unwrap());

    let a = c.request_cancel(&id("a"), at(2)).unwrap().unwrap();
    assert_eq!(
        (a.status, a.finished_at),
        (RunStatus::Cancelled, Some(at(2)))
    );
    // Its claims are gone: the same units queue again.
    assert_eq!(
        c.enqueue_run(&queued("a2", &[("orders", "")])).unwrap(),
        Enqueued::Queued
    );

    let b = c.request_cancel(&id("b"), at(3)).unwrap().unwrap();
    assert_eq!((b.status, b.finished_at), (RunStatus::Running, None));
    let queue = c.queue().unwrap();
    let b_queued = queue.iter().find(|q| q.record.id == id("b")).unwrap();
    assert!(b_queued.cancel_requested);
    // A run being cancelled takes no new attachments.
    assert_eq!(
        c.enqueue_run(&queued("b2", &[("customers", "")])).unwrap(),
        Enqueued::Queued
    );
    c.finish_run(&id("b"), RunStatus::Cancelled, Some("cancelled"))
        .unwrap();
    assert_eq!(status(&c, "b"), RunStatus::Cancelled);
    // A finished run is left alone; an unknown one is None.
    let again = c.request_cancel(&id("b"), at(9)).unwrap().unwrap();
    assert_eq!(again.status, RunStatus::Cancelled);
    assert!(c.request_cancel(&id("zzz"), at(9)).unwrap().is_none());
    let ids: Vec<String> = c
        .queue()
        .unwrap()
        .into_iter()
        .map(|q| q.record.id.0)
        .collect();
    assert_eq!(ids, ["a2", "b2"]);
}

fn a_dead_processs_queue_runs_go_back_to_the_queue() {
    let c = fresh();
    c.enqueue_run(&queued("resume", &[("orders", "")])).unwrap();
    c.enqueue_run(&queued("cancelled", &[("customers", "")]))
        .unwrap();
    c.enqueue_run(&queued("waiting", &[("revenue", "")]))
        .unwrap();
    c.begin_run(&NewRun {
        command: "cairn materialize".to_owned(),
        trigger: "cli".to_owned(),
        ..queued("cli", &[]).run
    })
    .unwrap();
    assert!(c.start_queued_run(&id("resume"), "box", 7, at(1)).unwrap());
    assert!(
        c.start_queued_run(&id("cancelled"), "box", 7, at(1))
            .unwrap()
    );
    c.request_cancel(&id("cancelled"), at(2)).unwrap();
    c.record_attempt(&NewAttempt {
        run_id: id("resume"),
        asset: "orders".to_owned(),
        partition: String::new(),
        outcome: AttemptOutcome::Failed,
        error: Some("boom".to_owned()),
        at: at(2),
    })
    .unwrap();

    let mut changed = c.mark_crashed_runs(&|_| false).unwrap();
    changed.sort();
    assert_eq!(changed, [id("cancelled"), id("cli"), id("resume")]);
    assert_eq!(status(&c, "cli"), RunStatus::Crashed);
    assert_eq!(status(&c, "cancelled"), RunStatus::Cancelled);
    let (resumed, attempts) = c.run(&id("resume")).unwrap().unwrap();
    assert_eq!((resumed.status, resumed.error), (RunStatus::Queued, None));
    assert_eq!(attempts.len(), 1, "what it did before is kept");
    assert_eq!(status(&c, "waiting"), RunStatus::Queued);
    let ids: Vec<String> = c
        .queue()
        .unwrap()
        .into_iter()
        .map(|q| q.record.id.0)
        .collect();
    assert_eq!(ids, ["resume", "waiting"]);
    // Its claims still hold.
    assert_eq!(
        c.enqueue_run(&queued("again", &[("orders", "")])).unwrap(),
        Enqueued::Attached(id("resume"))
    );
}

#[test]
fn version_7_database_keeps_its_runs_and_their_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .unwrap();
        for (version, sql) in (1..).zip(&MIGRATIONS[..7]) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'then')",
                [version],
            )
            .unwrap();
        }
        conn.execute(
            r#"INSERT INTO runs (id, user, host, pid, command, "trigger", started_at, status)
               VALUES ('old', 'ada', 'box', 1, 'cairn materialize', 'cli', ?1, 'failed')"#,
            [timestamp(at(0))],
        )
        .unwrap();
        conn.execute(
            r#"INSERT INTO attempts (run_id, asset, "partition", outcome, error, at)
               VALUES ('old', 'orders', '', 'failed', 'boom', ?1)"#,
            [timestamp(at(1))],
        )
        .unwrap();
    }
    let c = SqlCatalog::open(&path).unwrap();
    let (run, attempts) = c.run(&id("old")).unwrap().unwrap();
    assert_eq!((run.status, run.queued_at), (RunStatus::Failed, None));
    assert_eq!(attempts.len(), 1);
    // References are enforced again after migrating.
    let dangling = c.record_attempt(&NewAttempt {
        run_id: id("no such run"),
        asset: "orders".to_owned(),
        partition: String::new(),
        outcome: AttemptOutcome::Failed,
        error: None,
        at: at(3),
    });
    assert!(dangling.is_err());
    assert_eq!(
        c.enqueue_run(&queued("new", &[("orders", "")])).unwrap(),
        Enqueued::Queued
    );
}

fn a_tick_is_recorded_once_with_its_runs_or_not_at_all() {
    use crate::{AutomationEvaluation, AutomationState, NewTick, TickRecorded};
    let c = fresh();
    let tick = |t: i64, expected: Option<i64>, run: &str| NewTick {
        at: at(t),
        states: vec![(
            AutomationState {
                asset: "orders".to_owned(),
                last_tick_at: at(t),
                last_requested_at: Some(at(t)),
            },
            expected.map(at),
        )],
        evaluations: vec![AutomationEvaluation {
            tick_at: at(t),
            asset: "orders".to_owned(),
            condition: "cron".to_owned(),
            fired: true,
            reason: "cron 0 6 * * * at 06:00".to_owned(),
            run_id: Some(id(run)),
        }],
        runs: vec![queued(run, &[("orders", "")])],
    };
    assert_eq!(
        c.record_tick(&tick(10, None, "r1")).unwrap(),
        TickRecorded::Recorded(vec![Enqueued::Queued])
    );
    // The same instant again (state read before the first was recorded):
    // nothing fires twice.
    assert_eq!(
        c.record_tick(&tick(10, None, "r2")).unwrap(),
        TickRecorded::Conflict
    );
    assert!(c.run(&id("r2")).unwrap().is_none());
    assert_eq!(c.automation_evaluations(None, 10).unwrap().len(), 1);
    let state = c.automation_state().unwrap();
    assert_eq!(state[0].last_tick_at, at(10));
    // The next tick, having read the first's state, records (and its
    // request attaches to the run still queued).
    assert_eq!(
        c.record_tick(&tick(20, Some(10), "r3")).unwrap(),
        TickRecorded::Recorded(vec![Enqueued::Attached(id("r1"))])
    );
    let evaluations = c.automation_evaluations(Some(at(15)), 10).unwrap();
    assert_eq!(evaluations.len(), 1);
    assert_eq!(evaluations[0].tick_at, at(20));
    assert_eq!(
        evaluations[0].run_id,
        Some(id("r1")),
        "the run it attached to"
    );
}

fn claim(run: &str, asset: &str, now: i64, until: i64) -> UnitClaim {
    UnitClaim {
        run_id: id(run),
        asset: asset.to_owned(),
        partition: "2024-01-01".to_owned(),
        now: at(now),
        until: at(until),
    }
}

fn begin(c: &SqlCatalog, run: &str) {
    let mut r = queued(run, &[]).run;
    r.started_at = at(1);
    c.begin_run(&r).unwrap();
}

fn a_unit_is_built_by_one_run_at_a_time_and_the_next_sees_its_commit() {
    let c = fresh();
    begin(&c, "a");
    begin(&c, "b");
    assert_eq!(
        c.claim_unit(&claim("a", "daily", 10, 40)).unwrap(),
        UnitClaimed::Granted(None)
    );
    // Asking again (a retry) is granted; another running run waits.
    assert!(matches!(
        c.claim_unit(&claim("a", "daily", 11, 41)).unwrap(),
        UnitClaimed::Granted(None)
    ));
    assert_eq!(
        c.claim_unit(&claim("b", "daily", 12, 42)).unwrap(),
        UnitClaimed::Held(id("a"))
    );
    // Other units are free.
    assert!(matches!(
        c.claim_unit(&claim("b", "weekly", 12, 42)).unwrap(),
        UnitClaimed::Granted(None)
    ));
    // The commit releases the claim: the next claimer sees the version.
    let mut m = crate::NewMaterialization {
        run_id: id("a"),
        asset: "daily".to_owned(),
        partition: "2024-01-01".to_owned(),
        code_version: "c".to_owned(),
        input_version: "i".to_owned(),
        data_version: "d".to_owned(),
        row_count: 1,
        bytes_written: 1,
        wall_ms: 1,
        schema_json: "[]".to_owned(),
        inputs: Vec::new(),
        files: Vec::new(),
        committed_at: at(13),
        metrics: crate::MaterializationMetrics::default(),
        checks: Vec::new(),
    };
    let committed = c.commit_materialization(&m).unwrap();
    match c.claim_unit(&claim("b", "daily", 14, 44)).unwrap() {
        UnitClaimed::Granted(Some(current)) => {
            assert_eq!(current.id, committed);
            assert_eq!(current.input_version, "i");
        }
        other => panic!("expected the claim with a's version, got {other:?}"),
    }
    // A failed attempt (it may be retried) keeps the claim; releasing
    // frees it.
    m.run_id = id("b");
    c.record_attempt(&NewAttempt {
        run_id: id("b"),
        asset: "daily".to_owned(),
        partition: "2024-01-01".to_owned(),
        outcome: AttemptOutcome::Failed,
        error: Some("boom".to_owned()),
        at: at(15),
    })
    .unwrap();
    assert_eq!(
        c.claim_unit(&claim("a", "daily", 15, 45)).unwrap(),
        UnitClaimed::Held(id("b"))
    );
    c.release_unit(&id("b"), "daily", "2024-01-01").unwrap();
    assert!(matches!(
        c.claim_unit(&claim("a", "daily", 16, 46)).unwrap(),
        UnitClaimed::Granted(Some(_))
    ));
}

fn a_claim_lapses_when_its_lease_expires_or_its_run_ends() {
    let c = fresh();
    begin(&c, "a");
    begin(&c, "b");
    begin(&c, "c");
    c.claim_unit(&claim("a", "daily", 10, 40)).unwrap();
    // Renewed before it expires, it still holds after the first lease.
    c.renew_unit_claims(&id("a"), at(70)).unwrap();
    assert_eq!(
        c.claim_unit(&claim("b", "daily", 50, 80)).unwrap(),
        UnitClaimed::Held(id("a"))
    );
    // A process that stops renewing loses it when the lease ends.
    assert!(matches!(
        c.claim_unit(&claim("b", "daily", 71, 100)).unwrap(),
        UnitClaimed::Granted(None)
    ));
    assert_eq!(
        c.claim_unit(&claim("c", "daily", 72, 100)).unwrap(),
        UnitClaimed::Held(id("b"))
    );
    // A run that ended (crashed, failed, ...) holds nothing.
    c.finish_run(&id("b"), RunStatus::Crashed, Some("killed"))
        .unwrap();
    assert!(matches!(
        c.claim_unit(&claim("c", "daily", 73, 100)).unwrap(),
        UnitClaimed::Granted(None)
    ));
    // Released explicitly, it is free at once.
    c.release_unit(&id("c"), "daily", "2024-01-01").unwrap();
    assert!(matches!(
        c.claim_unit(&claim("a", "daily", 74, 100)).unwrap(),
        UnitClaimed::Granted(None)
    ));
}

on_both_databases!(
    a_unit_is_built_by_one_run_at_a_time_and_the_next_sees_its_commit,
    a_claim_lapses_when_its_lease_expires_or_its_run_ends,
    a_request_covered_by_an_active_run_attaches_to_it,
    starting_records_the_process_and_happens_once,
    cancelling_ends_a_queued_run_and_marks_a_running_one,
    a_dead_processs_queue_runs_go_back_to_the_queue,
    a_tick_is_recorded_once_with_its_runs_or_not_at_all,
);
