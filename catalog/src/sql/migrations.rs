//! The versioned schema migrations of the SQLite catalog (their SQL text) and
//! the code applying them when a catalog is opened.
//!
//! Never edit a migration that has shipped; append a new one.

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior, params};

use super::rows::timestamp;
use super::{Fallible, Fault};

/// Schema migrations, in order: entry `i` brings the schema to version `i + 1`.
/// Never edit an entry that has shipped; append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
CREATE TABLE runs (
    id          TEXT    NOT NULL PRIMARY KEY,
    user        TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    command     TEXT    NOT NULL,
    "trigger"   TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    status      TEXT    NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'crashed')),
    error       TEXT
);
-- runs(limit): newest first.
CREATE INDEX runs_by_start ON runs (started_at, id);
-- mark_crashed_runs: only the (few) unfinished runs.
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT    NOT NULL REFERENCES runs (id),
    asset       TEXT    NOT NULL,
    "partition" TEXT    NOT NULL,
    outcome     TEXT    NOT NULL
        CHECK (outcome IN ('materialized', 'fresh', 'failed', 'skipped')),
    error       TEXT,
    at          TEXT    NOT NULL
);
CREATE INDEX attempts_by_asset ON attempts (asset, "partition", id);
CREATE INDEX attempts_by_run ON attempts (run_id);

-- The newest attempt of each (asset, partition), maintained on every insert
-- into `attempts`, so that reading it costs O(assets), not O(history).
CREATE TABLE latest_attempts (
    asset       TEXT    NOT NULL,
    "partition" TEXT    NOT NULL,
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
    PRIMARY KEY (asset, "partition")
) WITHOUT ROWID;

CREATE TABLE materializations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT    NOT NULL REFERENCES runs (id),
    asset         TEXT    NOT NULL,
    "partition"   TEXT    NOT NULL,
    code_version  TEXT    NOT NULL,
    input_version TEXT    NOT NULL,
    data_version  TEXT    NOT NULL,
    row_count     INTEGER NOT NULL CHECK (row_count >= 0),
    bytes_written INTEGER NOT NULL CHECK (bytes_written >= 0),
    wall_ms       INTEGER NOT NULL CHECK (wall_ms >= 0),
    schema_json   TEXT    NOT NULL,
    committed_at  TEXT    NOT NULL
);
-- history(asset): newest first.
CREATE INDEX materializations_by_asset ON materializations (asset, id);
CREATE INDEX materializations_by_run ON materializations (run_id);

CREATE TABLE materialization_inputs (
    materialization_id          INTEGER NOT NULL
        REFERENCES materializations (id) ON DELETE CASCADE,
    position                    INTEGER NOT NULL,
    name                        TEXT    NOT NULL,
    kind                        TEXT    NOT NULL CHECK (kind IN ('source', 'asset')),
    "partition"                 TEXT    NOT NULL,
    data_version                TEXT    NOT NULL,
    upstream_materialization_id INTEGER REFERENCES materializations (id),
    PRIMARY KEY (materialization_id, position)
) WITHOUT ROWID;
-- Downstream lineage: who read this version.
CREATE INDEX materialization_inputs_by_upstream
    ON materialization_inputs (upstream_materialization_id)
    WHERE upstream_materialization_id IS NOT NULL;

CREATE TABLE materialization_files (
    materialization_id INTEGER NOT NULL
        REFERENCES materializations (id) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    path               TEXT    NOT NULL,
    size_bytes         INTEGER NOT NULL CHECK (size_bytes >= 0),
    row_count          INTEGER NOT NULL CHECK (row_count >= 0),
    PRIMARY KEY (materialization_id, position)
) WITHOUT ROWID;

CREATE TABLE current_versions (
    asset              TEXT    NOT NULL,
    "partition"        TEXT    NOT NULL,
    materialization_id INTEGER NOT NULL REFERENCES materializations (id),
    PRIMARY KEY (asset, "partition")
) WITHOUT ROWID;
CREATE INDEX current_versions_by_materialization ON current_versions (materialization_id);

