//! The catalog as read-only SQL tables for `cairn query`: `cairn.runs`,
//! `cairn.materializations`, `cairn.checks`, `cairn.lineage`, `cairn.cost`,
//! `cairn.alerts`.
//! Built in memory from the catalog when a query names them, so they are
//! joinable with the data and can never write back.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::EngineError;
use crate::model::graph::NodeKind;
use crate::model::workspace::Workspace;

/// The schema the metadata tables live in.
pub const SCHEMA: &str = "cairn";

/// The names of the metadata tables.
pub const TABLES: [&str; 9] = [
    "runs",
    "materializations",
    "checks",
    "lineage",
    "column_lineage",
    "audit_log",
    "cost",
    "alerts",
    "evaluations",
];

fn ts(v: impl IntoIterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(
            v.into_iter()
                .map(|t| t.map(|t| t.timestamp_micros()))
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC"),
    )
}

fn strs<'a>(v: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from(v.into_iter().collect::<Vec<_>>()))
}

fn bools(v: impl IntoIterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(datafusion::arrow::array::BooleanArray::from(
        v.into_iter().collect::<Vec<_>>(),
    ))
}

fn ints(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v.into_iter().collect::<Vec<_>>()))
}

fn i(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

fn table(
    ctx: &SessionContext,
    name: &str,
    fields: Vec<(&str, DataType)>,
    columns: Vec<ArrayRef>,
) -> Result<(), EngineError> {
    let schema = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    ));
    let e = |e: datafusion::error::DataFusionError| EngineError::Internal(e.strip_backtrace());
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|x| EngineError::Internal(x.to_string()))?;
    let mem = MemTable::try_new(schema, vec![vec![batch]]).map_err(e)?;
    ctx.register_table(format!("{SCHEMA}.{name}"), Arc::new(mem))
        .map_err(e)?;
    Ok(())
}

