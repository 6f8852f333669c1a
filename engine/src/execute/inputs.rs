//! What one unit's build needs: the run's shared state, the job, and the
//! tables it reads — its upstreams' and relationship targets' committed
//! files as this run sees them (rebuilt earlier in the run or current).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;

use cairn_assets::{CostConfig, SqlAsset};
use cairn_catalog::{Catalog, MaterializationId, RunId, UpstreamKind, UpstreamVersion};

use crate::error::EngineError;
use crate::model::graph::NodeKind;
use crate::model::storage::{CommittedFile, Storage};
use crate::model::units::Unit;
use crate::model::workspace::Workspace;
use crate::state::snapshot::Snapshot;

/// The version of an upstream partition as the run currently sees it.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) kind: UpstreamKind,
    pub(super) data_version: String,
    pub(super) materialization: Option<MaterializationId>,
    /// Committed files (assets), loaded from the catalog on first use.
    pub(super) files: Option<Vec<CommittedFile>>,
}

/// The tables a unit reads, with committed files resolved (and cached in
/// `live`). Every upstream of the asset gets a table, even one the mapping
/// selects no partition of (it then reads as empty).
pub(super) fn upstream_tables(
    ws: &Workspace,
    asset: &SqlAsset,
    ups: &[Unit],
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<UpstreamTable>, EngineError> {
    let mut tables = Vec::new();
    for name in &asset.upstream {
        let units: Vec<&Unit> = ups.iter().filter(|u| &u.0 == name).collect();
        if ws.graph.kind(name) == Some(NodeKind::Source) {
            tables.push(UpstreamTable::Source {
                name: name.clone(),
                keys: units.iter().map(|u| u.1.clone()).collect(),
            });
            continue;
        }
        let mut files = Vec::new();
        for u in &units {
            files.extend(unit_files(ws, u, live)?);
        }
        if files.is_empty() && *name == asset.name && asset.columns.is_some() {
            tables.push(UpstreamTable::DeclaredEmpty { name: name.clone() });
            continue;
        }
        let mut schema_files = Vec::new();
        if files.is_empty() {
            let any = live
                .iter()
                .find(|(u, l)| &u.0 == name && l.materialization.is_some())
                .map(|(u, _)| u.clone());
            if let Some(u) = any {
                schema_files = unit_files(ws, &u, live)?;
            }
        }
        tables.push(UpstreamTable::Asset {
            name: name.clone(),
            files,
            schema_files,
        });
    }
    Ok(tables)
}

/// Tables that checks read beyond the asset's upstreams (relationships
/// targets), as their committed versions.
pub(super) fn check_tables(
    ws: &Workspace,
    snapshot: &Snapshot,
    asset: &SqlAsset,
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<UpstreamTable>, EngineError> {
    let mut out = Vec::new();
    for target in ws.graph.relationship_targets(asset) {
        if target.upstream {
            continue;
        }
        let to_asset = &target.name;
        match target.kind {
            NodeKind::Source => out.push(UpstreamTable::Source {
                name: to_asset.clone(),
                keys: snapshot.index.keys(to_asset).to_vec(),
            }),
            NodeKind::Asset => {
                let mut files = Vec::new();
                for key in snapshot.index.keys(to_asset) {
                    files.extend(unit_files(ws, &(to_asset.clone(), key.clone()), live)?);
                }
                out.push(UpstreamTable::Asset {
                    name: to_asset.clone(),
                    files,
                    schema_files: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}

/// The committed files of `unit` as this run sees it, with their sizes.
pub(super) fn unit_files(
    ws: &Workspace,
    unit: &Unit,
    live: &mut HashMap<Unit, Live>,
) -> Result<Vec<CommittedFile>, EngineError> {
    let Some(l) = live.get_mut(unit) else {
        return Ok(Vec::new());
    };
    if let Some(files) = &l.files {
        return Ok(files.clone());
    }
    let files: Vec<CommittedFile> = match l.materialization {
        Some(id) => ws
            .catalog
            .materialization(id)?
            .map(|m| m.body.files.into_iter().map(CommittedFile::from).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    l.files = Some(files.clone());
    Ok(files)
}

/// Everything a build task needs, shared.
pub(super) struct RunShared {
    pub(super) cost: CostConfig,
    pub(super) storage: Storage,
    pub(super) catalog: Arc<dyn Catalog>,
    pub(super) project: Arc<cairn_assets::Project>,
    pub(super) run_id: RunId,
    /// The schema of each built asset's declared `[columns]`, typed once
    /// per run rather than once per partition.
    pub(super) declared: HashMap<String, SchemaRef>,
    pub(super) failpoints: crate::model::workspace::Failpoints,
    /// Cancelled runs commit nothing more (checked just before each commit).
    pub(super) control: crate::execute::control::RunControl,
    /// Where each unit's query executes (`[engine]`).
    pub(super) engine: crate::session::cluster::QueryEngine,
    /// The memory every unit's DataFusion session draws from: bounded by
    /// `memory_limit` (spilling past it) or unbounded.
    pub(super) memory: Arc<dyn datafusion::execution::memory_pool::MemoryPool>,
    /// The run's memory bound in bytes, if any.
    pub(super) memory_limit: Option<u64>,
}

/// A table one build reads.
#[derive(Clone)]
pub(super) enum UpstreamTable {
    /// A source, restricted to these partition keys.
    Source { name: String, keys: Vec<String> },
    /// An asset, as exactly these committed files; `schema_files` are used
    /// for the schema when no partition is mapped.
    Asset {
        name: String,
        files: Vec<CommittedFile>,
        schema_files: Vec<CommittedFile>,
    },
    /// The asset's own earlier partitions when none is mapped: an empty
    /// table of its declared `[columns]`.
    DeclaredEmpty { name: String },
}

/// One asset partition to build.
#[derive(Clone)]
pub(super) struct Job {
    /// The instant partitions and freshness checks are judged at.
    pub(super) now: chrono::DateTime<Utc>,
    /// Files of the version being replaced (for rows added/removed).
    pub(super) previous_files: Vec<CommittedFile>,
    pub(super) asset: SqlAsset,
    pub(super) partition: String,
    pub(super) sql: String,
    pub(super) code_version: String,
    pub(super) input_version: String,
    pub(super) inputs: Vec<UpstreamVersion>,
    pub(super) tables: Vec<UpstreamTable>,
    pub(super) previous_data_version: Option<String>,
}

/// Whether rows added and removed are counted: there is a previous
/// version and the asset did not opt out.
pub(super) fn counts_changes(job: &Job) -> bool {
    !job.previous_files.is_empty() && job.asset.count_changes
}
