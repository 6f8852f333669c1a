//! The embedded SQLite catalog: one database file (WAL mode) next to the project.
//!
//! Schema changes are versioned migrations kept in [`MIGRATIONS`]; each is
//! applied once, in its own transaction, when the catalog is opened. A
//! database migrated by a newer Cairn is refused ([`CatalogError::TooNew`])
//! rather than misread.
//!
//! Conventions: timestamps are RFC 3339 text in UTC with microseconds (so they
//! also sort as text), `u64` counters are stored as `INTEGER` (i64) and the
//! unpartitioned partition key is `''`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{
    AttemptOutcome, AttemptRecord, AuditEntry, BackfillId, BackfillRecord, BackfillStatus, Catalog,
    CatalogError, CheckResultRecord, CurrentVersion, CurrentVersionRef, FileRecord,
    MaterializationId, MaterializationMetrics, MaterializationRecord, NewAttempt, NewAuditEntry,
    NewBackfill, NewCheckResult, NewMaterialization, NewRun, PartitionRef, Result, RunId,
    RunRecord, RunStatus, SourceFingerprint, StoredFile, UpstreamKind, UpstreamVersion,
};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: more than the catalog uses, so
/// that hot statements (commits) are never evicted by occasional reads.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// The error recorded on runs found dead by [`Catalog::mark_crashed_runs`].
const CRASHED_ERROR: &str = "process ended before the run finished (killed or crashed)";

/// Schema migrations, in order: entry `i` brings the schema to version `i + 1`.
/// Never edit an entry that has shipped; append a new one.
const MIGRATIONS: &[&str] = &[
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
];

/// The schema version this build writes (the number of migrations).
const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

/// Columns of a materialization summary ([`CurrentVersion`]), table alias `m`,
/// read by position in [`summary_from_row`].
const SUMMARY_COLUMNS: &str = r#"m.id, m.run_id, m.asset, m."partition", m.code_version,
    m.input_version, m.data_version, m.row_count, m.bytes_written, m.wall_ms, m.committed_at"#;

/// The same columns from the summary `current_versions` keeps beside each
/// pointer (migration 6), for [`summary_ref_from_row`].
const CURRENT_SUMMARY_COLUMNS: &str = r#"materialization_id, run_id, asset, "partition",
    code_version, input_version, data_version, row_count, bytes_written, wall_ms, committed_at"#;

/// Columns of a check result, table alias `k`, for [`check_from_row`].
const CHECK_COLUMNS: &str = r#"k.id, k.run_id, k.asset, k."partition", k.materialization_id,
    k.name, k.severity, k.passed, k.failing_rows, k.sample_json, k.error, k.at"#;

/// Columns of a run, for [`run_from_row`].
const RUN_COLUMNS: &str = r#"id, user, host, pid, command, "trigger", started_at, finished_at,
    status, error, backfill_id"#;

/// Columns of a backfill without its units, for [`backfill_from_row`].
const BACKFILL_COLUMNS: &str = "id, user, command, created_at, finished_at, status, selection,
    partition_from, partition_to, partitions, force";

/// A catalog stored in one SQLite database.
///
/// The connection is shared behind a mutex: SQLite answers catalog queries
/// in microseconds, and WAL mode lets other processes read while one writes.
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
    location: String,
}

impl std::fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalog")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// An internal failure, turned into a [`CatalogError`] (which needs the
/// location) at the trait boundary. `?` converts driver errors into it.
#[derive(Debug)]
enum Fault {
    Sql(rusqlite::Error),
    Corrupt(String),
    TooNew(i64),
}

impl From<rusqlite::Error> for Fault {
    fn from(error: rusqlite::Error) -> Self {
        Fault::Sql(error)
    }
}

type Fallible<T> = std::result::Result<T, Fault>;

