//! Everything `cairn show` says about one asset: its definition, status,
//! current version with inputs and files, history and latest attempt.

use std::collections::BTreeSet;

use serde::Serialize;

use cairn_catalog::{
    AttemptRecord, CheckResultRecord, CurrentVersion, MaterializationMetrics, MaterializationRecord,
};

use crate::error::EngineError;
use crate::model::workspace::Workspace;
use crate::state::status::AssetStatus;

/// Everything `cairn show` prints about an asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetDetails {
    /// Its status now.
    pub status: AssetStatus,
    /// Its definition file.
    pub file: String,
    /// Description.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// SQL as written.
    pub sql: String,
    /// Direct upstreams.
    pub upstream: Vec<String>,
    /// Direct downstreams.
    pub downstream: Vec<String>,
    /// How it is partitioned, for people (`None` when it is not).
    pub partitioning: Option<String>,
    /// How each partitioned upstream (itself included, when it reads its
    /// earlier partitions) is read, for people: `(upstream, reading)`.
    pub reads: Vec<(String, String)>,
    /// Its declared `[columns]`, as `name TYPE`.
    pub declared_columns: Vec<String>,
    /// The current version with its inputs and files.
    pub current: Option<MaterializationRecord>,
    /// Committed versions, newest first.
    pub history: Vec<CurrentVersion>,
    /// What each version of `history` measured and cost, in the same
    /// order.
    pub history_metrics: Vec<MaterializationMetrics>,
    /// Check results recorded for it, newest first (at build time and by
    /// `cairn check`).
    pub check_history: Vec<CheckResultRecord>,
    /// Its latest attempt.
    pub last_attempt: Option<AttemptRecord>,
}

/// Versions told, newest first.
const HISTORY: usize = 20;

/// Check results told, newest first.
const CHECK_HISTORY: usize = 100;

/// Details of one asset.
pub(crate) fn details(ws: &Workspace, name: &str) -> Result<AssetDetails, EngineError> {
    let asset = ws.require_asset(name)?;
    let only: BTreeSet<String> = std::iter::once(name.to_owned()).collect();
    let (snapshot, _) = crate::state::snapshot::snapshot_of(ws, Some(&only))?;
    let Some(status) = snapshot.statuses.into_iter().find(|s| s.name == name) else {
        return Err(EngineError::Internal(format!("no status for `{name}`")));
    };
    let current = match &status.current {
        Some(c) => ws.catalog.materialization(c.id)?,
        None => None,
    };
    let last_attempt = ws.catalog.latest_attempt_of(name)?;
    let history = ws.catalog.history(name, HISTORY)?;
    Ok(AssetDetails {
        file: asset.file.display().to_string(),
        description: asset.description.clone(),
        owner: asset.owner.clone(),
        tags: asset.tags.clone(),
        sql: asset.sql.clone(),
        upstream: ws
            .graph
            .upstream(name)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        downstream: ws
            .graph
            .downstream(name)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        partitioning: asset.partitions.as_ref().map(|p| p.describe()),
        reads: asset
            .upstream
            .iter()
            .filter(|up| crate::model::partition_index::partitions_of(&ws.project, up).is_some())
            .map(|up| (up.clone(), asset.mapping(up).describe()))
            .collect(),
        declared_columns: asset
            .columns
            .iter()
            .flat_map(|d| d.columns.iter())
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect(),
        history_metrics: history
            .iter()
            .map(|v| {
                Ok(match current.as_ref().filter(|c| c.id == v.id) {
                    Some(c) => c.body.metrics.clone(),
                    None => ws
                        .catalog
                        .materialization(v.id)?
                        .map(|m| m.body.metrics)
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, EngineError>>()?,
        history,
        check_history: ws.catalog.check_results(name, CHECK_HISTORY)?,
        current,
        last_attempt,
        status,
    })
}
