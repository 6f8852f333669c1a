//! `impl Catalog for SqlCatalog`: every read and write the catalog runs,
//! with the insert helpers its writes share.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::db::{Conn, Sql, params};
use super::rows::{
    BACKFILL_COLUMNS, CHECK_COLUMNS, CURRENT_SUMMARY_COLUMNS, RUN_COLUMNS, SUMMARY_COLUMNS,
    attempt_from_row, backfill_from_row, check_from_row, file_from_row, fingerprint_from_row,
    get_opt_time, get_time, input_from_row, limit, metrics_to_json, run_from_row, summary_from_row,
    summary_ref_from_row, summary_with_metrics_from_row, timestamp, to_i64, to_json, unit_from_row,
};
use super::{Fallible, SqlCatalog, alerts};
use crate::{
    AlertAttempt, AlertAttemptRecord, AlertDelivery, AlertDeliveryCounts, AlertIncident,
    AttemptOutcome, AttemptRecord, AuditEntry, AutomationEvaluation, AutomationState, BackfillId,
    BackfillRecord, BackfillStatus, Catalog, CheckResultRecord, CurrentVersion, CurrentVersionRef,
    DeliveryId, Enqueued, IncidentChange, MaterializationId, MaterializationMetrics,
    MaterializationRecord, NewAttempt, NewAuditEntry, NewBackfill, NewCheckResult,
    NewMaterialization, NewQueuedRun, NewRun, NewTick, PartitionRef, QueuedRun, Result, RunId,
    RunRecord, RunStatus, SourceFingerprint, StoredFile, TickRecorded, UnitClaim, UnitClaimed,
};

/// The error recorded on runs found dead by [`Catalog::mark_crashed_runs`].
pub(super) const CRASHED_ERROR: &str = "process ended before the run finished (killed or crashed)";

/// Queues a run, or attaches it to an active run claiming all its units
/// (see [`Catalog::enqueue_run`]), inside the caller's transaction.
fn enqueue(tx: Conn<'_>, queued: &NewQueuedRun) -> Fallible<Enqueued> {
    if queued.attach && !queued.claims.is_empty() {
        let mut claimed: BTreeMap<String, HashSet<(String, String)>> = BTreeMap::new();
        let mut stmt = tx.prepare(
            r#"SELECT c.run_id, c.asset, c."partition" FROM run_claims AS c
                       JOIN runs AS r ON r.id = c.run_id
                       WHERE r.status IN ('queued', 'running') AND r.cancel_requested_at IS NULL"#,
        )?;
        stmt.query_each(params![], |row| {
            claimed
                .entry(row.get(0)?)
                .or_default()
                .insert((row.get(1)?, row.get(2)?));
            Ok(())
        })?;
        let covering = claimed.into_iter().find(|(_, units)| {
            queued
                .claims
                .iter()
                .all(|c| units.contains(&(c.asset.clone(), c.partition.clone())))
        });
        if let Some((run, _)) = covering {
            return Ok(Enqueued::Attached(RunId(run)));
        }
    }
    let run = &queued.run;
    tx.execute(
        r#"INSERT INTO runs (id, "user", host, pid, command, "trigger", started_at, status,
                       backfill_id, queued_at, request)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?7, ?9)"#,
        params![
            run.id.0,
            run.user,
            run.host,
            i64::from(run.pid),
            run.command,
            run.trigger,
            timestamp(run.started_at),
            run.backfill_id.as_ref().map(|id| id.0.as_str()),
            queued.request,
        ],
    )?;
    let mut claim = tx.prepare(
        r#"INSERT INTO run_claims (run_id, asset, "partition") VALUES (?1, ?2, ?3)
           ON CONFLICT DO NOTHING"#,
    )?;
    for c in &queued.claims {
        claim.execute(params![run.id.0, c.asset, c.partition])?;
    }
    Ok(Enqueued::Queued)
}

/// Drops `run`'s claim on one unit, if it holds it.
fn release(tx: Conn<'_>, run: &RunId, asset: &str, partition: &str) -> Fallible<()> {
    tx.execute(
        r#"DELETE FROM unit_claims WHERE asset = ?1 AND "partition" = ?2 AND run_id = ?3"#,
        params![asset, partition, run.0],
    )?;
    Ok(())
}

/// Inserts an attempt and moves the (asset, partition)'s latest-attempt pointer.
fn insert_attempt(tx: Conn<'_>, attempt: &NewAttempt) -> Fallible<()> {
    insert_attempt_parts(
        tx,
        &AttemptParts {
            run_id: &attempt.run_id,
            asset: &attempt.asset,
            partition: &attempt.partition,
            outcome: attempt.outcome,
            error: attempt.error.as_deref(),
            at: &timestamp(attempt.at),
        },
    )
}