impl SqliteCatalog {
    /// Opens (creating it and its parent directory if needed) the catalog
    /// database at `path`, and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Self> {
        let location = path.display().to_string();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| CatalogError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| CatalogError::Database {
            location: location.clone(),
            source,
        })?;
        Self::init(conn, location)
    }

    /// Opens a fresh, private in-memory catalog (for tests and dry runs).
    pub fn open_in_memory() -> Result<Self> {
        let location = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|source| CatalogError::Database {
            location: location.clone(),
            source,
        })?;
        Self::init(conn, location)
    }

    /// The file path of the database, or `:memory:`.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn init(mut conn: Connection, location: String) -> Result<Self> {
        let setup = |conn: &mut Connection| -> Fallible<()> {
            // The busy timeout first: switching to WAL needs a lock too.
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrate(conn)
        };
        let result = setup(&mut conn);
        let catalog = SqliteCatalog {
            conn: Mutex::new(conn),
            location,
        };
        result.map_err(|fault| catalog.error(fault))?;
        Ok(catalog)
    }

    fn error(&self, fault: Fault) -> CatalogError {
        let location = self.location.clone();
        match fault {
            Fault::Sql(source) => CatalogError::Database { location, source },
            Fault::Corrupt(detail) => CatalogError::Corrupt { location, detail },
            Fault::TooNew(found) => CatalogError::TooNew {
                location,
                found,
                supported: SUPPORTED_VERSION,
            },
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written:
        // an open transaction is rolled back when it is dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, mapping its failure to a [`CatalogError`].
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Fallible<T>) -> Result<T> {
        let mut conn = self.lock();
        f(&mut conn).map_err(|fault| self.error(fault))
    }

    /// Runs `f` in one write transaction (taking the write lock up front, so
    /// that concurrent writers wait on the busy timeout instead of failing).
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Fallible<T>) -> Result<T> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }
}

/// Applies pending migrations, each in its own transaction.
fn migrate(conn: &mut Connection) -> Fallible<()> {
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

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_timestamp(text: &str, column: &str) -> Fallible<DateTime<Utc>> {
    if let Some(at) = parse_own_timestamp(text) {
        return Ok(at);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| Fault::Corrupt(format!("{column} `{text}` is not an RFC 3339 time: {e}")))
}

/// The exact form [`timestamp`] writes (`2024-05-01T12:34:56.123456Z`),
/// parsed without the general RFC 3339 machinery: status reads one per
/// committed partition. `None` for any other form.
fn parse_own_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..26)?,
    )?;
    Some(date.and_time(time).and_utc())
}

fn get_time(row: &Row<'_>, column: &str) -> Fallible<DateTime<Utc>> {
    let text: String = row.get(column)?;
    parse_timestamp(&text, column)
}

fn get_opt_time(row: &Row<'_>, column: &str) -> Fallible<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| parse_timestamp(&text, column)).transpose()
}

fn get_u64(row: &Row<'_>, column: &str) -> Fallible<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| Fault::Corrupt(format!("{column} is negative ({value})")))
}

fn to_i64(value: u64, what: &str) -> Fallible<i64> {
    i64::try_from(value).map_err(|_| {
        Fault::Corrupt(format!(
            "{what} {value} does not fit in a signed 64-bit integer"
        ))
    })
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn run_from_row(row: &Row<'_>) -> Fallible<RunRecord> {
    let pid: i64 = row.get("pid")?;
    let status: String = row.get("status")?;
    Ok(RunRecord {
        id: RunId(row.get("id")?),
        user: row.get("user")?,
        host: row.get("host")?,
        pid: u32::try_from(pid).map_err(|_| Fault::Corrupt(format!("pid {pid} out of range")))?,
        command: row.get("command")?,
        trigger: row.get("trigger")?,
        started_at: get_time(row, "started_at")?,
        finished_at: get_opt_time(row, "finished_at")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Fault::Corrupt(format!("unknown run status `{status}`")))?,
        error: row.get("error")?,
        backfill_id: row.get::<_, Option<String>>("backfill_id")?.map(BackfillId),
    })
}

fn attempt_from_row(row: &Row<'_>) -> Fallible<AttemptRecord> {
    let outcome: String = row.get("outcome")?;
    Ok(AttemptRecord {
        run_id: RunId(row.get("run_id")?),
        asset: row.get("asset")?,
        partition: row.get("partition")?,
        outcome: AttemptOutcome::parse(&outcome)
            .ok_or_else(|| Fault::Corrupt(format!("unknown attempt outcome `{outcome}`")))?,
        error: row.get("error")?,
        at: get_time(row, "at")?,
    })
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] (first), as an owned copy.
fn summary_from_row(row: &Row<'_>) -> Fallible<CurrentVersion> {
    summary_ref_from_row(row).map(|r| r.to_owned_version())
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] (first) by position,
/// borrowing the text columns from the row: this runs once per (asset,
/// partition) in [`Catalog::visit_current_versions`].
fn summary_ref_from_row<'r>(row: &'r Row<'_>) -> Fallible<CurrentVersionRef<'r>> {
    let text = |index: usize| -> Fallible<&'r str> {
        row.get_ref(index)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
                .into()
        })
    };
    let u64_at = |index: usize, column: &str| -> Fallible<u64> {
        let value: i64 = row.get(index)?;
        u64::try_from(value).map_err(|_| Fault::Corrupt(format!("{column} is negative ({value})")))
    };
    Ok(CurrentVersionRef {
        id: MaterializationId(row.get(0)?),
        run_id: text(1)?,
        asset: text(2)?,
        partition: text(3)?,
        code_version: text(4)?,
        input_version: text(5)?,
        data_version: text(6)?,
        row_count: u64_at(7, "row_count")?,
        bytes_written: u64_at(8, "bytes_written")?,
        wall_ms: u64_at(9, "wall_ms")?,
        committed_at: parse_timestamp(text(10)?, "committed_at")?,
    })
}

