//! The PostgreSQL driver: connecting (`postgres://user@host:port/db`,
//! password from the URL or `PGPASSWORD`), running statements from
//! synchronous code, and the PostgreSQL schema.
//!
//! The catalog is synchronous and is called from inside async runtimes, so
//! the synchronous `postgres` crate (which starts a runtime per call) cannot
//! be used. Instead `tokio-postgres`' connection runs on a thread of its own
//! with its own small runtime, and each statement is a future blocked on
//! from the caller's thread (`futures::executor::block_on`), which only
//! exchanges messages with that connection: it needs no runtime and works
//! from any thread.
//!
//! Several Cairn processes share one database: every write transaction
//! first takes one transaction-scoped advisory lock ([`WRITE_LOCK`]), so
//! writers are serialised exactly as SQLite serialises them, and the
//! read-then-write decisions of the catalog (queue claims, ticks,
//! incidents) hold across processes. Reads never wait for it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use futures::executor::block_on;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::migrations::SUPPORTED_VERSION;
use super::rows::timestamp;
use super::{Fallible, Fault};

/// The advisory lock every write transaction holds (an arbitrary constant,
/// "cairn" in ASCII).
const WRITE_LOCK: i64 = 0x63_6169_726E;

/// How long connecting may take before the catalog gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to PostgreSQL and the statements prepared on it.
pub(crate) struct PgSession {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

impl PgSession {
    /// Connects to `url` (a libpq URL), taking the password from
    /// `PGPASSWORD` when the URL has none. Gives up after
    /// [`CONNECT_TIMEOUT`].
    pub(crate) fn connect(url: &str) -> Fallible<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(Fault::Postgres)?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER").or_else(|_| std::env::var("USER"));
            if let Ok(user) = user {
                config.user(user);
            }
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("cairn");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("cairn-postgres".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = sender.send(Err(Fault::Corrupt(format!(
                            "cannot start the PostgreSQL connection's runtime: {error}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let connected =
                        tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await;
                    match connected {
                        Ok(Ok((client, connection))) => {
                            if sender.send(Ok(client)).is_ok() {
                                // Runs until the client is dropped.
                                let _ = connection.await;
                            }
                        }
                        Ok(Err(error)) => {
                            let _ = sender.send(Err(Fault::Postgres(error)));
                        }
                        Err(_) => {
                            let _ = sender.send(Err(Fault::Unreachable(format!(
                                "no answer within {} s",
                                CONNECT_TIMEOUT.as_secs()
                            ))));
                        }
                    }
                });
            })
            .map_err(|error| {
                Fault::Corrupt(format!(
                    "cannot start the PostgreSQL connection thread: {error}"
                ))
            })?;
        let client = receiver.recv().map_err(|_| {
            Fault::Unreachable("the connection thread ended before connecting".to_owned())
        })??;
        Ok(PgSession {
            client,
            statements: Mutex::new(HashMap::new()),
        })
    }

    /// The statement prepared from `sql` (written with `?N` placeholders),
    /// prepared on first use.
    pub(crate) fn prepare(&self, sql: &str) -> Fallible<Statement> {
        let mut statements = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(statement) = statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = block_on(self.client.prepare(&dollar_placeholders(sql)))?;
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(
        &self,
        statement: &Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Fallible<u64> {
        Ok(block_on(self.client.execute(statement, params))?)
    }

    pub(crate) fn query(
        &self,
        statement: &Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Fallible<Vec<Row>> {
        Ok(block_on(self.client.query(statement, params))?)
    }

    /// Runs `sql` (several statements, no parameters) as one batch.
    pub(crate) fn batch(&self, sql: &str) -> Fallible<()> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }

    /// Starts a write transaction, waiting for the catalog's write lock.
    pub(crate) fn begin_write(&self) -> Fallible<()> {
        self.batch(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
        ))
    }

    /// Starts a read transaction that sees one snapshot.
    pub(crate) fn begin_read(&self) -> Fallible<()> {
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    }

    /// Runs `f` inside a transaction begun by `begin`, committing when it
    /// succeeds and rolling back when it fails.
    pub(crate) fn transaction<T>(
        &self,
        begin: fn(&Self) -> Fallible<()>,
        f: impl FnOnce() -> Fallible<T>,
    ) -> Fallible<T> {
        begin(self)?;
        match f() {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(fault) => {
                // The connection may be gone; the fault says why.
                let _ = self.batch("ROLLBACK");
                Err(fault)
            }
        }
    }

    /// Brings the schema to [`SUPPORTED_VERSION`], in one transaction
    /// holding the write lock (two processes opening a fresh database
    /// migrate it once).
    pub(crate) fn migrate(&self) -> Fallible<()> {
        self.transaction(Self::begin_write, || {
            self.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    BIGINT PRIMARY KEY,
                     applied_at TEXT COLLATE \"C\" NOT NULL
                 )",
            )?;
            let current: i64 = block_on(self.client.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            ))?
            .try_get(0)?;
            if current > SUPPORTED_VERSION {
                return Err(Fault::TooNew(current));
            }
            for (version, sql) in POSTGRES_MIGRATIONS {
                if *version <= current {
                    continue;
                }
                self.batch(sql)?;
                block_on(self.client.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &timestamp(Utc::now())],
                ))?;
            }
            Ok(())
        })
    }
}

