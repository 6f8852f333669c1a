//! A snapshot: everything known about the project's versions right now —
//! partition keys, code and source versions, the catalog's current
//! versions and failures — and the assessment of every asset built from
//! it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use cairn_catalog::AttemptRecord;

use crate::error::EngineError;
use crate::model::partition_index::PartitionIndex;
use crate::model::selection;
use crate::model::units::{FastMap, UnitMap};
use crate::model::version::code_version;
use crate::model::workspace::Workspace;
use crate::state::committed::{Committed, CommittedReader};
use crate::state::freshness::{Health, SlaMiss};
use crate::state::sources;
use crate::state::status::{AssetState, AssetStatus, Inputs, assess};

/// Everything known about the project's versions right now.
pub struct Snapshot {
    /// Partition keys that exist now, and mappings.
    pub index: PartitionIndex,
    /// Code version per asset.
    pub code_versions: FastMap<String, String>,
    /// Data version per source partition.
    pub source_versions: UnitMap<String>,
    /// When each source partition's current content was first seen.
    pub source_observed: UnitMap<DateTime<Utc>>,
    /// Current committed version per asset partition.
    pub current: UnitMap<Arc<Committed>>,
    /// Assessment of every asset, in dependency order.
    pub statuses: Vec<AssetStatus>,
}

impl Snapshot {
    /// Every (asset, partition key) whose state is not fresh.
    pub fn not_fresh_units(&self) -> impl Iterator<Item = (&str, &str)> {
        self.statuses.iter().flat_map(|s| {
            // An unpartitioned asset is one unit with key "".
            let whole = (s.partitions.is_none() && s.state != AssetState::Fresh)
                .then_some((s.name.as_str(), ""));
            let partitions = s.partitions.iter().flat_map(|p| {
                p.list
                    .iter()
                    .filter(|u| u.state != AssetState::Fresh)
                    .map(|u| (s.name.as_str(), u.key.as_str()))
            });
            whole.into_iter().chain(partitions)
        })
    }
}

/// How long each stage of [`Workspace::snapshot`] took.
#[derive(Debug, Clone, Default)]
pub struct SnapshotTimings {
    /// Stage name and duration, in the order they ran.
    pub stages: Vec<(&'static str, std::time::Duration)>,
    /// Current versions read from the catalog.
    pub current_versions: usize,
    /// Units whose latest attempt failed.
    pub failures: usize,
}

/// Reads versions and assesses every asset.
pub(crate) fn snapshot(ws: &Workspace) -> Result<Snapshot, EngineError> {
    Ok(snapshot_of(ws, None)?.0)
}

/// A snapshot of `assets` and everything upstream of them only (all
/// assets when `None`): reads and assesses just those, so the status of
/// one asset does not cost the status of the whole project.
pub(crate) fn snapshot_of(
    ws: &Workspace,
    assets: Option<&BTreeSet<String>>,
) -> Result<(Snapshot, SnapshotTimings), EngineError> {
    let scope: Option<BTreeSet<String>> = assets.map(|selected| {
        let mut scope = selected.clone();
        for a in selected {
            scope.extend(
                ws.graph
                    .ancestors(a)
                    .into_iter()
                    .filter(|n| ws.project.assets.contains_key(n)),
            );
        }
        scope
    });
    let mut timings = SnapshotTimings::default();
    let mut lap = std::time::Instant::now();
    let mut stage = |timings: &mut SnapshotTimings, name: &'static str| {
        timings.stages.push((name, lap.elapsed()));
        lap = std::time::Instant::now();
    };
    let code_versions: FastMap<String, String> = ws
        .project
        .assets
        .values()
        .map(|a| (a.name.clone(), code_version(a)))
        .collect();
    stage(&mut timings, "code versions");
    let index = PartitionIndex::build(&ws.project, ws.clock.now());
    stage(&mut timings, "partition index");
    let (source_versions, source_observed) =
        sources::observed_source_versions(&ws.project, &index, ws.catalog.as_ref())?;
    stage(&mut timings, "source versions");
    let mut current: UnitMap<Arc<Committed>> = UnitMap::new();
    let mut reader = CommittedReader::default();
    // Rows come sorted by asset: ask the project once per asset.
    let mut known: Option<(String, bool)> = None;
    let mut visit = |c: &cairn_catalog::CurrentVersionRef<'_>| {
        let is_asset = match &known {
            Some((name, is_asset)) if name == c.asset => *is_asset,
            _ => {
                let is_asset = ws.project.assets.contains_key(c.asset);
                known = Some((c.asset.to_owned(), is_asset));
                is_asset
            }
        };
        if is_asset {
            let key = reader.key(c.partition);
            current.insert(c.asset, key, Arc::new(reader.read(c)));
        }
    };
    match &scope {
        None => ws.catalog.visit_current_versions(&mut visit)?,
        Some(scope) => {
            let list: Vec<String> = scope.iter().cloned().collect();
            ws.catalog.visit_current_versions_of(&list, &mut visit)?;
        }
    }
    timings.current_versions = current.len();
    stage(&mut timings, "catalog: current versions (compact)");
    let failures: UnitMap<AttemptRecord> = ws
        .catalog
        .latest_failed_attempts()?
        .into_iter()
        .map(|a| ((a.asset.clone(), a.partition.clone()), a))
        .collect();
    timings.failures = failures.len();
    stage(&mut timings, "catalog: failed attempts");
    let catalog = Arc::clone(&ws.catalog);
    let recorded = move |id| {
        catalog
            .materialization(id)
            .ok()
            .flatten()
            .map(|m| m.body.inputs)
    };
    let statuses = assess(&Inputs {
        project: &ws.project,
        index: &index,
        graph: &ws.graph,
        code_versions: &code_versions,
        source_versions: &source_versions,
        current: &current,
        failures: &failures,
        source_observed: &source_observed,
        only: scope.as_ref(),
        recorded_inputs: &recorded,
    });
    stage(&mut timings, "assess");
    Ok((
        Snapshot {
            index,
            code_versions,
            source_versions,
            source_observed,
            current,
            statuses,
        },
        timings,
    ))
}

