//! Tests of alerting in the SQLite catalog: incidents open once per key
//! and close once, deliveries are queued only with a change that applied,
//! claimed by one process at a time, and every attempt is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use chrono::{DateTime, Utc};

use super::test_support::{fresh, on_both_databases};
use crate::{
    AlertAttempt, Catalog, DeliveryStatus, IncidentChange, IncidentId, IncidentKind,
    NewAlertDelivery, RunId,
};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_700_000_000_000_000 + seconds * 1_000_000).unwrap()
}

fn delivery(event: &str) -> NewAlertDelivery {
    NewAlertDelivery {
        event: event.to_owned(),
        url: "http://127.0.0.1:9/hook".to_owned(),
        format: "slack".to_owned(),
        body: format!(r#"{{"text":"{event}"}}"#),
    }
}

fn open(kind: IncidentKind, asset: &str, when: i64) -> IncidentChange {
    IncidentChange::Open {
        kind,
        asset: asset.to_owned(),
        partition: "2024-01-05".to_owned(),
        at: at(when),
        detail: "boom".to_owned(),
        run_id: Some(RunId("r1".to_owned())),
        deliveries: vec![delivery(kind.as_str())],
    }
}

fn close(incident: IncidentId, when: i64) -> IncidentChange {
    IncidentChange::Close {
        incident,
        at: at(when),
        run_id: Some(RunId("r2".to_owned())),
        deliveries: vec![delivery("recovered")],
    }
}

fn an_incident_opens_once_per_key_and_closes_once() {
    let c = fresh();
    // Two processes saw the same failure: one incident, one alert.
    assert_eq!(
        c.apply_incident_changes(&[open(IncidentKind::RunFailed, "orders", 0)])
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        c.apply_incident_changes(&[
            open(IncidentKind::RunFailed, "orders", 1),
            // Another kind on the same unit is its own incident.
            open(IncidentKind::CheckFailed, "orders", 1),
        ])
        .unwrap(),
        vec![false, true]
    );
    let open_now = c.open_incidents().unwrap();
    assert_eq!(open_now.len(), 2);
    let failed = &open_now[0];
    assert_eq!(
        (
            failed.kind,
            failed.asset.as_str(),
            failed.partition.as_str()
        ),
        (IncidentKind::RunFailed, "orders", "2024-01-05")
    );
    assert_eq!(failed.opened_at, at(0));
    assert_eq!(failed.run_id, Some(RunId("r1".to_owned())));

    assert_eq!(
        c.apply_incident_changes(&[close(failed.id, 5), close(failed.id, 6)])
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(c.open_incidents().unwrap().len(), 1);
    // Once closed, the same trouble again is a new incident.
    assert_eq!(
        c.apply_incident_changes(&[open(IncidentKind::RunFailed, "orders", 9)])
            .unwrap(),
        vec![true]
    );

    let log = c.alert_log(10).unwrap();
    let events: Vec<(String, Vec<String>)> = log
        .iter()
        .map(|(i, d)| {
            (
                i.kind.as_str().to_owned(),
                d.iter().map(|d| d.event.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("run_failed".to_owned(), vec!["run_failed".to_owned()]),
            ("check_failed".to_owned(), vec!["check_failed".to_owned()]),
            (
                "run_failed".to_owned(),
                vec!["run_failed".to_owned(), "recovered".to_owned()]
            ),
        ]
    );
    let closed = &log[2].0;
    assert_eq!(closed.closed_at, Some(at(5)));
    assert_eq!(closed.closed_run_id, Some(RunId("r2".to_owned())));
    assert_eq!(c.alert_log(1).unwrap().len(), 1, "newest first, limited");
}

fn deliveries_are_claimed_once_retried_and_given_up() {
    let c = fresh();
    c.apply_incident_changes(&[open(IncidentKind::RunFailed, "orders", 0)])
        .unwrap();
    assert_eq!(c.next_alert_delivery_at().unwrap(), Some(at(0)));
    assert_eq!(c.alert_delivery_counts(at(0)).unwrap().pending, 1);

    // Claimed: nobody else gets it until the lease ends.
    let claimed = c.claim_alert_deliveries(at(1), at(31), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(d.body, r#"{"text":"run_failed"}"#);
    assert!(
        c.claim_alert_deliveries(at(2), at(32), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.next_alert_delivery_at().unwrap(), Some(at(31)));
    // A claimer that died: due again when the lease ends.
    assert_eq!(
        c.claim_alert_deliveries(at(31), at(61), 10).unwrap().len(),
        1
    );

    // A failed attempt: pending again, due at its retry time.
    c.record_alert_attempt(&AlertAttempt {
        delivery: d.id,
        at: at(32),
        error: Some("connection refused".to_owned()),
        retry_at: Some(at(34)),
    })
    .unwrap();
    assert!(
        c.claim_alert_deliveries(at(33), at(63), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        c.claim_alert_deliveries(at(34), at(64), 10).unwrap().len(),
        1
    );
    // The last attempt fails: undelivered, no more attempts.
    c.record_alert_attempt(&AlertAttempt {
        delivery: d.id,
        at: at(35),
        error: Some("HTTP 500".to_owned()),
        retry_at: None,
    })
    .unwrap();
    assert!(
        c.claim_alert_deliveries(at(99), at(129), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.next_alert_delivery_at().unwrap(), None);
    let (_, deliveries) = c.alert_log(1).unwrap().remove(0);
    let d = &deliveries[0];
    assert_eq!(d.status, DeliveryStatus::Undelivered);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!((d.last_attempt_at, d.delivered_at), (Some(at(35)), None));
    let attempts = c.alert_attempts(d.id).unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.at, a.error.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (1, at(32), Some("connection refused")),
            (2, at(35), Some("HTTP 500")),
        ]
    );
    // Undelivered counts only since the instant asked.
    let counts = c.alert_delivery_counts(at(35)).unwrap();
    assert_eq!((counts.pending, counts.undelivered), (0, 1));
    assert_eq!(c.alert_delivery_counts(at(36)).unwrap().undelivered, 0);
}

fn a_delivered_alert_keeps_its_attempts() {
    let c = fresh();
    c.apply_incident_changes(&[open(IncidentKind::FreshnessMissed, "daily", 0)])
        .unwrap();
    let d = c
        .claim_alert_deliveries(at(0), at(30), 10)
        .unwrap()
        .remove(0);
    c.record_alert_attempt(&AlertAttempt {
        delivery: d.id,
        at: at(1),
        error: Some("HTTP 503".to_owned()),
        retry_at: Some(at(2)),
    })
    .unwrap();
    c.claim_alert_deliveries(at(2), at(32), 10).unwrap();
    c.record_alert_attempt(&AlertAttempt {
        delivery: d.id,
        at: at(3),
        error: None,
        retry_at: None,
    })
    .unwrap();
    let (incident, deliveries) = c.alert_log(1).unwrap().remove(0);
    assert_eq!(incident.run_id, Some(RunId("r1".to_owned())));
    let d = &deliveries[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!((d.attempts, d.delivered_at), (2, Some(at(3))));
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 503"),
        "kept for the record"
    );
    assert_eq!(c.alert_attempts(d.id).unwrap().len(), 2);
    assert_eq!(c.alert_delivery_counts(at(0)).unwrap(), Default::default());
}

fn an_attempt_of_an_unknown_delivery_is_refused() {
    let c = fresh();
    let err = c
        .record_alert_attempt(&AlertAttempt {
            delivery: crate::DeliveryId(42),
            at: at(0),
            error: None,
            retry_at: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("delivery 42"), "{err}");
}

on_both_databases!(
    an_incident_opens_once_per_key_and_closes_once,
    deliveries_are_claimed_once_retried_and_given_up,
    a_delivered_alert_keeps_its_attempts,
    an_attempt_of_an_unknown_delivery_is_refused,
);
