//! The alert statements of the SQLite catalog: incidents, their deliveries
//! and delivery attempts (migration 10). `trait_impl.rs` calls these from
//! its `Catalog` methods.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::rows::{get_opt_time, get_time, limit, timestamp};
use super::{Fallible, Fault};
use crate::{
    AlertAttempt, AlertAttemptRecord, AlertDelivery, AlertDeliveryCounts, AlertIncident,
    DeliveryId, DeliveryStatus, IncidentChange, IncidentId, IncidentKind, NewAlertDelivery, RunId,
};

const INCIDENT_COLUMNS: &str = r#"id, kind, asset, "partition", opened_at, closed_at, detail,
    run_id, closed_run_id"#;

const DELIVERY_COLUMNS: &str = "id, incident_id, event, url, format, body, status, attempts,
    last_error, created_at, next_attempt_at, last_attempt_at, delivered_at";

fn incident_from_row(row: &Row<'_>) -> Fallible<AlertIncident> {
    let kind: String = row.get("kind")?;
    Ok(AlertIncident {
        id: IncidentId(row.get("id")?),
        kind: IncidentKind::parse(&kind)
            .ok_or_else(|| Fault::Corrupt(format!("unknown incident kind `{kind}`")))?,
        asset: row.get("asset")?,
        partition: row.get("partition")?,
        opened_at: get_time(row, "opened_at")?,
        closed_at: get_opt_time(row, "closed_at")?,
        detail: row.get("detail")?,
        run_id: row.get::<_, Option<String>>("run_id")?.map(RunId),
        closed_run_id: row.get::<_, Option<String>>("closed_run_id")?.map(RunId),
    })
}

fn delivery_from_row(row: &Row<'_>) -> Fallible<AlertDelivery> {
    let status: String = row.get("status")?;
    let attempts: i64 = row.get("attempts")?;
    Ok(AlertDelivery {
        id: DeliveryId(row.get("id")?),
        incident: IncidentId(row.get("incident_id")?),
        event: row.get("event")?,
        url: row.get("url")?,
        format: row.get("format")?,
        body: row.get("body")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| Fault::Corrupt(format!("unknown delivery status `{status}`")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| Fault::Corrupt(format!("delivery attempts {attempts} out of range")))?,
        last_error: row.get("last_error")?,
        created_at: get_time(row, "created_at")?,
        next_attempt_at: get_opt_time(row, "next_attempt_at")?,
        last_attempt_at: get_opt_time(row, "last_attempt_at")?,
        delivered_at: get_opt_time(row, "delivered_at")?,
    })
}

pub(super) fn open_incidents(conn: &Connection) -> Fallible<Vec<AlertIncident>> {
    conn.prepare_cached(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE closed_at IS NULL ORDER BY id"
    ))?
    .query_and_then([], incident_from_row)?
    .collect()
}

fn insert_deliveries(
    tx: &Transaction<'_>,
    incident: i64,
    at: DateTime<Utc>,
    deliveries: &[NewAlertDelivery],
) -> Fallible<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO alert_deliveries (incident_id, event, url, format, body, status,
                                       created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    )?;
    for d in deliveries {
        insert.execute(params![
            incident,
            d.event,
            d.url,
            d.format,
            d.body,
            timestamp(at)
        ])?;
    }
    Ok(())
}

pub(super) fn apply_incident_changes(
    tx: &Transaction<'_>,
    changes: &[IncidentChange],
) -> Fallible<Vec<bool>> {
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            IncidentChange::Open {
                kind,
                asset,
                partition,
                at,
                detail,
                run_id,
                deliveries,
            } => {
                // The partial unique index keeps one open incident per key:
                // an Open that lost a race inserts nothing.
                let inserted = tx
                    .prepare_cached(
                        r#"INSERT INTO alert_incidents
                               (kind, asset, "partition", opened_at, detail, run_id)
                           VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                           ON CONFLICT (kind, asset, "partition") WHERE closed_at IS NULL
                           DO NOTHING"#,
                    )?
                    .execute(params![
                        kind.as_str(),
                        asset,
                        partition,
                        timestamp(*at),
                        detail,
                        run_id.as_ref().map(|r| r.0.as_str()),
                    ])?;
                if inserted == 1 {
                    insert_deliveries(tx, tx.last_insert_rowid(), *at, deliveries)?;
                }
                applied.push(inserted == 1);
            }
            IncidentChange::Close {
                incident,
                at,
                run_id,
                deliveries,
            } => {
                let closed = tx
                    .prepare_cached(
                        "UPDATE alert_incidents SET closed_at = ?2, closed_run_id = ?3
                         WHERE id = ?1 AND closed_at IS NULL",
                    )?
                    .execute(params![
                        incident.0,
                        timestamp(*at),
                        run_id.as_ref().map(|r| r.0.as_str()),
                    ])?;
                if closed == 1 {
                    insert_deliveries(tx, incident.0, *at, deliveries)?;
                }
                applied.push(closed == 1);
            }
        }
    }
    Ok(applied)
}

