//! Building one unit: a session holding exactly what it reads, the write
//! (`write.rs`), the checks and partition guard on the written file, rows
//! added and removed, and the commit — one catalog transaction, nothing
//! committed on any failure.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use datafusion::datasource::empty::EmptyTable;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

use cairn_assets::CostConfig;
use cairn_catalog::{FileRecord, MaterializationMetrics, NewMaterialization};

use crate::compile::declared::check_output;
use crate::execute::inputs::{Job, RunShared, UpstreamTable, counts_changes};
use crate::execute::report::Materialized;
use crate::execute::row_changes::Changes;
use crate::execute::write::{Written, schema_json, write_output};
use crate::model::partition_index::dimension_names;
use crate::model::storage::{CommittedFile, Storage};
use crate::quality::checks::{CheckOutcome, describe_blocking, run_checks};
use crate::records::runs::check_record;
use crate::session::committed_table::with_dimensions;
use crate::session::metering::{CountingStore, PeakMemoryPool};
use crate::session::tables::{
    metered_session, register_committed, register_source_partitions, reproducible_config,
};

/// What a failed attempt's error says, before the list of failed checks,
/// when the output was written but failed its `error` checks (true whether
/// or not a previous version exists).
const CHECKS_FAILED: &str = "checks failed, output not committed: ";

/// How catalogs written before 2026-11 said the same.
const CHECKS_FAILED_BEFORE: &str = "check failed, previous version kept: ";

/// The failed checks named by a failed attempt's error, when that attempt
/// failed its checks (rather than its query, write or commit).
pub fn failed_checks(error: &str) -> Option<&str> {
    [CHECKS_FAILED, CHECKS_FAILED_BEFORE]
        .iter()
        .find_map(|prefix| error.split_once(prefix).map(|(_, checks)| checks))
}

pub(super) use crate::execute::failure::BuildFailure;

/// Computes, writes, checks and commits one asset partition. Errors are
/// user-facing messages naming the asset's file and partition; on error
/// nothing is committed and written files are removed.
pub(super) async fn build(shared: &RunShared, job: Job) -> Result<Materialized, BuildFailure> {
    let started = Instant::now();
    let name = job.asset.name.clone();
    let file = match job.partition.as_str() {
        "" => job.asset.file.display().to_string(),
        key => format!("{} [partition {key}]", job.asset.file.display()),
    };
    let hive = job
        .asset
        .partitions
        .as_ref()
        .map(|d| d.hive_path(&job.partition))
        .unwrap_or_default();
    let rel = Storage::new_file_path(&name, &hive, &shared.run_id.0, 0);
    let path = shared.storage.object_path(&rel);
    let meters = Meters {
        store: Arc::new(CountingStore::new(
            shared.failpoints.output_store(&shared.storage.store),
        )),
        pool: Arc::new(PeakMemoryPool::over(Arc::clone(&shared.memory))),
    };
    let outcome = write_and_check(shared, &meters, &job, &rel, &path).await;
    let (written, checks, changes) = match outcome {
        Ok(ok) => ok,
        Err(mut failure) => {
            // Best effort: the file is uncommitted, so never read; gc would remove it later.
            let _ = shared.storage.store.delete(&path).await;
            failure.error = format!("{file}: {}", failure.error);
            return Err(failure);
        }
    };

    if let Some(pause) = shared
        .failpoints
        .before_commit
        .as_ref()
        .and_then(|hook| hook(&name, &job.partition))
    {
        tokio::time::sleep(pause).await;
    }

    if shared.control.is_cancelled() {
        // Best effort, as above: uncommitted files are garbage.
        let _ = shared.storage.store.delete(&path).await;
        return Err(BuildFailure::from(
            "the run was cancelled before this commit".to_owned(),
        ));
    }

    let data_changed = job.previous_data_version.as_deref() != Some(written.data_version.as_str());
    let metrics = meters.metrics(&written, changes, &shared.cost);
    let wall = started.elapsed();
    let id = shared
        .catalog
        .commit_materialization(&NewMaterialization {
            run_id: shared.run_id.clone(),
            asset: name.clone(),
            partition: job.partition.clone(),
            code_version: job.code_version,
            input_version: job.input_version,
            data_version: written.data_version.clone(),
            row_count: written.rows,
            bytes_written: written.bytes,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            schema_json: schema_json(&written.schema),
            inputs: job.inputs,
            files: vec![FileRecord {
                path: rel.clone(),
                size_bytes: written.bytes,
                row_count: written.rows,
            }],
            committed_at: Utc::now(),
            metrics: metrics.clone(),
            checks: checks.iter().map(check_record).collect(),
        })
        .map_err(|e| format!("{file}: commit failed: {e}"))?;

    Ok(Materialized {
        id,
        rows: written.rows,
        bytes_written: written.bytes,
        files: vec![rel],
        data_version: written.data_version,
        data_changed,
        wall,
        datafusion: written.datafusion,
        write: written.write,
        hashing: written.hashing,
        row_changes: written.row_changes,
        rows_added: changes.map(|c| c.added),
        rows_removed: changes.map(|c| c.removed),
        checks,
        metrics,
        schema: Some(written.schema),
    })
}