/// The status of the selected assets (all when `selection` is empty).
pub(crate) fn status(
    ws: &Workspace,
    selection: &[String],
) -> Result<Vec<AssetStatus>, EngineError> {
    let selected = selection::resolve(&ws.graph, selection)?;
    let snapshot = if selection.is_empty() {
        snapshot(ws)?
    } else {
        snapshot_of(ws, Some(&selected))?.0
    };
    // A failed attempt's check results are about output that was never
    // committed, not about the version served.
    let mut failed_attempts: HashSet<(&str, &str, &str)> = HashSet::new();
    for s in &snapshot.statuses {
        let units = s
            .partitions
            .iter()
            .flat_map(|p| p.list.iter().filter_map(|u| u.last_failure.as_ref()));
        for f in s.last_failure.iter().chain(units) {
            failed_attempts.insert((&f.asset, &f.partition, &f.run_id.0));
        }
    }
    let mut failing: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut warning: HashMap<String, Vec<String>> = HashMap::new();
    for r in ws.catalog.latest_failing_checks()? {
        // Results older than the current version are about a version
        // that is no longer served; a check no longer declared is not
        // failing.
        let declared = ws
            .project
            .assets
            .get(&r.asset)
            .is_some_and(|a| a.checks.iter().any(|c| c.name == r.result.name));
        if declared
            && snapshot
                .current
                .get(&r.asset, &r.partition)
                .is_some_and(|c| r.at >= c.committed_at)
            && !failed_attempts.contains(&(
                r.asset.as_str(),
                r.partition.as_str(),
                r.run_id.0.as_str(),
            ))
        {
            let label = if r.partition.is_empty() {
                r.result.name.clone()
            } else {
                format!("{} [{}]", r.result.name, r.partition)
            };
            if r.result.severity == "error" {
                failing
                    .entry(r.asset)
                    .or_default()
                    .push((r.partition, label));
            } else {
                warning.entry(r.asset).or_default().push(label);
            }
        }
    }
    Ok(snapshot
        .statuses
        .into_iter()
        .filter(|s| selected.contains(&s.name))
        .map(|mut s| {
            let checks = failing.remove(&s.name).unwrap_or_default();
            for (partition, _) in &checks {
                let unit = s
                    .partitions
                    .as_mut()
                    .and_then(|p| p.list.iter_mut().find(|u| u.key == *partition));
                if let Some(u) = unit {
                    u.health = u.health.max(Health::FailingCheck);
                }
            }
            if !checks.is_empty() {
                s.health = s.health.max(Health::FailingCheck);
            }
            s.failing_checks = checks.into_iter().map(|(_, label)| label).collect();
            s.warning_checks = warning.remove(&s.name).unwrap_or_default();
            s
        })
        .collect())
}

/// Every unit at or past a limit of its asset's SLA, at the workspace's
/// clock.
pub(crate) fn sla_misses(ws: &Workspace) -> Result<Vec<SlaMiss>, EngineError> {
    Ok(misses(&snapshot(ws)?.statuses))
}

/// Every unit of `statuses` at or past a limit, in status order (assets
/// in dependency order, partitions in key order). Needs the partition
/// lists (a status before `--partitions` is applied).
pub(crate) fn misses(statuses: &[AssetStatus]) -> Vec<SlaMiss> {
    let mut out = Vec::new();
    for s in statuses {
        let Some(sla) = &s.freshness else {
            continue;
        };
        let units = s.sla.iter().map(|r| ("", r)).chain(
            s.partitions
                .iter()
                .flat_map(|p| p.list.iter())
                .filter_map(|u| u.sla.as_ref().map(|r| (u.key.as_str(), r))),
        );
        for (key, r) in units {
            if let Some(limit) = r.limit(sla) {
                out.push(SlaMiss {
                    asset: s.name.clone(),
                    partition: key.to_owned(),
                    level: r.level,
                    basis: r.basis,
                    since: r.since,
                    age: r.age_secs.map(std::time::Duration::from_secs),
                    limit,
                });
            }
        }
    }
    out
}