/// Reads a row selected with [`SUMMARY_COLUMNS`] followed by
/// `m.metrics_json`.
fn summary_with_metrics_from_row(
    row: &Row<'_>,
) -> Fallible<(CurrentVersion, MaterializationMetrics)> {
    let summary = summary_from_row(row)?;
    let metrics = row.get_ref(11)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, e.into())
    })?;
    let metrics = metrics_from_json(metrics, summary.id)?;
    Ok((summary, metrics))
}

/// Encodes metrics for `metrics_json`. JSON has no NaN or infinity (they
/// would be written as `null` and not read back), so they are refused.
fn metrics_to_json(metrics: &MaterializationMetrics) -> Fallible<String> {
    for (field, value) in [
        ("cpu_seconds", metrics.cpu_seconds),
        ("datafusion_seconds", metrics.datafusion_seconds),
        ("cost_usd", metrics.cost_usd),
    ] {
        if !value.is_finite() {
            return Err(Fault::Corrupt(format!(
                "metrics {field} is {value}, which cannot be stored (not finite)"
            )));
        }
    }
    serde_json::to_string(metrics)
        .map_err(|e| Fault::Corrupt(format!("cannot encode metrics: {e}")))
}

/// Decodes the `metrics_json` of materialization `id`.
fn metrics_from_json(text: &str, id: MaterializationId) -> Fallible<MaterializationMetrics> {
    serde_json::from_str(text).map_err(|e| {
        Fault::Corrupt(format!(
            "metrics of materialization {id} `{text}` are not valid metrics JSON: {e}"
        ))
    })
}

/// Reads a row selected with [`CHECK_COLUMNS`].
fn check_from_row(row: &Row<'_>) -> Fallible<CheckResultRecord> {
    let passed: i64 = row.get("passed")?;
    Ok(CheckResultRecord {
        id: row.get("id")?,
        run_id: RunId(row.get("run_id")?),
        asset: row.get("asset")?,
        partition: row.get("partition")?,
        materialization: row
            .get::<_, Option<i64>>("materialization_id")?
            .map(MaterializationId),
        at: get_time(row, "at")?,
        result: NewCheckResult {
            name: row.get("name")?,
            severity: row.get("severity")?,
            passed: passed != 0,
            failing_rows: get_u64(row, "failing_rows")?,
            sample_json: row.get("sample_json")?,
            error: row.get("error")?,
        },
    })
}

fn input_from_row(row: &Row<'_>) -> Fallible<UpstreamVersion> {
    let kind: String = row.get("kind")?;
    Ok(UpstreamVersion {
        name: row.get("name")?,
        kind: UpstreamKind::parse(&kind)
            .ok_or_else(|| Fault::Corrupt(format!("unknown upstream kind `{kind}`")))?,
        partition: row.get("partition")?,
        data_version: row.get("data_version")?,
        materialization: row
            .get::<_, Option<i64>>("upstream_materialization_id")?
            .map(MaterializationId),
    })
}

fn file_from_row(row: &Row<'_>) -> Fallible<FileRecord> {
    Ok(FileRecord {
        path: row.get("path")?,
        size_bytes: get_u64(row, "size_bytes")?,
        row_count: get_u64(row, "row_count")?,
    })
}

/// Reads a row selected with [`BACKFILL_COLUMNS`], without its units.
fn backfill_from_row(row: &Row<'_>) -> Fallible<BackfillRecord> {
    let status: String = row.get("status")?;
    let selection: String = row.get("selection")?;
    let partitions: Option<String> = row.get("partitions")?;
    let force: i64 = row.get("force")?;
    Ok(BackfillRecord {
        backfill: NewBackfill {
            id: BackfillId(row.get("id")?),
            user: row.get("user")?,
            command: row.get("command")?,
            created_at: get_time(row, "created_at")?,
            selection: from_json(&selection, "backfill selection")?,
            from: row.get("partition_from")?,
            to: row.get("partition_to")?,
            partitions: partitions
                .map(|text| from_json(&text, "backfill partitions"))
                .transpose()?,
            force: force != 0,
            units: Vec::new(),
        },
        finished_at: get_opt_time(row, "finished_at")?,
        status: BackfillStatus::parse(&status)
            .ok_or_else(|| Fault::Corrupt(format!("unknown backfill status `{status}`")))?,
    })
}

