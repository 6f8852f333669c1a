//! What the catalog's tests share: a fresh catalog on the database the
//! current test runs on, and [`on_both_databases!`], which runs a test
//! function once on SQLite and once on PostgreSQL.
//!
//! PostgreSQL tests need a server: `tests/run.sh` starts a throwaway one
//! on loopback and exports its URL as `CAIRN_TEST_POSTGRES_URL` (a
//! superuser, so that each test creates a database of its own).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use super::SqlCatalog;
use super::postgres::PgSession;

thread_local! {
    /// Whether the test on this thread runs on PostgreSQL.
    pub(crate) static ON_POSTGRES: Cell<bool> = const { Cell::new(false) };
}

/// A fresh, empty catalog on the current test's database.
pub(crate) fn fresh() -> SqlCatalog {
    if ON_POSTGRES.get() {
        SqlCatalog::connect_postgres(&fresh_postgres_database()).unwrap()
    } else {
        SqlCatalog::open_in_memory().unwrap()
    }
}

/// The URL of the test server (a superuser on its `postgres` database).
pub(crate) fn postgres_admin_url() -> String {
    std::env::var("CAIRN_TEST_POSTGRES_URL").expect(
        "CAIRN_TEST_POSTGRES_URL is not set: the PostgreSQL catalog tests need a server; \
         run the suite with tests/run.sh, which starts one on loopback",
    )
}

/// Creates an empty database on the test server; its URL.
pub(crate) fn fresh_postgres_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_admin_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "cairn_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let session = PgSession::connect(&admin).unwrap_or_else(|fault| {
        panic!("cannot connect to the test PostgreSQL server {admin}: {fault:?}")
    });
    session
        .batch(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|fault| panic!("CREATE DATABASE {name}: {fault:?}"));
    with_database(&admin, &name)
}

/// `url` naming database `name` instead of its own.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs each named test function (`fn name()`, using [`fresh`]) twice:
/// as `on_sqlite::name` and as `on_postgres::name`.
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name()
                }
            )+
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    $crate::sql::test_support::ON_POSTGRES.set(true);
                    super::$name()
                }
            )+
        }
    };
}
pub(crate) use on_both_databases;