/// Rows added and removed versus the previous version, when counted.
pub(super) type RowChanges = Option<Changes>;

/// The meters of one materialization.
pub(super) struct Meters {
    pub(super) store: Arc<CountingStore>,
    pub(super) pool: Arc<PeakMemoryPool>,
}

impl Meters {
    /// Everything measured, priced with `rates`.
    fn metrics(
        &self,
        written: &Written,
        changes: RowChanges,
        rates: &CostConfig,
    ) -> MaterializationMetrics {
        let c = &self.store.counts;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        // On a cluster the executors read the scanned files, not this
        // process: what the plan scans is added to what Cairn read itself.
        let remote = written.remote.unwrap_or_default();
        let (bytes_read, read_requests) = (
            load(&c.bytes_read) + remote.bytes,
            load(&c.read_requests) + remote.files,
        );
        let (bytes_written, write_requests) = (load(&c.bytes_written), load(&c.write_requests));
        let other_requests = load(&c.other_requests);
        // CPU: DataFusion operators' compute time plus our own per-row work.
        let cpu_seconds =
            written.plan.elapsed_compute_ns as f64 / 1e9 + written.hashing.as_secs_f64();
        let requests = (read_requests + write_requests + other_requests) as f64;
        let cost_usd = cpu_seconds / 3600.0 * rates.cpu_hour
            + bytes_read as f64 / 1e9 * rates.gb_scanned
            + bytes_written as f64 / 1e9 * rates.gb_stored_month
            + requests / 1000.0 * rates.per_1k_requests;
        MaterializationMetrics {
            rows_added: changes.map(|c| c.added),
            rows_removed: changes.map(|c| c.removed),
            columns: written.columns.clone(),
            cpu_seconds,
            datafusion_seconds: written.datafusion.as_secs_f64(),
            output_rows: written.plan.output_rows,
            bytes_scanned: written.plan.bytes_scanned,
            spilled_bytes: written.plan.spilled_bytes,
            bytes_read,
            read_requests,
            objects_read: written.objects_read,
            bytes_written,
            write_requests,
            other_requests,
            peak_memory_bytes: self.pool.peak() as u64,
            cost_usd,
        }
    }
}

