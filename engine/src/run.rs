//! Executing a materialization run: schedule the assets that may be stale
//! in dependency order with bounded concurrency, decide again just before
//! each one whether it is really stale (early cutoff), compute it with
//! DataFusion, write new immutable Parquet files, and commit each asset in
//! one catalog transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::context::SQLOptions;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use serde::Serialize;
use tokio::task::JoinSet;

use cairn_assets::SqlAsset;
use cairn_catalog::{
    AttemptOutcome, Catalog, FileRecord, MaterializationId, NewAttempt, NewMaterialization, NewRun,
    RunId, RunStatus, UpstreamKind, UpstreamVersion,
};

use crate::error::EngineError;
use crate::graph::NodeKind;
use crate::selection;
use crate::status::AssetState;
use crate::storage::Storage;
use crate::tables::{new_session, register_committed, register_source};
use crate::version::{DataHasher, UpstreamInput, input_version};
use crate::workspace::{Snapshot, Workspace};

/// Environment variable naming an asset after whose files are written the
/// process stops before committing (used by crash tests).
pub const HANG_BEFORE_COMMIT_ENV: &str = "CAIRN_TEST_HANG_BEFORE_COMMIT";

/// What to materialize and how.
#[derive(Debug, Clone)]
pub struct MaterializeOptions {
    /// Selectors; empty means every asset.
    pub selection: Vec<String>,
    /// Rebuild the selected assets even when fresh.
    pub force: bool,
    /// Assets computed at the same time (at least 1).
    pub jobs: usize,
    /// The command line, for the run record.
    pub command: String,
}

/// What happened to one asset in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AssetOutcome {
    /// A new version was committed.
    Materialized(Materialized),
    /// Already up to date: no DataFusion work.
    Fresh {
        /// True when it was scheduled because an upstream was stale, but
        /// the upstream's rebuild produced identical data.
        early_cutoff: bool,
    },
    /// It failed; nothing was committed.
    Failed {
        /// The error.
        error: String,
    },
    /// Not attempted because an upstream failed.
    Skipped {
        /// The failed upstream.
        upstream: String,
    },
}

/// A committed materialization, as the run saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Materialized {
    /// Catalog id.
    pub id: MaterializationId,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Files written (relative to the storage root).
    pub files: Vec<String>,
    /// The new data version.
    pub data_version: String,
    /// Whether the data differs from the previous version.
    pub data_changed: bool,
    /// Wall time of the whole asset.
    pub wall: Duration,
    /// Time in DataFusion: planning and pulling batches.
    pub datafusion: Duration,
    /// Time encoding and writing Parquet.
    pub write: Duration,
    /// Time hashing rows for the data version.
    pub hashing: Duration,
}

/// One asset's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetResult {
    /// Asset name.
    pub asset: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AssetOutcome,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run id; `None` when nothing was stale (no run was started).
    pub run_id: Option<RunId>,
    /// Per-asset results, in dependency order.
    pub results: Vec<AssetResult>,
    /// Wall time of the whole command.
    pub wall: Duration,
}

impl RunReport {
    /// Whether any asset failed or was skipped.
    pub fn has_failures(&self) -> bool {
        self.results.iter().any(|r| {
            matches!(
                r.outcome,
                AssetOutcome::Failed { .. } | AssetOutcome::Skipped { .. }
            )
        })
    }
}

/// Progress notifications, for the CLI to render.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A run started; these assets will be considered, in order.
    RunStarted {
        /// The run id.
        run_id: &'a RunId,
        /// Assets that may be rebuilt.
        planned: &'a [String],
    },
    /// An asset started computing.
    AssetStarted {
        /// The asset.
        asset: &'a str,
    },
    /// An asset finished (any outcome).
    AssetFinished {
        /// Its result.
        result: &'a AssetResult,
    },
}

/// Receives [`RunEvent`]s.
pub trait Progress: Send + Sync {
    /// Called for each event, from the scheduler (never concurrently).
    fn event(&self, event: RunEvent<'_>);
}

/// A [`Progress`] that ignores events.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: RunEvent<'_>) {}
}