/// `?N` placeholders (SQLite's) as `$N` (PostgreSQL's). The catalog's SQL
/// has no `?` inside string literals.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The PostgreSQL schema, as `(version it brings the schema to, SQL)`.
///
/// PostgreSQL support arrived at SQLite schema version 11, so its first
/// entry creates that schema at once. A later schema change appends an
/// entry here *and* a migration to the SQLite list, with the same version.
pub(crate) const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[(11, BASELINE), (12, UNIT_CLAIMS_C)];

/// Migration 12 ([`UNIT_CLAIMS`](super::migrations::UNIT_CLAIMS)), its text
/// compared byte by byte as every catalog text is.
const UNIT_CLAIMS_C: &str = r#"
CREATE TABLE unit_claims (
    asset       TEXT COLLATE "C" NOT NULL,
    "partition" TEXT COLLATE "C" NOT NULL,
    run_id      TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (asset, "partition")
);
CREATE INDEX unit_claims_by_run ON unit_claims (run_id);
"#;

const _: () = assert!(
    POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.len() - 1].0 == SUPPORTED_VERSION,
    "the PostgreSQL schema must reach the SQLite schema's version"
);

/// The schema of SQLite version 11 in PostgreSQL: the same tables, columns
/// and indexes; text compared byte by byte (`COLLATE "C"`, as SQLite does,
/// so every `ORDER BY` gives the same order); 64-bit integers; the audit
/// log append-only by triggers.
const BASELINE: &str = r#"
CREATE TABLE runs (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    "user"              TEXT COLLATE "C" NOT NULL,
    host                TEXT COLLATE "C" NOT NULL,
    pid                 BIGINT NOT NULL,
    command             TEXT COLLATE "C" NOT NULL,
    "trigger"           TEXT COLLATE "C" NOT NULL,
    started_at          TEXT COLLATE "C" NOT NULL,
    finished_at         TEXT COLLATE "C",
    status              TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'crashed', 'cancelled')),
    error               TEXT COLLATE "C",
    backfill_id         TEXT COLLATE "C" NULL,
    queued_at           TEXT COLLATE "C" NULL,
    request             TEXT COLLATE "C" NULL,
    cancel_requested_at TEXT COLLATE "C" NULL
);
CREATE INDEX runs_by_start ON runs (started_at, id);
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';
CREATE INDEX runs_by_backfill ON runs (backfill_id) WHERE backfill_id IS NOT NULL;
CREATE INDEX runs_queue ON runs (id)
    WHERE request IS NOT NULL AND status IN ('queued', 'running');

CREATE TABLE run_claims (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    asset       TEXT COLLATE "C" NOT NULL,
    "partition" TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, asset, "partition")
);

CREATE TABLE attempts (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    asset       TEXT COLLATE "C" NOT NULL,
    "partition" TEXT COLLATE "C" NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL
        CHECK (outcome IN ('materialized', 'fresh', 'failed', 'skipped')),
    error       TEXT COLLATE "C",
    at          TEXT COLLATE "C" NOT NULL
);
CREATE INDEX attempts_by_asset ON attempts (asset, "partition", id);
CREATE INDEX attempts_by_run ON attempts (run_id);
CREATE INDEX attempts_failed ON attempts (asset, "partition", id) WHERE outcome = 'failed';

