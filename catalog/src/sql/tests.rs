//! Tests of the SQLite catalog: migrations and upgrades of old databases,
//! commits and reads back, timestamps, runs and crash detection, checks,
//! metrics, backfills and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::SqlCatalog;
use super::migrations::{MIGRATIONS, SUPPORTED_VERSION};
use super::rows::{parse_own_timestamp, parse_timestamp, timestamp};
use super::test_support::{fresh, on_both_databases};
use super::trait_impl::CRASHED_ERROR;
use crate::{
    AttemptOutcome, AttemptRecord, BackfillId, BackfillRecord, BackfillStatus, Catalog,
    CatalogError, CheckResultRecord, ColumnStats, CurrentVersion, FileRecord, MaterializationId,
    MaterializationMetrics, NewAttempt, NewAuditEntry, NewBackfill, NewCheckResult,
    NewMaterialization, NewRun, PartitionRef, RunId, RunRecord, RunStatus, SourceFingerprint,
    UpstreamKind, UpstreamVersion,
};
use chrono::{DateTime, TimeZone, Timelike, Utc};
use rusqlite::Connection;

fn at(seconds: i64) -> DateTime<Utc> {
    // Microsecond precision, like what the catalog stores.
    DateTime::from_timestamp_micros(1_700_000_000_000_000 + seconds * 1_000_000 + 123_456).unwrap()
}

fn new_run(id: &str, started: i64) -> NewRun {
    NewRun {
        id: RunId(id.to_owned()),
        user: "ada".to_owned(),
        host: "box".to_owned(),
        pid: 4242,
        command: "cairn materialize".to_owned(),
        trigger: "cli".to_owned(),
        started_at: at(started),
        backfill_id: None,
    }
}

fn new_materialization(run: &str, asset: &str, data_version: &str) -> NewMaterialization {
    NewMaterialization {
        run_id: RunId(run.to_owned()),
        asset: asset.to_owned(),
        partition: String::new(),
        code_version: "code".to_owned(),
        input_version: "input".to_owned(),
        data_version: data_version.to_owned(),
        row_count: 10,
        bytes_written: 2048,
        wall_ms: 15,
        schema_json: r#"[{"name":"id","type":"Int64","nullable":false}]"#.to_owned(),
        inputs: Vec::new(),
        files: vec![FileRecord {
            path: format!("{asset}/{data_version}/part-0.parquet"),
            size_bytes: 2048,
            row_count: 10,
        }],
        committed_at: at(100),
        metrics: MaterializationMetrics::default(),
        checks: Vec::new(),
    }
}

fn attempt(run: &str, asset: &str, outcome: AttemptOutcome, when: i64) -> NewAttempt {
    NewAttempt {
        run_id: RunId(run.to_owned()),
        asset: asset.to_owned(),
        partition: String::new(),
        outcome,
        error: (outcome == AttemptOutcome::Failed).then(|| "boom".to_owned()),
        at: at(when),
    }
}

#[test]
fn migrations_are_idempotent_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/catalog.db");
    {
        let catalog = SqlCatalog::open(&path).unwrap();
        catalog.begin_run(&new_run("r1", 0)).unwrap();
    }
    let catalog = SqlCatalog::open(&path).unwrap();
    let catalog2 = SqlCatalog::open(&path).unwrap();
    let runs = catalog2.runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, RunId("r1".to_owned()));
    assert_eq!(runs[0].started_at, at(0));
    let count = catalog.raw_i64("SELECT COUNT(*) FROM schema_migrations");
    let max = catalog.raw_i64("SELECT MAX(version) FROM schema_migrations");
    assert_eq!(count, SUPPORTED_VERSION);
    assert_eq!(max, SUPPORTED_VERSION);
    let mode: String = catalog
        .sqlite()
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = catalog
        .sqlite()
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn too_new_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    drop(SqlCatalog::open(&path).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'later')",
            [SUPPORTED_VERSION + 1],
        )
        .unwrap();
    }
    let error = SqlCatalog::open(&path).unwrap_err();
    match error {
        CatalogError::TooNew {
            found, supported, ..
        } => {
            assert_eq!(found, SUPPORTED_VERSION + 1);
            assert_eq!(supported, SUPPORTED_VERSION);
        }
        other => panic!("expected TooNew, got {other}"),
    }
}

fn commit_then_read_back() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let orders_1 = catalog
        .commit_materialization(&new_materialization("r1", "orders", "d1"))
        .unwrap();

    let mut customers = new_materialization("r1", "customers", "d2");
    customers.inputs = vec![
        UpstreamVersion {
            name: "raw_customers".to_owned(),
            kind: UpstreamKind::Source,
            partition: String::new(),
            data_version: "s1".to_owned(),
            materialization: None,
        },
        UpstreamVersion {
            name: "orders".to_owned(),
            kind: UpstreamKind::Asset,
            partition: String::new(),
            data_version: "d1".to_owned(),
            materialization: Some(orders_1),
        },
        UpstreamVersion {
            name: "a_last_but_alphabetically_first".to_owned(),
            kind: UpstreamKind::Source,
            partition: "2024-01-01".to_owned(),
            data_version: "s0".to_owned(),
            materialization: None,
        },
    ];
    customers.files = (0..5)
        .rev()
        .map(|i| FileRecord {
            path: format!("customers/d2/part-{i}.parquet"),
            size_bytes: 100 + i,
            row_count: i,
        })
        .collect();
    let customers_id = catalog.commit_materialization(&customers).unwrap();

    let mut orders_2_body = new_materialization("r1", "orders", "d3");
    orders_2_body.committed_at = at(200);
    let orders_2 = catalog.commit_materialization(&orders_2_body).unwrap();

    let record = catalog.materialization(customers_id).unwrap().unwrap();
    assert_eq!(record.id, customers_id);
    assert_eq!(record.body, customers);
    assert!(
        catalog
            .materialization(MaterializationId(999))
            .unwrap()
            .is_none()
    );

    let current = catalog.current_versions().unwrap();
    let summary: Vec<_> = current
        .iter()
        .map(|c| (c.asset.as_str(), c.id, c.data_version.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("customers", customers_id, "d2"),
            ("orders", orders_2, "d3")
        ]
    );
    assert_eq!(current[1].committed_at, at(200));
    assert_eq!(current[1].row_count, 10);
    assert_eq!(current[1].bytes_written, 2048);
    assert_eq!(current[1].wall_ms, 15);

    let history = catalog.history("orders", 10).unwrap();
    let ids: Vec<_> = history.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![orders_2, orders_1]);
    assert_eq!(catalog.history("orders", 1).unwrap().len(), 1);
    assert_eq!(catalog.history("orders", usize::MAX).unwrap().len(), 2);
    assert!(catalog.history("nothing", 10).unwrap().is_empty());

    // The commits were recorded as attempts.
    let attempts = catalog.latest_attempts().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Materialized)
    );
}