/// A session holding exactly what the unit reads; the write; then, on the
/// written file, the checks and the comparison with the previous version.
pub(super) async fn write_and_check(
    shared: &RunShared,
    meters: &Meters,
    job: &Job,
    rel: &str,
    path: &object_store::path::Path,
) -> Result<(Written, Vec<CheckOutcome>, RowChanges), BuildFailure> {
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::clone(&meters.store) as Arc<dyn object_store::ObjectStore>;
    let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
        Arc::clone(&meters.pool) as _;
    let config = shared.engine.session_config(reproducible_config());
    let ctx = metered_session(&shared.storage, Arc::clone(&store), pool, config)
        .map_err(|e| BuildFailure::datafusion("", e))?;
    let declared = shared.declared.get(&job.asset.name);
    for table in &job.tables {
        match table {
            UpstreamTable::DeclaredEmpty { name } => {
                let Some(schema) = declared else { continue };
                let dims = dimension_names(&shared.project, name);
                ctx.register_table(
                    name,
                    Arc::new(EmptyTable::new(with_dimensions(schema, &dims))),
                )
                .map_err(|e| BuildFailure::datafusion("", e))?;
            }
            UpstreamTable::Source { name, keys } => {
                let Some(source) = shared.project.sources.get(name) else {
                    continue;
                };
                register_source_partitions(&ctx, source, keys, &shared.project.config.storage)
                    .await
                    .map_err(BuildFailure::from)?;
            }
            UpstreamTable::Asset {
                name,
                files,
                schema_files,
            } => {
                if files.is_empty() && schema_files.is_empty() && *name == job.asset.name {
                    return Err(crate::compile::needs_declared_columns(&job.asset)
                        .to_string()
                        .into());
                }
                let empty = files.is_empty();
                let files = if empty { schema_files } else { files };
                register_committed(
                    &ctx,
                    &shared.storage,
                    name,
                    files,
                    &dimension_names(&shared.project, name),
                    empty,
                )
                .await
                .map_err(|e| {
                    BuildFailure::datafusion(&format!("cannot read committed files of `{name}`"), e)
                })?;
            }
        }
    }
    let mut written =
        write_output(&ctx, &shared.engine, &store, job, path, shared.memory_limit).await?;
    written.objects_read = meters.store.counts.objects_read_except(path);
    if let Some(declared) = declared {
        check_output(&job.asset, declared, &written.schema).map_err(|d| d.to_string())?;
    }

    // From here on the asset's own name means the new, uncommitted output.
    let me = job.asset.name.as_str();
    let my_dims = dimension_names(&shared.project, me);
    register_committed(
        &ctx,
        &shared.storage,
        me,
        &[CommittedFile {
            path: rel.to_owned(),
            size: Some(written.bytes),
        }],
        &my_dims,
        false,
    )
    .await
    .map_err(|e| BuildFailure::datafusion("cannot read back the written file", e))?;
    crate::quality::partition_guard::check_rows_in_partition(
        &ctx,
        me,
        &job.asset,
        &job.partition,
        &written.schema,
    )
    .await?;
    let checks = run_checks(&ctx, &job.asset.checks, me, job.now, &written.check_counts).await;
    if let Some(failed) = describe_blocking(&checks) {
        return Err(BuildFailure {
            error: format!("{CHECKS_FAILED}{failed}"),
            checks,
            transient: false,
        });
    }
    let t = Instant::now();
    let changes = if !counts_changes(job) {
        None
    } else if job.previous_data_version.as_deref() == Some(written.data_version.as_str()) {
        // Same multiset of rows: nothing added or removed.
        Some(Changes {
            added: 0,
            removed: 0,
        })
    } else {
        row_changes(&ctx, shared, &meters.store, me, job, &mut written).await
    };
    written.row_changes = t.elapsed();
    Ok((written, checks, changes))
}

/// Exact rows added and removed (as multisets, see [`crate::execute::row_changes`])
/// between the new output, registered as `me`, and the previous version's
/// files. `None` when the columns differ (a schema change makes the
/// comparison meaningless) or the previous version cannot be read.
pub(super) async fn row_changes(
    ctx: &SessionContext,
    shared: &RunShared,
    store: &Arc<CountingStore>,
    me: &str,
    job: &Job,
    written: &mut Written,
) -> RowChanges {
    use crate::execute::row_changes::{
        Previous, by_sql, difference, max_held_rows, previous_row_hashes,
    };
    if let Some(new) = written.row_hashes.take() {
        let files: Vec<_> = job
            .previous_files
            .iter()
            .map(|f| (shared.storage.object_path(&f.path), f.size))
            .collect();
        let store = Arc::clone(store) as Arc<dyn object_store::ObjectStore>;
        match previous_row_hashes(
            store,
            &files,
            &written.schema,
            max_held_rows(shared.memory_limit),
        )
        .await
        {
            Ok(Previous::Hashes(previous)) => {
                return Some(difference(new, previous));
            }
            Ok(Previous::OtherColumns) | Err(_) => return None,
            Ok(Previous::TooLarge) => {}
        }
    }
    // Too many rows to hold their hashes: the same counts in SQL.
    const PREVIOUS: &str = "__cairn_previous";
    let dims = dimension_names(&shared.project, me);
    register_committed(
        ctx,
        &shared.storage,
        PREVIOUS,
        &job.previous_files,
        &dims,
        false,
    )
    .await
    .ok()?;
    by_sql(ctx, me, PREVIOUS).await.ok()
}