pub(super) fn claim_alert_deliveries(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit_to: usize,
) -> Fallible<Vec<AlertDelivery>> {
    let due: Vec<AlertDelivery> = tx
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))?
        .query_and_then(params![timestamp(now), limit(limit_to)], delivery_from_row)?
        .collect::<Fallible<_>>()?;
    let mut lease =
        tx.prepare_cached("UPDATE alert_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?;
    for d in &due {
        lease.execute(params![d.id.0, timestamp(lease_until)])?;
    }
    Ok(due
        .into_iter()
        .map(|d| AlertDelivery {
            next_attempt_at: Some(lease_until),
            ..d
        })
        .collect())
}

pub(super) fn record_alert_attempt(tx: &Transaction<'_>, a: &AlertAttempt) -> Fallible<()> {
    let attempts: Option<i64> = tx
        .prepare_cached("SELECT attempts FROM alert_deliveries WHERE id = ?1")?
        .query_row([a.delivery.0], |row| row.get(0))
        .optional()?;
    let Some(attempts) = attempts else {
        return Err(Fault::Corrupt(format!(
            "an attempt of delivery {} that does not exist",
            a.delivery
        )));
    };
    let at = timestamp(a.at);
    tx.prepare_cached(
        "INSERT INTO alert_attempts (delivery_id, attempt, at, error) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![a.delivery.0, attempts + 1, at, a.error])?;
    let (status, next) = match (&a.error, a.retry_at) {
        (None, _) => (DeliveryStatus::Delivered, None),
        (Some(_), Some(retry)) => (DeliveryStatus::Pending, Some(timestamp(retry))),
        (Some(_), None) => (DeliveryStatus::Undelivered, None),
    };
    tx.prepare_cached(
        "UPDATE alert_deliveries SET
             attempts = attempts + 1,
             status = ?2,
             next_attempt_at = ?3,
             last_attempt_at = ?4,
             last_error = COALESCE(?5, last_error),
             delivered_at = CASE WHEN ?5 IS NULL THEN ?4 END
         WHERE id = ?1",
    )?
    .execute(params![a.delivery.0, status.as_str(), next, at, a.error])?;
    Ok(())
}

pub(super) fn next_alert_delivery_at(conn: &Connection) -> Fallible<Option<DateTime<Utc>>> {
    let next: Option<String> = conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM alert_deliveries WHERE status = 'pending'",
        )?
        .query_row([], |row| row.get(0))?;
    next.map(|t| super::rows::parse_timestamp(&t, "next_attempt_at"))
        .transpose()
}

pub(super) fn alert_log(
    conn: &Connection,
    limit_to: usize,
) -> Fallible<Vec<(AlertIncident, Vec<AlertDelivery>)>> {
    let incidents: Vec<AlertIncident> = conn
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents ORDER BY id DESC LIMIT ?1"
        ))?
        .query_and_then([limit(limit_to)], incident_from_row)?
        .collect::<Fallible<_>>()?;
    let mut deliveries = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE incident_id = ?1 ORDER BY id"
    ))?;
    incidents
        .into_iter()
        .map(|incident| {
            let of = deliveries
                .query_and_then([incident.id.0], delivery_from_row)?
                .collect::<Fallible<Vec<_>>>()?;
            Ok((incident, of))
        })
        .collect()
}

pub(super) fn alert_attempts(
    conn: &Connection,
    delivery: DeliveryId,
) -> Fallible<Vec<AlertAttemptRecord>> {
    conn.prepare_cached(
        "SELECT attempt, at, error FROM alert_attempts WHERE delivery_id = ?1 ORDER BY attempt",
    )?
    .query_and_then([delivery.0], |row| {
        let attempt: i64 = row.get("attempt")?;
        Ok(AlertAttemptRecord {
            delivery,
            attempt: u32::try_from(attempt)
                .map_err(|_| Fault::Corrupt(format!("attempt number {attempt} out of range")))?,
            at: get_time(row, "at")?,
            error: row.get("error")?,
        })
    })?
    .collect()
}

pub(super) fn alert_delivery_counts(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Fallible<AlertDeliveryCounts> {
    let (pending, undelivered): (i64, i64) = conn
        .prepare_cached(
            "SELECT
                 COALESCE(SUM(status = 'pending'), 0),
                 COALESCE(SUM(status = 'undelivered' AND last_attempt_at >= ?1), 0)
             FROM alert_deliveries
             WHERE status IN ('pending', 'undelivered')",
        )?
        .query_row([timestamp(since)], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(AlertDeliveryCounts {
        pending: u64::try_from(pending).unwrap_or(0),
        undelivered: u64::try_from(undelivered).unwrap_or(0),
    })
}
