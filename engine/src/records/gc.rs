//! Garbage collection (`cairn gc`): files of runs that never committed
//! them and of replaced versions past `[retention] days`.

use std::collections::HashSet;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use cairn_catalog::MaterializationId;

use crate::error::EngineError;
use crate::model::workspace::Workspace;

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
    let storage_err = |e: object_store::Error| ws.storage.error(&e);
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
