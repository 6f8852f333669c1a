//! The alert statements of the catalog: incidents, their deliveries
//! and delivery attempts (migration 10). `trait_impl.rs` calls these from
//! its `Catalog` methods.

use chrono::{DateTime, Utc};

use super::db::{Conn, Row, params};
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

pub(super) fn open_incidents(conn: Conn<'_>) -> Fallible<Vec<AlertIncident>> {
    conn.prepare(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE closed_at IS NULL ORDER BY id"
    ))?
    .query_all(params![], incident_from_row)
}

fn insert_deliveries(
    tx: Conn<'_>,
    incident: i64,
    at: DateTime<Utc>,
    deliveries: &[NewAlertDelivery],
) -> Fallible<()> {
    let mut insert = tx.prepare(
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
    tx: Conn<'_>,
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
                let inserted: Option<i64> = tx.query_opt(
                    r#"INSERT INTO alert_incidents
                           (kind, asset, "partition", opened_at, detail, run_id)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                       ON CONFLICT (kind, asset, "partition") WHERE closed_at IS NULL
                       DO NOTHING
                       RETURNING id"#,
                    params![
                        kind.as_str(),
                        asset,
                        partition,
                        timestamp(*at),
                        detail,
                        run_id.as_ref().map(|r| r.0.as_str()),
                    ],
                    |row| row.get(0),
                )?;
                if let Some(incident) = inserted {
                    insert_deliveries(tx, incident, *at, deliveries)?;
                }
                applied.push(inserted.is_some());
            }
            IncidentChange::Close {
                incident,
                at,
                run_id,
                deliveries,
            } => {
                let closed = tx.execute(
                    "UPDATE alert_incidents SET closed_at = ?2, closed_run_id = ?3
                         WHERE id = ?1 AND closed_at IS NULL",
                    params![
                        incident.0,
                        timestamp(*at),
                        run_id.as_ref().map(|r| r.0.as_str()),
                    ],
                )?;
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
    tx: Conn<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit_to: usize,
) -> Fallible<Vec<AlertDelivery>> {
    let due: Vec<AlertDelivery> = tx
        .prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))?
        .query_all(params![timestamp(now), limit(limit_to)], delivery_from_row)?;
    let mut lease = tx.prepare("UPDATE alert_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?;
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

pub(super) fn record_alert_attempt(tx: Conn<'_>, a: &AlertAttempt) -> Fallible<()> {
    let attempts: Option<i64> = tx
        .prepare("SELECT attempts FROM alert_deliveries WHERE id = ?1")?
        .query_opt(params![a.delivery.0], |row| row.get(0))?;
    let Some(attempts) = attempts else {
        return Err(Fault::Corrupt(format!(
            "an attempt of delivery {} that does not exist",
            a.delivery
        )));
    };
    let at = timestamp(a.at);
    tx.execute(
        "INSERT INTO alert_attempts (delivery_id, attempt, at, error) VALUES (?1, ?2, ?3, ?4)",
        params![a.delivery.0, attempts + 1, at, a.error],
    )?;
    let (status, next) = match (&a.error, a.retry_at) {
        (None, _) => (DeliveryStatus::Delivered, None),
        (Some(_), Some(retry)) => (DeliveryStatus::Pending, Some(timestamp(retry))),
        (Some(_), None) => (DeliveryStatus::Undelivered, None),
    };
    tx.execute(
        "UPDATE alert_deliveries SET
             attempts = attempts + 1,
             status = ?2,
             next_attempt_at = ?3,
             last_attempt_at = ?4,
             last_error = COALESCE(?5, last_error),
             delivered_at = CASE WHEN ?5 IS NULL THEN ?4 END
         WHERE id = ?1",
        params![a.delivery.0, status.as_str(), next, at, a.error],
    )?;
    Ok(())
}

pub(super) fn next_alert_delivery_at(conn: Conn<'_>) -> Fallible<Option<DateTime<Utc>>> {
    let next: Option<Option<String>> = conn
        .prepare("SELECT MIN(next_attempt_at) FROM alert_deliveries WHERE status = 'pending'")?
        .query_opt(params![], |row| row.get(0))?;
    next.flatten()
        .map(|t| super::rows::parse_timestamp(&t, "next_attempt_at"))
        .transpose()
}

pub(super) fn alert_log(
    conn: Conn<'_>,
    limit_to: usize,
) -> Fallible<Vec<(AlertIncident, Vec<AlertDelivery>)>> {
    let incidents: Vec<AlertIncident> = conn
        .prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents ORDER BY id DESC LIMIT ?1"
        ))?
        .query_all(params![limit(limit_to)], incident_from_row)?;
    let mut deliveries = conn.prepare(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE incident_id = ?1 ORDER BY id"
    ))?;
    incidents
        .into_iter()
        .map(|incident| {
            let of = deliveries.query_all(params![incident.id.0], delivery_from_row)?;
            Ok((incident, of))
        })
        .collect()
}

pub(super) fn alert_attempts(
    conn: Conn<'_>,
    delivery: DeliveryId,
) -> Fallible<Vec<AlertAttemptRecord>> {
    conn.prepare(
        "SELECT attempt, at, error FROM alert_attempts WHERE delivery_id = ?1 ORDER BY attempt",
    )?
    .query_all(params![delivery.0], |row| {
        let attempt: i64 = row.get("attempt")?;
        Ok(AlertAttemptRecord {
            delivery,
            attempt: u32::try_from(attempt)
                .map_err(|_| Fault::Corrupt(format!("attempt number {attempt} out of range")))?,
            at: get_time(row, "at")?,
            error: row.get("error")?,
        })
    })
}

pub(super) fn alert_delivery_counts(
    conn: Conn<'_>,
    since: DateTime<Utc>,
) -> Fallible<AlertDeliveryCounts> {
    let (pending, undelivered): (i64, i64) = conn
        .prepare(
            "SELECT
                 COUNT(*) FILTER (WHERE status = 'pending'),
                 COUNT(*) FILTER (WHERE status = 'undelivered' AND last_attempt_at >= ?1)
             FROM alert_deliveries
             WHERE status IN ('pending', 'undelivered')",
        )?
        .query_opt(params![timestamp(since)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .unwrap_or((0, 0));
    Ok(AlertDeliveryCounts {
        pending: u64::try_from(pending).unwrap_or(0),
        undelivered: u64::try_from(undelivered).unwrap_or(0),
    })
}
