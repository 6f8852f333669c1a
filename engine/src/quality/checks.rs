//! Running an asset's checks on its freshly written output, before commit.
//! The new output is registered under the asset's own name, so checks (and
//! `sql(...)` queries) read it as they would read the committed table.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use cairn_assets::checks::{CheckDef, CheckKind, Severity};

use crate::session::tables::read_only;

/// How many failing rows are kept as a sample.
pub const SAMPLE_ROWS: usize = 10;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    /// The check as declared.
    pub name: String,
    /// `warn` or `error`.
    pub severity: &'static str,
    /// Whether no row failed (and the check could run).
    pub passed: bool,
    /// Number of failing rows.
    pub failing_rows: u64,
    /// Up to [`SAMPLE_ROWS`] failing rows, as JSON objects.
    pub sample: Vec<serde_json::Value>,
    /// Why the check could not run, if it could not (counts as failed).
    pub error: Option<String>,
}

impl CheckOutcome {
    /// Whether this outcome must block the commit.
    pub fn blocks(&self) -> bool {
        !self.passed && self.severity == Severity::Error.as_str()
    }
}

/// The outcomes that block the commit, described for a person (`name
/// (3 failing rows)`, `name could not run: …`, joined by `; `); `None`
/// when none blocks.
pub(crate) fn describe_blocking(checks: &[CheckOutcome]) -> Option<String> {
    let failing: Vec<String> = checks
        .iter()
        .filter(|c| c.blocks())
        .map(|c| match &c.error {
            Some(e) => format!("{} could not run: {e}", c.name),
            None => format!("{} ({} failing rows)", c.name, c.failing_rows),
        })
        .collect();
    (!failing.is_empty()).then(|| failing.join("; "))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The query returning the failing rows of `check` on table `table`.
pub fn failing_rows_sql(check: &CheckDef, table: &str, now: DateTime<Utc>) -> String {
    let t = quote(table);
    match &check.kind {
        CheckKind::NotNull { column } => {
            format!("SELECT * FROM {t} WHERE {} IS NULL", quote(column))
        }
        CheckKind::Unique { columns } => {
            let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
            let cols = cols.join(", ");
            format!(
                "SELECT {cols}, COUNT(*) AS duplicate_rows FROM {t} GROUP BY {cols} HAVING COUNT(*) > 1"
            )
        }
        CheckKind::AcceptedValues { column, values } => {
            let c = quote(column);
            format!(
                "SELECT * FROM {t} WHERE {c} IS NOT NULL AND {c} NOT IN ({})",
                values.join(", ")
            )
        }
        CheckKind::Relationships {
            column,
            to_asset,
            to_column,
        } => format!(
            "SELECT * FROM {t} AS __child WHERE __child.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {o} AS __parent WHERE __parent.{oc} = __child.{c})",
            c = quote(column),
            o = quote(to_asset),
            oc = quote(to_column)
        ),
        CheckKind::RowCount { min, max } => {
            let mut conds = Vec::new();
            if let Some(min) = min {
                conds.push(format!("COUNT(*) < {min}"));
            }
            if let Some(max) = max {
                conds.push(format!("COUNT(*) > {max}"));
            }
            if conds.is_empty() {
                conds.push("FALSE".to_owned());
            }
            format!(
                "SELECT COUNT(*) AS row_count FROM {t} HAVING {}",
                conds.join(" OR ")
            )
        }
        CheckKind::Freshness { column, max_age } => {
            let limit = chrono::TimeDelta::from_std(*max_age)
                .ok()
                .and_then(|age| now.checked_sub_signed(age))
                .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
            format!(
                "SELECT MAX({c}) AS latest FROM {t} HAVING MAX({c}) IS NULL OR CAST(MAX({c}) AS TIMESTAMP) < TIMESTAMP '{}'",
                limit.format("%Y-%m-%d %H:%M:%S"),
                c = quote(column)
            )
        }
        CheckKind::Expression { predicate } => {
            format!("SELECT * FROM {t} WHERE ({predicate}) IS NOT TRUE")
        }
        CheckKind::Sql { query } => query.clone(),
    }
}

/// Row-by-row checks (and `unique`) counted while the output streams by
/// to the Parquet writer, so they cost no extra query; a check that cannot
/// be evaluated this way (e.g. a predicate with a subquery) is left to SQL.
pub struct StreamChecks {
    conditions: Vec<(usize, Arc<dyn PhysicalExpr>, u64)>,
    unique: Vec<UniqueCounter>,
}

struct UniqueCounter {
    check: usize,
    columns: Vec<usize>,
    converter: RowConverter,
    seen: HashMap<Vec<u8>, u32>,
}

impl StreamChecks {
    /// Prepares the checks that can be counted on batches of `schema`.
    pub fn new(ctx: &SessionContext, checks: &[CheckDef], schema: &SchemaRef) -> Self {
        let mut out = StreamChecks {
            conditions: Vec::new(),
            unique: Vec::new(),
        };
        let Ok(df_schema) = DFSchema::try_from(schema.as_ref().clone()) else {
            return out;
        };
        for (i, check) in checks.iter().enumerate() {
            if let CheckKind::Unique { columns } = &check.kind {
                let idx: Option<Vec<usize>> =
                    columns.iter().map(|c| schema.index_of(c).ok()).collect();
                let Some(idx) = idx else { continue };
                let fields = idx
                    .iter()
                    .map(|j| SortField::new(schema.field(*j).data_type().clone()))
                    .collect();
                if let Ok(converter) = RowConverter::new(fields) {
                    out.unique.push(UniqueCounter {
                        check: i,
                        columns: idx,
                        converter,
                        seen: HashMap::new(),
                    });
                }
                continue;
            }
            let Some(cond) = row_failure(check) else {
                continue;
            };
            let expr = ctx
                .parse_sql_expr(&cond, &df_schema)
                .and_then(|e| ctx.create_physical_expr(e, &df_schema));
            if let Ok(expr) = expr {
                out.conditions.push((i, expr, 0));
            }
        }
        out
    }

    /// Counts a batch; a check whose evaluation fails is dropped (SQL then
    /// runs it and reports the error).
    pub fn update(&mut self, batch: &RecordBatch) {
        self.conditions.retain_mut(|(_, expr, failing)| {
            let Ok(value) = expr
                .evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
            else {
                return false;
            };
            let Some(bools) = value.as_any().downcast_ref::<BooleanArray>() else {
                return false;
            };
            *failing += bools.true_count() as u64;
            true
        });
        self.unique.retain_mut(|u| {
            let columns: Vec<_> = u
                .columns
                .iter()
                .map(|j| Arc::clone(batch.column(*j)))
                .collect();
            let Ok(rows) = u.converter.convert_columns(&columns) else {
                return false;
            };
            for row in rows.iter() {
                *u.seen.entry(row.as_ref().to_vec()).or_insert(0) += 1;
            }
            true
        });
    }

    /// Failing counts per check index (for `unique`: keys seen more than once).
    pub fn counts(self) -> HashMap<usize, u64> {
        let mut out: HashMap<usize, u64> = self
            .conditions
            .into_iter()
            .map(|(i, _, n)| (i, n))
            .collect();
        for u in self.unique {
            out.insert(u.check, u.seen.values().filter(|n| **n > 1).count() as u64);
        }
        out
    }
}

/// The condition under which one row fails, for checks judged row by row.
fn row_failure(check: &CheckDef) -> Option<String> {
    match &check.kind {
        CheckKind::NotNull { column } => Some(format!("{} IS NULL", quote(column))),
        CheckKind::AcceptedValues { column, values } => {
            let c = quote(column);
            Some(format!(
                "{c} IS NOT NULL AND {c} NOT IN ({})",
                values.join(", ")
            ))
        }
        CheckKind::Expression { predicate } => Some(format!("({predicate}) IS NOT TRUE")),
        _ => None,
    }
}

/// Runs every check; a check that cannot run fails with its error.
///
/// Row-by-row checks (not_null, accepted_values, expression) are counted
/// together in one scan, so adding one costs a CASE expression rather than
/// a planned query; samples are fetched only for checks that failed.
pub async fn run_checks(
    ctx: &SessionContext,
    checks: &[CheckDef],
    table: &str,
    now: DateTime<Utc>,
    precounted: &HashMap<usize, u64>,
) -> Vec<CheckOutcome> {
    let row_checks: Vec<(usize, String)> = checks
        .iter()
        .enumerate()
        .filter(|(i, _)| !precounted.contains_key(i))
        .filter_map(|(i, c)| row_failure(c).map(|cond| (i, cond)))
        .collect();
    let mut counted: HashMap<usize, u64> = precounted.clone();
    if row_checks.len() > 1 {
        let sums: Vec<String> = row_checks
            .iter()
            .enumerate()
            .map(|(j, (_, cond))| format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS f{j}"))
            .collect();
        let sql = format!("SELECT {} FROM {}", sums.join(", "), quote(table));
        if let Ok(counts) = counts(ctx, &sql, row_checks.len()).await {
            for ((i, _), n) in row_checks.iter().zip(counts) {
                counted.insert(*i, n);
            }
        }
        // On error, fall through: each check runs alone and reports its own error.
    }
    let mut out = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        let sql = failing_rows_sql(check, table, now);
        let result = match counted.get(&i) {
            Some(0) => Ok((0, Vec::new())),
            Some(n) => sample(ctx, &sql).await.map(|s| (*n, s)),
            None => count_and_sample(ctx, &sql).await,
        };
        let severity = check.severity.as_str();
        out.push(match result {
            Ok((failing_rows, sample)) => CheckOutcome {
                name: check.name.clone(),
                severity,
                passed: failing_rows == 0,
                failing_rows,
                sample,
                error: None,
            },
            Err(error) => CheckOutcome {
                name: check.name.clone(),
                severity,
                passed: false,
                failing_rows: 0,
                sample: Vec::new(),
                error: Some(error),
            },
        });
    }
    out
}

/// The first row of a query whose columns are integer counts (NULL = 0).
async fn counts(ctx: &SessionContext, sql: &str, n: usize) -> Result<Vec<u64>, String> {
    let e = |e: datafusion::error::DataFusionError| e.strip_backtrace();
    let batches = ctx
        .sql_with_options(sql, read_only())
        .await
        .map_err(e)?
        .collect()
        .await
        .map_err(e)?;
    let batch = batches.first().ok_or("no result")?;
    (0..n)
        .map(|j| {
            let col = datafusion::arrow::compute::cast(
                batch.column(j),
                &datafusion::arrow::datatypes::DataType::Int64,
            )
            .map_err(|e| e.to_string())?;
            let a = col
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .ok_or("count is not an integer")?;
            Ok(if a.is_null(0) {
                0
            } else {
                u64::try_from(a.value(0)).unwrap_or(0)
            })
        })
        .collect()
}

async fn sample(ctx: &SessionContext, sql: &str) -> Result<Vec<serde_json::Value>, String> {
    let e = |e: datafusion::error::DataFusionError| e.strip_backtrace();
    let sample_sql = format!("SELECT * FROM ({sql}) AS __failing LIMIT {SAMPLE_ROWS}");
    let batches = ctx
        .sql_with_options(&sample_sql, read_only())
        .await
        .map_err(e)?
        .collect()
        .await
        .map_err(e)?;
    rows_as_json(&batches)
}

async fn count_and_sample(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(u64, Vec<serde_json::Value>), String> {
    let failing = counts(
        ctx,
        &format!("SELECT COUNT(*) AS n FROM ({sql}) AS __failing"),
        1,
    )
    .await?
    .first()
    .copied()
    .unwrap_or(0);
    if failing == 0 {
        return Ok((0, Vec::new()));
    }
    Ok((failing, sample(ctx, sql).await?))
}

/// Batches as JSON objects (explicit nulls).
pub fn rows_as_json(batches: &[RecordBatch]) -> Result<Vec<serde_json::Value>, String> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            writer.write(b).map_err(|e| e.to_string())?;
        }
        writer.finish().map_err(|e| e.to_string())?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(&buf).map_err(|e| e.to_string())
}