fn commit_is_atomic() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let mut bad = new_materialization("r1", "orders", "d1");
    // An upstream that does not exist violates a foreign key, after the
    // materialization row itself was inserted.
    bad.inputs.push(UpstreamVersion {
        name: "ghost".to_owned(),
        kind: UpstreamKind::Asset,
        partition: String::new(),
        data_version: "x".to_owned(),
        materialization: Some(MaterializationId(77)),
    });
    let error = catalog.commit_materialization(&bad).unwrap_err();
    assert!(
        matches!(error, CatalogError::Database { ref location, .. } if location == catalog.location())
    );
    assert!(catalog.current_versions().unwrap().is_empty());
    assert!(catalog.history("orders", 10).unwrap().is_empty());
    assert!(catalog.latest_attempts().unwrap().is_empty());

    let mut huge = new_materialization("r1", "orders", "d1");
    huge.row_count = u64::MAX;
    let error = catalog.commit_materialization(&huge).unwrap_err();
    assert!(matches!(error, CatalogError::Corrupt { .. }), "{error}");
    assert!(catalog.current_versions().unwrap().is_empty());

    // Unknown run.
    let error = catalog
        .commit_materialization(&new_materialization("nope", "orders", "d1"))
        .unwrap_err();
    assert!(matches!(error, CatalogError::Database { .. }), "{error}");
}

#[test]
fn own_timestamps_parse_fast_and_exactly() {
    for at in [
        Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::microseconds(7),
        Utc::now(),
    ] {
        let text = timestamp(at);
        let at = at
            .with_nanosecond(at.timestamp_subsec_micros() * 1000)
            .unwrap();
        assert_eq!(parse_own_timestamp(&text), Some(at), "{text}");
        assert_eq!(parse_timestamp(&text, "t").unwrap(), at);
    }
    // Other forms go through the general parser.
    assert_eq!(parse_own_timestamp("2024-05-01T12:00:00+02:00"), None);
    assert_eq!(
        parse_timestamp("2024-05-01T12:00:00+02:00", "t").unwrap(),
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
    );
    assert_eq!(parse_own_timestamp("2024-13-01T12:00:00.000000Z"), None);
    assert_eq!(parse_own_timestamp("2024-05-01T12:00:0x.000000Z"), None);
}

fn latest_failed_attempts_are_the_latest_attempts_that_failed() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 10)).unwrap();
    // a: failed, then materialized -> not failing any more.
    catalog
        .record_attempt(&attempt("r1", "a", AttemptOutcome::Failed, 1))
        .unwrap();
    catalog
        .commit_materialization(&new_materialization("r2", "a", "d1"))
        .unwrap();
    // b: fresh, then failed twice -> failing, the newest failure.
    catalog
        .record_attempt(&attempt("r1", "b", AttemptOutcome::Fresh, 1))
        .unwrap();
    catalog
        .record_attempt(&attempt("r1", "b", AttemptOutcome::Failed, 2))
        .unwrap();
    catalog
        .record_attempt(&attempt("r2", "b", AttemptOutcome::Failed, 11))
        .unwrap();
    // c: skipped only.
    catalog
        .record_attempt(&attempt("r2", "c", AttemptOutcome::Skipped, 12))
        .unwrap();
    let failed = catalog.latest_failed_attempts().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    // Current versions of some assets only.
    let mut seen = Vec::new();
    catalog
        .visit_current_versions_of(&["zzz".to_owned(), "a".to_owned()], &mut |c| {
            seen.push((c.asset.to_owned(), c.data_version.to_owned()));
        })
        .unwrap();
    assert_eq!(seen, vec![("a".to_owned(), "d1".to_owned())]);
    // The newest attempt of one asset, whatever its outcome.
    let b = catalog.latest_attempt_of("b").unwrap().unwrap();
    assert_eq!(
        (b.run_id.0.as_str(), b.outcome),
        ("r2", AttemptOutcome::Failed)
    );
    let a = catalog.latest_attempt_of("a").unwrap().unwrap();
    assert_eq!(a.outcome, AttemptOutcome::Materialized);
    assert!(catalog.latest_attempt_of("nope").unwrap().is_none());
    assert_eq!(failed[0].asset, "b");
    assert_eq!(failed[0].run_id, RunId("r2".to_owned()));
    let all = catalog.latest_attempts().unwrap();
    let expected: Vec<&AttemptRecord> = all
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Failed)
        .collect();
    assert_eq!(failed.iter().collect::<Vec<_>>(), expected);
}

fn latest_attempts_picks_the_newest() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 10)).unwrap();
    catalog
        .commit_materialization(&new_materialization("r1", "a", "d1"))
        .unwrap();
    catalog
        .record_attempt(&attempt("r1", "b", AttemptOutcome::Failed, 1))
        .unwrap();
    catalog
        .record_attempt(&attempt("r2", "a", AttemptOutcome::Fresh, 11))
        .unwrap();
    // Inserted later but with an older timestamp: insertion order wins.
    catalog
        .record_attempt(&attempt("r2", "b", AttemptOutcome::Skipped, 0))
        .unwrap();
    let mut partitioned = attempt("r2", "b", AttemptOutcome::Failed, 12);
    partitioned.partition = "2024-01-01".to_owned();
    catalog.record_attempt(&partitioned).unwrap();

    let latest = catalog.latest_attempts().unwrap();
    let summary: Vec<_> = latest
        .iter()
        .map(|a| {
            (
                a.asset.as_str(),
                a.partition.as_str(),
                a.run_id.0.as_str(),
                a.outcome,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", "", "r2", AttemptOutcome::Fresh),
            ("b", "", "r2", AttemptOutcome::Skipped),
            ("b", "2024-01-01", "r2", AttemptOutcome::Failed),
        ]
    );
    assert_eq!(latest[2].error.as_deref(), Some("boom"));
    assert_eq!(latest[2].at, at(12));
}