CREATE TABLE latest_attempts (
    asset       TEXT COLLATE "C" NOT NULL,
    "partition" TEXT COLLATE "C" NOT NULL,
    attempt_id  BIGINT NOT NULL REFERENCES attempts (id),
    PRIMARY KEY (asset, "partition")
);

CREATE TABLE materializations (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id        TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    asset         TEXT COLLATE "C" NOT NULL,
    "partition"   TEXT COLLATE "C" NOT NULL,
    code_version  TEXT COLLATE "C" NOT NULL,
    input_version TEXT COLLATE "C" NOT NULL,
    data_version  TEXT COLLATE "C" NOT NULL,
    row_count     BIGINT NOT NULL CHECK (row_count >= 0),
    bytes_written BIGINT NOT NULL CHECK (bytes_written >= 0),
    wall_ms       BIGINT NOT NULL CHECK (wall_ms >= 0),
    schema_json   TEXT COLLATE "C" NOT NULL,
    committed_at  TEXT COLLATE "C" NOT NULL,
    metrics_json  TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    expired_at    TEXT COLLATE "C"
);
CREATE INDEX materializations_by_asset ON materializations (asset, id);
CREATE INDEX materializations_by_commit ON materializations (committed_at, id);
CREATE INDEX materializations_by_run ON materializations (run_id);

CREATE TABLE materialization_inputs (
    materialization_id          BIGINT NOT NULL
        REFERENCES materializations (id) ON DELETE CASCADE,
    position                    BIGINT NOT NULL,
    name                        TEXT COLLATE "C" NOT NULL,
    kind                        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('source', 'asset')),
    "partition"                 TEXT COLLATE "C" NOT NULL,
    data_version                TEXT COLLATE "C" NOT NULL,
    upstream_materialization_id BIGINT REFERENCES materializations (id),
    PRIMARY KEY (materialization_id, position)
);
CREATE INDEX materialization_inputs_by_upstream
    ON materialization_inputs (upstream_materialization_id)
    WHERE upstream_materialization_id IS NOT NULL;

CREATE TABLE materialization_files (
    materialization_id BIGINT NOT NULL
        REFERENCES materializations (id) ON DELETE CASCADE,
    position           BIGINT NOT NULL,
    path               TEXT COLLATE "C" NOT NULL,
    size_bytes         BIGINT NOT NULL CHECK (size_bytes >= 0),
    row_count          BIGINT NOT NULL CHECK (row_count >= 0),
    PRIMARY KEY (materialization_id, position)
);

CREATE TABLE current_versions (
    asset              TEXT COLLATE "C" NOT NULL,
    "partition"        TEXT COLLATE "C" NOT NULL,
    materialization_id BIGINT NOT NULL REFERENCES materializations (id),
    run_id             TEXT COLLATE "C" NOT NULL,
    code_version       TEXT COLLATE "C" NOT NULL,
    input_version      TEXT COLLATE "C" NOT NULL,
    data_version       TEXT COLLATE "C" NOT NULL,
    row_count          BIGINT NOT NULL,
    bytes_written      BIGINT NOT NULL,
    wall_ms            BIGINT NOT NULL,
    committed_at       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (asset, "partition")
);
CREATE INDEX current_versions_by_materialization ON current_versions (materialization_id);

