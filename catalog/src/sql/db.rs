//! One statement interface over the two drivers, so that every catalog
//! statement is written once (`trait_impl.rs`, `alerts.rs`) and runs on
//! SQLite and on PostgreSQL alike.
//!
//! The SQL is written in the dialect both accept: `?N` placeholders (turned
//! into PostgreSQL's `$N` when prepared there), `INSERT ... ON CONFLICT`,
//! `RETURNING id`, `"user"` quoted, 0/1 integers for flags, RFC 3339 text
//! for times. The few statements that must differ (SQLite's `INDEXED BY`
//! hints) are written twice with [`Sql::Each`].

use tokio_postgres::types::{IsNull, Type, to_sql_checked};

use super::postgres::PgSession;
use super::{Fallible, Fault};

/// A statement parameter: a value both drivers can bind.
pub(crate) trait Value: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync {}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync + ?Sized> Value for T {}

/// The parameters of a statement, `?1` first: `params![run.id.0, at]`.
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::db::Value] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::db::Value),+] as &[&dyn $crate::sql::db::Value] };
}
pub(crate) use params;

/// A statement's text: the same for both drivers, or one per dialect.
#[derive(Clone, Copy)]
pub(crate) enum Sql<'a> {
    /// Text both dialects accept.
    Both(&'a str),
    /// SQLite's text, then PostgreSQL's.
    Each(&'a str, &'a str),
}

impl<'a> From<&'a str> for Sql<'a> {
    fn from(text: &'a str) -> Self {
        Sql::Both(text)
    }
}

impl<'a> From<&'a String> for Sql<'a> {
    fn from(text: &'a String) -> Self {
        Sql::Both(text)
    }
}

/// A connection (or the transaction open on it) of either driver.
#[derive(Clone, Copy)]
pub(crate) enum Conn<'c> {
    /// SQLite: its connection (a transaction derefs to it).
    Sqlite(&'c rusqlite::Connection),
    /// PostgreSQL: the session, with its statement cache.
    Postgres(&'c PgSession),
}

impl<'c> Conn<'c> {
    /// Prepares `sql` (cached per connection: the catalog's statements are
    /// few and run again and again).
    pub(crate) fn prepare<'s>(self, sql: impl Into<Sql<'s>>) -> Fallible<Stmt<'c>> {
        match (self, sql.into()) {
            (Conn::Sqlite(conn), Sql::Both(text) | Sql::Each(text, _)) => {
                Ok(Stmt::Sqlite(conn.prepare_cached(text)?))
            }
            (Conn::Postgres(session), Sql::Both(text) | Sql::Each(_, text)) => {
                Ok(Stmt::Postgres(session, session.prepare(text)?))
            }
        }
    }

    /// Prepares and executes `sql` once; the number of rows it changed.
    pub(crate) fn execute<'s>(
        self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn Value],
    ) -> Fallible<usize> {
        self.prepare(sql)?.execute(params)
    }

    /// Prepares and runs an `INSERT ... RETURNING id`; the id of the
    /// inserted row.
    pub(crate) fn insert_id<'s>(
        self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn Value],
    ) -> Fallible<i64> {
        self.prepare(sql)?.insert_id(params)
    }

    /// Prepares `sql` and decodes every row it returns.
    pub(crate) fn query_all<'s, T>(
        self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn Value],
        decode: impl FnMut(&Row<'_>) -> Fallible<T>,
    ) -> Fallible<Vec<T>> {
        self.prepare(sql)?.query_all(params, decode)
    }

    /// Prepares `sql` and decodes its first row, if any.
    pub(crate) fn query_opt<'s, T>(
        self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn Value],
        decode: impl FnOnce(&Row<'_>) -> Fallible<T>,
    ) -> Fallible<Option<T>> {
        self.prepare(sql)?.query_opt(params, decode)
    }
}