fn runs_and_crash_detection() {
    let catalog = fresh();
    for (id, started) in [("r1", 0), ("r2", 10), ("r3", 20), ("r4", 30)] {
        catalog.begin_run(&new_run(id, started)).unwrap();
    }
    catalog
        .finish_run(&RunId("r1".to_owned()), RunStatus::Succeeded, None)
        .unwrap();
    catalog
        .finish_run(&RunId("r2".to_owned()), RunStatus::Failed, Some("bad"))
        .unwrap();

    // r3 is dead, r4 alive; finished runs are never asked about.
    let asked = std::cell::RefCell::new(Vec::new());
    let marked = catalog
        .mark_crashed_runs(&|run: &RunRecord| {
            asked.borrow_mut().push(run.id.0.clone());
            run.id.0 == "r4"
        })
        .unwrap();
    assert_eq!(marked, vec![RunId("r3".to_owned())]);
    assert_eq!(asked.into_inner(), vec!["r3".to_owned(), "r4".to_owned()]);

    let runs = catalog.runs(10).unwrap();
    let summary: Vec<_> = runs
        .iter()
        .map(|r| (r.id.0.as_str(), r.status, r.error.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("r4", RunStatus::Running, None),
            ("r3", RunStatus::Crashed, Some(CRASHED_ERROR)),
            ("r2", RunStatus::Failed, Some("bad")),
            ("r1", RunStatus::Succeeded, None),
        ]
    );
    assert!(runs[0].finished_at.is_none());
    assert!(runs[1].finished_at.is_none());
    assert!(runs[2].finished_at.is_some());
    assert_eq!(runs[3].pid, 4242);
    assert_eq!(runs[3].trigger, "cli");
    assert_eq!(catalog.runs(2).unwrap().len(), 2);

    // Nothing left to mark.
    let marked = catalog.mark_crashed_runs(&|_: &RunRecord| false).unwrap();
    assert_eq!(marked, vec![RunId("r4".to_owned())]);
    assert!(
        catalog
            .mark_crashed_runs(&|_: &RunRecord| false)
            .unwrap()
            .is_empty()
    );
}

fn a_run_reads_back_with_its_attempts_in_order() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 5)).unwrap();
    catalog
        .record_attempt(&attempt("r1", "b", AttemptOutcome::Failed, 2))
        .unwrap();
    catalog
        .record_attempt(&attempt("r2", "z", AttemptOutcome::Fresh, 6))
        .unwrap();
    catalog
        .record_attempt(&attempt("r1", "a", AttemptOutcome::Skipped, 3))
        .unwrap();
    let (run, attempts) = catalog.run(&RunId("r1".to_owned())).unwrap().unwrap();
    assert_eq!(run.id.0, "r1");
    let got: Vec<_> = attempts
        .iter()
        .map(|a| (a.asset.as_str(), a.outcome, a.error.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("b", AttemptOutcome::Failed, Some("boom")),
            ("a", AttemptOutcome::Skipped, None)
        ]
    );
    assert!(catalog.run(&RunId("nope".to_owned())).unwrap().is_none());
}

fn source_fingerprints_upsert() {
    let catalog = fresh();
    let first = SourceFingerprint {
        source: "raw".to_owned(),
        fingerprint: "f1".to_owned(),
        data_version: "v1".to_owned(),
        observed_at: at(1),
    };
    let other = SourceFingerprint {
        source: "events".to_owned(),
        fingerprint: "f9".to_owned(),
        data_version: "v9".to_owned(),
        observed_at: at(2),
    };
    catalog.put_source_fingerprint(&first).unwrap();
    catalog.put_source_fingerprint(&other).unwrap();
    let second = SourceFingerprint {
        fingerprint: "f2".to_owned(),
        data_version: "v2".to_owned(),
        observed_at: at(3),
        ..first.clone()
    };
    catalog.put_source_fingerprint(&second).unwrap();
    assert_eq!(catalog.source_fingerprints().unwrap(), vec![other, second]);
}

fn unparsable_timestamp_is_corrupt() {
    let catalog = fresh();
    catalog
        .raw_execute("INSERT INTO source_fingerprints VALUES ('s', 'f', 'v', 'yesterday')")
        .unwrap();
    let error = catalog.source_fingerprints().unwrap_err();
    assert!(matches!(error, CatalogError::Corrupt { .. }), "{error}");
}

fn new_backfill(id: &str, created: i64, units: Vec<PartitionRef>) -> NewBackfill {
    NewBackfill {
        id: BackfillId(id.to_owned()),
        user: "ada".to_owned(),
        command: "cairn backfill daily_sales --from 2024-01-01 --to 2024-12-31".to_owned(),
        created_at: at(created),
        selection: vec!["daily_sales+".to_owned(), "tag:finance".to_owned()],
        from: Some("2024-01-01".to_owned()),
        to: Some("2024-12-31".to_owned()),
        partitions: None,
        force: false,
        units,
    }
}

fn unit(asset: &str, partition: &str) -> PartitionRef {
    PartitionRef {
        asset: asset.to_owned(),
        partition: partition.to_owned(),
    }
}

fn backfill_run(id: &str, started: i64, backfill: Option<&str>) -> NewRun {
    NewRun {
        backfill_id: backfill.map(|b| BackfillId(b.to_owned())),
        ..new_run(id, started)
    }
}

fn partition_materialization(run: &str, asset: &str, partition: &str) -> NewMaterialization {
    NewMaterialization {
        partition: partition.to_owned(),
        ..new_materialization(run, asset, &format!("{asset}-{partition}-{run}"))
    }
}

fn backfill_round_trip_keeps_unit_order() {
    let catalog = fresh();
    // Units deliberately not in sorted order: the plan's order must survive.
    let units: Vec<PartitionRef> = (0..1_000)
        .map(|i| {
            unit(
                &format!("asset_{}", (i * 7) % 10),
                &format!("2024-{:04}", 999 - i),
            )
        })
        .collect();
    let first = new_backfill("b1", 0, units.clone());
    catalog.create_backfill(&first).unwrap();
    let second = NewBackfill {
        partitions: Some(vec!["us".to_owned(), "eu".to_owned()]),
        from: None,
        to: None,
        force: true,
        ..new_backfill(
            "b2",
            10,
            vec![unit("regional", "us"), unit("regional", "eu")],
        )
    };
    catalog.create_backfill(&second).unwrap();

    let record = catalog
        .backfill(&BackfillId("b1".to_owned()))
        .unwrap()
        .unwrap();
    assert_eq!(
        record,
        BackfillRecord {
            backfill: NewBackfill {
                created_at: at(0),
                partitions: None,
                force: false,
                units,
                ..first.clone()
            },
            finished_at: None,
            status: BackfillStatus::Running,
        }
    );
    let record = catalog
        .backfill(&BackfillId("b2".to_owned()))
        .unwrap()
        .unwrap();
    assert_eq!(record.backfill.partitions, second.partitions);
    assert_eq!(record.backfill.from, None);
    assert!(record.backfill.force);
    assert_eq!(record.backfill.units, second.units);
    assert!(
        catalog
            .backfill(&BackfillId("nope".to_owned()))
            .unwrap()
            .is_none()
    );

    // The listing: newest first, without units.
    let listed = catalog.backfills(10).unwrap();
    let ids: Vec<_> = listed.iter().map(|b| b.backfill.id.0.as_str()).collect();
    assert_eq!(ids, vec!["b2", "b1"]);
    assert!(listed.iter().all(|b| b.backfill.units.is_empty()));
    assert_eq!(listed[1].backfill.selection, first.selection);
    assert_eq!(catalog.backfills(1).unwrap().len(), 1);

    // A duplicate id is refused, and leaves no stray units behind.
    let error = catalog
        .create_backfill(&new_backfill("b1", 20, vec![unit("x", "1")]))
        .unwrap_err();
    assert!(matches!(error, CatalogError::Database { .. }), "{error}");
    let count: i64 =
        catalog.raw_i64("SELECT COUNT(*) FROM backfill_units WHERE backfill_id = 'b1'");
    assert_eq!(count, 1_000);
}