CREATE TABLE source_fingerprints (
    source       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    fingerprint  TEXT COLLATE "C" NOT NULL,
    data_version TEXT COLLATE "C" NOT NULL,
    observed_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE backfills (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    "user"         TEXT COLLATE "C" NOT NULL,
    command        TEXT COLLATE "C" NOT NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    finished_at    TEXT COLLATE "C",
    status         TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed')),
    selection      TEXT COLLATE "C" NOT NULL,
    partition_from TEXT COLLATE "C",
    partition_to   TEXT COLLATE "C",
    partitions     TEXT COLLATE "C",
    force          BIGINT NOT NULL CHECK (force IN (0, 1))
);
CREATE INDEX backfills_by_creation ON backfills (created_at, id);

CREATE TABLE backfill_units (
    backfill_id TEXT COLLATE "C" NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    asset       TEXT COLLATE "C" NOT NULL,
    "partition" TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (backfill_id, position)
);

CREATE TABLE check_results (
    id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id             TEXT COLLATE "C" NOT NULL REFERENCES runs (id),
    asset              TEXT COLLATE "C" NOT NULL,
    "partition"        TEXT COLLATE "C" NOT NULL,
    materialization_id BIGINT NULL REFERENCES materializations (id),
    name               TEXT COLLATE "C" NOT NULL,
    severity           TEXT COLLATE "C" NOT NULL CHECK (severity IN ('warn', 'error')),
    passed             BIGINT NOT NULL CHECK (passed IN (0, 1)),
    failing_rows       BIGINT NOT NULL CHECK (failing_rows >= 0),
    sample_json        TEXT COLLATE "C" NOT NULL,
    error              TEXT COLLATE "C" NULL,
    at                 TEXT COLLATE "C" NOT NULL
);
CREATE INDEX check_results_by_asset ON check_results (asset, id);
CREATE INDEX check_results_by_check ON check_results (asset, "partition", name, id);
CREATE INDEX check_results_by_materialization ON check_results (materialization_id)
    WHERE materialization_id IS NOT NULL;
CREATE INDEX check_results_failing ON check_results (asset, "partition", name, id)
    WHERE passed = 0;

CREATE TABLE latest_check_results (
    asset           TEXT COLLATE "C" NOT NULL,
    "partition"     TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    check_result_id BIGINT NOT NULL REFERENCES check_results (id),
    PRIMARY KEY (asset, "partition", name)
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at          TEXT COLLATE "C" NOT NULL,
    principal   TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    git_commit  TEXT COLLATE "C",
    action      TEXT COLLATE "C" NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    details     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_log_by_principal ON audit_log (principal, id);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE automation_state (
    asset             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    last_tick_at      TEXT COLLATE "C" NOT NULL,
    last_requested_at TEXT COLLATE "C" NULL
);

CREATE TABLE automation_evaluations (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tick_at   TEXT COLLATE "C" NOT NULL,
    asset     TEXT COLLATE "C" NOT NULL,
    condition TEXT COLLATE "C" NOT NULL,
    fired     BIGINT NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL,
    run_id    TEXT COLLATE "C" NULL
);
CREATE INDEX automation_evaluations_by_tick ON automation_evaluations (tick_at, asset);

CREATE TABLE alert_incidents (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind          TEXT COLLATE "C" NOT NULL
        CHECK (kind IN ('run_failed', 'check_failed', 'freshness_missed')),
    asset         TEXT COLLATE "C" NOT NULL,
    "partition"   TEXT COLLATE "C" NOT NULL,
    opened_at     TEXT COLLATE "C" NOT NULL,
    closed_at     TEXT COLLATE "C" NULL,
    detail        TEXT COLLATE "C" NOT NULL,
    run_id        TEXT COLLATE "C" NULL,
    closed_run_id TEXT COLLATE "C" NULL
);
CREATE UNIQUE INDEX alert_incidents_open
    ON alert_incidents (kind, asset, "partition") WHERE closed_at IS NULL;

CREATE TABLE alert_deliveries (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id     BIGINT NOT NULL REFERENCES alert_incidents (id),
    event           TEXT COLLATE "C" NOT NULL
        CHECK (event IN ('run_failed', 'check_failed', 'freshness_missed', 'recovered')),
    url             TEXT COLLATE "C" NOT NULL,
    format          TEXT COLLATE "C" NOT NULL CHECK (format IN ('slack', 'json')),
    body            TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('pending', 'delivered', 'undelivered')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT COLLATE "C" NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    next_attempt_at TEXT COLLATE "C" NULL,
    last_attempt_at TEXT COLLATE "C" NULL,
    delivered_at    TEXT COLLATE "C" NULL
);
CREATE INDEX alert_deliveries_by_incident ON alert_deliveries (incident_id);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX alert_deliveries_undelivered ON alert_deliveries (last_attempt_at)
    WHERE status = 'undelivered';

CREATE TABLE alert_attempts (
    delivery_id BIGINT NOT NULL REFERENCES alert_deliveries (id),
    attempt     BIGINT NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    error       TEXT COLLATE "C" NULL,
    PRIMARY KEY (delivery_id, attempt)
);
"#;

#[cfg(test)]
mod tests {
    use super::dollar_placeholders;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollar_placeholders("SELECT ?1, ?12 WHERE a = ?2 OR ? IS NULL"),
            "SELECT $1, $12 WHERE a = $2 OR ? IS NULL"
        );
    }
}