CREATE TABLE source_fingerprints (
    source       TEXT NOT NULL PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    data_version TEXT NOT NULL,
    observed_at  TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 2: backfills of partitioned assets.
    r#"
CREATE TABLE backfills (
    id             TEXT    NOT NULL PRIMARY KEY,
    user           TEXT    NOT NULL,
    command        TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    finished_at    TEXT,
    status         TEXT    NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed')),
    -- JSON array of selection expressions.
    selection      TEXT    NOT NULL,
    partition_from TEXT,
    partition_to   TEXT,
    -- JSON array of partition keys, or NULL when not given.
    partitions     TEXT,
    force          INTEGER NOT NULL CHECK (force IN (0, 1))
);
-- backfills(limit): newest first.
CREATE INDEX backfills_by_creation ON backfills (created_at, id);

-- The planned units of a backfill, in execution order.
CREATE TABLE backfill_units (
    backfill_id TEXT    NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    asset       TEXT    NOT NULL,
    "partition" TEXT    NOT NULL,
    PRIMARY KEY (backfill_id, position)
) WITHOUT ROWID;

-- No foreign key: a run may be recorded before its backfill row.
ALTER TABLE runs ADD COLUMN backfill_id TEXT NULL;
-- committed_in_backfill: the runs of one backfill.
CREATE INDEX runs_by_backfill ON runs (backfill_id) WHERE backfill_id IS NOT NULL;
"#,
    // 3: materialization metrics and data-quality check results.
    r#"
-- JSON of MaterializationMetrics; '{}' (all defaults) for older rows.
ALTER TABLE materializations ADD COLUMN metrics_json TEXT NOT NULL DEFAULT '{}';
-- metrics_since: oldest first from a time.
CREATE INDEX materializations_by_commit ON materializations (committed_at, id);

CREATE TABLE check_results (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id             TEXT    NOT NULL REFERENCES runs (id),
    asset              TEXT    NOT NULL,
    "partition"        TEXT    NOT NULL,
    -- NULL when the attempt did not commit.
    materialization_id INTEGER NULL REFERENCES materializations (id),
    name               TEXT    NOT NULL,
    severity           TEXT    NOT NULL CHECK (severity IN ('warn', 'error')),
    passed             INTEGER NOT NULL CHECK (passed IN (0, 1)),
    failing_rows       INTEGER NOT NULL CHECK (failing_rows >= 0),
    -- JSON array of up to 10 failing rows.
    sample_json        TEXT    NOT NULL,
    error              TEXT    NULL,
    at                 TEXT    NOT NULL
);
-- The history of one check.
CREATE INDEX check_results_by_check ON check_results (asset, "partition", name, id);
-- check_results(asset, limit): newest first.
CREATE INDEX check_results_by_asset ON check_results (asset, id);
-- materialization(id): its checks.
CREATE INDEX check_results_by_materialization ON check_results (materialization_id)
    WHERE materialization_id IS NOT NULL;

-- The newest result of each (asset, partition, check), maintained on every
-- insert into `check_results`, so that reading it costs O(checks), not
-- O(history).
CREATE TABLE latest_check_results (
    asset           TEXT    NOT NULL,
    "partition"     TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    check_result_id INTEGER NOT NULL REFERENCES check_results (id),
    PRIMARY KEY (asset, "partition", name)
) WITHOUT ROWID;
"#,
    // 4: the append-only audit log, and expiry of old versions by retention.
    r#"
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT    NOT NULL,
    principal   TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    git_commit  TEXT,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    details     TEXT    NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
CREATE INDEX audit_log_by_principal ON audit_log (principal, id);
-- Append-only, enforced by the database itself.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
ALTER TABLE materializations ADD COLUMN expired_at TEXT;
"#,
    // 5: status reads only the units whose latest attempt failed.
    r#"
CREATE INDEX attempts_failed ON attempts (asset, "partition", id) WHERE outcome = 'failed';
"#,
    // 6: the current version's summary lives beside its pointer, so status
    // reads one table in key order instead of joining every partition.
    r#"
CREATE TABLE current_versions_summary (
    asset              TEXT    NOT NULL,
    "partition"        TEXT    NOT NULL,
    materialization_id INTEGER NOT NULL REFERENCES materializations (id),
    run_id             TEXT    NOT NULL,
    code_version       TEXT    NOT NULL,
    input_version      TEXT    NOT NULL,
    data_version       TEXT    NOT NULL,
    row_count          INTEGER NOT NULL,
    bytes_written      INTEGER NOT NULL,
    wall_ms            INTEGER NOT NULL,
    committed_at       TEXT    NOT NULL,
    PRIMARY KEY (asset, "partition")
) WITHOUT ROWID;
INSERT INTO current_versions_summary
SELECT c.asset, c."partition", m.id, m.run_id, m.code_version, m.input_version,
       m.data_version, m.row_count, m.bytes_written, m.wall_ms, m.committed_at
FROM current_versions AS c
JOIN materializations AS m ON m.id = c.materialization_id;
DROP INDEX current_versions_by_materialization;
DROP TABLE current_versions;
ALTER TABLE current_versions_summary RENAME TO current_versions;
CREATE INDEX current_versions_by_materialization ON current_versions (materialization_id);
"#,
    // 7: status reads only the latest check results that are failing errors.
    r#"
CREATE INDEX check_results_failing_errors ON check_results (asset, "partition", name, id)
    WHERE passed = 0 AND severity = 'error';
"#,
    // 8: the run queue. A queued run is a `runs` row in status 'queued'
    // holding its request (opaque to the catalog); 'cancelled' is a new
    // end state. SQLite cannot alter a CHECK constraint, so the table is
    // rebuilt (foreign keys are off while migrating; `migrate` checks
    // them before committing). `run_claims` holds the units an active
    // queued run will build, for deduplication.
    r#"
CREATE TABLE runs_new (
    id                  TEXT    NOT NULL PRIMARY KEY,
    user                TEXT    NOT NULL,
    host                TEXT    NOT NULL,
    pid                 INTEGER NOT NULL,
    command             TEXT    NOT NULL,
    "trigger"           TEXT    NOT NULL,
    started_at          TEXT    NOT NULL,
    finished_at         TEXT,
    status              TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'crashed', 'cancelled')),
    error               TEXT,
    backfill_id         TEXT    NULL,
    queued_at           TEXT    NULL,
    request             TEXT    NULL,
    cancel_requested_at TEXT    NULL
);
INSERT INTO runs_new (id, user, host, pid, command, "trigger", started_at, finished_at, status,
                      error, backfill_id)