/// A borrowed [`NewAttempt`] with its time already formatted (a commit
/// records one without cloning its strings).
struct AttemptParts<'a> {
    run_id: &'a RunId,
    asset: &'a str,
    partition: &'a str,
    outcome: AttemptOutcome,
    error: Option<&'a str>,
    at: &'a str,
}

/// [`insert_attempt`] from borrowed parts.
fn insert_attempt_parts(tx: Conn<'_>, a: &AttemptParts<'_>) -> Fallible<()> {
    let id = tx.insert_id(
        r#"INSERT INTO attempts (run_id, asset, "partition", outcome, error, at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id"#,
        params![
            a.run_id.0,
            a.asset,
            a.partition,
            a.outcome.as_str(),
            a.error,
            a.at
        ],
    )?;
    tx.execute(
        r#"INSERT INTO latest_attempts (asset, "partition", attempt_id) VALUES (?1, ?2, ?3)
           ON CONFLICT (asset, "partition") DO UPDATE SET attempt_id = excluded.attempt_id"#,
        params![a.asset, a.partition, id],
    )?;
    Ok(())
}

/// Where a batch of check results belongs.
struct CheckTarget<'a> {
    run_id: &'a RunId,
    asset: &'a str,
    partition: &'a str,
    materialization: Option<i64>,
    at: &'a str,
}

/// Inserts check results, in order, and moves each check's latest-result
/// pointer.
fn insert_checks(
    tx: Conn<'_>,
    target: &CheckTarget<'_>,
    results: &[NewCheckResult],
) -> Fallible<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare(
        r#"INSERT INTO check_results (run_id, asset, "partition", materialization_id, name,
               severity, passed, failing_rows, sample_json, error, at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id"#,
    )?;
    let mut latest = tx.prepare(
        r#"INSERT INTO latest_check_results (asset, "partition", name, check_result_id)
           VALUES (?1, ?2, ?3, ?4)
           ON CONFLICT (asset, "partition", name)
           DO UPDATE SET check_result_id = excluded.check_result_id"#,
    )?;
    for result in results {
        let id = insert.insert_id(params![
            target.run_id.0,
            target.asset,
            target.partition,
            target.materialization,
            result.name,
            result.severity,
            i64::from(result.passed),
            to_i64(result.failing_rows, "failing_rows")?,
            result.sample_json,
            result.error,
            target.at,
        ])?;
        latest.execute(params![target.asset, target.partition, result.name, id])?;
    }
    Ok(())
}