/// Read-only SQL: assets are queries, never statements.
pub(crate) fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The version of an upstream as the run currently sees it.
#[derive(Debug, Clone)]
struct Live {
    kind: UpstreamKind,
    data_version: String,
    materialization: Option<MaterializationId>,
}

/// Everything a build task needs, shared.
struct RunShared {
    ctx: SessionContext,
    storage: Storage,
    catalog: Arc<dyn Catalog>,
    run_id: RunId,
}

/// One asset to build.
struct Job {
    asset: SqlAsset,
    code_version: String,
    input_version: String,
    inputs: Vec<UpstreamVersion>,
    previous_data_version: Option<String>,
}

pub(crate) async fn materialize(
    ws: &Workspace,
    opts: &MaterializeOptions,
    progress: &dyn Progress,
) -> Result<RunReport, EngineError> {
    let started = Instant::now();
    let selected = selection::resolve(&ws.graph, &opts.selection)?;
    let snapshot = ws.snapshot()?;

    let mut candidates: BTreeSet<String> = selected.clone();
    for name in &selected {
        candidates.extend(
            ws.graph
                .ancestors(name)
                .into_iter()
                .filter(|a| ws.graph.kind(a) == Some(NodeKind::Asset)),
        );
    }
    let forced: HashSet<&String> = if opts.force {
        selected.iter().collect()
    } else {
        HashSet::new()
    };
    let states: HashMap<&str, AssetState> = snapshot
        .statuses
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    let run_set: Vec<String> = ws
        .graph
        .assets_in_order()
        .filter(|a| candidates.contains(*a))
        .filter(|a| forced.contains(&(*a).to_owned()) || states.get(a) != Some(&AssetState::Fresh))
        .map(str::to_owned)
        .collect();

    if run_set.is_empty() {
        let results = ws
            .graph
            .assets_in_order()
            .filter(|a| selected.contains(*a))
            .map(|a| AssetResult {
                asset: a.to_owned(),
                outcome: AssetOutcome::Fresh {
                    early_cutoff: false,
                },
            })
            .collect();
        return Ok(RunReport {
            run_id: None,
            results,
            wall: started.elapsed(),
        });
    }

    let run_id = RunId(uuid::Uuid::now_v7().to_string());
    ws.catalog.begin_run(&NewRun {
        id: run_id.clone(),
        user: crate::whoami::user(),
        host: crate::whoami::host(),
        pid: std::process::id(),
        command: opts.command.clone(),
        trigger: "cli".to_owned(),
        started_at: Utc::now(),
        backfill_id: None,
    })?;
    progress.event(RunEvent::RunStarted {
        run_id: &run_id,
        planned: &run_set,
    });

    let outcome = schedule(ws, opts, &snapshot, &run_set, &forced, &run_id, progress).await;
    let (status, error) = match &outcome {
        Ok(results)
            if results
                .iter()
                .any(|r| matches!(r.outcome, AssetOutcome::Failed { .. })) =>
        {
            let failed: Vec<&str> = results
                .iter()
                .filter(|r| matches!(r.outcome, AssetOutcome::Failed { .. }))
                .map(|r| r.asset.as_str())
                .collect();
            (
                RunStatus::Failed,
                Some(format!("failed: {}", failed.join(", "))),
            )
        }
        Ok(_) => (RunStatus::Succeeded, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    ws.catalog.finish_run(&run_id, status, error.as_deref())?;
    let mut results = outcome?;
    // Selected assets that were fresh from the start are part of the answer.
    let reported: HashSet<String> = results.iter().map(|r| r.asset.clone()).collect();
    for name in ws.graph.assets_in_order() {
        if selected.contains(name) && !reported.contains(name) {
            results.push(AssetResult {
                asset: name.to_owned(),
                outcome: AssetOutcome::Fresh {
                    early_cutoff: false,
                },
            });
        }
    }
    let order: HashMap<&str, usize> = ws.graph.order().enumerate().map(|(i, n)| (n, i)).collect();
    results.sort_by_key(|r| order.get(r.asset.as_str()).copied().unwrap_or(usize::MAX));
    Ok(RunReport {
        run_id: Some(run_id),
        results,
        wall: started.elapsed(),
    })
}

async fn schedule(
    ws: &Workspace,
    opts: &MaterializeOptions,
    snapshot: &Snapshot,
    run_set: &[String],
    forced: &HashSet<&String>,
    run_id: &RunId,
    progress: &dyn Progress,
) -> Result<Vec<AssetResult>, EngineError> {
    let in_run: HashSet<&str> = run_set.iter().map(String::as_str).collect();
    let ctx = new_session(&ws.storage).map_err(|e| EngineError::Internal(e.strip_backtrace()))?;

    // What the run reads: sources and committed upstream assets.
    let mut live: HashMap<String, Live> = HashMap::new();
    for (name, v) in &snapshot.source_versions {
        live.insert(
            name.clone(),
            Live {
                kind: UpstreamKind::Source,
                data_version: v.clone(),
                materialization: None,
            },
        );
    }
    for (name, cur) in &snapshot.current {
        live.insert(
            name.clone(),
            Live {
                kind: UpstreamKind::Asset,
                data_version: cur.data_version.clone(),
                materialization: Some(cur.id),
            },
        );
    }
    let needed: BTreeSet<&str> = run_set.iter().flat_map(|a| ws.graph.upstream(a)).collect();
    for name in needed {
        if let Some(source) = ws.project.sources.get(name) {
            register_source(&ctx, source).await.map_err(|e| {
                EngineError::Query(format!(
                    "source `{name}` ({}): {}",
                    source.declared_path,
                    e.strip_backtrace()
                ))
            })?;
        } else if let Some(cur) = snapshot.current.get(name) {
            let files = ws
                .catalog
                .materialization(cur.id)?
                .map(|m| m.body.files.into_iter().map(|f| f.path).collect::<Vec<_>>())
                .unwrap_or_default();
            register_committed(&ctx, &ws.storage, name, &files)
                .await
                .map_err(|e| EngineError::Storage {
                    url: ws.storage.configured_url.clone(),
                    reason: format!(
                        "cannot read committed files of `{name}`: {}",
                        e.strip_backtrace()
                    ),
                })?;
        }
    }

    let shared = Arc::new(RunShared {
        ctx,
        storage: ws.storage.clone(),
        catalog: Arc::clone(&ws.catalog),
        run_id: run_id.clone(),
    });

    let position: HashMap<&str, usize> = run_set
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut waiting: HashMap<&str, usize> = run_set
        .iter()
        .map(|a| {
            let n = ws
                .graph
                .upstream(a)
                .iter()
                .filter(|u| in_run.contains(*u))
                .count();
            (a.as_str(), n)
        })
        .collect();
    let mut ready: BTreeMap<usize, &str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .filter_map(|(a, _)| position.get(a).map(|p| (*p, *a)))
        .collect();
    let mut broken: HashMap<String, String> = HashMap::new(); // asset -> failed root
    let mut results = Vec::with_capacity(run_set.len());
    let mut tasks: JoinSet<(String, Result<Materialized, String>)> = JoinSet::new();
    let jobs = opts.jobs.max(1);

    loop {
        let mut finished: Vec<AssetResult> = Vec::new();
        while tasks.len() < jobs {
            let Some((_, name)) = ready.pop_first() else {
                break;
            };
            let Some(asset) = ws.project.assets.get(name) else {
                return Err(EngineError::Internal(format!(
                    "asset `{name}` vanished from the project"
                )));
            };
            let upstream = ws.graph.upstream(name);
            if let Some(root) = upstream.iter().find_map(|u| broken.get(*u)).cloned() {
                broken.insert(name.to_owned(), root.clone());
                finished.push(AssetResult {
                    asset: name.to_owned(),
                    outcome: AssetOutcome::Skipped {
                        upstream: root.clone(),
                    },
                });
                continue;
            }
            let mut inputs = Vec::with_capacity(upstream.len());
            for up in &upstream {
                let Some(l) = live.get(*up) else {
                    return Err(EngineError::Internal(format!(
                        "upstream `{up}` of `{name}` has no version"
                    )));
                };
                inputs.push(UpstreamVersion {
                    name: (*up).to_owned(),
                    kind: l.kind,
                    partition: String::new(),
                    data_version: l.data_version.clone(),
                    materialization: l.materialization,
                });
            }
            let code_version = snapshot
                .code_versions
                .get(name)
                .cloned()
                .unwrap_or_default();
            let keyed: Vec<UpstreamInput<'_>> = inputs
                .iter()
                .map(|i| UpstreamInput {
                    name: &i.name,
                    partition: &i.partition,
                    data_version: &i.data_version,
                })
                .collect();
            let iv = input_version(&code_version, "", &keyed);
            let current = snapshot.current.get(name);
            if !forced.contains(&name.to_owned()) && current.is_some_and(|c| c.input_version == iv)
            {
                finished.push(AssetResult {
                    asset: name.to_owned(),
                    outcome: AssetOutcome::Fresh { early_cutoff: true },
                });
                continue;
            }
            progress.event(RunEvent::AssetStarted { asset: name });
            let job = Job {
                asset: asset.clone(),
                code_version,
                input_version: iv,
                inputs,
                previous_data_version: current.map(|c| c.data_version.clone()),
            };
            let shared = Arc::clone(&shared);
            let owned = name.to_owned();
            tasks.spawn(async move {
                let r = build(&shared, job).await;
                (owned, r)
            });
        }

        if finished.is_empty() {
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (name, result) = joined
                .map_err(|e| EngineError::Internal(format!("build task ended abnormally: {e}")))?;
            finished.push(AssetResult {
                outcome: match result {
                    Ok(m) => {
                        live.insert(
                            name.clone(),
                            Live {
                                kind: UpstreamKind::Asset,
                                data_version: m.data_version.clone(),
                                materialization: Some(m.id),
                            },
                        );
                        AssetOutcome::Materialized(m)
                    }
                    Err(error) => {
                        broken.insert(name.clone(), name.clone());
                        AssetOutcome::Failed { error }
                    }
                },
                asset: name,
            });
        }

        for result in finished {
            if !matches!(result.outcome, AssetOutcome::Materialized(_)) {
                let (outcome, error) = match &result.outcome {
                    AssetOutcome::Fresh { .. } => (AttemptOutcome::Fresh, None),
                    AssetOutcome::Failed { error } => (AttemptOutcome::Failed, Some(error.clone())),
                    AssetOutcome::Skipped { upstream } => (
                        AttemptOutcome::Skipped,
                        Some(format!("upstream {upstream} failed")),
                    ),
                    AssetOutcome::Materialized(_) => (AttemptOutcome::Materialized, None),
                };
                ws.catalog.record_attempt(&NewAttempt {
                    run_id: run_id.clone(),
                    asset: result.asset.clone(),
                    partition: String::new(),
                    outcome,
                    error,
                    at: Utc::now(),
                })?;
            }
            for down in ws.graph.downstream(&result.asset) {
                if let Some(n) = waiting.get_mut(down) {
                    *n = n.saturating_sub(1);
                    if *n == 0
                        && let Some(p) = position.get(down)
                    {
                        ready.insert(*p, down);
                    }
                }
            }
            progress.event(RunEvent::AssetFinished { result: &result });
            results.push(result);
        }
        if ready.is_empty() && tasks.is_empty() {
            break;
        }
    }
    Ok(results)
}

/// Computes, writes and commits one asset. Errors are user-facing messages
/// naming the asset's file; on error nothing is committed and written files
/// are removed.
async fn build(shared: &RunShared, job: Job) -> Result<Materialized, String> {
    let started = Instant::now();
    let name = job.asset.name.clone();
    let file = job.asset.file.display().to_string();
    let rel = Storage::new_file_path(&name, "", &shared.run_id.0, 0);
    let path = shared.storage.object_path(&rel);
    let result = write_output(shared, &job, &path).await;
    let written = match result {
        Ok(w) => w,
        Err(e) => {
            // Best effort: the file is uncommitted, so never read; gc would remove it later.
            let _ = shared.storage.store.delete(&path).await;
            return Err(format!("{file}: {e}"));
        }
    };

    if std::env::var(HANG_BEFORE_COMMIT_ENV).is_ok_and(|v| v == name) {
        eprintln!("cairn: test hook: {name} written, hanging before commit");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }

    let data_changed = job.previous_data_version.as_deref() != Some(written.data_version.as_str());
    let wall = started.elapsed();
    let id = shared
        .catalog
        .commit_materialization(&NewMaterialization {
            run_id: shared.run_id.clone(),
            asset: name.clone(),
            partition: String::new(),
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
        })
        .map_err(|e| format!("{file}: commit failed: {e}"))?;

    register_committed(
        &shared.ctx,
        &shared.storage,
        &name,
        std::slice::from_ref(&rel),
    )
    .await
    .map_err(|e| {
        format!(
            "{file}: committed, but cannot read back: {}",
            e.strip_backtrace()
        )
    })?;

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
    })
}

