//! Rows belong to their partition. When `[partitions]` names the output
//! column that holds a dimension (`column = "order_date"`), every row a
//! partition writes must lie in its window (time: a DATE within the local
//! days, a TIMESTAMP within the UTC bounds) or carry its value (static).
//! Checked on the written, uncommitted output: a violation fails the
//! partition and nothing is committed.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::prelude::SessionContext;

use cairn_assets::SqlAsset;
use cairn_assets::partitions::Dimension;

use crate::session::tables::read_only;

/// One dimension whose column is declared, as a SQL condition every row
/// must meet.
struct Rule {
    column: String,
    condition: String,
    describe: String,
}

/// The rules of `asset`'s partition `key`, given its output schema.
fn rules(asset: &SqlAsset, key: &str, schema: &Schema) -> Result<Vec<Rule>, String> {
    let Some(def) = &asset.partitions else {
        return Ok(Vec::new());
    };
    let parts = def.split_key(key).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (dim, part) in def.dimensions.iter().zip(parts) {
        let column = match dim {
            Dimension::Time(t) => t.column.as_deref(),
            Dimension::Static(s) => s.column.as_deref(),
        };
        let Some(column) = column else { continue };
        let Ok(field) = schema.field_with_name(column) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(format!(
                "[partitions] names `column = \"{column}\"` for dimension `{}`, but the output has no column `{column}` (it has: {})",
                dim.name(),
                names.join(", ")
            ));
        };
        let quoted = format!("\"{}\"", column.replace('"', "\"\""));
        match dim {
            Dimension::Time(t) => {
                let w = t.window(part).map_err(|e| e.to_string())?;
                let (low, high, value) = match field.data_type() {
                    DataType::Date32 | DataType::Date64 => {
                        let day = |at: chrono::DateTime<chrono::Utc>| {
                            at.with_timezone(&t.timezone).format("%Y-%m-%d").to_string()
                        };
                        let (s, e) = (day(w.start), day(w.end));
                        (format!("DATE '{s}'"), format!("DATE '{e}'"), quoted.clone())
                    }
                    DataType::Timestamp(_, _) => {
                        let ts = |at: chrono::DateTime<chrono::Utc>| {
                            at.format("%Y-%m-%d %H:%M:%S").to_string()
                        };
                        (
                            format!("TIMESTAMP '{}'", ts(w.start)),
                            format!("TIMESTAMP '{}'", ts(w.end)),
                            format!("CAST({quoted} AS TIMESTAMP)"),
                        )
                    }
                    other => {
                        return Err(format!(
                            "the partition column `{column}` is {other}; a time partition column must be a DATE or a TIMESTAMP (cast it in the SELECT)"
                        ));
                    }
                };
                out.push(Rule {
                    column: column.to_owned(),
                    condition: format!("({value} >= {low} AND {value} < {high})"),
                    describe: format!("`{column}` in [{low}, {high})"),
                });
            }
            Dimension::Static(_) => {
                let literal = format!("'{}'", part.replace('\'', "''"));
                out.push(Rule {
                    column: column.to_owned(),
                    condition: format!("(CAST({quoted} AS VARCHAR) = {literal})"),
                    describe: format!("`{column}` = {literal}"),
                });
            }
        }
    }
    Ok(out)
}

/// Fails when any row of `table` (the written output of `asset`'s
/// partition `key`) lies outside its partition.
pub async fn check_rows_in_partition(
    ctx: &SessionContext,
    table: &str,
    asset: &SqlAsset,
    key: &str,
    schema: &Schema,
) -> Result<(), String> {
    let rules = rules(asset, key, schema)?;
    if rules.is_empty() {
        return Ok(());
    }
    let all = rules
        .iter()
        .map(|r| r.condition.as_str())
        .collect::<Vec<_>>()
        .join(" AND ");
    let outside = format!("NOT coalesce({all}, false)");
    let count_sql = format!("SELECT count(*) FROM \"{table}\" WHERE {outside}");
    let q = |e: datafusion::error::DataFusionError| e.strip_backtrace();
    let batches = ctx
        .sql_with_options(&count_sql, read_only())
        .await
        .map_err(q)?
        .collect()
        .await
        .map_err(q)?;
    let count = batches
        .first()
        .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>())
        .filter(|a| !a.is_empty())
        .map(|a| a.value(0))
        .unwrap_or(0);
    if count == 0 {
        return Ok(());
    }
    // A few offending values, to show what went wrong.
    let columns = rules
        .iter()
        .map(|r| format!("CAST(\"{}\" AS VARCHAR)", r.column.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" || ', ' || ");
    let sample_sql = format!(
        "SELECT DISTINCT coalesce({columns}, 'NULL') FROM \"{table}\" WHERE {outside} LIMIT 3"
    );
    let mut examples = Vec::new();
    if let Ok(df) = ctx.sql_with_options(&sample_sql, read_only()).await
        && let Ok(batches) = df.collect().await
    {
        for b in &batches {
            if let Some(values) = b.column(0).as_string_opt::<i32>() {
                examples.extend(values.iter().flatten().map(str::to_owned));
            } else if let Some(values) = b.column(0).as_string_view_opt() {
                examples.extend(values.iter().flatten().map(str::to_owned));
            }
        }
    }
    let wanted: Vec<&str> = rules.iter().map(|r| r.describe.as_str()).collect();
    let example = if examples.is_empty() {
        String::new()
    } else {
        format!(" (e.g. {})", examples.join("; "))
    };
    Err(format!(
        "{count} row(s) do not belong to partition {key}: [partitions] requires {}{example}; nothing was committed. Filter the rows of the partition in the SELECT, e.g. `where {} >= {{{{start_date}}}} and {} < {{{{end_date}}}}`",
        wanted.join(" and "),
        rules[0].column,
        rules[0].column
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};

    fn asset(header: &str) -> SqlAsset {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        write("cairn.toml", "");
        write("assets/a.sql", &format!("{header}select 1 as x"));
        let project = cairn_assets::Project::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        project
            .assets
            .get("a")
            .cloned()
            .unwrap_or_else(|| panic!("no asset"))
    }

    #[test]
    fn rules_follow_the_column_type_and_timezone() {
        let a = asset(
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- timezone = \"America/New_York\"\n--- column = \"d\"\n",
        );
        let dates = Schema::new(vec![Field::new("d", DataType::Date32, true)]);
        let r = rules(&a, "2024-03-10", &dates).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r[0].condition,
            "(\"d\" >= DATE '2024-03-10' AND \"d\" < DATE '2024-03-11')"
        );
        let times = Schema::new(vec![Field::new(
            "d",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]);
        let r = rules(&a, "2024-03-10", &times).unwrap_or_else(|e| panic!("{e}"));
        // The New York day of the spring change: 23 hours, in UTC.
        assert_eq!(
            r[0].condition,
            "(CAST(\"d\" AS TIMESTAMP) >= TIMESTAMP '2024-03-10 05:00:00' AND CAST(\"d\" AS TIMESTAMP) < TIMESTAMP '2024-03-11 04:00:00')"
        );
        let text = Schema::new(vec![Field::new("d", DataType::Utf8, true)]);
        assert!(rules(&a, "2024-03-10", &text).is_err_and(|e| e.contains("DATE or a TIMESTAMP")));
        let other = Schema::new(vec![Field::new("x", DataType::Date32, true)]);
        assert!(rules(&a, "2024-03-10", &other).is_err_and(|e| e.contains("no column `d`")));
    }
}
