//! The plan: what a materialization would do, decided from the
//! definitions and a [`Snapshot`] alone — no DataFusion, no I/O, no writes.
//! [`plan`] picks the units to run; [`Plan::decisions`] says for every unit
//! considered what will happen to it and why, which `cairn materialize
//! --explain` shows and the run then does.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::error::EngineError;
use crate::model::graph::NodeKind;
use crate::model::partition_index::AssetsByName;
use crate::model::selection;
use crate::model::units::{FastMap, FastSet, Unit};
use crate::model::workspace::Workspace;
use crate::state::snapshot::Snapshot;
use crate::state::status::{AssetState, StaleCause};
use cairn_catalog::BackfillId;

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
    /// Which partitions of the selected partitioned assets.
    pub partitions: PartitionFilter,
    /// The backfill the run belongs to.
    pub backfill: Option<BackfillId>,
}

/// Which partitions of the selected assets to consider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PartitionFilter {
    /// Every complete partition up to now.
    #[default]
    All,
    /// Keys whose time part lies between `from` and `to` (inclusive, in
    /// key order); static parts unrestricted.
    Range {
        /// First time key.
        from: String,
        /// Last time key.
        to: String,
    },
    /// Exactly these keys (validated).
    Keys(Vec<String>),
    /// Exactly these units (a resumed backfill).
    Units(Vec<Unit>),
}

/// The units of the selected assets that the filter keeps.
pub(crate) fn selected_units(
    ws: &Workspace,
    snapshot: &Snapshot,
    selected: &BTreeSet<String>,
    filter: &PartitionFilter,
) -> Result<Vec<Unit>, EngineError> {
    if let PartitionFilter::Units(units) = filter {
        return Ok(units.clone());
    }
    let mut out = Vec::new();
    let everything = selected.len() == ws.project.assets.len();
    for name in ws
        .graph
        .assets_in_order()
        .filter(|a| everything || selected.contains(*a))
    {
        let keys = snapshot.index.keys(name);
        let partitioned = snapshot.index.key_space(name).is_some();
        match filter {
            PartitionFilter::All | PartitionFilter::Units(_) => {
                out.extend(keys.iter().map(|k| (name.to_owned(), k.clone())));
            }
            _ if !partitioned => out.push((name.to_owned(), String::new())),
            PartitionFilter::Range { from, to } => {
                let time_part = |k: &str| k.split('|').next().unwrap_or_default().to_owned();
                out.extend(
                    keys.iter()
                        .filter(|k| {
                            let t = time_part(k);
                            t.as_str() >= from.as_str() && t.as_str() <= to.as_str()
                        })
                        .map(|k| (name.to_owned(), k.clone())),
                );
            }
            PartitionFilter::Keys(wanted) => {
                out.extend(
                    wanted
                        .iter()
                        .filter(|k| snapshot.index.contains(name, k))
                        .map(|k| (name.to_owned(), k.clone())),
                );
            }
        }
    }
    Ok(out)
}

/// What a materialization would do, decided from a snapshot alone (no
/// DataFusion, no writes): the units asked for, and the ones to consider
/// running in dependency and key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The selected asset partitions.
    pub chosen: Vec<Unit>,
    /// Units that are not fresh (or forced), including stale upstream
    /// partitions the chosen ones read, in execution order.
    pub run_set: Vec<Unit>,
    /// Units to rebuild even when fresh.
    pub forced: HashSet<Unit>,
}

