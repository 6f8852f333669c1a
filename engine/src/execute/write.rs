//! Writing a unit's output: DataFusion's stream to a new immutable Parquet
//! file, hashing every row on the way (data version, row identities) and
//! counting streamed checks.
//!
//! The row group being encoded is held in memory (tens of MB for a million
//! rows), so it is reserved in the session's memory pool like DataFusion's
//! own Parquet sink does: it counts in the unit's peak memory, and under a
//! `memory_limit` a row group the pool cannot hold is ended early (smaller
//! row groups, same rows and data version) rather than grown past the limit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::errors::ParquetError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;

use cairn_catalog::ColumnStats;

use crate::execute::failure::BuildFailure;
use crate::execute::inputs::{Job, counts_changes};
use crate::execute::parquet_settings::output_writer_properties;
use crate::model::version::DataHasher;
use crate::quality::checks::StreamChecks;
use crate::session::cluster::{QueryEngine, RemoteScan, remote_scan};
use crate::session::metering::{PlanMetrics, column_stats, plan_metrics};
use crate::session::tables::read_only;

pub(super) struct Written {
    /// Failing-row counts of checks evaluated on the stream, by check index.
    pub(super) check_counts: std::collections::HashMap<usize, u64>,
    pub(super) plan: PlanMetrics,
    pub(super) columns: Vec<ColumnStats>,
    pub(super) schema: SchemaRef,
    pub(super) rows: u64,
    pub(super) bytes: u64,
    pub(super) data_version: String,
    pub(super) datafusion: Duration,
    pub(super) write: Duration,
    pub(super) hashing: Duration,
    /// Distinct objects read to compute it, its own output aside.
    pub(super) objects_read: u64,
    /// What the query's scans read on the cluster, when it ran on one.
    pub(super) remote: Option<RemoteScan>,
    /// Time counting rows added and removed.
    pub(super) row_changes: Duration,
    /// Each row's hash, when rows added and removed are to be counted
    /// (`None` past [`crate::execute::row_changes::max_held_rows`]).
    pub(super) row_hashes: Option<Vec<crate::model::version::RowHash>>,
}

pub(super) async fn write_output(
    ctx: &SessionContext,
    engine: &QueryEngine,
    store: &Arc<dyn object_store::ObjectStore>,
    job: &Job,
    path: &object_store::path::Path,
    memory_limit: Option<u64>,
) -> Result<Written, BuildFailure> {
    let df_err = |e: datafusion::error::DataFusionError| BuildFailure::datafusion("", e);
    let t = Instant::now();
    let df = ctx
        .sql_with_options(&job.sql, read_only())
        .await
        .map_err(df_err)?;
    let plan = df.create_physical_plan().await.map_err(df_err)?;
    let mut datafusion = t.elapsed();
    let schema = plan.schema();
    let mut seen = HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(BuildFailure::from(format!(
                "the query returns two columns named `{}`; give one an alias (e.g. `b.{} as b_{}`)",
                field.name(),
                field.name(),
                field.name()
            )));
        }
    }

    if let Some(def) = &job.asset.partitions {
        for dim in &def.dimensions {
            if schema.fields().iter().any(|f| f.name() == dim.name()) {
                return Err(BuildFailure::from(format!(
                    "the output has a column named `{0}`, which is also the partition dimension (the `{0}=...` folder, which readers already see as a column); leave it out (`select * exclude ({0}) ...` when it comes from a partitioned upstream), rename it, or set a different `name` in [partitions]",
                    dim.name()
                )));
            }
        }
    }

    let props = output_writer_properties(&schema);
    let sink = BufWriter::new(Arc::clone(store), path.clone());
    let parquet_err =
        |e: ParquetError| BuildFailure::caused_by(format!("writing Parquet: {e}"), &e);
    let mut writer =
        AsyncArrowWriter::try_new(sink, Arc::clone(&schema), Some(props)).map_err(parquet_err)?;
    let mut hasher = DataHasher::new(&schema).map_err(df_err)?;
    if counts_changes(job) {
        hasher =
            hasher.keeping_row_hashes(crate::execute::row_changes::max_held_rows(memory_limit));
    }
    let mut stream_checks = StreamChecks::new(ctx, &job.asset.checks, &schema);
    let mut held = MemoryConsumer::new(format!("ParquetWriter[{}]", job.asset.name))
        .register(&ctx.runtime_env().memory_pool);
    let mut stream = engine
        .execute(Arc::clone(&plan), ctx)
        .await
        .map_err(df_err)?;
    let (mut write, mut hashing, mut rows) = (Duration::ZERO, Duration::ZERO, 0u64);
    loop {
        let t = Instant::now();
        let next = stream.next().await;
        datafusion += t.elapsed();
        let Some(batch) = next else { break };
        let batch = batch.map_err(df_err)?;
        let t = Instant::now();
        hasher.update(&batch).map_err(df_err)?;
        stream_checks.update(&batch);
        hashing += t.elapsed();
        let t = Instant::now();
        writer.write(&batch).await.map_err(parquet_err)?;
        hold_or_flush(&mut writer, &mut held)
            .await
            .map_err(parquet_err)?;
        write += t.elapsed();
        rows += batch.num_rows() as u64;
    }
    let t = Instant::now();
    let parquet_meta = writer.close().await.map_err(parquet_err)?;
    held.free();
    let bytes = store
        .head(path)
        .await
        .map_err(|e| BuildFailure::caused_by(format!("reading back written file: {e}"), &e))?
        .size;
    write += t.elapsed();
    // A plan executed elsewhere has no metrics here: its rows are the ones
    // streamed, its compute the time the cluster took (one task holds one
    // executor slot), its scans the files it names.
    let (plan_measured, remote) = if engine.is_remote() {
        let scan = remote_scan(&plan);
        let measured = PlanMetrics {
            elapsed_compute_ns: u64::try_from(datafusion.as_nanos()).unwrap_or(u64::MAX),
            bytes_scanned: scan.bytes,
            spilled_bytes: 0,
            output_rows: rows,
        };
        (measured, Some(scan))
    } else {
        (plan_metrics(&plan), None)
    };
    Ok(Written {
        remote,
        check_counts: stream_checks.counts(),
        objects_read: 0,
        row_changes: Duration::ZERO,
        row_hashes: hasher.take_row_hashes(),
        columns: column_stats(&parquet_meta, &schema),
        plan: plan_measured,
        schema,
        rows,
        bytes,
        data_version: hasher.finish(),
        datafusion,
        write,
        hashing,
    })
}

/// Reserves what `writer` holds of its row group in progress; when the
/// pool cannot give that much, the row group is written out now, which
/// frees it.
async fn hold_or_flush<W>(
    writer: &mut AsyncArrowWriter<W>,
    held: &mut MemoryReservation,
) -> Result<(), ParquetError>
where
    W: datafusion::parquet::arrow::async_writer::AsyncFileWriter,
{
    if held.try_resize(writer.memory_size()).is_err() {
        writer.flush().await?;
        held.resize(writer.memory_size());
    }
    Ok(())
}

pub(super) fn schema_json(schema: &SchemaRef) -> String {
    let fields: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    serde_json::Value::Array(fields).to_string()
}