/// A prepared statement of either driver.
pub(crate) enum Stmt<'c> {
    /// SQLite's cached statement.
    Sqlite(rusqlite::CachedStatement<'c>),
    /// A PostgreSQL statement prepared on `session`.
    Postgres(&'c PgSession, tokio_postgres::Statement),
}

impl Stmt<'_> {
    /// Executes the statement; the number of rows it changed.
    pub(crate) fn execute(&mut self, params: &[&dyn Value]) -> Fallible<usize> {
        match self {
            Stmt::Sqlite(stmt) => Ok(stmt.execute(sqlite_params(params).as_slice())?),
            Stmt::Postgres(session, stmt) => {
                let changed = session.execute(stmt, &pg_params(params))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs the query, calling `each` with every row in order.
    pub(crate) fn query_each(
        &mut self,
        params: &[&dyn Value],
        mut each: impl FnMut(&Row<'_>) -> Fallible<()>,
    ) -> Fallible<()> {
        match self {
            Stmt::Sqlite(stmt) => {
                let mut rows = stmt.query(sqlite_params(params).as_slice())?;
                while let Some(row) = rows.next()? {
                    each(&Row::Sqlite(row))?;
                }
                Ok(())
            }
            Stmt::Postgres(session, stmt) => {
                for row in session.query(stmt, &pg_params(params))? {
                    each(&Row::Postgres(&row))?;
                }
                Ok(())
            }
        }
    }

    /// Runs the query and decodes every row.
    pub(crate) fn query_all<T>(
        &mut self,
        params: &[&dyn Value],
        mut decode: impl FnMut(&Row<'_>) -> Fallible<T>,
    ) -> Fallible<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(params, |row| {
            out.push(decode(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs an `INSERT ... RETURNING id`; the id of the inserted row.
    pub(crate) fn insert_id(&mut self, params: &[&dyn Value]) -> Fallible<i64> {
        self.query_opt(params, |row| row.get(0))?
            .ok_or_else(|| Fault::Corrupt("an INSERT ... RETURNING id returned no row".to_owned()))
    }

    /// Runs the query and decodes its first row, if any.
    pub(crate) fn query_opt<T>(
        &mut self,
        params: &[&dyn Value],
        decode: impl FnOnce(&Row<'_>) -> Fallible<T>,
    ) -> Fallible<Option<T>> {
        match self {
            Stmt::Sqlite(stmt) => {
                let mut rows = stmt.query(sqlite_params(params).as_slice())?;
                rows.next()?
                    .map(|row| decode(&Row::Sqlite(row)))
                    .transpose()
            }
            Stmt::Postgres(session, stmt) => session
                .query(stmt, &pg_params(params))?
                .first()
                .map(|row| decode(&Row::Postgres(row)))
                .transpose(),
        }
    }
}

fn sqlite_params<'p>(params: &[&'p dyn Value]) -> Vec<&'p dyn rusqlite::ToSql> {
    params.iter().map(|p| *p as &dyn rusqlite::ToSql).collect()
}

fn pg_params<'p>(params: &[&'p dyn Value]) -> Vec<&'p (dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| *p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// A result row of either driver.
pub(crate) enum Row<'r> {
    /// A SQLite row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row.
    Postgres(&'r tokio_postgres::Row),
}

/// A column, by position (from 0) or by name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Col<'a> {
    /// The column at this position.
    At(usize),
    /// The column of this name.
    Named(&'a str),
}

impl From<usize> for Col<'_> {
    fn from(index: usize) -> Self {
        Col::At(index)
    }
}

impl<'a> From<&'a str> for Col<'a> {
    fn from(name: &'a str) -> Self {
        Col::Named(name)
    }
}

impl<'r> Row<'r> {
    /// The names of the row's columns, in order.
    pub(crate) fn column_names(&self) -> Vec<String> {
        match *self {
            Row::Sqlite(row) => row
                .as_ref()
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            Row::Postgres(row) => row.columns().iter().map(|c| c.name().to_owned()).collect(),
        }
    }

    /// The value of column `col`, decoded as `T`.
    pub(crate) fn get<'a, C: Into<Col<'a>>, T: Column<'r>>(&self, col: C) -> Fallible<T> {
        match *self {
            Row::Sqlite(row) => T::from_sqlite(row, col.into()),
            Row::Postgres(row) => T::from_postgres(row, col.into()),
        }
    }
}

/// A Rust type a column decodes into, on either driver.
pub(crate) trait Column<'r>: Sized {
    /// Decodes from a SQLite row.
    fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self>;
    /// Decodes from a PostgreSQL row.
    fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self>;
}

fn sqlite_get<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, col: Col<'_>) -> Fallible<T> {
    Ok(match col {
        Col::At(index) => row.get(index)?,
        Col::Named(name) => row.get(name)?,
    })
}

fn pg_get<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r tokio_postgres::Row,
    col: Col<'_>,
) -> Fallible<T> {
    Ok(match col {
        Col::At(index) => row.try_get(index)?,
        Col::Named(name) => row.try_get(name)?,
    })
}

/// Column types decoded the same way by both drivers.
macro_rules! same_column {
    ($($t:ty),+) => {$(
        impl<'r> Column<'r> for $t {
            fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self> {
                sqlite_get(row, col)
            }
            fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self> {
                pg_get(row, col)
            }
        }
    )+};
}