struct Written {
    schema: SchemaRef,
    rows: u64,
    bytes: u64,
    data_version: String,
    datafusion: Duration,
    write: Duration,
    hashing: Duration,
}

async fn write_output(
    shared: &RunShared,
    job: &Job,
    path: &object_store::path::Path,
) -> Result<Written, String> {
    let df_err = |e: datafusion::error::DataFusionError| e.strip_backtrace();
    let t = Instant::now();
    let df = shared
        .ctx
        .sql_with_options(&job.asset.sql, read_only())
        .await
        .map_err(df_err)?;
    let plan = df.create_physical_plan().await.map_err(df_err)?;
    let mut datafusion = t.elapsed();
    let schema = plan.schema();
    let mut seen = HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(format!(
                "the query returns two columns named `{}`; give one an alias (e.g. `b.{} as b_{}`)",
                field.name(),
                field.name(),
                field.name()
            ));
        }
    }

    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
        .build();
    let sink = BufWriter::new(Arc::clone(&shared.storage.store), path.clone());
    let mut writer = AsyncArrowWriter::try_new(sink, Arc::clone(&schema), Some(props))
        .map_err(|e| e.to_string())?;
    let mut hasher = DataHasher::new(&schema).map_err(df_err)?;
    let mut stream = execute_stream(plan, shared.ctx.task_ctx()).map_err(df_err)?;
    let (mut write, mut hashing, mut rows) = (Duration::ZERO, Duration::ZERO, 0u64);
    loop {
        let t = Instant::now();
        let next = stream.next().await;
        datafusion += t.elapsed();
        let Some(batch) = next else { break };
        let batch = batch.map_err(df_err)?;
        let t = Instant::now();
        hasher.update(&batch).map_err(df_err)?;
        hashing += t.elapsed();
        let t = Instant::now();
        writer
            .write(&batch)
            .await
            .map_err(|e| format!("writing Parquet: {e}"))?;
        write += t.elapsed();
        rows += batch.num_rows() as u64;
    }
    let t = Instant::now();
    writer
        .close()
        .await
        .map_err(|e| format!("writing Parquet: {e}"))?;
    let bytes = shared
        .storage
        .store
        .head(path)
        .await
        .map_err(|e| format!("reading back written file: {e}"))?
        .size;
    write += t.elapsed();
    Ok(Written {
        schema,
        rows,
        bytes,
        data_version: hasher.finish(),
        datafusion,
        write,
        hashing,
    })
}

fn schema_json(schema: &SchemaRef) -> String {
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
