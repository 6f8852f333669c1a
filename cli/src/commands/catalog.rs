//! `cairn catalog migrate`: copies a catalog into a new, empty one (SQLite
//! to PostgreSQL when a team outgrows one machine), and says what it copied.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use cairn_engine::CatalogCopy;

use crate::Failure;
use crate::args::{CatalogCommand, CatalogMigrateArgs, Format};
use crate::commands::print_json;

/// Runs `cairn catalog ...`.
pub(crate) fn run(project: &Path, command: CatalogCommand) -> Result<u8, Failure> {
    match command {
        CatalogCommand::Migrate(args) => migrate(project, &args),
    }
}

fn migrate(project: &Path, args: &CatalogMigrateArgs) -> Result<u8, Failure> {
    let started = Instant::now();
    let copy = cairn_engine::migrate_catalog(&args.from, &args.to, project)?;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&copy, millis, &mut out)?,
        Format::Text => render_text(&copy, millis, &mut out)?,
    }
    Ok(0)
}

/// `{"tables": {"runs": 12, ...}, "rows": N, "millis": T}`, tables in copy
/// order.
pub(crate) fn render_json(
    copy: &CatalogCopy,
    millis: u64,
    out: &mut impl Write,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Table<'a> {
        table: &'a str,
        rows: u64,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        tables: Vec<Table<'a>>,
        rows: u64,
        millis: u64,
    }
    print_json(
        &Out {
            tables: copy
                .tables
                .iter()
                .map(|(table, rows)| Table { table, rows: *rows })
                .collect(),
            rows: copy.tables.iter().map(|(_, rows)| rows).sum(),
            millis,
        },
        out,
    )
}

/// One line per table with rows, then the total and what to do next.
pub(crate) fn render_text(
    copy: &CatalogCopy,
    millis: u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "copied {} -> {}", copy.from, copy.to)?;
    let width = copy.tables.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    for (table, rows) in &copy.tables {
        if *rows > 0 {
            writeln!(out, "  {table:<width$}  {rows:>9}")?;
        }
    }
    let total: u64 = copy.tables.iter().map(|(_, rows)| rows).sum();
    writeln!(out, "{total} rows in {millis} ms")?;
    writeln!(
        out,
        "next: point [catalog] url in cairn.toml at the new catalog"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn text_lists_tables_with_rows_and_what_to_do_next() {
        let copy = CatalogCopy {
            from: ".cairn/catalog.db".to_owned(),
            to: "postgres://ada:***@db:5432/cairn".to_owned(),
            tables: vec![
                ("runs".to_owned(), 3),
                ("run_claims".to_owned(), 0),
                ("materializations".to_owned(), 21),
            ],
        };
        let mut out = Vec::new();
        render_text(&copy, 12, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "copied .cairn/catalog.db -> postgres://ada:***@db:5432/cairn
  runs                      3
  materializations         21
24 rows in 12 ms
next: point [catalog] url in cairn.toml at the new catalog
"
        );
    }
}