/// Reads an `(asset, partition)` pair selected in that order.
fn unit_from_row(row: &Row<'_>) -> Fallible<PartitionRef> {
    Ok(PartitionRef {
        asset: row.get(0)?,
        partition: row.get(1)?,
    })
}

/// Encodes a list of strings as a JSON array.
fn to_json(values: &[String], what: &str) -> Fallible<String> {
    serde_json::to_string(values).map_err(|e| Fault::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Decodes a JSON array of strings.
fn from_json(text: &str, what: &str) -> Fallible<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        Fault::Corrupt(format!(
            "{what} `{text}` is not a JSON array of strings: {e}"
        ))
    })
}

fn fingerprint_from_row(row: &Row<'_>) -> Fallible<SourceFingerprint> {
    Ok(SourceFingerprint {
        source: row.get("source")?,
        fingerprint: row.get("fingerprint")?,
        data_version: row.get("data_version")?,
        observed_at: get_time(row, "observed_at")?,
    })
}

/// Inserts an attempt and moves the (asset, partition)'s latest-attempt pointer.
fn insert_attempt(tx: &rusqlite::Transaction<'_>, attempt: &NewAttempt) -> Fallible<()> {
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
fn insert_attempt_parts(tx: &rusqlite::Transaction<'_>, a: &AttemptParts<'_>) -> Fallible<()> {
    tx.prepare_cached(
        r#"INSERT INTO attempts (run_id, asset, "partition", outcome, error, at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#,
    )?
    .execute(params![
        a.run_id.0,
        a.asset,
        a.partition,
        a.outcome.as_str(),
        a.error,
        a.at
    ])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached(
        r#"INSERT INTO latest_attempts (asset, "partition", attempt_id) VALUES (?1, ?2, ?3)
           ON CONFLICT (asset, "partition") DO UPDATE SET attempt_id = excluded.attempt_id"#,
    )?
    .execute(params![a.asset, a.partition, id])?;
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
    tx: &rusqlite::Transaction<'_>,
    target: &CheckTarget<'_>,
    results: &[NewCheckResult],
) -> Fallible<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        r#"INSERT INTO check_results (run_id, asset, "partition", materialization_id, name,
               severity, passed, failing_rows, sample_json, error, at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"#,
    )?;
    let mut latest = tx.prepare_cached(
        r#"INSERT INTO latest_check_results (asset, "partition", name, check_result_id)
           VALUES (?1, ?2, ?3, ?4)
           ON CONFLICT (asset, "partition", name)
           DO UPDATE SET check_result_id = excluded.check_result_id"#,
    )?;
    for result in results {
        insert.execute(params![
            target.run_id.0,
            target.asset,
            target.partition,
            target.materialization,
            result.name,
            result.severity,
            result.passed,
            to_i64(result.failing_rows, "failing_rows")?,
            result.sample_json,
            result.error,
            target.at,
        ])?;
        let id = tx.last_insert_rowid();
        latest.execute(params![target.asset, target.partition, result.name, id])?;
    }
    Ok(())
}