fn committed_in_backfill_counts_only_its_runs_commits() {
    let catalog = fresh();
    catalog
        .create_backfill(&new_backfill("b1", 0, Vec::new()))
        .unwrap();
    catalog
        .create_backfill(&new_backfill("b2", 1, Vec::new()))
        .unwrap();
    catalog
        .begin_run(&backfill_run("r1", 0, Some("b1")))
        .unwrap();
    catalog
        .begin_run(&backfill_run("r2", 10, Some("b1")))
        .unwrap();
    catalog.begin_run(&backfill_run("r3", 20, None)).unwrap();
    catalog
        .begin_run(&backfill_run("r4", 30, Some("b2")))
        .unwrap();

    for (run, asset, partition) in [
        ("r1", "sales", "2024-01-02"),
        ("r1", "sales", "2024-01-01"),
        // The resume commits again what was committed before: once.
        ("r2", "sales", "2024-01-01"),
        ("r2", "orders", "2024-01-01"),
        ("r3", "sales", "2024-01-04"),
        ("r4", "sales", "2024-01-05"),
    ] {
        catalog
            .commit_materialization(&partition_materialization(run, asset, partition))
            .unwrap();
    }
    // Failed and skipped attempts of the backfill are not committed units.
    for (outcome, partition) in [
        (AttemptOutcome::Failed, "2024-01-03"),
        (AttemptOutcome::Skipped, "2024-01-06"),
    ] {
        catalog
            .record_attempt(&NewAttempt {
                partition: partition.to_owned(),
                ..attempt("r2", "sales", outcome, 15)
            })
            .unwrap();
    }

    assert_eq!(
        catalog
            .committed_in_backfill(&BackfillId("b1".to_owned()))
            .unwrap(),
        vec![
            unit("orders", "2024-01-01"),
            unit("sales", "2024-01-01"),
            unit("sales", "2024-01-02"),
        ]
    );
    assert_eq!(
        catalog
            .committed_in_backfill(&BackfillId("b2".to_owned()))
            .unwrap(),
        vec![unit("sales", "2024-01-05")]
    );
    assert!(
        catalog
            .committed_in_backfill(&BackfillId("nope".to_owned()))
            .unwrap()
            .is_empty()
    );

    // Runs carry their backfill, through runs() and mark_crashed_runs().
    let runs = catalog.runs(10).unwrap();
    let summary: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.id.0.as_str(),
                r.backfill_id.as_ref().map(|b| b.0.as_str()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("r4", Some("b2")),
            ("r3", None),
            ("r2", Some("b1")),
            ("r1", Some("b1")),
        ]
    );
    let seen = std::cell::RefCell::new(Vec::new());
    catalog
        .mark_crashed_runs(&|run: &RunRecord| {
            seen.borrow_mut().push(run.backfill_id.clone());
            true
        })
        .unwrap();
    assert_eq!(
        seen.into_inner(),
        vec![
            Some(BackfillId("b1".to_owned())),
            Some(BackfillId("b1".to_owned())),
            None,
            Some(BackfillId("b2".to_owned())),
        ]
    );
}

fn finish_and_reopen_backfill() {
    let catalog = fresh();
    let id = BackfillId("b1".to_owned());
    catalog
        .create_backfill(&new_backfill("b1", 0, vec![unit("a", "1")]))
        .unwrap();
    let read = || catalog.backfill(&id).unwrap().unwrap();

    let before = Utc::now();
    catalog
        .finish_backfill(&id, BackfillStatus::Failed)
        .unwrap();
    let failed = read();
    assert_eq!(failed.status, BackfillStatus::Failed);
    let first_finish = failed.finished_at.unwrap();
    assert!(first_finish >= before - chrono::TimeDelta::try_seconds(1).unwrap());

    catalog.reopen_backfill(&id).unwrap();
    let reopened = read();
    assert_eq!(reopened.status, BackfillStatus::Running);
    assert_eq!(reopened.finished_at, None);
    assert_eq!(reopened.backfill.units, vec![unit("a", "1")]);

    catalog
        .finish_backfill(&id, BackfillStatus::Succeeded)
        .unwrap();
    let succeeded = read();
    assert_eq!(succeeded.status, BackfillStatus::Succeeded);
    assert!(succeeded.finished_at.unwrap() >= first_finish);

    // Finishing again overwrites.
    catalog
        .finish_backfill(&id, BackfillStatus::Failed)
        .unwrap();
    assert_eq!(read().status, BackfillStatus::Failed);
    // Unknown ids are ignored.
    catalog
        .finish_backfill(&BackfillId("nope".to_owned()), BackfillStatus::Failed)
        .unwrap();
    catalog
        .reopen_backfill(&BackfillId("nope".to_owned()))
        .unwrap();
    assert_eq!(catalog.backfills(10).unwrap().len(), 1);
}