/// Registers the metadata tables among `wanted` into `ctx`.
pub async fn register(
    ctx: &SessionContext,
    ws: &Workspace,
    wanted: &BTreeSet<String>,
) -> Result<(), EngineError> {
    if wanted.is_empty() {
        return Ok(());
    }
    if let Some(catalog) = ctx.catalog("datafusion") {
        catalog
            .register_schema(SCHEMA, Arc::new(MemorySchemaProvider::new()))
            .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
    }
    let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    if wanted.contains("runs") {
        let runs = ws.catalog.runs(usize::MAX)?;
        table(
            ctx,
            "runs",
            vec![
                ("run_id", DataType::Utf8),
                ("user", DataType::Utf8),
                ("host", DataType::Utf8),
                ("pid", DataType::Int64),
                ("command", DataType::Utf8),
                ("trigger", DataType::Utf8),
                ("started_at", time.clone()),
                ("finished_at", time.clone()),
                ("status", DataType::Utf8),
                ("error", DataType::Utf8),
                ("backfill_id", DataType::Utf8),
                ("queued_at", time.clone()),
            ],
            vec![
                strs(runs.iter().map(|r| Some(r.id.0.as_str()))),
                strs(runs.iter().map(|r| Some(r.user.as_str()))),
                strs(runs.iter().map(|r| Some(r.host.as_str()))),
                ints(runs.iter().map(|r| Some(i64::from(r.pid)))),
                strs(runs.iter().map(|r| Some(r.command.as_str()))),
                strs(runs.iter().map(|r| Some(r.trigger.as_str()))),
                // A queued run's recorded start is its queueing time
                // until it starts: no start yet.
                ts(runs
                    .iter()
                    .map(|r| (r.queued_at != Some(r.started_at)).then_some(r.started_at))),
                ts(runs.iter().map(|r| r.finished_at)),
                strs(runs.iter().map(|r| Some(r.status.as_str()))),
                strs(runs.iter().map(|r| r.error.as_deref())),
                strs(
                    runs.iter()
                        .map(|r| r.backfill_id.as_ref().map(|b| b.0.as_str())),
                ),
                ts(runs.iter().map(|r| r.queued_at)),
            ],
        )?;
    }
    if wanted.contains("materializations") || wanted.contains("cost") {
        let all = ws.catalog.metrics_since(None)?;
        let current: HashSet<i64> = ws
            .catalog
            .current_versions()?
            .into_iter()
            .map(|c| c.id.0)
            .collect();
        let rows: Vec<_> = if wanted.contains("materializations") {
            all.iter().collect()
        } else {
            Vec::new()
        };
        if wanted.contains("materializations") {
            table(
                ctx,
                "materializations",
                vec![
                    ("id", DataType::Int64),
                    ("run_id", DataType::Utf8),
                    ("asset", DataType::Utf8),
                    ("partition", DataType::Utf8),
                    ("is_current", DataType::Boolean),
                    ("code_version", DataType::Utf8),
                    ("input_version", DataType::Utf8),
                    ("data_version", DataType::Utf8),
                    ("rows", DataType::Int64),
                    ("rows_added", DataType::Int64),
                    ("rows_removed", DataType::Int64),
                    ("bytes_written", DataType::Int64),
                    ("wall_ms", DataType::Int64),
                    ("committed_at", time.clone()),
                ],
                vec![
                    ints(rows.iter().map(|(v, _)| Some(v.id.0))),
                    strs(rows.iter().map(|(v, _)| Some(v.run_id.0.as_str()))),
                    strs(rows.iter().map(|(v, _)| Some(v.asset.as_str()))),
                    strs(rows.iter().map(|(v, _)| Some(v.partition.as_str()))),
                    Arc::new(BooleanArray::from(
                        rows.iter()
                            .map(|(v, _)| Some(current.contains(&v.id.0)))
                            .collect::<Vec<_>>(),
                    )),
                    strs(rows.iter().map(|(v, _)| Some(v.code_version.as_str()))),
                    strs(rows.iter().map(|(v, _)| Some(v.input_version.as_str()))),
                    strs(rows.iter().map(|(v, _)| Some(v.data_version.as_str()))),
                    ints(rows.iter().map(|(v, _)| i(v.row_count))),
                    ints(rows.iter().map(|(_, m)| m.rows_added.and_then(i))),
                    ints(rows.iter().map(|(_, m)| m.rows_removed.and_then(i))),
                    ints(rows.iter().map(|(v, _)| i(v.bytes_written))),
                    ints(rows.iter().map(|(v, _)| i(v.wall_ms))),
                    ts(rows.iter().map(|(v, _)| Some(v.committed_at))),
                ],
            )?;
        }
        if wanted.contains("cost") {
            let f = |v: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
            table(
                ctx,
                "cost",
                vec![
                    ("materialization_id", DataType::Int64),
                    ("asset", DataType::Utf8),
                    ("partition", DataType::Utf8),
                    ("is_current", DataType::Boolean),
                    ("committed_at", time.clone()),
                    ("wall_ms", DataType::Int64),
                    ("cpu_seconds", DataType::Float64),
                    ("bytes_read", DataType::Int64),
                    ("read_requests", DataType::Int64),
                    ("objects_read", DataType::Int64),
                    ("bytes_written", DataType::Int64),
                    ("write_requests", DataType::Int64),
                    ("peak_memory_bytes", DataType::Int64),
                    ("cost_usd", DataType::Float64),
                ],
                vec![
                    ints(all.iter().map(|(v, _)| Some(v.id.0))),
                    strs(all.iter().map(|(v, _)| Some(v.asset.as_str()))),
                    strs(all.iter().map(|(v, _)| Some(v.partition.as_str()))),
                    Arc::new(BooleanArray::from(
                        all.iter()
                            .map(|(v, _)| Some(current.contains(&v.id.0)))
                            .collect::<Vec<_>>(),
                    )),
                    ts(all.iter().map(|(v, _)| Some(v.committed_at))),
                    ints(all.iter().map(|(v, _)| i(v.wall_ms))),
                    f(all.iter().map(|(_, m)| Some(m.cpu_seconds)).collect()),
                    ints(all.iter().map(|(_, m)| i(m.bytes_read))),
                    ints(all.iter().map(|(_, m)| i(m.read_requests))),
                    ints(all.iter().map(|(_, m)| i(m.objects_read))),
                    ints(all.iter().map(|(_, m)| i(m.bytes_written))),
                    ints(all.iter().map(|(_, m)| i(m.write_requests))),
                    ints(all.iter().map(|(_, m)| i(m.peak_memory_bytes))),
                    f(all.iter().map(|(_, m)| Some(m.cost_usd)).collect()),
                ],
            )?;
        }
    }
    if wanted.contains("checks") {
        let mut all = Vec::new();
        for name in ws.project.assets.keys() {
            all.extend(ws.catalog.check_results(name, usize::MAX)?);
        }
        all.sort_by_key(|r| r.id);
        table(
            ctx,
            "checks",
            vec![
                ("id", DataType::Int64),
                ("run_id", DataType::Utf8),
                ("asset", DataType::Utf8),
                ("partition", DataType::Utf8),
                ("materialization_id", DataType::Int64),
                ("check_name", DataType::Utf8),
                ("severity", DataType::Utf8),
                ("passed", DataType::Boolean),
                ("failing_rows", DataType::Int64),
                ("sample", DataType::Utf8),
                ("error", DataType::Utf8),
                ("at", time.clone()),
            ],
            vec![
                ints(all.iter().map(|r| Some(r.id))),
                strs(all.iter().map(|r| Some(r.run_id.0.as_str()))),
                strs(all.iter().map(|r| Some(r.asset.as_str()))),
                strs(all.iter().map(|r| Some(r.partition.as_str()))),
                ints(all.iter().map(|r| r.materialization.map(|m| m.0))),
                strs(all.iter().map(|r| Some(r.result.name.as_str()))),
                strs(all.iter().map(|r| Some(r.result.severity.as_str()))),
                Arc::new(BooleanArray::from(
                    all.iter()
                        .map(|r| Some(r.result.passed))
                        .collect::<Vec<_>>(),
                )),
                ints(all.iter().map(|r| i(r.result.failing_rows))),
                strs(all.iter().map(|r| Some(r.result.sample_json.as_str()))),
                strs(all.iter().map(|r| r.result.error.as_deref())),
                ts(all.iter().map(|r| Some(r.at))),
            ],
        )?;
    }
    if wanted.contains("audit_log") {
        let log = ws.catalog.audit_log(None, None)?;
        table(
            ctx,
            "audit_log",
            vec![
                ("id", DataType::Int64),
                ("at", time.clone()),
                ("principal", DataType::Utf8),
                ("host", DataType::Utf8),
                ("git_commit", DataType::Utf8),
                ("action", DataType::Utf8),
                ("target", DataType::Utf8),
                ("details", DataType::Utf8),
            ],
            vec![
                ints(log.iter().map(|e| Some(e.id))),
                ts(log.iter().map(|e| Some(e.entry.at))),
                strs(log.iter().map(|e| Some(e.entry.principal.as_str()))),
                strs(log.iter().map(|e| Some(e.entry.host.as_str()))),
                strs(log.iter().map(|e| e.entry.git_commit.as_deref())),
                strs(log.iter().map(|e| Some(e.entry.action.as_str()))),
                strs(log.iter().map(|e| Some(e.entry.target.as_str()))),
                strs(log.iter().map(|e| Some(e.entry.details.as_str()))),
            ],
        )?;
    }
    if wanted.contains("column_lineage") {
        let assets: BTreeSet<String> = ws.project.assets.keys().cloned().collect();
        let plans = crate::compile::logical_plans(ws, &assets).await?;
        let mut rows: Vec<(String, String, String, String, String)> = Vec::new();
        for name in ws.graph.assets_in_order() {
            let Some(plan) = plans.get(name) else {
                continue;
            };
            let lineage = crate::lineage::column_lineage::column_lineage(plan)
                .map_err(|e| EngineError::Internal(e.strip_backtrace()))?;
            for col in lineage {
                for src in col.sources {
                    let kind = serde_json::to_value(src.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    rows.push((
                        name.to_owned(),
                        col.column.clone(),
                        src.table,
                        src.column,
                        kind,
                    ));
                }
            }
        }
        table(
            ctx,
            "column_lineage",
            vec![
                ("asset", DataType::Utf8),
                ("column", DataType::Utf8),
                ("upstream", DataType::Utf8),
                ("upstream_column", DataType::Utf8),
                ("kind", DataType::Utf8),
            ],
            vec![
                strs(rows.iter().map(|r| Some(r.0.as_str()))),
                strs(rows.iter().map(|r| Some(r.1.as_str()))),
                strs(rows.iter().map(|r| Some(r.2.as_str()))),
                strs(rows.iter().map(|r| Some(r.3.as_str()))),
                strs(rows.iter().map(|r| Some(r.4.as_str()))),
            ],
        )?;
    }
    if wanted.contains("lineage") {
        let mut edges: Vec<(String, String, &'static str)> = Vec::new();
        for name in ws.graph.assets_in_order() {
            for up in ws.graph.upstream(name) {
                let kind = if ws.graph.kind(up) == Some(NodeKind::Source) {
                    "source"
                } else {
                    "asset"
                };
                edges.push((name.to_owned(), up.to_owned(), kind));
            }
        }
        table(
            ctx,
            "lineage",
            vec![
                ("asset", DataType::Utf8),
                ("upstream", DataType::Utf8),
                ("upstream_kind", DataType::Utf8),
            ],
            vec![
                strs(edges.iter().map(|e| Some(e.0.as_str()))),
                strs(edges.iter().map(|e| Some(e.1.as_str()))),
                strs(edges.iter().map(|e| Some(e.2))),
            ],
        )?;
    }
    if wanted.contains("alerts") {
        alerts_table(ctx, ws, &time)?;
    }
    if wanted.contains("evaluations") {
        let evaluations = ws.catalog.automation_evaluations(None, usize::MAX)?;
        table(
            ctx,
            "evaluations",
            vec![
                ("tick_at", time.clone()),
                ("asset", DataType::Utf8),
                ("condition", DataType::Utf8),
                ("fired", DataType::Boolean),
                ("reason", DataType::Utf8),
                ("run_id", DataType::Utf8),
            ],
            vec![
                ts(evaluations.iter().map(|e| Some(e.tick_at))),
                strs(evaluations.iter().map(|e| Some(e.asset.as_str()))),
                strs(evaluations.iter().map(|e| Some(e.condition.as_str()))),
                bools(evaluations.iter().map(|e| Some(e.fired))),
                strs(evaluations.iter().map(|e| Some(e.reason.as_str()))),
                strs(
                    evaluations
                        .iter()
                        .map(|e| e.run_id.as_ref().map(|r| r.0.as_str())),
                ),
            ],
        )?;
    }
    Ok(())
}

/// `cairn.alerts`: one row per alert delivery with its incident, newest
/// incident first (an incident no receiver listens to has one row with
/// empty delivery columns).
fn alerts_table(ctx: &SessionContext, ws: &Workspace, time: &DataType) -> Result<(), EngineError> {
    let log = ws.catalog.alert_log(usize::MAX)?;
    let rows: Vec<(
        &cairn_catalog::AlertIncident,
        Option<&cairn_catalog::AlertDelivery>,
    )> = log
        .iter()
        .flat_map(|(incident, deliveries)| {
            let of: Vec<_> = if deliveries.is_empty() {
                vec![(incident, None)]
            } else {
                deliveries.iter().map(|d| (incident, Some(d))).collect()
            };
            of
        })
        .collect();
    let d = |f: fn(&cairn_catalog::AlertDelivery) -> Option<&str>| {
        strs(rows.iter().map(move |(_, d)| d.and_then(f)))
    };
    let dt = |f: fn(&cairn_catalog::AlertDelivery) -> Option<DateTime<Utc>>| {
        ts(rows.iter().map(move |(_, d)| d.and_then(f)))
    };
    table(
        ctx,
        "alerts",
        vec![
            ("incident_id", DataType::Int64),
            ("kind", DataType::Utf8),
            ("asset", DataType::Utf8),
            ("partition", DataType::Utf8),
            ("opened_at", time.clone()),
            ("closed_at", time.clone()),
            ("detail", DataType::Utf8),
            ("run_id", DataType::Utf8),
            ("closed_run_id", DataType::Utf8),
            ("delivery_id", DataType::Int64),
            ("event", DataType::Utf8),
            ("url", DataType::Utf8),
            ("format", DataType::Utf8),
            ("status", DataType::Utf8),
            ("attempts", DataType::Int64),
            ("last_error", DataType::Utf8),
            ("created_at", time.clone()),
            ("last_attempt_at", time.clone()),
            ("next_attempt_at", time.clone()),
            ("delivered_at", time.clone()),
            ("body", DataType::Utf8),
        ],
        vec![
            ints(rows.iter().map(|(i, _)| Some(i.id.0))),
            strs(rows.iter().map(|(i, _)| Some(i.kind.as_str()))),
            strs(rows.iter().map(|(i, _)| Some(i.asset.as_str()))),
            strs(rows.iter().map(|(i, _)| Some(i.partition.as_str()))),
            ts(rows.iter().map(|(i, _)| Some(i.opened_at))),
            ts(rows.iter().map(|(i, _)| i.closed_at)),
            strs(rows.iter().map(|(i, _)| Some(i.detail.as_str()))),
            strs(
                rows.iter()
                    .map(|(i, _)| i.run_id.as_ref().map(|r| r.0.as_str())),
            ),
            strs(
                rows.iter()
                    .map(|(i, _)| i.closed_run_id.as_ref().map(|r| r.0.as_str())),
            ),
            ints(rows.iter().map(|(_, d)| d.map(|d| d.id.0))),
            d(|d| Some(d.event.as_str())),
            d(|d| Some(d.url.as_str())),
            d(|d| Some(d.format.as_str())),
            d(|d| Some(d.status.as_str())),
            ints(rows.iter().map(|(_, d)| d.map(|d| i64::from(d.attempts)))),
            d(|d| d.last_error.as_deref()),
            dt(|d| Some(d.created_at)),
            dt(|d| d.last_attempt_at),
            dt(|d| d.next_attempt_at),
            dt(|d| d.delivered_at),
            d(|d| Some(d.body.as_str())),
        ],
    )
}