SELECT id, user, host, pid, command, "trigger", started_at, finished_at, status, error, backfill_id
FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at, id);
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';
CREATE INDEX runs_by_backfill ON runs (backfill_id) WHERE backfill_id IS NOT NULL;
-- The queue: only the (few) queued or running runs that have a request.
CREATE INDEX runs_queue ON runs (id)
    WHERE request IS NOT NULL AND status IN ('queued', 'running');

CREATE TABLE run_claims (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    asset       TEXT NOT NULL,
    "partition" TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, "partition")
) WITHOUT ROWID;
"#,
    // 9: automation. What the last tick saw of each automated asset (the
    // instant it evaluated, so a cron instant fires once across ticks and
    // restarts; when it last requested a run, for `lag`), and every
    // evaluation with its reason.
    r#"
CREATE TABLE automation_state (
    asset             TEXT NOT NULL PRIMARY KEY,
    last_tick_at      TEXT NOT NULL,
    last_requested_at TEXT NULL
) WITHOUT ROWID;

CREATE TABLE automation_evaluations (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tick_at   TEXT    NOT NULL,
    asset     TEXT    NOT NULL,
    condition TEXT    NOT NULL,
    fired     INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    run_id    TEXT    NULL
);
CREATE INDEX automation_evaluations_by_tick ON automation_evaluations (tick_at, asset);
"#,
    // 10: alerts. An incident is one (kind, asset, partition) while its
    // trouble lasts — at most one open per key, which the partial unique
    // index enforces across processes; each opening or closing queues one
    // delivery per receiver listening to it, attempted with backoff, every
    // attempt kept.
    r#"
