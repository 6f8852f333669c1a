//! Provenance and time travel: which run, code and exact upstream versions
//! produced a committed partition version (back to the sources); which
//! versions were current at a past moment; and garbage collection of files
//! no committed version needs.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use cairn_catalog::{MaterializationId, RunId, RunRecord, UpstreamKind};

use crate::error::EngineError;
use crate::model::workspace::Workspace;

/// One node of a provenance chain.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// `asset` or `source`.
    pub kind: &'static str,
    /// Name.
    pub name: String,
    /// Partition key (`""` when unpartitioned).
    pub partition: String,
    /// Data version.
    pub data_version: String,
    /// The materialization (assets).
    pub materialization: Option<MaterializationId>,
    /// The run that produced it, with who, when and how (assets).
    pub run: Option<RunRecord>,
    /// Code version: the hash of the normalized SQL and output config (assets).
    pub code_version: Option<String>,
    /// Input version (assets).
    pub input_version: Option<String>,
    /// Commit time (assets).
    pub committed_at: Option<DateTime<Utc>>,
    /// Rows (assets).
    pub rows: Option<u64>,
    /// Files (assets), relative to the storage root.
    pub files: Vec<String>,
    /// Whether retention removed its files.
    pub expired: bool,
    /// What it read, each with its own provenance.
    pub inputs: Vec<Provenance>,
}

/// What `cairn query --as-of` resolves: a run or a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// The versions current right after this run committed.
    Run(RunId),
    /// The versions current at this instant.
    Time(DateTime<Utc>),
}

/// What `cairn gc` removed (or would remove, on a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Files written by runs that never committed them.
    pub uncommitted: Vec<String>,
    /// Files of replaced versions older than the retention period.
    pub expired: Vec<String>,
    /// The materializations whose files were removed by retention.
    pub expired_materializations: Vec<MaterializationId>,
    /// Bytes freed.
    pub bytes: u64,
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
}

/// The provenance of a version of an asset partition: `version` (a
/// materialization id) or the current one.
pub(crate) fn provenance(
    ws: &Workspace,
    asset: &str,
    partition: &str,
    version: Option<i64>,
) -> Result<Provenance, EngineError> {
    ws.require_asset(asset)?;
    let id = match version {
        Some(v) => MaterializationId(v),
        None => ws
            .catalog
            .current_versions()?
            .into_iter()
            .find(|c| c.asset == asset && c.partition == partition)
            .map(|c| c.id)
            .ok_or_else(|| {
                EngineError::Usage(if partition.is_empty() {
                    format!("`{asset}` has no committed version")
                } else {
                    format!("`{asset}` has no committed version of partition {partition}")
                })
            })?,
    };
    let runs: HashMap<RunId, RunRecord> = ws
        .catalog
        .runs(usize::MAX)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let expired: HashSet<MaterializationId> = ws
        .catalog
        .all_files()?
        .into_iter()
        .filter(|f| f.expired)
        .map(|f| f.materialization)
        .collect();
    let node = provenance_of(ws, id, &runs, &expired, 0)?;
    if node.name != asset {
        return Err(EngineError::Usage(format!(
            "materialization {id} belongs to `{}`, not `{asset}`",
            node.name
        )));
    }
    Ok(node)
}

fn provenance_of(
    ws: &Workspace,
    id: MaterializationId,
    runs: &HashMap<RunId, RunRecord>,
    expired: &HashSet<MaterializationId>,
    depth: usize,
) -> Result<Provenance, EngineError> {
    let m = ws
        .catalog
        .materialization(id)?
        .ok_or_else(|| EngineError::Usage(format!("no materialization {id}")))?;
    let b = m.body;
    let mut inputs = Vec::new();
    for input in &b.inputs {
        match (input.kind, input.materialization) {
            (UpstreamKind::Asset, Some(up)) if depth < 64 => {
                inputs.push(provenance_of(ws, up, runs, expired, depth + 1)?)
            }
            _ => inputs.push(Provenance {
                kind: if input.kind == UpstreamKind::Source {
                    "source"
                } else {
                    "asset"
                },
                name: input.name.clone(),
                partition: input.partition.clone(),
                data_version: input.data_version.clone(),
                materialization: input.materialization,
                run: None,
                code_version: None,
                input_version: None,
                committed_at: None,
                rows: None,
                files: Vec::new(),
                expired: false,
                inputs: Vec::new(),
            }),
        }
    }
    Ok(Provenance {
        kind: "asset",
        name: b.asset,
        partition: b.partition,
        data_version: b.data_version,
        materialization: Some(m.id),
        run: runs.get(&b.run_id).cloned(),
        code_version: Some(b.code_version),
        input_version: Some(b.input_version),
        committed_at: Some(b.committed_at),
        rows: Some(b.row_count),
        files: b.files.into_iter().map(|f| f.path).collect(),
        expired: expired.contains(&m.id),
        inputs,
    })
}

