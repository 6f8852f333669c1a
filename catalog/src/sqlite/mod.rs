//! The embedded SQLite catalog: one database file (WAL mode) next to the project.
//!
//! This folder owns everything SQLite-specific behind the
//! [`Catalog`](crate::Catalog) trait:
//! - here, `mod.rs`: [`SqliteCatalog`], opening the database (pragmas, then
//!   migrations), sharing its one connection, and the internal [`Fault`]
//!   type with its conversion to the public [`CatalogError`];
//! - [`migrations`]: the versioned schema (SQL text) and the code applying it;
//! - [`rows`]: the column lists, the row decoders (`*_from_row`) and the
//!   encoders of stored values (timestamps, counters, JSON);
//! - [`trait_impl`]: `impl Catalog for SqliteCatalog`, every statement the
//!   catalog runs;
//! - [`alerts`]: the statements of alert incidents, deliveries and attempts;
//! - `tests`: the tests of all of the above.
//!
//! Schema changes are versioned migrations kept in
//! [`MIGRATIONS`](migrations::MIGRATIONS); each is applied once, in its own
//! transaction, when the catalog is opened. A database migrated by a newer
//! Cairn is refused ([`CatalogError::TooNew`]) rather than misread.
//!
//! The rule: **never edit a migration that has shipped.** Databases already
//! at that version will not run it again, so an edit would leave them on a
//! different schema than new ones; append a new migration instead.
//!
//! Conventions: timestamps are RFC 3339 text in UTC with microseconds (so they
//! also sort as text), `u64` counters are stored as `INTEGER` (i64) and the
//! unpartitioned partition key is `''`.

#[cfg(test)]
mod alert_tests;
mod alerts;
mod migrations;
#[cfg(test)]
mod queue_tests;
mod rows;
#[cfg(test)]
mod tests;
mod trait_impl;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::{CatalogError, Result};
use migrations::{SUPPORTED_VERSION, migrate};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: more than the catalog uses, so
/// that hot statements (commits) are never evicted by occasional reads.
const STATEMENT_CACHE_CAPACITY: usize = 64;

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