/// Plans a materialization. Pure: reads only the workspace definitions and
/// the snapshot.
pub fn plan(
    ws: &Workspace,
    snapshot: &Snapshot,
    opts: &MaterializeOptions,
) -> Result<Plan, EngineError> {
    let selected = selection::resolve(&ws.graph, &opts.selection)?;
    let chosen = selected_units(ws, snapshot, &selected, &opts.partitions)?;
    let forced: HashSet<Unit> = if opts.force {
        chosen.iter().cloned().collect()
    } else {
        HashSet::new()
    };

    // Units that are not fresh, borrowed from the assessment. A fresh unit
    // only reads fresh units (a stale upstream makes it stale), so only
    // units that will run need their inputs visited.
    let not_fresh = NotFresh::in_snapshot(snapshot);

    // Everything the running units read, transitively: stale upstream
    // partitions are refreshed on the way.
    let mut candidates: FastSet<(&str, &str)> =
        FastSet::with_capacity_and_hasher(not_fresh.len(), Default::default());
    let mut stack: Vec<(&str, &str)> = Vec::new();
    for unit in &chosen {
        let unit = (unit.0.as_str(), unit.1.as_str());
        // Forced: every chosen unit runs.
        if (opts.force || not_fresh.get(unit.0, unit.1).is_some()) && candidates.insert(unit) {
            stack.push(unit);
        }
    }
    let mut targets_expanded: FastSet<&str> = FastSet::default();
    let by_name = AssetsByName::new(&ws.project);
    while let Some((name, key)) = stack.pop() {
        let Some(asset) = by_name.get(name) else {
            continue;
        };
        for up in &asset.upstream {
            // Only assets are assessed (a source is never here), and an
            // upstream with nothing stale needs no keys worked out.
            let Some((up, stale_keys)) = not_fresh.keys_of(up) else {
                continue;
            };
            let up_def = by_name.partitions_of(up);
            for up_key in snapshot.index.upstream_keys_with(asset, up, up_def, key) {
                if let Some(&up_key) = stale_keys.get(up_key.as_str())
                    && candidates.insert((up, up_key))
                {
                    stack.push((up, up_key));
                }
            }
        }
        // A relationships check reads its target: keep the target up to
        // date too (see `AssetGraph::relationship_targets`). That depends
        // on the asset, not the partition: once per asset.
        if !targets_expanded.insert(asset.name.as_str()) {
            continue;
        }
        for target in ws.graph.relationship_targets(asset) {
            if !target.refresh_first {
                continue;
            }
            for k in snapshot.index.keys(&target.name) {
                if let Some(unit) = not_fresh.get(&target.name, k)
                    && candidates.insert(unit)
                {
                    stack.push(unit);
                }
            }
        }
    }
    let mut run_set: Vec<Unit> = candidates
        .into_iter()
        .map(|(a, k)| (a.to_owned(), k.to_owned()))
        .collect();
    ws.graph
        .sort_in_execution_order(&mut run_set, |(a, k)| (a.as_str(), k.as_str()));
    Ok(Plan {
        chosen,
        run_set,
        forced,
    })
}

/// The units of a snapshot that are not fresh, borrowed from its
/// assessment.
struct NotFresh<'a> {
    by_asset: FastMap<&'a str, FastSet<&'a str>>,
}

impl<'a> NotFresh<'a> {
    fn in_snapshot(snapshot: &'a Snapshot) -> NotFresh<'a> {
        let mut by_asset: FastMap<&str, FastSet<&str>> = FastMap::default();
        for (asset, key) in snapshot.not_fresh_units() {
            by_asset.entry(asset).or_default().insert(key);
        }
        NotFresh { by_asset }
    }

    /// How many units are not fresh.
    fn len(&self) -> usize {
        self.by_asset.values().map(FastSet::len).sum()
    }

    /// The unit, borrowed from the snapshot, when it is not fresh.
    fn get(&self, asset: &str, key: &str) -> Option<(&'a str, &'a str)> {
        let (asset, keys) = self.keys_of(asset)?;
        Some((asset, keys.get(key)?))
    }

    /// The asset's name and keys that are not fresh, when it has any.
    fn keys_of(&self, asset: &str) -> Option<(&'a str, &FastSet<&'a str>)> {
        self.by_asset
            .get_key_value(asset)
            .map(|(asset, keys)| (*asset, keys))
    }
}

/// The assets a materialization of the selection can read or rebuild: the
/// selected ones, everything upstream of them, and the targets of their
/// relationships checks (with their upstreams), transitively. `None` when
/// everything is selected.
pub(crate) fn scope_of(
    ws: &Workspace,
    opts: &MaterializeOptions,
) -> Result<Option<BTreeSet<String>>, EngineError> {
    if opts.selection.is_empty() {
        return Ok(None);
    }
    let mut scope = BTreeSet::new();
    let mut stack: Vec<String> = selection::resolve(&ws.graph, &opts.selection)?
        .into_iter()
        .collect();
    while let Some(name) = stack.pop() {
        let Some(asset) = ws.project.assets.get(&name) else {
            continue;
        };
        if !scope.insert(name.clone()) {
            continue;
        }
        stack.extend(
            asset
                .upstream
                .iter()
                .filter(|up| ws.project.assets.contains_key(*up))
                .cloned(),
        );
        // Every asset a relationships check reads: refreshed first or
        // read as committed, its versions are needed.
        stack.extend(
            ws.graph
                .relationship_targets(asset)
                .into_iter()
                .filter(|t| t.kind == NodeKind::Asset)
                .map(|t| t.name),
        );
    }
    Ok(Some(scope))
}

/// What a materialization of `opts` would do, unit by unit (see
/// [`Plan::decisions`]); reads the catalog, writes nothing.
pub(crate) fn explain(
    ws: &Workspace,
    opts: &MaterializeOptions,
) -> Result<Vec<PlannedUnit>, EngineError> {
    let snapshot = match scope_of(ws, opts)? {
        None => crate::state::snapshot::snapshot(ws)?,
        Some(scope) => crate::state::snapshot::snapshot_of(ws, Some(&scope))?.0,
    };
    Ok(plan(ws, &snapshot, opts)?.decisions(ws, &snapshot))
}

/// What the plan decides for one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not fresh for a reason known now (code, source or upstream data
    /// changed, never built, last attempt failed): it is built.
    Build,
    /// Stale only because upstream units it reads are rebuilt in this run:
    /// built unless they all come out identical (early cutoff).
    BuildUnlessUpstreamUnchanged,
    /// Fresh, rebuilt because `--force` asked for it.
    Forced,
    /// Fresh: nothing to do.
    Fresh,
}