#[test]
fn backfill_status_names_round_trip() {
    for status in [
        BackfillStatus::Running,
        BackfillStatus::Succeeded,
        BackfillStatus::Failed,
    ] {
        assert_eq!(BackfillStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(BackfillStatus::parse("crashed"), None);
}

#[test]
fn version_1_database_upgrades_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    {
        // What the first release created, with a run and a commit in it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TEXT NOT NULL
             )",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (1, 'then')",
            [],
        )
        .unwrap();
        conn.execute(
            r#"INSERT INTO runs (id, user, host, pid, command, "trigger", started_at,
                   status)
               VALUES ('old', 'ada', 'box', 1, 'cairn materialize', 'cli', ?1, 'succeeded')"#,
            [timestamp(at(0))],
        )
        .unwrap();
    }

    let catalog = SqlCatalog::open(&path).unwrap();
    let version: i64 = catalog.raw_i64("SELECT MAX(version) FROM schema_migrations");
    assert_eq!(version, SUPPORTED_VERSION);
    let runs = catalog.runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, RunId("old".to_owned()));
    assert_eq!(runs[0].backfill_id, None);
    catalog
        .commit_materialization(&new_materialization("old", "orders", "d1"))
        .unwrap();

    // The new tables and column work.
    catalog
        .create_backfill(&new_backfill("b1", 5, vec![unit("sales", "2024-01-01")]))
        .unwrap();
    catalog
        .begin_run(&backfill_run("new", 10, Some("b1")))
        .unwrap();
    catalog
        .commit_materialization(&partition_materialization("new", "sales", "2024-01-01"))
        .unwrap();
    assert_eq!(
        catalog
            .committed_in_backfill(&BackfillId("b1".to_owned()))
            .unwrap(),
        vec![unit("sales", "2024-01-01")]
    );
    drop(catalog);
    // And reopening does not migrate twice.
    let catalog = SqlCatalog::open(&path).unwrap();
    assert_eq!(catalog.runs(10).unwrap().len(), 2);
    assert_eq!(catalog.backfills(10).unwrap().len(), 1);
}

fn check(name: &str, severity: &str, passed: bool) -> NewCheckResult {
    NewCheckResult {
        name: name.to_owned(),
        severity: severity.to_owned(),
        passed,
        failing_rows: if passed { 0 } else { 3 },
        sample_json: if passed {
            "[]".to_owned()
        } else {
            r#"[{"id":null},{"id":null}]"#.to_owned()
        },
        error: None,
    }
}

fn some_metrics(seed: u64) -> MaterializationMetrics {
    MaterializationMetrics {
        rows_added: Some(seed),
        rows_removed: None,
        columns: vec![
            ColumnStats {
                name: "id".to_owned(),
                null_count: Some(0),
                min: Some("1".to_owned()),
                max: Some(seed.to_string()),
            },
            ColumnStats {
                name: "note".to_owned(),
                null_count: None,
                min: None,
                max: None,
            },
        ],
        cpu_seconds: 1.25,
        datafusion_seconds: 0.5,
        output_rows: seed,
        bytes_scanned: 1 << 40,
        spilled_bytes: 0,
        bytes_read: 4096,
        read_requests: 3,
        objects_read: 2,
        bytes_written: 2048,
        write_requests: 1,
        other_requests: 2,
        peak_memory_bytes: u64::try_from(i64::MAX).unwrap() + 1,
        cost_usd: 0.000_123_4,
    }
}

fn metrics_and_checks_round_trip() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let mut m = new_materialization("r1", "orders", "d1");
    m.metrics = some_metrics(42);
    // Not in name order: insertion order must survive.
    m.checks = vec![
        check("z_unique", "error", true),
        NewCheckResult {
            error: Some("column `x` not found".to_owned()),
            ..check("a_expr", "warn", false)
        },
        check("m_not_null", "warn", false),
    ];
    let id = catalog.commit_materialization(&m).unwrap();
    let record = catalog.materialization(id).unwrap().unwrap();
    assert_eq!(record.body, m);

    // Without metrics or checks.
    let plain = new_materialization("r1", "plain", "d2");
    let plain_id = catalog.commit_materialization(&plain).unwrap();
    let record = catalog.materialization(plain_id).unwrap().unwrap();
    assert_eq!(record.body.metrics, MaterializationMetrics::default());
    assert!(record.body.checks.is_empty());

    let current = catalog.current_metrics().unwrap();
    assert_eq!(current.len(), 2);
    assert_eq!(current[0].0.id, id);
    assert_eq!(current[0].1, m.metrics);
    assert_eq!(current[1].0.id, plain_id);
    assert_eq!(current[1].1, MaterializationMetrics::default());

    let latest = catalog.latest_check_results().unwrap();
    let names: Vec<_> = latest.iter().map(|k| k.result.name.as_str()).collect();
    assert_eq!(names, vec!["a_expr", "m_not_null", "z_unique"]);
    assert!(latest.iter().all(|k| k.materialization == Some(id)
        && k.run_id == RunId("r1".to_owned())
        && k.at == at(100)));
    assert_eq!(latest[0].result, m.checks[1]);

    let history = catalog.check_results("orders", 10).unwrap();
    let names: Vec<_> = history.iter().map(|k| k.result.name.as_str()).collect();
    assert_eq!(names, vec!["m_not_null", "a_expr", "z_unique"]);
    assert_eq!(catalog.check_results("orders", 1).unwrap().len(), 1);
    assert!(catalog.check_results("plain", 10).unwrap().is_empty());
}

fn bad_metrics_and_checks_leave_nothing_behind() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let mut nan = new_materialization("r1", "orders", "d1");
    nan.metrics.cost_usd = f64::NAN;
    let error = catalog.commit_materialization(&nan).unwrap_err();
    assert!(matches!(error, CatalogError::Corrupt { .. }), "{error}");

    // A bad check fails the whole commit, after the row was inserted.
    let mut bad = new_materialization("r1", "orders", "d1");
    bad.checks = vec![check("fine", "warn", true), check("odd", "fatal", false)];
    let error = catalog.commit_materialization(&bad).unwrap_err();
    assert!(matches!(error, CatalogError::Database { .. }), "{error}");
    assert!(catalog.current_versions().unwrap().is_empty());
    assert!(catalog.metrics_since(None).unwrap().is_empty());
    assert!(catalog.latest_attempts().unwrap().is_empty());
    assert!(catalog.latest_check_results().unwrap().is_empty());

    // record_check_results is one transaction too.
    let error = catalog
        .record_check_results(
            &RunId("r1".to_owned()),
            "orders",
            "",
            &[check("fine", "warn", true), check("odd", "fatal", false)],
            at(5),
        )
        .unwrap_err();
    assert!(matches!(error, CatalogError::Database { .. }), "{error}");
    assert!(catalog.check_results("orders", 10).unwrap().is_empty());
    assert!(catalog.latest_check_results().unwrap().is_empty());
    // Unknown run.
    let error = catalog
        .record_check_results(
            &RunId("nope".to_owned()),
            "orders",
            "",
            &[check("fine", "warn", true)],
            at(5),
        )
        .unwrap_err();
    assert!(matches!(error, CatalogError::Database { .. }), "{error}");
}

