//! The catalog's SQL: one implementation of the [`Catalog`](crate::Catalog)
//! trait over two databases, the embedded SQLite default (one file, WAL
//! mode, next to the project) and PostgreSQL (shared by several processes
//! and servers).
//!
//! This folder owns everything that speaks SQL:
//! - here, `mod.rs`: [`SqlCatalog`], opening either database (then
//!   migrating it), sharing its one connection, running transactions, and
//!   the internal [`Fault`] type with its conversion to the public
//!   [`CatalogError`];
//! - [`db`]: the statement interface over both drivers (the SQL both
//!   dialects accept, placeholders, row decoding);
//! - [`postgres`]: the PostgreSQL driver and schema;
//! - [`migrations`]: the versioned SQLite schema and the code applying it;
//! - [`rows`]: the column lists, the row decoders (`*_from_row`) and the
//!   encoders of stored values (timestamps, counters, JSON);
//! - [`trait_impl`]: `impl Catalog for SqlCatalog`, every statement the
//!   catalog runs;
//! - [`alerts`]: the statements of alert incidents, deliveries and attempts;
//! - `tests`: the tests of all of the above, run on both databases.
//!
//! Schema changes are versioned migrations kept in
//! [`MIGRATIONS`](migrations::MIGRATIONS) (SQLite) and
//! [`POSTGRES_MIGRATIONS`](postgres::POSTGRES_MIGRATIONS); each is applied
//! once, in its own transaction, when the catalog is opened. A database
//! migrated by a newer Cairn is refused ([`CatalogError::TooNew`]) rather
//! than misread.
//!
//! The rule: **never edit a migration that has shipped.** Databases already
//! at that version will not run it again, so an edit would leave them on a
//! different schema than new ones; append a new migration instead.
//!
//! Conventions: timestamps are RFC 3339 text in UTC with microseconds (so they
//! also sort as text), `u64` counters are stored as 64-bit integers, flags
//! as 0/1 integers, text compares byte by byte, and the unpartitioned
//! partition key is `''`.

#[cfg(test)]
mod alert_tests;
mod alerts;
mod copy;
pub(crate) mod db;
mod migrations;
pub(crate) mod postgres;
#[cfg(test)]
mod postgres_tests;
#[cfg(test)]
mod queue_tests;
mod rows;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod trait_impl;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::{CatalogError, Result};
use db::Conn;
use migrations::{SUPPORTED_VERSION, migrate};
use postgres::PgSession;

pub use copy::CatalogCopy;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: more than the catalog uses, so
/// that hot statements (commits) are never evicted by occasional reads.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// A catalog stored in a SQL database: SQLite or PostgreSQL.
///
/// The one connection is shared behind a mutex: catalog statements answer
/// in microseconds (SQLite) or one loopback round trip (PostgreSQL).
pub struct SqlCatalog {
    database: Database,
    location: String,
}

/// The connection, by driver.
enum Database {
    Sqlite(Mutex<Connection>),
    Postgres(Mutex<PgSession>),
}

impl std::fmt::Debug for SqlCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlCatalog")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// An internal failure, turned into a [`CatalogError`] (which needs the
/// location) at the trait boundary. `?` converts driver errors into it.
#[derive(Debug)]
pub(crate) enum Fault {
    Sql(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    Unreachable(String),
    Corrupt(String),
    TooNew(i64),
}

impl From<rusqlite::Error> for Fault {
    fn from(error: rusqlite::Error) -> Self {
        Fault::Sql(error)
    }
}

impl From<tokio_postgres::Error> for Fault {
    fn from(error: tokio_postgres::Error) -> Self {
        Fault::Postgres(error)
    }
}

pub(crate) type Fallible<T> = std::result::Result<T, Fault>;

/// What to check when the PostgreSQL server cannot be reached.
const UNREACHABLE_HINT: &str =
    "; is the PostgreSQL server running and the host and port in [catalog] url right?";

/// A PostgreSQL error with what the server said: `tokio_postgres`' own
/// message is only "db error" or "error connecting to server".
#[derive(Debug)]
struct PostgresError(String);

impl std::fmt::Display for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PostgresError {}

impl PostgresError {
    fn new(error: &tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        if let Some(db) = error.as_db_error() {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                text.push_str(
                    "; wrong credentials: check the user in [catalog] url and the password \
                     (in the URL or PGPASSWORD)",
                );
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                text.push_str("; create the database first (createdb NAME)");
            }
            return PostgresError(text);
        }
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        if text.starts_with("error connecting") || text.starts_with("timeout") {
            text.push_str(UNREACHABLE_HINT);
        }
        PostgresError(text)
    }
}