CREATE TABLE alert_incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL
        CHECK (kind IN ('run_failed', 'check_failed', 'freshness_missed')),
    asset         TEXT    NOT NULL,
    "partition"   TEXT    NOT NULL,
    opened_at     TEXT    NOT NULL,
    closed_at     TEXT    NULL,
    detail        TEXT    NOT NULL,
    run_id        TEXT    NULL,
    closed_run_id TEXT    NULL
);
CREATE UNIQUE INDEX alert_incidents_open
    ON alert_incidents (kind, asset, "partition") WHERE closed_at IS NULL;

CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES alert_incidents (id),
    event           TEXT    NOT NULL
        CHECK (event IN ('run_failed', 'check_failed', 'freshness_missed', 'recovered')),
    url             TEXT    NOT NULL,
    format          TEXT    NOT NULL CHECK (format IN ('slack', 'json')),
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('pending', 'delivered', 'undelivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NULL,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NULL,
    last_attempt_at TEXT    NULL,
    delivered_at    TEXT    NULL
);
CREATE INDEX alert_deliveries_by_incident ON alert_deliveries (incident_id);
-- claim_alert_deliveries: only the (few) pending ones, by due time.
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at, id)
    WHERE status = 'pending';
-- alert_delivery_counts: the recent undelivered ones.
CREATE INDEX alert_deliveries_undelivered ON alert_deliveries (last_attempt_at)
    WHERE status = 'undelivered';

CREATE TABLE alert_attempts (
    delivery_id INTEGER NOT NULL REFERENCES alert_deliveries (id),
    attempt     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    error       TEXT    NULL,
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
"#,
    // 11: status reads the latest failing check results of both
    // severities (errors make an asset's health `failing_check`, warnings
    // are shown beside it).
    r#"
CREATE INDEX check_results_failing ON check_results (asset, "partition", name, id)
    WHERE passed = 0;
DROP INDEX check_results_failing_errors;
"#,
    // 12: a run claims each unit while it builds it, under a lease, so
    // that several processes never build one unit at once.
    UNIT_CLAIMS,
];

/// Migration 12, the same text on SQLite and PostgreSQL.
pub(super) const UNIT_CLAIMS: &str = r#"
CREATE TABLE unit_claims (
    asset       TEXT NOT NULL,
    "partition" TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (asset, "partition")
);
CREATE INDEX unit_claims_by_run ON unit_claims (run_id);
"#;

/// The schema version this build writes (the number of migrations).
pub(super) const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies pending migrations, each in its own transaction, with foreign
/// keys off (a migration may rebuild a referenced table) and checked before
/// each commit.
pub(super) fn migrate(conn: &mut Connection) -> Fallible<()> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = apply_pending(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn apply_pending(conn: &mut Connection) -> Fallible<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )?;
    let current = schema_version(conn)?;
    if current > SUPPORTED_VERSION {
        return Err(Fault::TooNew(current));
    }
    for (version, sql) in (1..).zip(MIGRATIONS.iter()) {
        if version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now_current = schema_version(&tx)?;
        if now_current > SUPPORTED_VERSION {
            return Err(Fault::TooNew(now_current));
        }
        if now_current >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx
            .prepare("PRAGMA foreign_key_check")?
            .query_map([], |row| row.get::<_, String>(0))?
            .next()
            .transpose()?;
        if let Some(table) = broken {
            return Err(Fault::Corrupt(format!(
                "migration {version} left a dangling reference in table `{table}`"
            )));
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, timestamp(Utc::now())],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn schema_version(conn: &Connection) -> Fallible<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?)
}