fn unparsable_metrics_are_corrupt() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let id = catalog
        .commit_materialization(&new_materialization("r1", "orders", "d1"))
        .unwrap();
    catalog
        .raw_execute("UPDATE materializations SET metrics_json = '{\"cpu_seconds\":\"fast\"}'")
        .unwrap();
    for error in [
        catalog.materialization(id).unwrap_err(),
        catalog.metrics_since(None).unwrap_err(),
        catalog.current_metrics().unwrap_err(),
    ] {
        assert!(matches!(error, CatalogError::Corrupt { .. }), "{error}");
    }
    // Summaries without metrics are still readable.
    assert_eq!(catalog.current_versions().unwrap().len(), 1);
}

fn failed_attempt_checks_are_superseded_by_later_ones() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 10)).unwrap();
    // r1: orders fails its error check; nothing committed.
    catalog
        .record_check_results(
            &RunId("r1".to_owned()),
            "orders",
            "",
            &[
                check("id_not_null", "error", false),
                check("amount_positive", "warn", false),
            ],
            at(1),
        )
        .unwrap();
    // Another partition of the same asset, and an empty batch.
    catalog
        .record_check_results(
            &RunId("r1".to_owned()),
            "orders",
            "2024-01-01",
            &[check("id_not_null", "error", false)],
            at(2),
        )
        .unwrap();
    catalog
        .record_check_results(&RunId("r1".to_owned()), "orders", "", &[], at(3))
        .unwrap();

    let latest = catalog.latest_check_results().unwrap();
    let summary: Vec<_> = latest
        .iter()
        .map(|k| {
            (
                k.partition.as_str(),
                k.result.name.as_str(),
                k.result.passed,
                k.materialization,
                k.run_id.0.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("", "amount_positive", false, None, "r1"),
            ("", "id_not_null", false, None, "r1"),
            ("2024-01-01", "id_not_null", false, None, "r1"),
        ]
    );
    assert_eq!(latest[1].at, at(1));
    assert_eq!(latest[1].result.failing_rows, 3);
    assert_eq!(latest[1].result.sample_json, r#"[{"id":null},{"id":null}]"#);

    // r2 fixes the data and commits; only id_not_null runs this time.
    let mut fixed = new_materialization("r2", "orders", "d1");
    fixed.checks = vec![check("id_not_null", "error", true)];
    let id = catalog.commit_materialization(&fixed).unwrap();
    let latest = catalog.latest_check_results().unwrap();
    let summary: Vec<_> = latest
        .iter()
        .map(|k| {
            (
                k.partition.as_str(),
                k.result.name.as_str(),
                k.result.passed,
                k.materialization,
                k.run_id.0.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("", "amount_positive", false, None, "r1"),
            ("", "id_not_null", true, Some(id), "r2"),
            ("2024-01-01", "id_not_null", false, None, "r1"),
        ]
    );
    assert_eq!(latest[1].at, at(100));

    // The history keeps everything, newest first.
    let history = catalog.check_results("orders", 10).unwrap();
    let ids: Vec<_> = history.iter().map(|k| k.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].materialization, Some(id));
    assert!(history[1..].iter().all(|k| k.materialization.is_none()));
    // Only the committed check belongs to the materialization.
    let record = catalog.materialization(id).unwrap().unwrap();
    assert_eq!(record.body.checks, fixed.checks);
}

fn latest_check_results_of_many_partitions() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 10)).unwrap();
    let checks = [
        check("a", "error", true),
        check("b", "warn", false),
        check("c", "warn", true),
    ];
    for asset in 0..20 {
        for day in 0..50 {
            let asset = format!("asset_{asset:02}");
            let partition = format!("2024-{day:03}");
            let mut m = partition_materialization("r1", &asset, &partition);
            m.checks = checks.to_vec();
            catalog.commit_materialization(&m).unwrap();
            // Every fifth partition failed in a later run.
            if day % 5 == 0 {
                catalog
                    .record_check_results(
                        &RunId("r2".to_owned()),
                        &asset,
                        &partition,
                        &[check("a", "error", false)],
                        at(20),
                    )
                    .unwrap();
            }
        }
    }
    let latest = catalog.latest_check_results().unwrap();
    assert_eq!(latest.len(), 20 * 50 * 3);
    let failed_a = latest
        .iter()
        .filter(|k| k.result.name == "a" && !k.result.passed)
        .count();
    assert_eq!(failed_a, 20 * 10);
    assert!(
        latest
            .iter()
            .filter(|k| k.result.name == "a" && !k.result.passed)
            .all(|k| k.materialization.is_none() && k.run_id.0 == "r2")
    );
    assert!(
        latest
            .iter()
            .filter(|k| k.result.name != "a")
            .all(|k| k.materialization.is_some())
    );
    let keys: Vec<_> = latest
        .iter()
        .map(|k| (&k.asset, &k.partition, &k.result.name))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // The failing results alone, exactly those of the full read.
    let failing = catalog.latest_failing_checks().unwrap();
    let expected: Vec<&CheckResultRecord> = latest.iter().filter(|k| !k.result.passed).collect();
    // `a` (error) in every fifth partition, `b` (warn) everywhere.
    assert_eq!(failing.len(), 20 * 10 + 20 * 50);
    assert_eq!(failing.iter().collect::<Vec<_>>(), expected);
    // A newer commit whose `a` passes clears it there; `b` still fails.
    let mut fixed = partition_materialization("r2", "asset_00", "2024-000");
    fixed.checks = checks.to_vec();
    catalog.commit_materialization(&fixed).unwrap();
    let failing = catalog.latest_failing_checks().unwrap();
    assert_eq!(failing.len(), 20 * 10 - 1 + 20 * 50);
    let there: Vec<&str> = failing
        .iter()
        .filter(|k| k.asset == "asset_00" && k.partition == "2024-000")
        .map(|k| k.result.name.as_str())
        .collect();
    assert_eq!(there, ["b"]);
}