impl Catalog for SqlCatalog {
    fn begin_run(&self, run: &NewRun) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                r#"INSERT INTO runs (id, "user", host, pid, command, "trigger", started_at, status,
                       backfill_id)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8)"#,
                params![
                    run.id.0,
                    run.user,
                    run.host,
                    i64::from(run.pid),
                    run.command,
                    run.trigger,
                    timestamp(run.started_at),
                    run.backfill_id.as_ref().map(|id| id.0.as_str()),
                ],
            )?;
            Ok(())
        })
    }

    fn finish_run(&self, id: &RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        let finished_at = status.is_finished().then(|| timestamp(Utc::now()));
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                params![id.0, status.as_str(), error, finished_at],
            )?;
            if status.is_finished() {
                tx.execute("DELETE FROM run_claims WHERE run_id = ?1", params![id.0])?;
                tx.execute("DELETE FROM unit_claims WHERE run_id = ?1", params![id.0])?;
            }
            Ok(())
        })
    }

    fn enqueue_run(&self, queued: &NewQueuedRun) -> Result<Enqueued> {
        self.write(|tx| enqueue(tx, queued))
    }

    fn automation_state(&self) -> Result<Vec<AutomationState>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT asset, last_tick_at, last_requested_at FROM automation_state ORDER BY asset",
            )?;
            stmt.query_all(params![], |row| {
                Ok(AutomationState {
                    asset: row.get("asset")?,
                    last_tick_at: get_time(row, "last_tick_at")?,
                    last_requested_at: get_opt_time(row, "last_requested_at")?,
                })
            })
        })
    }

    fn record_tick(&self, tick: &NewTick) -> Result<TickRecorded> {
        self.write(|tx| {
            let mut read = tx.prepare(
                "SELECT last_tick_at FROM automation_state WHERE asset = ?1",
            )?;
            for (state, expected) in &tick.states {
                let now: Option<String> = read
                    .query_opt(params![state.asset], |row| row.get(0))?;
                if now != expected.map(timestamp) {
                    return Ok(TickRecorded::Conflict);
                }
            }
            let mut upsert = tx.prepare(
                "INSERT INTO automation_state (asset, last_tick_at, last_requested_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (asset) DO UPDATE SET
                     last_tick_at = excluded.last_tick_at,
                     last_requested_at = excluded.last_requested_at",
            )?;
            for (state, _) in &tick.states {
                upsert.execute(params![
                    state.asset,
                    timestamp(state.last_tick_at),
                    state.last_requested_at.map(timestamp),
                ])?;
            }
            let mut enqueued = Vec::with_capacity(tick.runs.len());
            // An evaluation names the run it requested; one that attached
            // names the run it attached to.
            let mut attached_to: BTreeMap<&str, RunId> = BTreeMap::new();
            for run in &tick.runs {
                let e = enqueue(tx, run)?;
                if let Enqueued::Attached(existing) = &e {
                    attached_to.insert(run.run.id.0.as_str(), existing.clone());
                }
                enqueued.push(e);
            }
            let mut insert = tx.prepare(
                "INSERT INTO automation_evaluations (tick_at, asset, condition, fired, reason, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in &tick.evaluations {
                insert.execute(params![
                    timestamp(e.tick_at),
                    e.asset,
                    e.condition,
                    i64::from(e.fired),
                    e.reason,
                    e.run_id
                        .as_ref()
                        .map(|r| attached_to.get(r.0.as_str()).unwrap_or(r).0.as_str()),
                ])?;
            }
            Ok(TickRecorded::Recorded(enqueued))
        })
    }

    fn automation_evaluations(
        &self,
        since: Option<DateTime<Utc>>,
        limit_to: usize,
    ) -> Result<Vec<AutomationEvaluation>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT * FROM (
                     SELECT id, tick_at, asset, condition, fired, reason, run_id
                     FROM automation_evaluations
                     WHERE CAST(?1 AS TEXT) IS NULL OR tick_at >= ?1
                     ORDER BY id DESC LIMIT ?2) AS newest
                 ORDER BY id",
            )?;
            stmt.query_all(params![since.map(timestamp), limit(limit_to)], |row| {
                Ok(AutomationEvaluation {
                    tick_at: get_time(row, "tick_at")?,
                    asset: row.get("asset")?,
                    condition: row.get("condition")?,
                    fired: row.get("fired")?,
                    reason: row.get("reason")?,
                    run_id: row.get::<_, Option<String>>("run_id")?.map(RunId),
                })
            })
        })
    }

    fn queue(&self) -> Result<Vec<QueuedRun>> {
        self.read(|tx| {
            let mut runs = tx.query_all(
                &format!(
                    "SELECT {RUN_COLUMNS}, request, cancel_requested_at FROM runs
                     WHERE request IS NOT NULL AND status IN ('queued', 'running') ORDER BY id"
                ),
                params![],
                |row| {
                    Ok(QueuedRun {
                        record: run_from_row(row)?,
                        request: row.get("request")?,
                        claims: Vec::new(),
                        cancel_requested: row
                            .get::<_, Option<String>>("cancel_requested_at")?
                            .is_some(),
                    })
                },
            )?;
            let mut claims = tx.prepare(
                r#"SELECT asset, "partition" FROM run_claims WHERE run_id = ?1
                   ORDER BY asset, "partition""#,
            )?;
            for run in &mut runs {
                run.claims = claims.query_all(params![run.record.id.0], unit_from_row)?;
            }
            Ok(runs)
        })
    }

    fn start_queued_run(
        &self,
        id: &RunId,
        host: &str,
        pid: u32,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.write(|tx| {
            let changed = tx
                .prepare(
                    "UPDATE runs SET status = 'running', host = ?2, pid = ?3, started_at = ?4
                     WHERE id = ?1 AND status = 'queued'",
                )?
                .execute(params![id.0, host, i64::from(pid), timestamp(at)])?;
            Ok(changed == 1)
        })
    }

    fn request_cancel(&self, id: &RunId, at: DateTime<Utc>) -> Result<Option<RunRecord>> {
        self.write(|tx| {
            let at = timestamp(at);
            tx.prepare(
                "UPDATE runs SET status = 'cancelled', finished_at = ?2, cancel_requested_at = ?2,
                        error = 'cancelled before it started'
                 WHERE id = ?1 AND status = 'queued'",
            )?
            .execute(params![id.0, at])?;
            tx.prepare(
                "UPDATE runs SET cancel_requested_at = ?2
                 WHERE id = ?1 AND status = 'running' AND cancel_requested_at IS NULL",
            )?
            .execute(params![id.0, at])?;
            tx.prepare(
                "DELETE FROM run_claims WHERE run_id = ?1
                 AND EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND status = 'cancelled')",
            )?
            .execute(params![id.0])?;
            tx.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
                .query_opt(params![id.0], run_from_row)
        })
    }

    fn mark_crashed_runs(&self, is_alive: &dyn Fn(&RunRecord) -> bool) -> Result<Vec<RunId>> {
        let running = self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id"
            ))?;
            stmt.query_all(params![], run_from_row)
        })?;
        // Ask outside the lock: the callback may be slow or use the catalog.
        let dead: Vec<RunRecord> = running.into_iter().filter(|run| !is_alive(run)).collect();
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            // A run of the queue goes back to it (or ends cancelled when a
            // cancel was asked for); any other run crashed.
            let mut stmt = tx.prepare(
                "UPDATE runs SET
                     status = CASE
                         WHEN request IS NULL THEN 'crashed'
                         WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                         ELSE 'queued' END,
                     error = CASE WHEN request IS NULL THEN ?2 ELSE NULL END,
                     finished_at = CASE
                         WHEN request IS NOT NULL AND cancel_requested_at IS NOT NULL
                         THEN cancel_requested_at ELSE finished_at END
                 WHERE id = ?1 AND status = 'running'",
            )?;
            let mut marked = Vec::with_capacity(dead.len());
            for run in dead {
                // A run that finished meanwhile is left alone.
                if stmt.execute(params![run.id.0, CRASHED_ERROR])? == 1 {
                    marked.push(run.id);
                }
            }
            Ok(marked)
        })
    }

    fn claim_unit(&self, claim: &UnitClaim) -> Result<UnitClaimed> {
        self.write(|tx| {
            let holder = tx.query_opt(
                r#"SELECT c.run_id, c.expires_at, r.status FROM unit_claims AS c
                   LEFT JOIN runs AS r ON r.id = c.run_id
                   WHERE c.asset = ?1 AND c."partition" = ?2"#,
                params![claim.asset, claim.partition],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                    ))
                },
            )?;
            if let Some((run, expires_at, status)) = holder
                && run != claim.run_id.0
                && expires_at > timestamp(claim.now)
                && status.as_deref() == Some(RunStatus::Running.as_str())
            {
                return Ok(UnitClaimed::Held(RunId(run)));
            }
            tx.execute(
                r#"INSERT INTO unit_claims (asset, "partition", run_id, expires_at)
                   VALUES (?1, ?2, ?3, ?4)
                   ON CONFLICT (asset, "partition") DO UPDATE SET
                       run_id = excluded.run_id, expires_at = excluded.expires_at"#,
                params![
                    claim.asset,
                    claim.partition,
                    claim.run_id.0,
                    timestamp(claim.until)
                ],
            )?;
            let current = tx.query_opt(
                &format!(
                    r#"SELECT {CURRENT_SUMMARY_COLUMNS} FROM current_versions
                       WHERE asset = ?1 AND "partition" = ?2"#
                ),
                params![claim.asset, claim.partition],
                summary_from_row,
            )?;
            Ok(UnitClaimed::Granted(current))
        })
    }

    fn renew_unit_claims(&self, run: &RunId, until: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE unit_claims SET expires_at = ?2 WHERE run_id = ?1",
                params![run.0, timestamp(until)],
            )?;
            Ok(())
        })
    }

    fn release_unit(&self, run: &RunId, asset: &str, partition: &str) -> Result<()> {
        self.write(|tx| release(tx, run, asset, partition))
    }

    fn record_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        self.write(|tx| insert_attempt(tx, attempt))
    }

    fn commit_materialization(&self, m: &NewMaterialization) -> Result<MaterializationId> {
        let committed_at = timestamp(m.committed_at);
        let metrics_json = metrics_to_json(&m.metrics).map_err(|f| self.error(f))?;
        self.write(|tx| {
            let id = tx.insert_id(
                r#"INSERT INTO materializations (run_id, asset, "partition", code_version,
                       input_version, data_version, row_count, bytes_written, wall_ms,
                       schema_json, committed_at, metrics_json)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id"#,
                params![
                    m.run_id.0,
                    m.asset,
                    m.partition,
                    m.code_version,
                    m.input_version,
                    m.data_version,
                    to_i64(m.row_count, "row_count")?,
                    to_i64(m.bytes_written, "bytes_written")?,
                    to_i64(m.wall_ms, "wall_ms")?,
                    m.schema_json,
                    committed_at,
                    metrics_json,
                ],
            )?;

            let mut inputs = tx.prepare(
                r#"INSERT INTO materialization_inputs (materialization_id, position, name, kind,
                       "partition", data_version, upstream_materialization_id)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"#,
            )?;
            for (position, input) in (0_i64..).zip(&m.inputs) {
                inputs.execute(params![
                    id,
                    position,
                    input.name,
                    input.kind.as_str(),
                    input.partition,
                    input.data_version,
                    input.materialization.map(|upstream| upstream.0),
                ])?;
            }

            let mut files = tx.prepare(
                "INSERT INTO materialization_files (materialization_id, position, path,
                     size_bytes, row_count)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (position, file) in (0_i64..).zip(&m.files) {
                files.execute(params![
                    id,
                    position,
                    file.path,
                    to_i64(file.size_bytes, "size_bytes")?,
                    to_i64(file.row_count, "row_count")?,
                ])?;
            }

            insert_checks(
                tx,
                &CheckTarget {
                    run_id: &m.run_id,
                    asset: &m.asset,
                    partition: &m.partition,
                    materialization: Some(id),
                    at: &committed_at,
                },
                &m.checks,
            )?;

            insert_attempt_parts(
                tx,
                &AttemptParts {
                    run_id: &m.run_id,
                    asset: &m.asset,
                    partition: &m.partition,
                    outcome: AttemptOutcome::Materialized,
                    error: None,
                    at: &committed_at,
                },
            )?;

            tx.execute(
                r#"INSERT INTO current_versions (asset, "partition", materialization_id,
                       run_id, code_version, input_version, data_version, row_count,
                       bytes_written, wall_ms, committed_at)
                   SELECT asset, "partition", id, run_id, code_version, input_version,
                          data_version, row_count, bytes_written, wall_ms, committed_at
                   FROM materializations WHERE id = ?1
                   ON CONFLICT (asset, "partition") DO UPDATE SET
                       materialization_id = excluded.materialization_id,
                       run_id = excluded.run_id,
                       code_version = excluded.code_version,
                       input_version = excluded.input_version,
                       data_version = excluded.data_version,
                       row_count = excluded.row_count,
                       bytes_written = excluded.bytes_written,
                       wall_ms = excluded.wall_ms,
                       committed_at = excluded.committed_at"#,
                params![id],
            )?;
            release(tx, &m.run_id, &m.asset, &m.partition)?;
            Ok(MaterializationId(id))
        })
    }

    fn current_versions(&self) -> Result<Vec<CurrentVersion>> {
        let mut out = Vec::new();
        self.visit_current_versions(&mut |c| out.push(c.to_owned_version()))?;
        Ok(out)
    }

    fn visit_current_versions(&self, visit: &mut dyn FnMut(&CurrentVersionRef<'_>)) -> Result<()> {
        self.with(|conn| {
            // The columns of SUMMARY_COLUMNS, from the summary kept beside
            // each pointer: one scan in key order, no join.
            let mut stmt = conn.prepare(&format!(
                r#"SELECT {CURRENT_SUMMARY_COLUMNS} FROM current_versions
                   ORDER BY asset, "partition""#
            ))?;
            stmt.query_each(params![], |row| {
                visit(&summary_ref_from_row(row)?);
                Ok(())
            })
        })
    }

    fn materialization(&self, id: MaterializationId) -> Result<Option<MaterializationRecord>> {
        self.read(|tx| {
            // One read transaction, so the four reads see one snapshot.
            let row = tx
                .prepare(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json, m.schema_json
                     FROM materializations AS m
                     WHERE m.id = ?1"
                ))?
                .query_opt(params![id.0], |row| {
                    Ok((
                        summary_with_metrics_from_row(row),
                        row.get::<_, String>("schema_json")?,
                    ))
                })?;
            let Some((summary, schema_json)) = row else {
                return Ok(None);
            };
            let (summary, metrics) = summary?;
            let inputs = tx
                .prepare(
                    r#"SELECT name, kind, "partition", data_version, upstream_materialization_id
                       FROM materialization_inputs WHERE materialization_id = ?1
                       ORDER BY position"#,
                )?
                .query_all(params![id.0], input_from_row)?;
            let files = tx
                .prepare(
                    "SELECT path, size_bytes, row_count
                     FROM materialization_files WHERE materialization_id = ?1
                     ORDER BY position",
                )?
                .query_all(params![id.0], file_from_row)?;
            let checks = tx
                .prepare(&format!(
                    "SELECT {CHECK_COLUMNS} FROM check_results AS k
                     WHERE k.materialization_id = ?1 ORDER BY k.id"
                ))?
                .query_all(params![id.0], |row| check_from_row(row).map(|k| k.result))?;
            Ok(Some(MaterializationRecord {
                id: summary.id,
                body: NewMaterialization {
                    run_id: summary.run_id,
                    asset: summary.asset,
                    partition: summary.partition,
                    code_version: summary.code_version,
                    input_version: summary.input_version,
                    data_version: summary.data_version,
                    row_count: summary.row_count,
                    bytes_written: summary.bytes_written,
                    wall_ms: summary.wall_ms,
                    schema_json,
                    inputs,
                    files,
                    committed_at: summary.committed_at,
                    metrics,
                    checks,
                },
            }))
        })
    }

    fn history(&self, asset: &str, limit_to: usize) -> Result<Vec<CurrentVersion>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM materializations AS m
                 WHERE m.asset = ?1 ORDER BY m.id DESC LIMIT ?2"
            ))?;
            stmt.query_all(params![asset, limit(limit_to)], summary_from_row)
        })
    }

    fn latest_attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                r#"SELECT a.run_id, a.asset, a."partition", a.outcome, a.error, a.at
                   FROM latest_attempts AS l
                   JOIN attempts AS a ON a.id = l.attempt_id
                   ORDER BY l.asset, l."partition""#,
            )?;
            stmt.query_all(params![], attempt_from_row)
        })
    }

    fn visit_current_versions_of(
        &self,
        assets: &[String],
        visit: &mut dyn FnMut(&CurrentVersionRef<'_>),
    ) -> Result<()> {
        self.read(|tx| {
            // One read transaction: every asset from the same snapshot.
            {
                let mut stmt = tx.prepare(&format!(
                    r#"SELECT {CURRENT_SUMMARY_COLUMNS} FROM current_versions
                       WHERE asset = ?1 ORDER BY "partition""#
                ))?;
                for asset in assets {
                    stmt.query_each(params![asset], |row| {
                        visit(&summary_ref_from_row(row)?);
                        Ok(())
                    })?;
                }
            }
            Ok(())
        })
    }

    fn latest_attempt_of(&self, asset: &str) -> Result<Option<AttemptRecord>> {
        self.with(|conn| {
            conn.prepare(
                r#"SELECT run_id, asset, "partition", outcome, error, at
                   FROM attempts WHERE asset = ?1 ORDER BY id DESC LIMIT 1"#,
            )?
            .query_opt(params![asset], attempt_from_row)
        })
    }

    fn latest_failed_attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.with(|conn| {
            // Walks the failed attempts only (a partial index), keeping
            // those that are still their unit's latest.
            let mut stmt = conn.prepare(Sql::Each(
                r#"SELECT a.run_id, a.asset, a."partition", a.outcome, a.error, a.at
                   FROM attempts AS a INDEXED BY attempts_failed
                   JOIN latest_attempts AS l
                     ON l.asset = a.asset AND l."partition" = a."partition"
                    AND l.attempt_id = a.id
                   WHERE a.outcome = 'failed'
                   ORDER BY a.asset, a."partition""#,
                r#"SELECT a.run_id, a.asset, a."partition", a.outcome, a.error, a.at
                   FROM attempts AS a
                   JOIN latest_attempts AS l
                     ON l.asset = a.asset AND l."partition" = a."partition"
                    AND l.attempt_id = a.id
                   WHERE a.outcome = 'failed'
                   ORDER BY a.asset, a."partition""#,
            ))?;
            stmt.query_all(params![], attempt_from_row)
        })
    }

    fn record_check_results(
        &self,
        run_id: &RunId,
        asset: &str,
        partition: &str,
        results: &[NewCheckResult],
        at: DateTime<Utc>,
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let at = timestamp(at);
        self.write(|tx| {
            insert_checks(
                tx,
                &CheckTarget {
                    run_id,
                    asset,
                    partition,
                    materialization: None,
                    at: &at,
                },
                results,
            )
        })
    }

    fn latest_check_results(&self) -> Result<Vec<CheckResultRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                r#"SELECT {CHECK_COLUMNS}
                   FROM latest_check_results AS l
                   JOIN check_results AS k ON k.id = l.check_result_id
                   ORDER BY l.asset, l."partition", l.name"#
            ))?;
            stmt.query_all(params![], check_from_row)
        })
    }

    fn latest_failing_checks(&self) -> Result<Vec<CheckResultRecord>> {
        self.with(|conn| {
            // Walks the failing results only (a partial index), keeping
            // those that are still their check's latest.
            let query = |hint: &str| {
                format!(
                    r#"SELECT {CHECK_COLUMNS}
                       FROM check_results AS k {hint}
                       JOIN latest_check_results AS l
                         ON l.asset = k.asset AND l."partition" = k."partition"
                        AND l.name = k.name AND l.check_result_id = k.id
                       WHERE k.passed = 0
                       ORDER BY k.asset, k."partition", k.name"#
                )
            };
            let (sqlite, postgres) = (query("INDEXED BY check_results_failing"), query(""));
            let mut stmt = conn.prepare(Sql::Each(&sqlite, &postgres))?;
            stmt.query_all(params![], check_from_row)
        })
    }

    fn check_results(&self, asset: &str, limit_to: usize) -> Result<Vec<CheckResultRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {CHECK_COLUMNS} FROM check_results AS k
                 WHERE k.asset = ?1 ORDER BY k.id DESC LIMIT ?2"
            ))?;
            stmt.query_all(params![asset, limit(limit_to)], check_from_row)
        })
    }

    fn metrics_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<(CurrentVersion, MaterializationMetrics)>> {
        self.with(|conn| match since {
            // Two statements rather than `?1 IS NULL OR ...`, so that both
            // walk the (committed_at, id) index.
            Some(since) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json FROM materializations AS m
                     WHERE m.committed_at >= ?1
                     ORDER BY m.committed_at, m.id"
                ))?;
                stmt.query_all(params![timestamp(since)], summary_with_metrics_from_row)
            }
            None => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json FROM materializations AS m
                     ORDER BY m.committed_at, m.id"
                ))?;
                stmt.query_all(params![], summary_with_metrics_from_row)
            }
        })
    }

    fn current_metrics(&self) -> Result<Vec<(CurrentVersion, MaterializationMetrics)>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                r#"SELECT {SUMMARY_COLUMNS}, m.metrics_json
                   FROM current_versions AS c
                   JOIN materializations AS m ON m.id = c.materialization_id
                   ORDER BY c.asset, c."partition""#
            ))?;
            stmt.query_all(params![], summary_with_metrics_from_row)
        })
    }

    fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO audit_log (at, principal, host, git_commit, action, target, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    timestamp(entry.at),
                    entry.principal,
                    entry.host,
                    entry.git_commit,
                    entry.action,
                    entry.target,
                    entry.details,
                ],
            )?;
            Ok(())
        })
    }

    fn audit_log(
        &self,
        since: Option<DateTime<Utc>>,
        principal: Option<&str>,
    ) -> Result<Vec<AuditEntry>> {
        let since = since.map(timestamp).unwrap_or_default();
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, at, principal, host, git_commit, action, target, details FROM audit_log
                 WHERE at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR principal = ?2) ORDER BY id",
            )?;
            stmt.query_all(params![since, principal], |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    entry: NewAuditEntry {
                        at: get_time(row, "at")?,
                        principal: row.get(2)?,
                        host: row.get(3)?,
                        git_commit: row.get(4)?,
                        action: row.get(5)?,
                        target: row.get(6)?,
                        details: row.get(7)?,
                    },
                })
            })
        })
    }

    fn all_files(&self) -> Result<Vec<StoredFile>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                r#"SELECT f.materialization_id, f.path, m.committed_at, m.expired_at,
                          (c.materialization_id IS NOT NULL) AS is_current, f.size_bytes
                   FROM materialization_files f
                   JOIN materializations m ON m.id = f.materialization_id
                   LEFT JOIN current_versions c ON c.materialization_id = m.id
                   ORDER BY f.materialization_id, f.position"#,
            )?;
            stmt.query_all(params![], |row| {
                Ok(StoredFile {
                    materialization: MaterializationId(row.get(0)?),
                    path: row.get(1)?,
                    committed_at: get_time(row, "committed_at")?,
                    expired: row.get::<_, Option<String>>(3)?.is_some(),
                    is_current: row.get(4)?,
                    size_bytes: row.get(5)?,
                })
            })
        })
    }

    fn mark_expired(&self, ids: &[MaterializationId], at: DateTime<Utc>) -> Result<()> {
        let at = timestamp(at);
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "UPDATE materializations SET expired_at = ?2 WHERE id = ?1 AND expired_at IS NULL",
            )?;
            for id in ids {
                stmt.execute(params![id.0, at])?;
            }
            Ok(())
        })
    }

    fn runs(&self, limit_to: usize) -> Result<Vec<RunRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1"
            ))?;
            stmt.query_all(params![limit(limit_to)], run_from_row)
        })
    }

    fn run(&self, id: &RunId) -> Result<Option<(RunRecord, Vec<AttemptRecord>)>> {
        self.read(|tx| {
            let run = tx
                .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
                .query_opt(params![id.0], run_from_row)?;
            let Some(run) = run else {
                return Ok(None);
            };
            let attempts = tx
                .prepare(
                    r#"SELECT run_id, asset, "partition", outcome, error, at
                       FROM attempts WHERE run_id = ?1 ORDER BY id"#,
                )?
                .query_all(params![id.0], attempt_from_row)?;
            Ok(Some((run, attempts)))
        })
    }

    fn source_fingerprints(&self) -> Result<Vec<SourceFingerprint>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT source, fingerprint, data_version, observed_at
                 FROM source_fingerprints ORDER BY source",
            )?;
            stmt.query_all(params![], fingerprint_from_row)
        })
    }

    fn put_source_fingerprint(&self, fingerprint: &SourceFingerprint) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO source_fingerprints (source, fingerprint, data_version, observed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source) DO UPDATE SET
                     fingerprint = excluded.fingerprint,
                     data_version = excluded.data_version,
                     observed_at = excluded.observed_at",
                params![
                    fingerprint.source,
                    fingerprint.fingerprint,
                    fingerprint.data_version,
                    timestamp(fingerprint.observed_at),
                ],
            )?;
            Ok(())
        })
    }

    fn create_backfill(&self, b: &NewBackfill) -> Result<()> {
        let selection = to_json(&b.selection, "backfill selection").map_err(|f| self.error(f))?;
        let partitions = b
            .partitions
            .as_deref()
            .map(|partitions| to_json(partitions, "backfill partitions"))
            .transpose()
            .map_err(|f| self.error(f))?;
        self.write(|tx| {
            tx.execute(
                r#"INSERT INTO backfills (id, "user", command, created_at, status, selection,
                     partition_from, partition_to, partitions, force)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9)"#,
                params![
                    b.id.0,
                    b.user,
                    b.command,
                    timestamp(b.created_at),
                    selection,
                    b.from,
                    b.to,
                    partitions,
                    i64::from(b.force),
                ],
            )?;
            // One prepared statement for every unit, in the same transaction.
            let mut units = tx.prepare(
                r#"INSERT INTO backfill_units (backfill_id, position, asset, "partition")
                   VALUES (?1, ?2, ?3, ?4)"#,
            )?;
            for (position, unit) in (0_i64..).zip(&b.units) {
                units.execute(params![b.id.0, position, unit.asset, unit.partition])?;
            }
            Ok(())
        })
    }

    fn backfill(&self, id: &BackfillId) -> Result<Option<BackfillRecord>> {
        self.read(|tx| {
            // One read transaction, so the backfill and its units agree.
            let record = tx
                .prepare(&format!(
                    "SELECT {BACKFILL_COLUMNS} FROM backfills WHERE id = ?1"
                ))?
                .query_opt(params![id.0], backfill_from_row)?;
            let Some(mut record) = record else {
                return Ok(None);
            };
            record.backfill.units = tx
                .prepare(
                    r#"SELECT asset, "partition" FROM backfill_units
                       WHERE backfill_id = ?1 ORDER BY position"#,
                )?
                .query_all(params![id.0], unit_from_row)?;
            Ok(Some(record))
        })
    }

    fn finish_backfill(&self, id: &BackfillId, status: BackfillStatus) -> Result<()> {
        let finished_at = (status != BackfillStatus::Running).then(|| timestamp(Utc::now()));
        self.with(|conn| {
            conn.execute(
                "UPDATE backfills SET status = ?2, finished_at = ?3 WHERE id = ?1",
                params![id.0, status.as_str(), finished_at],
            )?;
            Ok(())
        })
    }

    fn reopen_backfill(&self, id: &BackfillId) -> Result<()> {
        self.finish_backfill(id, BackfillStatus::Running)
    }

    fn committed_in_backfill(&self, id: &BackfillId) -> Result<Vec<PartitionRef>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                r#"SELECT DISTINCT m.asset, m."partition"
                   FROM runs AS r
                   JOIN materializations AS m ON m.run_id = r.id
                   WHERE r.backfill_id = ?1
                   ORDER BY m.asset, m."partition""#,
            )?;
            stmt.query_all(params![id.0], unit_from_row)
        })
    }

    fn backfills(&self, limit_to: usize) -> Result<Vec<BackfillRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {BACKFILL_COLUMNS} FROM backfills
                 ORDER BY created_at DESC, id DESC LIMIT ?1"
            ))?;
            stmt.query_all(params![limit(limit_to)], backfill_from_row)
        })
    }

    fn open_incidents(&self) -> Result<Vec<AlertIncident>> {
        self.with(alerts::open_incidents)
    }

    fn apply_incident_changes(&self, changes: &[IncidentChange]) -> Result<Vec<bool>> {
        self.write(|tx| alerts::apply_incident_changes(tx, changes))
    }

    fn claim_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit_to: usize,
    ) -> Result<Vec<AlertDelivery>> {
        self.write(|tx| alerts::claim_alert_deliveries(tx, now, lease_until, limit_to))
    }

    fn record_alert_attempt(&self, attempt: &AlertAttempt) -> Result<()> {
        self.write(|tx| alerts::record_alert_attempt(tx, attempt))
    }

    fn next_alert_delivery_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.with(alerts::next_alert_delivery_at)
    }

    fn alert_log(&self, limit_to: usize) -> Result<Vec<(AlertIncident, Vec<AlertDelivery>)>> {
        self.with(|conn| alerts::alert_log(conn, limit_to))
    }

    fn alert_attempts(&self, delivery: DeliveryId) -> Result<Vec<AlertAttemptRecord>> {
        self.with(|conn| alerts::alert_attempts(conn, delivery))
    }

    fn alert_delivery_counts(&self, since: DateTime<Utc>) -> Result<AlertDeliveryCounts> {
        self.with(|conn| alerts::alert_delivery_counts(conn, since))
    }
}
