//! Provenance: which run, code and exact upstream versions produced a
//! committed partition version, back to the sources (`cairn audit`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
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
    /// Its inputs are told where this version first appears in the tree
    /// (a version read by several others is followed once: a tree that
    /// repeated it would grow exponentially with the graph's diamonds).
    pub shown_above: bool,
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
    let node = provenance_of(ws, id, &runs, &expired, 0, &mut HashSet::new())?;
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
    told: &mut HashSet<MaterializationId>,
) -> Result<Provenance, EngineError> {
    told.insert(id);
    let m = ws
        .catalog
        .materialization(id)?
        .ok_or_else(|| EngineError::Usage(format!("no materialization {id}")))?;
    let b = m.body;
    let mut inputs = Vec::new();
    for input in &b.inputs {
        match (input.kind, input.materialization) {
            (UpstreamKind::Asset, Some(up)) if depth < 64 && !told.contains(&up) => {
                inputs.push(provenance_of(ws, up, runs, expired, depth + 1, told)?)
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
                shown_above: input.materialization.is_some_and(|up| told.contains(&up)),
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
        shown_above: false,
    })
}