fn metrics_since_filters_by_time_and_keeps_old_versions() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    let mut ids = Vec::new();
    // Committed out of time order: the result is in time order.
    for (asset, data_version, when, seed) in [
        ("orders", "d1", 100, 1),
        ("orders", "d2", 200, 2),
        ("orders", "d4", 300, 4),
        ("customers", "d3", 250, 3),
        ("events", "d0", 50, 0),
    ] {
        let mut m = new_materialization("r1", asset, data_version);
        m.committed_at = at(when);
        m.metrics = some_metrics(seed);
        ids.push(catalog.commit_materialization(&m).unwrap());
    }
    let summary = |rows: Vec<(CurrentVersion, MaterializationMetrics)>| -> Vec<_> {
        rows.into_iter()
            .map(|(c, m)| (c.data_version, c.committed_at, m.output_rows))
            .collect()
    };
    let version = |d: &str, when: i64, seed: u64| (d.to_owned(), at(when), seed);

    assert_eq!(
        summary(catalog.metrics_since(Some(at(200))).unwrap()),
        vec![
            version("d2", 200, 2),
            version("d3", 250, 3),
            version("d4", 300, 4)
        ]
    );
    // `since` is inclusive to the microsecond.
    let just_after = at(200) + chrono::Duration::microseconds(1);
    assert_eq!(
        summary(catalog.metrics_since(Some(just_after)).unwrap()).len(),
        2
    );
    assert_eq!(
        summary(catalog.metrics_since(None).unwrap()),
        vec![
            version("d0", 50, 0),
            version("d1", 100, 1),
            version("d2", 200, 2),
            version("d3", 250, 3),
            version("d4", 300, 4)
        ]
    );
    assert!(catalog.metrics_since(Some(at(301))).unwrap().is_empty());
    let (first, metrics) = &catalog.metrics_since(None).unwrap()[0];
    assert_eq!(first.id, ids[4]);
    assert_eq!(metrics, &some_metrics(0));

    // Only the newest orders version is current.
    assert_eq!(
        summary(catalog.current_metrics().unwrap()),
        vec![
            version("d3", 250, 3),
            version("d0", 50, 0),
            version("d4", 300, 4)
        ]
    );
}

#[test]
fn version_2_database_upgrades_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    {
        // What the second release created, with a run and a commit in it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TEXT NOT NULL
             )",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.execute_batch(
            "INSERT INTO schema_migrations (version, applied_at)
             VALUES (1, 'then'), (2, 'later')",
        )
        .unwrap();
        conn.execute(
            r#"INSERT INTO runs (id, user, host, pid, command, "trigger", started_at,
                   status)
               VALUES ('old', 'ada', 'box', 1, 'cairn materialize', 'cli', ?1, 'succeeded')"#,
            [timestamp(at(0))],
        )
        .unwrap();
        conn.execute(
            r#"INSERT INTO materializations (run_id, asset, "partition", code_version,
                   input_version, data_version, row_count, bytes_written, wall_ms,
                   schema_json, committed_at)
               VALUES ('old', 'orders', '', 'code', 'input', 'd1', 10, 2048, 15, '[]', ?1)"#,
            [timestamp(at(1))],
        )
        .unwrap();
        conn.execute(
            r#"INSERT INTO current_versions (asset, "partition", materialization_id)
               VALUES ('orders', '', 1)"#,
            [],
        )
        .unwrap();
    }

    let catalog = SqlCatalog::open(&path).unwrap();
    let version: i64 = catalog.raw_i64("SELECT MAX(version) FROM schema_migrations");
    assert_eq!(version, SUPPORTED_VERSION);
    // The old commit reads back with default metrics and no checks.
    let old = catalog
        .materialization(MaterializationId(1))
        .unwrap()
        .unwrap();
    assert_eq!(old.body.data_version, "d1");
    // Its pointer kept the current version's summary through migration 6.
    let current = catalog.current_versions().unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(
        (
            current[0].id,
            current[0].asset.as_str(),
            current[0].data_version.as_str()
        ),
        (MaterializationId(1), "orders", "d1")
    );
    assert_eq!((current[0].row_count, current[0].wall_ms), (10, 15));
    assert_eq!(old.body.metrics, MaterializationMetrics::default());
    assert!(old.body.checks.is_empty());
    let metrics = catalog.metrics_since(None).unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].1, MaterializationMetrics::default());
    assert!(catalog.latest_check_results().unwrap().is_empty());

    // The new column and tables work.
    let mut m = new_materialization("old", "orders", "d2");
    m.metrics = some_metrics(7);
    m.checks = vec![check("id_not_null", "error", true)];
    let id = catalog.commit_materialization(&m).unwrap();
    catalog
        .record_check_results(
            &RunId("old".to_owned()),
            "customers",
            "",
            &[check("id_not_null", "error", false)],
            at(200),
        )
        .unwrap();
    assert_eq!(catalog.materialization(id).unwrap().unwrap().body, m);
    assert_eq!(catalog.latest_check_results().unwrap().len(), 2);
    drop(catalog);
    // And reopening does not migrate twice.
    let catalog = SqlCatalog::open(&path).unwrap();
    assert_eq!(catalog.metrics_since(None).unwrap().len(), 2);
    assert_eq!(catalog.current_metrics().unwrap()[0].1, some_metrics(7));
    assert_eq!(catalog.check_results("customers", 10).unwrap().len(), 1);
}

