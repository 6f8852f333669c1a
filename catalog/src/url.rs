//! Opening a catalog from the `catalog` URL of `cairn.toml`.

use std::path::Path;

use crate::{Catalog, CatalogError, Result, SqlCatalog};

/// The accepted forms, shown when a URL is not understood.
const EXPECTED: &str = "expected `sqlite://PATH` (relative to the project directory), \
     `sqlite:///ABSOLUTE/PATH`, `sqlite::memory:` or `postgres://USER@HOST:PORT/DATABASE`";

/// Opens the catalog named by `url`:
///
/// - `sqlite://PATH`: a SQLite file, `PATH` relative to `project_dir`
///   (`sqlite://.cairn/catalog.db`);
/// - `sqlite:///ABSOLUTE/PATH`: a SQLite file at an absolute path;
/// - `sqlite::memory:`: a private in-memory catalog, lost when dropped;
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`):
///   a PostgreSQL database, the password from `PGPASSWORD` when the URL has
///   none (see [`SqlCatalog::connect_postgres`]).
pub fn open_catalog(url: &str, project_dir: &Path) -> Result<Box<dyn Catalog>> {
    Ok(Box::new(open_sql_catalog(url, project_dir)?))
}

/// [`open_catalog`], as the concrete [`SqlCatalog`] (what copying a
/// catalog needs).
pub fn open_sql_catalog(url: &str, project_dir: &Path) -> Result<SqlCatalog> {
    let bad = |reason: String| CatalogError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let trimmed = url.trim();
    let Some((scheme, rest)) = trimmed.split_once(':') else {
        return Err(bad(format!("no scheme; {EXPECTED}")));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            if rest == ":memory:" || rest == "//:memory:" {
                return SqlCatalog::open_in_memory();
            }
            let Some(path) = rest.strip_prefix("//") else {
                return Err(bad(format!(
                    "a SQLite catalog URL starts with `sqlite://`; {EXPECTED}"
                )));
            };
            if path.is_empty() {
                return Err(bad(format!("the database path is missing; {EXPECTED}")));
            }
            // `Path::join` keeps an absolute path as is (`sqlite:///abs/path`).
            SqlCatalog::open(&project_dir.join(path))
        }
        "postgres" | "postgresql" => {
            if !rest.starts_with("//") {
                return Err(bad(format!(
                    "a PostgreSQL catalog URL starts with `postgres://`; {EXPECTED}"
                )));
            }
            SqlCatalog::connect_postgres(trimmed)
        }
        other => Err(bad(format!("unsupported scheme `{other}`; {EXPECTED}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match open_catalog(url, Path::new("/nonexistent")) {
            Err(CatalogError::BadUrl {
                url: echoed,
                reason,
            }) => {
                assert_eq!(echoed, url);
                reason
            }
            Err(other) => panic!("expected BadUrl for {url}, got {other}"),
            Ok(_) => panic!("expected BadUrl for {url}, got a catalog"),
        }
    }

    #[test]
    fn relative_and_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = open_catalog("sqlite://.cairn/catalog.db", dir.path()).unwrap();
        assert!(catalog.runs(1).unwrap().is_empty());
        assert!(dir.path().join(".cairn/catalog.db").is_file());

        let absolute = dir.path().join("abs/other.db");
        let url = format!("sqlite://{}", absolute.display());
        assert!(url.starts_with("sqlite:///"));
        open_catalog(&url, Path::new("/nonexistent/project")).unwrap();
        assert!(absolute.is_file());
    }

    #[test]
    fn memory() {
        let catalog = open_catalog("sqlite::memory:", Path::new("/nonexistent")).unwrap();
        assert!(catalog.current_versions().unwrap().is_empty());
    }

    #[test]
    fn rejected_urls() {
        assert!(reason("postgres:localhost/cairn").contains("starts with `postgres://`"));
        for url in ["mysql://x", "catalog.db", "sqlite:catalog.db", "sqlite://"] {
            assert!(reason(url).contains("sqlite://PATH"), "{url}");
        }
    }
}