impl Decision {
    /// How the decision reads in text.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Build => "build",
            Decision::BuildUnlessUpstreamUnchanged => "build unless upstream unchanged",
            Decision::Forced => "build (forced)",
            Decision::Fresh => "fresh",
        }
    }
}

/// One unit the plan considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// What happens to it.
    pub decision: Decision,
    /// Why it is not fresh, exactly as `cairn status` reports it.
    pub causes: Vec<StaleCause>,
    /// The error of its latest attempt, when that failed after the last
    /// commit (it is retried).
    pub last_failure: Option<String>,
}

impl Plan {
    /// Every unit considered — the chosen ones and the upstream units
    /// refreshed on the way — in execution order (dependency order, then
    /// key), with its decision and causes. Pure: the snapshot's assessment
    /// is the only input, so the causes are those `cairn status` prints.
    pub fn decisions(&self, ws: &Workspace, snapshot: &Snapshot) -> Vec<PlannedUnit> {
        // Causes of every unit considered, borrowed from the assessment.
        type Assessed<'a> = (AssetState, &'a [StaleCause], Option<&'a str>);
        let mut assessed: FastMap<(&str, &str), Assessed<'_>> = FastMap::default();
        for s in &snapshot.statuses {
            match &s.partitions {
                None => {
                    let failure = s.last_failure.as_ref().and_then(|f| f.error.as_deref());
                    assessed.insert((s.name.as_str(), ""), (s.state, &s.causes, failure));
                }
                Some(p) => {
                    for u in &p.list {
                        let failure = u.last_failure.as_ref().and_then(|f| f.error.as_deref());
                        assessed.insert(
                            (s.name.as_str(), u.key.as_str()),
                            (u.state, &u.causes, failure),
                        );
                    }
                }
            }
        }
        let running: FastSet<&Unit> = self.run_set.iter().collect();
        let mut units: Vec<&Unit> = self
            .run_set
            .iter()
            .chain(self.chosen.iter().filter(|u| !running.contains(u)))
            .collect();
        ws.graph
            .sort_in_execution_order(&mut units, |(a, k)| (a.as_str(), k.as_str()));
        units
            .into_iter()
            .map(|unit| {
                let (state, causes, failure) = assessed
                    .get(&(unit.0.as_str(), unit.1.as_str()))
                    .copied()
                    .unwrap_or((AssetState::Fresh, &[], None));
                let waits_on_upstream = !causes.is_empty()
                    && causes.iter().all(|c| {
                        matches!(
                            c,
                            StaleCause::UpstreamStale { .. } | StaleCause::EarlierPartitionStale
                        )
                    });
                let decision = if !running.contains(unit) {
                    Decision::Fresh
                } else if state == AssetState::Fresh {
                    Decision::Forced
                } else if waits_on_upstream && state == AssetState::Stale {
                    Decision::BuildUnlessUpstreamUnchanged
                } else {
                    Decision::Build
                };
                PlannedUnit {
                    asset: unit.0.clone(),
                    partition: unit.1.clone(),
                    decision,
                    causes: causes.to_vec(),
                    last_failure: failure.map(str::to_owned),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod fixtures;