fn current_versions_of_many_partitions() {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog.begin_run(&new_run("r2", 10)).unwrap();
    let mut expected = Vec::new();
    for asset in 0..50 {
        for day in 0..100 {
            let asset = format!("asset_{asset:03}");
            let partition = format!("2024-{day:03}");
            let mut m = partition_materialization("r1", &asset, &partition);
            m.row_count = day;
            m.committed_at = at(i64::try_from(day).unwrap());
            let first = catalog.commit_materialization(&m).unwrap();
            // Every tenth partition is recomputed: the newer one wins.
            let (id, run, data_version) = if day % 10 == 0 {
                let again = partition_materialization("r2", &asset, &partition);
                let data_version = again.data_version.clone();
                (
                    catalog.commit_materialization(&again).unwrap(),
                    "r2",
                    data_version,
                )
            } else {
                (first, "r1", m.data_version.clone())
            };
            expected.push((asset, partition, id, run.to_owned(), data_version));
        }
    }
    let current = catalog.current_versions().unwrap();
    assert_eq!(current.len(), 5_000);
    let got: Vec<_> = current
        .iter()
        .map(|c| {
            (
                c.asset.clone(),
                c.partition.clone(),
                c.id,
                c.run_id.0.clone(),
                c.data_version.clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let sample = &current[2 * 100 + 7];
    assert_eq!(sample.row_count, 7);
    assert_eq!(sample.committed_at, at(7));
    assert_eq!(sample.code_version, "code");
    assert_eq!(sample.input_version, "input");
    assert_eq!(sample.bytes_written, 2048);
    assert_eq!(sample.wall_ms, 15);
}

#[test]
fn poisoned_lock_is_recovered() {
    let catalog = std::sync::Arc::new(SqlCatalog::open_in_memory().unwrap());
    let poisoner = std::sync::Arc::clone(&catalog);
    let joined = std::thread::spawn(move || {
        let _guard = poisoner.sqlite();
        panic!("poison the lock");
    })
    .join();
    assert!(joined.is_err());
    assert!(catalog.is_poisoned());
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    assert_eq!(catalog.runs(1).unwrap().len(), 1);
}

fn audit_log_is_append_only() {
    let catalog = fresh();
    let entry = |who: &str, t: i64| NewAuditEntry {
        at: at(t),
        principal: who.to_owned(),
        host: "h".to_owned(),
        git_commit: None,
        action: "materialize".to_owned(),
        target: "*".to_owned(),
        details: "{}".to_owned(),
    };
    catalog.append_audit(&entry("ann", 1)).unwrap();
    catalog.append_audit(&entry("bob", 2)).unwrap();
    assert_eq!(catalog.audit_log(None, None).unwrap().len(), 2);
    assert_eq!(
        catalog.audit_log(None, Some("bob")).unwrap()[0]
            .entry
            .principal,
        "bob"
    );
    assert_eq!(catalog.audit_log(Some(at(2)), None).unwrap().len(), 1);
    let error = catalog
        .raw_execute("UPDATE audit_log SET principal = 'x'")
        .unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
    let error = catalog.raw_execute("DELETE FROM audit_log").unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
    assert_eq!(catalog.audit_log(None, Some("ann")).unwrap().len(), 1);
}

/// A catalog with some of everything: runs, attempts, commits with inputs,
/// files and checks, a backfill, fingerprints, the audit log.
fn populated() -> SqlCatalog {
    let catalog = fresh();
    catalog.begin_run(&new_run("r1", 0)).unwrap();
    catalog
        .record_attempt(&attempt("r1", "orders", AttemptOutcome::Failed, 1))
        .unwrap();
    let mut first = new_materialization("r1", "orders", "d1");
    first.checks = vec![NewCheckResult {
        name: "not_null".to_owned(),
        severity: "error".to_owned(),
        passed: false,
        failing_rows: 3,
        sample_json: "[]".to_owned(),
        error: None,
    }];
    let first = catalog.commit_materialization(&first).unwrap();
    let mut second = new_materialization("r1", "revenue", "d2");
    second.inputs = vec![UpstreamVersion {
        name: "orders".to_owned(),
        kind: UpstreamKind::Asset,
        partition: String::new(),
        data_version: "d1".to_owned(),
        materialization: Some(first),
    }];
    catalog.commit_materialization(&second).unwrap();
    catalog
        .finish_run(&RunId("r1".to_owned()), RunStatus::Succeeded, None)
        .unwrap();
    catalog
        .create_backfill(&new_backfill("b1", 5, vec![unit("daily", "2024-01-01")]))
        .unwrap();
    catalog
        .put_source_fingerprint(&SourceFingerprint {
            source: "raw".to_owned(),
            fingerprint: "f".to_owned(),
            data_version: "v".to_owned(),
            observed_at: at(3),
        })
        .unwrap();
    catalog
        .append_audit(&NewAuditEntry {
            at: at(4),
            principal: "ada".to_owned(),
            host: "box".to_owned(),
            git_commit: None,
            action: "materialize".to_owned(),
            target: "orders".to_owned(),
            details: "{}".to_owned(),
        })
        .unwrap();
    catalog
}

fn other_database() -> SqlCatalog {
    if super::test_support::ON_POSTGRES.get() {
        SqlCatalog::open_in_memory().unwrap()
    } else {
        SqlCatalog::connect_postgres(&super::test_support::fresh_postgres_database()).unwrap()
    }
}

fn copy_reads_back_the_same_catalog_on_the_other_database() {
    let source = populated();
    let target = other_database();
    let copy = source.copy_into(&target).unwrap();
    let rows = |table: &str| {
        copy.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, rows)| *rows)
    };
    assert_eq!(rows("materializations"), Some(2));
    assert_eq!(rows("materialization_inputs"), Some(1));
    assert_eq!(rows("attempts"), Some(3));
    assert_eq!(rows("audit_log"), Some(1));
    assert_eq!(rows("backfill_units"), Some(1));

    assert_eq!(target.runs(10).unwrap(), source.runs(10).unwrap());
    assert_eq!(
        target.current_versions().unwrap(),
        source.current_versions().unwrap()
    );
    for version in source.current_versions().unwrap() {
        assert_eq!(
            target.materialization(version.id).unwrap(),
            source.materialization(version.id).unwrap()
        );
    }
    assert_eq!(
        target.latest_attempts().unwrap(),
        source.latest_attempts().unwrap()
    );
    assert_eq!(
        target.latest_check_results().unwrap(),
        source.latest_check_results().unwrap()
    );
    assert_eq!(target.backfills(10).unwrap(), source.backfills(10).unwrap());
    let b1 = BackfillId("b1".to_owned());
    assert_eq!(target.backfill(&b1).unwrap(), source.backfill(&b1).unwrap());
    assert_eq!(
        target.source_fingerprints().unwrap(),
        source.source_fingerprints().unwrap()
    );
    assert_eq!(
        target.audit_log(None, None).unwrap(),
        source.audit_log(None, None).unwrap()
    );

    // The target goes on numbering after the copied ids.
    target.begin_run(&new_run("r2", 10)).unwrap();
    let next = target
        .commit_materialization(&new_materialization("r2", "orders", "d3"))
        .unwrap();
    assert_eq!(next, MaterializationId(3));

    // A catalog that is not empty is refused, and left as it was.
    let error = source.copy_into(&target).unwrap_err();
    assert!(matches!(error, CatalogError::NotEmpty { .. }), "{error}");
    assert!(error.to_string().contains("runs (2 rows)"), "{error}");
    assert_eq!(target.runs(10).unwrap().len(), 2);
}

on_both_databases!(
    copy_reads_back_the_same_catalog_on_the_other_database,
    commit_then_read_back,
    commit_is_atomic,
    latest_failed_attempts_are_the_latest_attempts_that_failed,
    latest_attempts_picks_the_newest,
    runs_and_crash_detection,
    a_run_reads_back_with_its_attempts_in_order,
    source_fingerprints_upsert,
    unparsable_timestamp_is_corrupt,
    backfill_round_trip_keeps_unit_order,
    committed_in_backfill_counts_only_its_runs_commits,
    finish_and_reopen_backfill,
    metrics_and_checks_round_trip,
    bad_metrics_and_checks_leave_nothing_behind,
    unparsable_metrics_are_corrupt,
    failed_attempt_checks_are_superseded_by_later_ones,
    latest_check_results_of_many_partitions,
    metrics_since_filters_by_time_and_keeps_old_versions,
    current_versions_of_many_partitions,
    audit_log_is_append_only,
);
