//! Copying a whole catalog into another, empty one (`cairn catalog
//! migrate`): SQLite to PostgreSQL when a team outgrows one machine, or
//! back.
//!
//! Every table is copied row by row with its ids, in an order that keeps
//! every reference valid, inside one write transaction on the target: a
//! failure leaves the target as empty as it was. The source is read in one
//! read transaction, so the copy is one consistent snapshot even while
//! another process writes to the source.

use super::db::{AnyValue, Conn, Value, params};
use super::{Database, Fallible, PgSession, SqlCatalog, lock, sqlite_read, sqlite_write};
use crate::{CatalogError, Result};

/// Every catalog table, each after the tables it references.
const TABLES: &[&str] = &[
    "runs",
    "run_claims",
    "unit_claims",
    "backfills",
    "backfill_units",
    "attempts",
    "latest_attempts",
    "materializations",
    "materialization_inputs",
    "materialization_files",
    "current_versions",
    "check_results",
    "latest_check_results",
    "source_fingerprints",
    "audit_log",
    "automation_state",
    "automation_evaluations",
    "alert_incidents",
    "alert_deliveries",
    "alert_attempts",
];

/// Tables whose `id` the database assigns: after the copy, the target's
/// counter must continue after the copied ids.
const GENERATED_IDS: &[&str] = &[
    "attempts",
    "materializations",
    "check_results",
    "audit_log",
    "automation_evaluations",
    "alert_incidents",
    "alert_deliveries",
];

/// How many rows of each table a copy wrote, in copy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogCopy {
    /// Where it copied from (a file path, or a URL without its password).
    pub from: String,
    /// Where it copied to (likewise).
    pub to: String,
    /// `(table, rows)`.
    pub tables: Vec<(String, u64)>,
}

impl SqlCatalog {
    /// Copies every row of this catalog into `target`, which must be empty
    /// (freshly created: nothing recorded yet). All or nothing.
    pub fn copy_into(&self, target: &SqlCatalog) -> Result<CatalogCopy> {
        if std::ptr::eq(self, target) || self.location == target.location {
            return Err(CatalogError::NotEmpty {
                location: target.location.clone(),
                tables: "it is the source catalog itself".to_owned(),
            });
        }
        let not_empty = target.with(|dst| {
            let mut found = Vec::new();
            for table in TABLES {
                let rows: i64 = dst
                    .query_opt(&format!("SELECT COUNT(*) FROM {table}"), params![], |row| {
                        row.get(0)
                    })?
                    .unwrap_or(0);
                if rows > 0 {
                    found.push(format!("{table} ({rows} rows)"));
                }
            }
            Ok(found)
        })?;
        if !not_empty.is_empty() {
            return Err(CatalogError::NotEmpty {
                location: target.location.clone(),
                tables: not_empty.join(", "),
            });
        }
        let copied = match (&self.database, &target.database) {
            (Database::Sqlite(src), Database::Sqlite(dst)) => {
                let (src, mut dst) = (lock(src), lock(dst));
                sqlite_read(&src, |src| {
                    sqlite_write(&mut dst, |dst| copy_tables(src, dst))
                })
            }
            (Database::Sqlite(src), Database::Postgres(dst)) => {
                let (src, dst) = (lock(src), lock(dst));
                sqlite_read(&src, |src| {
                    dst.transaction(PgSession::begin_write, || {
                        copy_tables(src, Conn::Postgres(&dst))
                    })
                })
            }
            (Database::Postgres(src), Database::Sqlite(dst)) => {
                let (src, mut dst) = (lock(src), lock(dst));
                src.transaction(PgSession::begin_read, || {
                    sqlite_write(&mut dst, |dst| copy_tables(Conn::Postgres(&src), dst))
                })
            }
            (Database::Postgres(src), Database::Postgres(dst)) => {
                let (src, dst) = (lock(src), lock(dst));
                src.transaction(PgSession::begin_read, || {
                    dst.transaction(PgSession::begin_write, || {
                        copy_tables(Conn::Postgres(&src), Conn::Postgres(&dst))
                    })
                })
            }
        };
        copied
            .map(|tables| CatalogCopy {
                from: self.location.clone(),
                to: target.location.clone(),
                tables,
            })
            .map_err(|fault| {
                super::catalog_error(&format!("{} -> {}", self.location, target.location), fault)
            })
    }
}

/// Copies every table from `src` to `dst`, then moves `dst`'s id counters
/// past the copied ids.
fn copy_tables(src: Conn<'_>, dst: Conn<'_>) -> Fallible<Vec<(String, u64)>> {
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut columns: Vec<String> = Vec::new();
        let mut batch: Vec<AnyValue> = Vec::new();
        let mut rows = 0_u64;
        src.prepare(&format!("SELECT * FROM {table}"))?
            .query_each(params![], |row| {
                if columns.is_empty() {
                    columns = row.column_names();
                }
                for i in 0..columns.len() {
                    batch.push(row.get::<_, AnyValue>(i)?);
                }
                rows += 1;
                if batch.len() >= BATCH_ROWS * columns.len() {
                    insert_batch(dst, table, &columns, &mut batch)?;
                }
                Ok(())
            })?;
        if !batch.is_empty() {
            insert_batch(dst, table, &columns, &mut batch)?;
        }
        copied.push(((*table).to_owned(), rows));
    }
    if let Conn::Postgres(_) = dst {
        for table in GENERATED_IDS {
            dst.query_opt(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ),
                params![],
                |_| Ok(()),
            )?;
        }
    }
    Ok(copied)
}

/// Rows inserted by one statement (a round trip each on PostgreSQL; well
/// under both databases' limits on parameters per statement).
const BATCH_ROWS: usize = 500;

/// Inserts the rows in `batch` (`columns.len()` values each) with one
/// statement, and empties it.
fn insert_batch(
    dst: Conn<'_>,
    table: &str,
    columns: &[String],
    batch: &mut Vec<AnyValue>,
) -> Fallible<()> {
    let rows = batch.len() / columns.len().max(1);
    let params: Vec<&dyn Value> = batch.iter().map(|v| v as &dyn Value).collect();
    dst.execute(&insert_sql(table, columns, rows), &params)?;
    batch.clear();
    Ok(())
}

/// `INSERT INTO table ("a", "b") VALUES (?1, ?2), (?3, ?4)...` for `rows`
/// rows.
fn insert_sql(table: &str, columns: &[String], rows: usize) -> String {
    let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=columns.len())
                .map(|i| format!("?{}", row * columns.len() + i))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        names.join(", "),
        tuples.join(", ")
    )
}