/// The files of every asset version current at `as_of`, per asset.
pub(crate) fn files_as_of(
    ws: &Workspace,
    as_of: &AsOf,
) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
    let all = ws.catalog.metrics_since(None)?;
    let at = match as_of {
        AsOf::Time(t) => *t,
        AsOf::Run(run) => all
            .iter()
            .filter(|(v, _)| &v.run_id == run)
            .map(|(v, _)| v.committed_at)
            .max()
            .or_else(|| {
                ws.catalog
                    .runs(usize::MAX)
                    .ok()?
                    .into_iter()
                    .find(|r| &r.id == run)
                    .map(|r| r.finished_at.unwrap_or(r.started_at))
            })
            .ok_or_else(|| EngineError::Usage(format!("no run `{run}`")))?,
    };
    let mut chosen: HashMap<(String, String), (DateTime<Utc>, MaterializationId)> = HashMap::new();
    for (v, _) in all.iter().filter(|(v, _)| v.committed_at <= at) {
        let key = (v.asset.clone(), v.partition.clone());
        let newer = chosen
            .get(&key)
            .is_none_or(|(t, id)| (v.committed_at, v.id) > (*t, *id));
        if newer {
            chosen.insert(key, (v.committed_at, v.id));
        }
    }
    let ids: HashMap<MaterializationId, String> = chosen
        .iter()
        .map(|((a, _), (_, id))| (*id, a.clone()))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in ws.catalog.all_files()? {
        if let Some(asset) = ids.get(&f.materialization) {
            if f.expired {
                return Err(EngineError::Usage(format!(
                    "the version of `{asset}` current at {} was removed by retention (`cairn gc`); raise [retention] days to keep versions longer",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )));
            }
            out.entry(asset.clone()).or_default().push(f.path);
        }
    }
    Ok(out)
}

/// Removes files that no committed version needs: files of runs that
/// never committed them (crashed or failed), and files of replaced
/// versions older than `[retention] days`. Never touches current
/// versions or files of runs still in progress.
pub(crate) async fn gc(ws: &Workspace, dry_run: bool) -> Result<GcReport, EngineError> {
    let files = ws.catalog.all_files()?;
    let referenced: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let running: Vec<String> = ws
        .catalog
        .runs(usize::MAX)?
        .into_iter()
        .filter(|r| r.status == cairn_catalog::RunStatus::Running)
        .map(|r| r.id.0)
        .collect();
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    let storage_err = |e: object_store::Error| EngineError::Storage {
        url: ws.storage.configured_url.clone(),
        reason: e.to_string(),
    };
    let listed: Vec<object_store::ObjectMeta> = ws
        .storage
        .store
        .list(Some(&ws.storage.root))
        .try_collect()
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(Vec::new()),
            other => Err(other),
        })
        .map_err(storage_err)?;
    let root = format!("{}/", ws.storage.root);
    for meta in listed {
        let full = meta.location.to_string();
        let Some(rel) = full.strip_prefix(&root) else {
            continue;
        };
        if referenced.contains(rel)
            || !rel.ends_with(".parquet")
            || running.iter().any(|r| rel.contains(r.as_str()))
        {
            continue;
        }
        if !dry_run {
            ws.storage
                .store
                .delete(&meta.location)
                .await
                .map_err(storage_err)?;
        }
        report.bytes += meta.size;
        report.uncommitted.push(rel.to_owned());
    }
    let cutoff = chrono::TimeDelta::try_days(i64::from(ws.project.config.retention.days))
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let mut expired_ids = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.is_current && !f.expired && f.committed_at < cutoff)
    {
        let path = ws.storage.object_path(&f.path);
        if !dry_run {
            match ws.storage.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_err(e)),
            }
        }
        report.expired.push(f.path.clone());
        if !expired_ids.contains(&f.materialization) {
            expired_ids.push(f.materialization);
        }
    }
    if !dry_run && !expired_ids.is_empty() {
        ws.catalog.mark_expired(&expired_ids, Utc::now())?;
    }
    report.expired_materializations = expired_ids;
    if !dry_run {
        crate::records::audit::audit(
            ws,
            "gc",
            "*",
            serde_json::json!({
                "uncommitted": report.uncommitted, "expired": report.expired,
                "expired_materializations": report.expired_materializations, "bytes": report.bytes,
            }),
        )?;
    }
    Ok(report)
}
