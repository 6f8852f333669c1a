//! Output columns declared in an asset's `[columns]`: their Arrow types
//! (as DataFusion's SQL planner reads the declared SQL types) and the check
//! that a query's output is exactly those columns. An asset reading its own
//! earlier partitions reads an empty table of these columns before its
//! first partition exists.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use cairn_assets::{DeclaredColumn, Diagnostic, SqlAsset};

use crate::session::tables::read_only;

/// The Arrow schema of the asset's declared columns (all nullable), or
/// `None` when it declares none. A type DataFusion does not know is
/// reported at its line.
pub async fn declared_schema(
    ctx: &SessionContext,
    asset: &SqlAsset,
) -> Result<Option<SchemaRef>, Diagnostic> {
    let Some(declared) = &asset.columns else {
        return Ok(None);
    };
    let mut fields = Vec::with_capacity(declared.columns.len());
    for column in &declared.columns {
        let sql = format!(
            "SELECT CAST(NULL AS {}) AS \"{}\"",
            column.sql_type, column.name
        );
        let planned = match ctx.sql_with_options(&sql, read_only()).await {
            Ok(df) => df,
            Err(e) => {
                return Err(at(
                    asset,
                    column,
                    format!(
                        "column `{}`: `{}` is not a SQL type DataFusion knows ({})",
                        column.name,
                        column.sql_type,
                        first_line(&e.strip_backtrace())
                    ),
                )
                .with_hint(
                    "use a type such as BIGINT, INT, DOUBLE, DECIMAL(12, 2), VARCHAR, BOOLEAN, DATE or TIMESTAMP",
                ));
            }
        };
        let schema = planned.schema().as_arrow();
        let Some(field) = schema.fields().first() else {
            continue;
        };
        fields.push(field.as_ref().clone().with_nullable(true));
    }
    Ok(Some(Arc::new(Schema::new(fields))))
}

/// Checks that `output` (the planned query's schema) is exactly the
/// declared columns, in order, with the declared types.
pub fn check_output(
    asset: &SqlAsset,
    declared: &Schema,
    output: &Schema,
) -> Result<(), Diagnostic> {
    let Some(decl) = &asset.columns else {
        return Ok(());
    };
    let listing = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, column) in decl.columns.iter().enumerate() {
        let Some(want) = declared.fields().get(i) else {
            continue;
        };
        match output.fields().get(i) {
            Some(got) if got.name() == &column.name => {
                if !same_type(got.data_type(), want.data_type()) {
                    return Err(at(
                        asset,
                        column,
                        format!(
                            "column `{}` is declared {} ({}) but the query returns {}",
                            column.name,
                            column.sql_type,
                            want.data_type(),
                            got.data_type()
                        ),
                    )
                    .with_hint(format!(
                        "cast it in the SELECT (`CAST(... AS {}) AS {}`) or change the declaration",
                        column.sql_type, column.name
                    )));
                }
            }
            Some(got) => {
                return Err(at(
                    asset,
                    column,
                    format!(
                        "the query's column {} is `{}`, but [columns] declares `{}` there",
                        i + 1,
                        got.name(),
                        column.name
                    ),
                )
                .with_hint(format!(
                    "the query must return exactly the declared columns in order; it returns: {}",
                    listing(output)
                )));
            }
            None => {
                return Err(at(
                    asset,
                    column,
                    format!(
                        "the query does not return the declared column `{}`",
                        column.name
                    ),
                )
                .with_hint(format!("it returns: {}", listing(output))));
            }
        }
    }
    if let Some(extra) = output.fields().get(decl.columns.len()) {
        let last = decl.columns.last().map(|c| c.line);
        return Err(Diagnostic::new(
            &decl.file,
            last,
            format!(
                "the query returns `{}`, which [columns] does not declare",
                extra.name()
            ),
        )
        .with_hint(format!(
            "declare it (`{} = \"{}\"`) or drop it from the SELECT",
            extra.name(),
            sql_type_name(extra.data_type())
        )));
    }
    Ok(())
}

fn at(asset: &SqlAsset, column: &DeclaredColumn, message: String) -> Diagnostic {
    let file = asset
        .columns
        .as_ref()
        .map(|d| d.file.clone())
        .unwrap_or_else(|| asset.file.clone());
    Diagnostic::new(file, Some(column.line), message)
}

/// Whether two Arrow types are the same SQL type: the string and binary
/// encodings (plain, large, view) are one type each — DataFusion plans
/// `VARCHAR` as a view and literals as plain strings, and reads Parquet
/// strings back as views.
fn same_type(a: &DataType, b: &DataType) -> bool {
    fn family(t: &DataType) -> &DataType {
        match t {
            DataType::LargeUtf8 | DataType::Utf8View => &DataType::Utf8,
            DataType::LargeBinary | DataType::BinaryView => &DataType::Binary,
            other => other,
        }
    }
    family(a) == family(b)
}

/// The SQL spelling of an Arrow type, for hints (Arrow's own name when
/// there is no common SQL one).
fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".to_owned(),
        DataType::Int8 | DataType::Int16 => "SMALLINT".to_owned(),
        DataType::Int32 => "INT".to_owned(),
        DataType::Int64 => "BIGINT".to_owned(),
        DataType::UInt64 => "BIGINT UNSIGNED".to_owned(),
        DataType::Float32 => "REAL".to_owned(),
        DataType::Float64 => "DOUBLE".to_owned(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".to_owned(),
        DataType::Date32 | DataType::Date64 => "DATE".to_owned(),
        DataType::Timestamp(_, None) => "TIMESTAMP".to_owned(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        other => other.to_string(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings_are_one_type_others_are_not() {
        assert!(same_type(&DataType::Utf8, &DataType::Utf8View));
        assert!(same_type(&DataType::LargeUtf8, &DataType::Utf8));
        assert!(same_type(&DataType::BinaryView, &DataType::Binary));
        assert!(!same_type(&DataType::Int32, &DataType::Int64));
        assert!(!same_type(&DataType::Utf8, &DataType::Binary));
        assert!(!same_type(&DataType::Date32, &DataType::Utf8));
    }
}