same_column!(i64, Option<i64>, f64, String, Option<String>);

impl<'r> Column<'r> for &'r str {
    fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self> {
        let value = match col {
            Col::At(index) => row.get_ref(index)?,
            Col::Named(name) => row.get_ref(name)?,
        };
        value.as_str().map_err(|e| {
            let index = match col {
                Col::At(index) => index,
                Col::Named(_) => 0,
            };
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
                .into()
        })
    }
    fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self> {
        pg_get(row, col)
    }
}

impl<'r> Column<'r> for u64 {
    fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self> {
        non_negative(sqlite_get(row, col)?, col)
    }
    fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self> {
        non_negative(pg_get(row, col)?, col)
    }
}

fn non_negative(value: i64, col: Col<'_>) -> Fallible<u64> {
    u64::try_from(value).map_err(|_| Fault::Corrupt(format!("{col:?} is negative ({value})")))
}

/// Flags are 0/1 integers in both schemas; a computed condition is a
/// boolean in PostgreSQL (an integer in SQLite).
impl<'r> Column<'r> for bool {
    fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self> {
        sqlite_get(row, col)
    }
    fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self> {
        let index = match col {
            Col::At(index) => Some(index),
            Col::Named(name) => row.columns().iter().position(|c| c.name() == name),
        };
        let is_bool = index
            .and_then(|i| row.columns().get(i))
            .is_some_and(|c| *c.type_() == Type::BOOL);
        if is_bool {
            pg_get(row, col)
        } else {
            Ok(pg_get::<i64>(row, col)? != 0)
        }
    }
}

/// A value of any column type, for code that copies rows without knowing
/// their columns (`cairn catalog migrate`). Integers bound to a PostgreSQL
/// boolean become one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnyValue {
    /// SQL NULL.
    Null,
    /// An integer (or a flag).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
}

impl<'r> Column<'r> for AnyValue {
    fn from_sqlite(row: &'r rusqlite::Row<'r>, col: Col<'_>) -> Fallible<Self> {
        use rusqlite::types::ValueRef;
        let value = match col {
            Col::At(index) => row.get_ref(index)?,
            Col::Named(name) => row.get_ref(name)?,
        };
        Ok(match value {
            ValueRef::Null => AnyValue::Null,
            ValueRef::Integer(v) => AnyValue::Int(v),
            ValueRef::Real(v) => AnyValue::Real(v),
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => AnyValue::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|e| Fault::Corrupt(format!("{col:?} is not UTF-8: {e}")))?,
            ),
        })
    }

    fn from_postgres(row: &'r tokio_postgres::Row, col: Col<'_>) -> Fallible<Self> {
        let index = match col {
            Col::At(index) => index,
            Col::Named(name) => row
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .ok_or_else(|| Fault::Corrupt(format!("no column {name}")))?,
        };
        let ty = row
            .columns()
            .get(index)
            .map(|c| c.type_().clone())
            .ok_or_else(|| Fault::Corrupt(format!("no column {index}")))?;
        Ok(match ty {
            Type::INT8 => pg_get::<Option<i64>>(row, col)?.map_or(AnyValue::Null, AnyValue::Int),
            Type::INT4 => pg_get::<Option<i32>>(row, col)?
                .map_or(AnyValue::Null, |v| AnyValue::Int(i64::from(v))),
            Type::BOOL => pg_get::<Option<bool>>(row, col)?
                .map_or(AnyValue::Null, |v| AnyValue::Int(i64::from(v))),
            Type::FLOAT8 => pg_get::<Option<f64>>(row, col)?.map_or(AnyValue::Null, AnyValue::Real),
            _ => pg_get::<Option<String>>(row, col)?.map_or(AnyValue::Null, AnyValue::Text),
        })
    }
}

impl rusqlite::ToSql for AnyValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
        Ok(match self {
            AnyValue::Null => ToSqlOutput::Owned(SqliteValue::Null),
            AnyValue::Int(v) => ToSqlOutput::Owned(SqliteValue::Integer(*v)),
            AnyValue::Real(v) => ToSqlOutput::Owned(SqliteValue::Real(*v)),
            AnyValue::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

impl tokio_postgres::types::ToSql for AnyValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            AnyValue::Null => Ok(IsNull::Yes),
            AnyValue::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            AnyValue::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            AnyValue::Int(v) => v.to_sql(ty, out),
            AnyValue::Real(v) => v.to_sql(ty, out),
            AnyValue::Text(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT8,
            Type::INT4,
            Type::BOOL,
            Type::FLOAT8,
            Type::TEXT,
            Type::VARCHAR,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}
