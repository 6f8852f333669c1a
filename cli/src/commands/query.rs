//! `cairn query`: read-only SQL over the committed versions (now, or as of
//! a run or a time), printed as a table, CSV or JSON rows.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;

use cairn_engine::{AsOf, Workspace};

use crate::Failure;
use crate::args::{QueryArgs, QueryFormat};

/// Runs `cairn query`.
pub(crate) async fn run(ws: &Workspace, args: QueryArgs) -> Result<u8, Failure> {
    let (schema, batches) = match &args.as_of {
        Some(text) => ws.query_as_of(&args.sql, &parse_as_of(text)).await?,
        None => ws.query(&args.sql).await?,
    };
    let mut out = crate::output::stdout();
    match args.format {
        QueryFormat::Table => render_text(schema, batches, &mut out)?,
        QueryFormat::Csv => render_csv(schema, &batches, &mut out)?,
        QueryFormat::Json => render_json(&batches, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// `--as-of`: a time (RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or a date, UTC),
/// else a run id.
fn parse_as_of(text: &str) -> AsOf {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return AsOf::Time(t.with_timezone(&chrono::Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return AsOf::Time(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return AsOf::Time(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    AsOf::Run(cairn_catalog::RunId(text.to_owned()))
}

fn fail(e: ArrowError) -> Failure {
    Failure::Runtime(format!("formatting results: {e}"))
}

/// The rows as an aligned table (just the header when there are none).
pub(crate) fn render_text(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    };
    let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches).map_err(fail)?;
    writeln!(out, "{table}")?;
    Ok(())
}

/// The rows as CSV with a header row (just the header when there are none).
pub(crate) fn render_csv(
    schema: SchemaRef,
    batches: &[RecordBatch],
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(out);
    if batches.is_empty() {
        writer
            .write(&RecordBatch::new_empty(schema))
            .map_err(fail)?;
    }
    for b in batches {
        writer.write(b).map_err(fail)?;
    }
    Ok(())
}

/// The rows as a JSON array of objects, every column in every row
/// (explicit nulls, as readers expect).
pub(crate) fn render_json(batches: &[RecordBatch], out: &mut impl Write) -> Result<(), Failure> {
    let mut writer = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut *out);
    for b in batches {
        writer.write(b).map_err(fail)?;
    }
    writer.finish().map_err(fail)?;
    drop(writer);
    writeln!(out)?;
    Ok(())
}