impl SqlCatalog {
    /// Opens (creating it and its parent directory if needed) the SQLite
    /// catalog database at `path`, and migrates it to the current schema.
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
            source: Box::new(source),
        })?;
        Self::init_sqlite(conn, location)
    }

    /// Opens a fresh, private in-memory SQLite catalog (for tests and dry
    /// runs).
    pub fn open_in_memory() -> Result<Self> {
        let location = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|source| CatalogError::Database {
            location: location.clone(),
            source: Box::new(source),
        })?;
        Self::init_sqlite(conn, location)
    }

    /// Connects to the PostgreSQL database at `url`
    /// (`postgres://user[:password]@host[:port]/database`, the password
    /// from `PGPASSWORD` when the URL has none) and migrates it to the
    /// current schema. Gives up after 10 s when the server does not answer.
    pub fn connect_postgres(url: &str) -> Result<Self> {
        let location = redact_password(url);
        let fail = |fault: Fault| catalog_error(&location, fault);
        let session = PgSession::connect(url).map_err(fail)?;
        session.migrate().map_err(fail)?;
        Ok(SqlCatalog {
            database: Database::Postgres(Mutex::new(session)),
            location,
        })
    }

    /// The file path of a SQLite database (or `:memory:`), or the URL of a
    /// PostgreSQL one without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// True for a PostgreSQL catalog.
    pub fn is_postgres(&self) -> bool {
        matches!(self.database, Database::Postgres(_))
    }

    fn init_sqlite(mut conn: Connection, location: String) -> Result<Self> {
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
        let catalog = SqlCatalog {
            database: Database::Sqlite(Mutex::new(conn)),
            location,
        };
        result.map_err(|fault| catalog.error(fault))?;
        Ok(catalog)
    }

    fn error(&self, fault: Fault) -> CatalogError {
        catalog_error(&self.location, fault)
    }

    /// Runs `f` on the connection, outside any transaction, mapping its
    /// failure to a [`CatalogError`].
    fn with<T>(&self, f: impl FnOnce(Conn<'_>) -> Fallible<T>) -> Result<T> {
        match &self.database {
            Database::Sqlite(conn) => f(Conn::Sqlite(&lock(conn))),
            Database::Postgres(session) => f(Conn::Postgres(&lock(session))),
        }
        .map_err(|fault| self.error(fault))
    }

    /// Runs `f` in one write transaction. SQLite takes its write lock up
    /// front (so that concurrent writers wait on the busy timeout instead
    /// of failing); PostgreSQL takes the catalog's advisory lock, so
    /// writers of every process are serialised alike.
    fn write<T>(&self, f: impl FnOnce(Conn<'_>) -> Fallible<T>) -> Result<T> {
        match &self.database {
            Database::Sqlite(conn) => sqlite_write(&mut lock(conn), f),
            Database::Postgres(session) => {
                let session = lock(session);
                session.transaction(PgSession::begin_write, || f(Conn::Postgres(&session)))
            }
        }
        .map_err(|fault| self.error(fault))
    }

    /// Runs `f` in one read transaction: every statement sees the same
    /// snapshot.
    fn read<T>(&self, f: impl FnOnce(Conn<'_>) -> Fallible<T>) -> Result<T> {
        match &self.database {
            Database::Sqlite(conn) => sqlite_read(&lock(conn), f),
            Database::Postgres(session) => {
                let session = lock(session);
                session.transaction(PgSession::begin_read, || f(Conn::Postgres(&session)))
            }
        }
        .map_err(|fault| self.error(fault))
    }
}

/// The public error for `fault` at `location`.
fn catalog_error(location: &str, fault: Fault) -> CatalogError {
    let location = location.to_owned();
    match fault {
        Fault::Sql(source) => CatalogError::Database {
            location,
            source: Box::new(source),
        },
        Fault::Postgres(error) => CatalogError::Database {
            location,
            source: Box::new(PostgresError::new(&error)),
        },
        Fault::Unreachable(detail) => CatalogError::Database {
            location,
            source: Box::new(PostgresError(format!(
                "cannot reach the PostgreSQL server: {detail}{UNREACHABLE_HINT}"
            ))),
        },
        Fault::Corrupt(detail) => CatalogError::Corrupt { location, detail },
        Fault::TooNew(found) => CatalogError::TooNew {
            location,
            found,
            supported: SUPPORTED_VERSION,
        },
    }
}

#[cfg(test)]
impl SqlCatalog {
    /// Runs one statement that no catalog method runs (tests corrupting
    /// or tampering with the database).
    pub(crate) fn raw_execute(&self, sql: &str) -> Result<usize> {
        self.with(|conn| conn.execute(sql, db::params![]))
    }

    /// The one integer `sql` selects.
    #[allow(clippy::unwrap_used, reason = "tests")]
    pub(crate) fn raw_i64(&self, sql: &str) -> i64 {
        self.with(|conn| conn.query_opt(sql, db::params![], |row| row.get(0)))
            .unwrap()
            .unwrap()
    }

    /// The SQLite connection, locked.
    pub(crate) fn sqlite(&self) -> MutexGuard<'_, Connection> {
        match &self.database {
            Database::Sqlite(conn) => conn.lock().unwrap_or_else(PoisonError::into_inner),
            Database::Postgres(_) => panic!("a SQLite-only test got a PostgreSQL catalog"),
        }
    }

    /// Whether a panic poisoned the connection's lock.
    pub(crate) fn is_poisoned(&self) -> bool {
        match &self.database {
            Database::Sqlite(conn) => conn.is_poisoned(),
            Database::Postgres(session) => session.is_poisoned(),
        }
    }
}

/// Runs `f` in a read transaction of SQLite connection `conn`.
fn sqlite_read<T>(conn: &Connection, f: impl FnOnce(Conn<'_>) -> Fallible<T>) -> Fallible<T> {
    let tx = conn.unchecked_transaction()?;
    let value = f(Conn::Sqlite(&tx))?;
    tx.finish()?;
    Ok(value)
}

/// Runs `f` in a write transaction of SQLite connection `conn`, taking the
/// write lock up front.
fn sqlite_write<T>(conn: &mut Connection, f: impl FnOnce(Conn<'_>) -> Fallible<T>) -> Fallible<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(Conn::Sqlite(&tx))?;
    tx.commit()?;
    Ok(value)
}

/// Locks a connection. A panic while holding the lock cannot leave the
/// database half-written: an open SQLite transaction is rolled back when it
/// is dropped, and a PostgreSQL one when its session ends (or at the next
/// `BEGIN`, which fails and is reported).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `url` with its password (if any) replaced by `***`, for messages.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let redacted = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{redacted}/{path}"),
        None => format!("{scheme}://{redacted}"),
    }
}