impl Catalog for SqliteCatalog {
    fn begin_run(&self, run: &NewRun) -> Result<()> {
        self.with(|conn| {
            conn.prepare_cached(
                r#"INSERT INTO runs (id, user, host, pid, command, "trigger", started_at, status,
                       backfill_id)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8)"#,
            )?
            .execute(params![
                run.id.0,
                run.user,
                run.host,
                i64::from(run.pid),
                run.command,
                run.trigger,
                timestamp(run.started_at),
                run.backfill_id.as_ref().map(|id| id.0.as_str()),
            ])?;
            Ok(())
        })
    }

    fn finish_run(&self, id: &RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        let finished_at = (status != RunStatus::Running).then(|| timestamp(Utc::now()));
        self.with(|conn| {
            conn.prepare_cached(
                "UPDATE runs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id.0, status.as_str(), error, finished_at])?;
            Ok(())
        })
    }

    fn mark_crashed_runs(&self, is_alive: &dyn Fn(&RunRecord) -> bool) -> Result<Vec<RunId>> {
        let running = self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY id"
            ))?;
            stmt.query_and_then([], run_from_row)?
                .collect::<Fallible<Vec<_>>>()
        })?;
        // Ask outside the lock: the callback may be slow or use the catalog.
        let dead: Vec<RunRecord> = running.into_iter().filter(|run| !is_alive(run)).collect();
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE runs SET status = 'crashed', error = ?2
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

    fn record_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        self.write(|tx| insert_attempt(tx, attempt))
    }

    fn commit_materialization(&self, m: &NewMaterialization) -> Result<MaterializationId> {
        let committed_at = timestamp(m.committed_at);
        let metrics_json = metrics_to_json(&m.metrics).map_err(|f| self.error(f))?;
        self.write(|tx| {
            tx.prepare_cached(
                r#"INSERT INTO materializations (run_id, asset, "partition", code_version,
                       input_version, data_version, row_count, bytes_written, wall_ms,
                       schema_json, committed_at, metrics_json)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"#,
            )?
            .execute(params![
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
            ])?;
            let id = tx.last_insert_rowid();

            let mut inputs = tx.prepare_cached(
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

            let mut files = tx.prepare_cached(
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

            tx.prepare_cached(
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
            )?
            .execute(params![id])?;
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
            let mut stmt = conn.prepare_cached(&format!(
                r#"SELECT {CURRENT_SUMMARY_COLUMNS} FROM current_versions
                   ORDER BY asset, "partition""#
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                visit(&summary_ref_from_row(row)?);
            }
            Ok(())
        })
    }

    fn materialization(&self, id: MaterializationId) -> Result<Option<MaterializationRecord>> {
        self.with(|conn| {
            // One read transaction, so the four reads see one snapshot.
            let tx = conn.transaction()?;
            let row = tx
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json, m.schema_json
                     FROM materializations AS m
                     WHERE m.id = ?1"
                ))?
                .query_row([id.0], |row| {
                    Ok((
                        summary_with_metrics_from_row(row),
                        row.get::<_, String>("schema_json")?,
                    ))
                })
                .optional()?;
            let Some((summary, schema_json)) = row else {
                return Ok(None);
            };
            let (summary, metrics) = summary?;
            let inputs = tx
                .prepare_cached(
                    r#"SELECT name, kind, "partition", data_version, upstream_materialization_id
                       FROM materialization_inputs WHERE materialization_id = ?1
                       ORDER BY position"#,
                )?
                .query_and_then([id.0], input_from_row)?
                .collect::<Fallible<Vec<_>>>()?;
            let files = tx
                .prepare_cached(
                    "SELECT path, size_bytes, row_count
                     FROM materialization_files WHERE materialization_id = ?1
                     ORDER BY position",
                )?
                .query_and_then([id.0], file_from_row)?
                .collect::<Fallible<Vec<_>>>()?;
            let checks = tx
                .prepare_cached(&format!(
                    "SELECT {CHECK_COLUMNS} FROM check_results AS k
                     WHERE k.materialization_id = ?1 ORDER BY k.id"
                ))?
                .query_and_then([id.0], |row| check_from_row(row).map(|k| k.result))?
                .collect::<Fallible<Vec<_>>>()?;
            tx.finish()?;
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
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM materializations AS m
                 WHERE m.asset = ?1 ORDER BY m.id DESC LIMIT ?2"
            ))?;
            stmt.query_and_then(params![asset, limit(limit_to)], summary_from_row)?
                .collect()
        })
    }

    fn latest_attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                r#"SELECT a.run_id, a.asset, a."partition", a.outcome, a.error, a.at
                   FROM latest_attempts AS l
                   JOIN attempts AS a ON a.id = l.attempt_id
                   ORDER BY l.asset, l."partition""#,
            )?;
            stmt.query_and_then([], attempt_from_row)?.collect()
        })
    }

    fn visit_current_versions_of(
        &self,
        assets: &[String],
        visit: &mut dyn FnMut(&CurrentVersionRef<'_>),
    ) -> Result<()> {
        self.with(|conn| {
            // One read transaction: every asset from the same snapshot.
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    r#"SELECT {CURRENT_SUMMARY_COLUMNS} FROM current_versions
                       WHERE asset = ?1 ORDER BY "partition""#
                ))?;
                for asset in assets {
                    let mut rows = stmt.query([asset])?;
                    while let Some(row) = rows.next()? {
                        visit(&summary_ref_from_row(row)?);
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn latest_attempt_of(&self, asset: &str) -> Result<Option<AttemptRecord>> {
        self.with(|conn| {
            conn.prepare_cached(
                r#"SELECT run_id, asset, "partition", outcome, error, at
                   FROM attempts WHERE asset = ?1 ORDER BY id DESC LIMIT 1"#,
            )?
            .query_and_then([asset], attempt_from_row)?
            .next()
            .transpose()
        })
    }

    fn latest_failed_attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.with(|conn| {
            // Walks the failed attempts only (a partial index), keeping
            // those that are still their unit's latest.
            let mut stmt = conn.prepare_cached(
                r#"SELECT a.run_id, a.asset, a."partition", a.outcome, a.error, a.at
                   FROM attempts AS a INDEXED BY attempts_failed
                   JOIN latest_attempts AS l
                     ON l.asset = a.asset AND l."partition" = a."partition"
                    AND l.attempt_id = a.id
                   WHERE a.outcome = 'failed'
                   ORDER BY a.asset, a."partition""#,
            )?;
            stmt.query_and_then([], attempt_from_row)?.collect()
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
            let mut stmt = conn.prepare_cached(&format!(
                r#"SELECT {CHECK_COLUMNS}
                   FROM latest_check_results AS l
                   JOIN check_results AS k ON k.id = l.check_result_id
                   ORDER BY l.asset, l."partition", l.name"#
            ))?;
            stmt.query_and_then([], check_from_row)?.collect()
        })
    }

    fn latest_failing_error_checks(&self) -> Result<Vec<CheckResultRecord>> {
        self.with(|conn| {
            // Walks the failing error results only (a partial index),
            // keeping those that are still their check's latest.
            let mut stmt = conn.prepare_cached(&format!(
                r#"SELECT {CHECK_COLUMNS}
                   FROM check_results AS k INDEXED BY check_results_failing_errors
                   JOIN latest_check_results AS l
                     ON l.asset = k.asset AND l."partition" = k."partition"
                    AND l.name = k.name AND l.check_result_id = k.id
                   WHERE k.passed = 0 AND k.severity = 'error'
                   ORDER BY k.asset, k."partition", k.name"#
            ))?;
            stmt.query_and_then([], check_from_row)?.collect()
        })
    }

    fn check_results(&self, asset: &str, limit_to: usize) -> Result<Vec<CheckResultRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CHECK_COLUMNS} FROM check_results AS k
                 WHERE k.asset = ?1 ORDER BY k.id DESC LIMIT ?2"
            ))?;
            stmt.query_and_then(params![asset, limit(limit_to)], check_from_row)?
                .collect()
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
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json FROM materializations AS m
                     WHERE m.committed_at >= ?1
                     ORDER BY m.committed_at, m.id"
                ))?;
                stmt.query_and_then([timestamp(since)], summary_with_metrics_from_row)?
                    .collect()
            }
            None => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}, m.metrics_json FROM materializations AS m
                     ORDER BY m.committed_at, m.id"
                ))?;
                stmt.query_and_then([], summary_with_metrics_from_row)?
                    .collect()
            }
        })
    }

    fn current_metrics(&self) -> Result<Vec<(CurrentVersion, MaterializationMetrics)>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                r#"SELECT {SUMMARY_COLUMNS}, m.metrics_json
                   FROM current_versions AS c
                   JOIN materializations AS m ON m.id = c.materialization_id
                   ORDER BY c.asset, c."partition""#
            ))?;
            stmt.query_and_then([], summary_with_metrics_from_row)?
                .collect()
        })
    }

    fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO audit_log (at, principal, host, git_commit, action, target, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                timestamp(entry.at),
                entry.principal,
                entry.host,
                entry.git_commit,
                entry.action,
                entry.target,
                entry.details,
            ])?;
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
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, principal, host, git_commit, action, target, details FROM audit_log
                 WHERE at >= ?1 AND (?2 IS NULL OR principal = ?2) ORDER BY id",
            )?;
            stmt.query_and_then(params![since, principal], |row| {
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
            })?
            .collect()
        })
    }

    fn all_files(&self) -> Result<Vec<StoredFile>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                r#"SELECT f.materialization_id, f.path, m.committed_at, m.expired_at,
                          (c.materialization_id IS NOT NULL) AS is_current
                   FROM materialization_files f
                   JOIN materializations m ON m.id = f.materialization_id
                   LEFT JOIN current_versions c ON c.materialization_id = m.id
                   ORDER BY f.materialization_id, f.position"#,
            )?;
            stmt.query_and_then([], |row| {
                Ok(StoredFile {
                    materialization: MaterializationId(row.get(0)?),
                    path: row.get(1)?,
                    committed_at: get_time(row, "committed_at")?,
                    expired: row.get::<_, Option<String>>(3)?.is_some(),
                    is_current: row.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn mark_expired(&self, ids: &[MaterializationId], at: DateTime<Utc>) -> Result<()> {
        let at = timestamp(at);
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
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
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1"
            ))?;
            stmt.query_and_then([limit(limit_to)], run_from_row)?
                .collect()
        })
    }

    fn source_fingerprints(&self) -> Result<Vec<SourceFingerprint>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source, fingerprint, data_version, observed_at
                 FROM source_fingerprints ORDER BY source",
            )?;
            stmt.query_and_then([], fingerprint_from_row)?.collect()
        })
    }

    fn put_source_fingerprint(&self, fingerprint: &SourceFingerprint) -> Result<()> {
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO source_fingerprints (source, fingerprint, data_version, observed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source) DO UPDATE SET
                     fingerprint = excluded.fingerprint,
                     data_version = excluded.data_version,
                     observed_at = excluded.observed_at",
            )?
            .execute(params![
                fingerprint.source,
                fingerprint.fingerprint,
                fingerprint.data_version,
                timestamp(fingerprint.observed_at),
            ])?;
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
            tx.prepare_cached(
                "INSERT INTO backfills (id, user, command, created_at, status, selection,
                     partition_from, partition_to, partitions, force)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                b.id.0,
                b.user,
                b.command,
                timestamp(b.created_at),
                selection,
                b.from,
                b.to,
                partitions,
                b.force,
            ])?;
            // One prepared statement for every unit, in the same transaction.
            let mut units = tx.prepare_cached(
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
        self.with(|conn| {
            // One read transaction, so the backfill and its units agree.
            let tx = conn.transaction()?;
            let record = tx
                .prepare_cached(&format!(
                    "SELECT {BACKFILL_COLUMNS} FROM backfills WHERE id = ?1"
                ))?
                .query_and_then([&id.0], backfill_from_row)?
                .next()
                .transpose()?;
            let Some(mut record) = record else {
                return Ok(None);
            };
            record.backfill.units = tx
                .prepare_cached(
                    r#"SELECT asset, "partition" FROM backfill_units
                       WHERE backfill_id = ?1 ORDER BY position"#,
                )?
                .query_and_then([&id.0], unit_from_row)?
                .collect::<Fallible<Vec<_>>>()?;
            tx.finish()?;
            Ok(Some(record))
        })
    }

    fn finish_backfill(&self, id: &BackfillId, status: BackfillStatus) -> Result<()> {
        let finished_at = (status != BackfillStatus::Running).then(|| timestamp(Utc::now()));
        self.with(|conn| {
            conn.prepare_cached(
                "UPDATE backfills SET status = ?2, finished_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id.0, status.as_str(), finished_at])?;
            Ok(())
        })
    }

    fn reopen_backfill(&self, id: &BackfillId) -> Result<()> {
        self.finish_backfill(id, BackfillStatus::Running)
    }

    fn committed_in_backfill(&self, id: &BackfillId) -> Result<Vec<PartitionRef>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                r#"SELECT DISTINCT m.asset, m."partition"
                   FROM runs AS r
                   JOIN materializations AS m ON m.run_id = r.id
                   WHERE r.backfill_id = ?1
                   ORDER BY m.asset, m."partition""#,
            )?;
            stmt.query_and_then([&id.0], unit_from_row)?.collect()
        })
    }

    fn backfills(&self, limit_to: usize) -> Result<Vec<BackfillRecord>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {BACKFILL_COLUMNS} FROM backfills
                 ORDER BY created_at DESC, id DESC LIMIT ?1"
            ))?;
            stmt.query_and_then([limit(limit_to)], backfill_from_row)?
                .collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::ColumnStats;
    use chrono::{TimeZone, Timelike};

    fn at(seconds: i64) -> DateTime<Utc> {
        // Microsecond precision, like what the catalog stores.
        DateTime::from_timestamp_micros(1_700_000_000_000_000 + seconds * 1_000_000 + 123_456)
            .unwrap()
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
            let catalog = SqliteCatalog::open(&path).unwrap();
            catalog.begin_run(&new_run("r1", 0)).unwrap();
        }
        let catalog = SqliteCatalog::open(&path).unwrap();
        let catalog2 = SqliteCatalog::open(&path).unwrap();
        let runs = catalog2.runs(10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, RunId("r1".to_owned()));
        assert_eq!(runs[0].started_at, at(0));
        let (count, max): (i64, i64) = catalog
            .lock()
            .query_row(
                "SELECT COUNT(*), MAX(version) FROM schema_migrations",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(count, SUPPORTED_VERSION);
        assert_eq!(max, SUPPORTED_VERSION);
        let mode: String = catalog
            .lock()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = catalog
            .lock()
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn too_new_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        drop(SqliteCatalog::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'later')",
                [SUPPORTED_VERSION + 1],
            )
            .unwrap();
        }
        let error = SqliteCatalog::open(&path).unwrap_err();
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

    #[test]
    fn commit_then_read_back() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn commit_is_atomic() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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
            matches!(error, CatalogError::Database { ref location, .. } if location == ":memory:")
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

    #[test]
    fn latest_failed_attempts_are_the_latest_attempts_that_failed() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn latest_attempts_picks_the_newest() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn runs_and_crash_detection() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn source_fingerprints_upsert() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn unparsable_timestamp_is_corrupt() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
        catalog
            .lock()
            .execute(
                "INSERT INTO source_fingerprints VALUES ('s', 'f', 'v', 'yesterday')",
                [],
            )
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

    #[test]
    fn backfill_round_trip_keeps_unit_order() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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
        let count: i64 = catalog
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM backfill_units WHERE backfill_id = 'b1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(count, 1_000);
    }

    #[test]
    fn committed_in_backfill_counts_only_its_runs_commits() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn finish_and_reopen_backfill() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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
        assert!(first_finish >= before - chrono::Duration::seconds(1));

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

        let catalog = SqliteCatalog::open(&path).unwrap();
        let version: i64 = catalog
            .lock()
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
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
        let catalog = SqliteCatalog::open(&path).unwrap();
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

    #[test]
    fn metrics_and_checks_round_trip() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn bad_metrics_and_checks_leave_nothing_behind() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn unparsable_metrics_are_corrupt() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
        catalog.begin_run(&new_run("r1", 0)).unwrap();
        let id = catalog
            .commit_materialization(&new_materialization("r1", "orders", "d1"))
            .unwrap();
        catalog
            .lock()
            .execute(
                "UPDATE materializations SET metrics_json = '{\"cpu_seconds\":\"fast\"}'",
                [],
            )
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

    #[test]
    fn failed_attempt_checks_are_superseded_by_later_ones() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

    #[test]
    fn latest_check_results_of_many_partitions() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

        // The failing error results alone, exactly those of the full read.
        let failing = catalog.latest_failing_error_checks().unwrap();
        let expected: Vec<&CheckResultRecord> = latest
            .iter()
            .filter(|k| !k.result.passed && k.result.severity == "error")
            .collect();
        assert_eq!(failing.len(), 20 * 10);
        assert_eq!(failing.iter().collect::<Vec<_>>(), expected);
        // A newer commit whose checks pass clears that partition.
        let mut fixed = partition_materialization("r2", "asset_00", "2024-000");
        fixed.checks = checks.to_vec();
        catalog.commit_materialization(&fixed).unwrap();
        let failing = catalog.latest_failing_error_checks().unwrap();
        assert_eq!(failing.len(), 20 * 10 - 1);
        assert!(
            !failing
                .iter()
                .any(|k| k.asset == "asset_00" && k.partition == "2024-000")
        );
    }

    #[test]
    fn metrics_since_filters_by_time_and_keeps_old_versions() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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

        let catalog = SqliteCatalog::open(&path).unwrap();
        let version: i64 = catalog
            .lock()
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
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
        let catalog = SqliteCatalog::open(&path).unwrap();
        assert_eq!(catalog.metrics_since(None).unwrap().len(), 2);
        assert_eq!(catalog.current_metrics().unwrap()[0].1, some_metrics(7));
        assert_eq!(catalog.check_results("customers", 10).unwrap().len(), 1);
    }

    #[test]
    fn current_versions_of_many_partitions() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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
        let catalog = std::sync::Arc::new(SqliteCatalog::open_in_memory().unwrap());
        let poisoner = std::sync::Arc::clone(&catalog);
        let joined = std::thread::spawn(move || {
            let _guard = poisoner.conn.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(catalog.conn.is_poisoned());
        catalog.begin_run(&new_run("r1", 0)).unwrap();
        assert_eq!(catalog.runs(1).unwrap().len(), 1);
    }

    #[test]
    fn audit_log_is_append_only() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
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
        let conn = catalog.lock();
        assert!(
            conn.execute("UPDATE audit_log SET principal = 'x'", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM audit_log", []).is_err());
        drop(conn);
        assert_eq!(catalog.audit_log(None, Some("ann")).unwrap().len(), 1);
    }
}
