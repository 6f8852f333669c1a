//! Staleness: for every asset, is its committed version what its code and
//! inputs would produce now, and if not, why. A pure function of the graph,
//! the current versions and the catalog's records.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use cairn_assets::partitions::{KeySpace, PartitionMapping, PartitionsDef};
use cairn_assets::{FreshnessSla, Project, SqlAsset};
use cairn_catalog::{AttemptRecord, CurrentVersion, MaterializationId, UpstreamVersion};

use crate::model::graph::{AssetGraph, NodeKind};
use crate::model::partition_index::{AssetsByName, PartitionIndex};
use crate::model::units::{FastMap, KeyMap, UnitMap};
use crate::model::version::{UpstreamInput, input_hash};
use crate::state::committed::Committed;
use crate::state::freshness::{
    Health, OverduePartition, SlaBasis, SlaLevel, SlaReading, more_overdue,
};

/// Why an asset is not fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum StaleCause {
    /// Never committed.
    NeverMaterialized,
    /// Its SQL changed (beyond comments and formatting).
    CodeChanged,
    /// A source it reads has different content.
    SourceChanged {
        /// The source.
        name: String,
    },
    /// An upstream asset committed a version with different data.
    UpstreamChanged {
        /// The upstream.
        name: String,
    },
    /// An upstream asset is itself not fresh; this one will be rebuilt if
    /// the upstream's data changes when it is.
    UpstreamStale {
        /// The upstream.
        name: String,
    },
    /// An upstream asset has never been materialized.
    UpstreamNeverMaterialized {
        /// The upstream.
        name: String,
    },
    /// The set of upstream partitions read changed (e.g. a new partition
    /// inside a rolling window).
    InputsChanged,
    /// An earlier partition of the same asset, which this one reads,
    /// committed different data.
    EarlierPartitionChanged,
    /// An earlier partition of the same asset, which this one reads, is
    /// not fresh.
    EarlierPartitionStale,
    /// An earlier partition of the same asset, which this one reads, was
    /// never materialized.
    EarlierPartitionMissing,
}

impl StaleCause {
    /// The cause for upstream `up` of `asset`: reads of the asset's own
    /// earlier partitions are named as such.
    fn upstream(asset: &str, up: &str, kind: UpstreamProblem) -> StaleCause {
        let name = up.to_owned();
        match (up == asset, kind) {
            (true, UpstreamProblem::Changed) => StaleCause::EarlierPartitionChanged,
            (true, UpstreamProblem::Stale) => StaleCause::EarlierPartitionStale,
            (true, UpstreamProblem::Missing) => StaleCause::EarlierPartitionMissing,
            (false, UpstreamProblem::Changed) => StaleCause::UpstreamChanged { name },
            (false, UpstreamProblem::Stale) => StaleCause::UpstreamStale { name },
            (false, UpstreamProblem::Missing) => StaleCause::UpstreamNeverMaterialized { name },
        }
    }

    /// Whether this cause is about upstream `up` of `asset`.
    fn concerns(&self, asset: &str, up: &str) -> bool {
        match self {
            StaleCause::UpstreamChanged { name }
            | StaleCause::UpstreamNeverMaterialized { name }
            | StaleCause::UpstreamStale { name } => name == up,
            StaleCause::EarlierPartitionChanged
            | StaleCause::EarlierPartitionStale
            | StaleCause::EarlierPartitionMissing => up == asset,
            _ => false,
        }
    }
}

#[derive(Clone, Copy)]
enum UpstreamProblem {
    Changed,
    Stale,
    Missing,
}

impl fmt::Display for StaleCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleCause::NeverMaterialized => write!(f, "never materialized"),
            StaleCause::CodeChanged => write!(f, "code changed"),
            StaleCause::SourceChanged { name } => write!(f, "source {name} changed"),
            StaleCause::UpstreamChanged { name } => write!(f, "upstream {name} changed"),
            StaleCause::UpstreamStale { name } => write!(f, "upstream {name} is stale"),
            StaleCause::UpstreamNeverMaterialized { name } => {
                write!(f, "upstream {name} never materialized")
            }
            StaleCause::InputsChanged => write!(f, "inputs changed"),
            StaleCause::EarlierPartitionChanged => write!(f, "an earlier partition changed"),
            StaleCause::EarlierPartitionStale => write!(f, "an earlier partition is stale"),
            StaleCause::EarlierPartitionMissing => write!(f, "an earlier partition is missing"),
        }
    }
}

/// The overall state of an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetState {
    /// Its committed version is what its code and inputs produce now.
    Fresh,
    /// Its committed version is out of date.
    Stale,
    /// Never committed.
    NeverMaterialized,
    /// Its latest attempt failed (an older version may still be served).
    Failed,
}

impl AssetState {
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetState::Fresh => "fresh",
            AssetState::Stale => "stale",
            AssetState::NeverMaterialized => "never materialized",
            AssetState::Failed => "failed",
        }
    }
}

/// The assessment of one partition (or of an unpartitioned asset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// The partition key (`""` when unpartitioned).
    pub key: String,
    /// Its state.
    pub state: AssetState,
    /// Why it is not fresh.
    pub causes: Vec<StaleCause>,
    /// The input version it would have now, when every upstream has a
    /// version and it differs from the committed one's; `None` when it
    /// equals it (a fresh partition's is then `current.input_version`, not
    /// copied for each of hundreds of thousands of partitions).
    pub input_version: Option<String>,
    /// Its committed version (shared with the snapshot it was assessed
    /// from: hundreds of thousands of partitions must not copy theirs).
    #[serde(serialize_with = "shared_version")]
    pub current: Option<Arc<Committed>>,
    /// Its latest attempt, when that failed after the last commit.
    pub last_failure: Option<AttemptRecord>,
    /// The worst of its SLA level, failing checks and failed run.
    pub health: Health,
    /// Where it stands against its asset's SLA, when it has one and this
    /// partition is behind.
    pub sla: Option<SlaReading>,
}

fn shared_version<S: Serializer>(v: &Option<Arc<Committed>>, s: S) -> Result<S::Ok, S::Error> {
    v.as_deref().serialize(s)
}

/// Counts over the partitions of a partitioned asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionSummary {
    /// Partitions that exist now.
    pub total: usize,
    /// Fresh ones.
    pub fresh: usize,
    /// Stale ones (materialized, out of date).
    pub stale: usize,
    /// Never materialized.
    pub missing: usize,
    /// Latest attempt failed.
    pub failed: usize,
    /// Rows over the committed partitions.
    pub rows: u64,
    /// Newest commit of any partition.
    pub last_committed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Distinct causes over the stale partitions.
    pub stale_causes: Vec<String>,
    /// Partitions past `warn_after` (and not `fail_after`).
    pub sla_warn: usize,
    /// Partitions past `fail_after`.
    pub sla_failed: usize,
    /// The most overdue partition past a limit, if any.
    pub most_overdue: Option<OverduePartition>,
    /// Every partition, in key order.
    pub list: Vec<PartitionStatus>,
}

impl PartitionSummary {
    /// "362 fresh, 3 stale: upstream orders changed, 2 missing".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} fresh", self.fresh)];
        if self.stale > 0 {
            parts.push(format!(
                "{} stale: {}",
                self.stale,
                self.stale_causes.join(", ")
            ));
        }
        if self.missing > 0 {
            parts.push(format!("{} missing", self.missing));
        }
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        parts.join(", ")
    }
}

/// The assessment of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetStatus {
    /// Asset name.
    pub name: String,
    /// Overall state (the worst of its partitions).
    pub state: AssetState,
    /// Why it is not fresh (for a partitioned asset, every distinct cause).
    pub causes: Vec<StaleCause>,
    /// Its code version now.
    pub code_version: String,
    /// The input version it would have now (unpartitioned assets).
    pub input_version: Option<String>,
    /// Its committed version (unpartitioned assets).
    pub current: Option<CurrentVersion>,
    /// Its latest failed attempt after the last commit (unpartitioned assets).
    pub last_failure: Option<AttemptRecord>,
    /// Partition counts and states (partitioned assets).
    pub partitions: Option<PartitionSummary>,
    /// `error` checks failing on the current version (from the latest
    /// `cairn check` or materialization), as `name` or `name [partition]`.
    pub failing_checks: Vec<String>,
    /// `warn` checks failing on the current version, likewise (they do not
    /// change its health).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warning_checks: Vec<String>,
    /// The worst health of its units (and its failing checks).
    pub health: Health,
    /// Its SLA (`[freshness]`), if it declares one.
    #[serde(serialize_with = "sla_limits")]
    pub freshness: Option<FreshnessSla>,
    /// Where it stands against its SLA when behind (unpartitioned assets).
    pub sla: Option<SlaReading>,
}

impl AssetStatus {
    /// Whether `cairn status --check` fails on it: a failed run, a
    /// failing check or a failed SLA; without an SLA, anything not fresh
    /// (with one, staleness within it is allowed).
    pub fn fails_check(&self) -> bool {
        self.health >= Health::SlaFailed
            || (self.freshness.is_none() && self.state != AssetState::Fresh)
    }

    /// "sla failed: 2024-01-05 not built 7h after its window closed
    /// (fail_after 6h)", "sla warn: 3 partitions, the most overdue ...":
    /// its most overdue unit past a limit, if any.
    pub fn sla_verdict(&self) -> Option<String> {
        let sla = self.freshness.as_ref()?;
        let Some(p) = &self.partitions else {
            return self.sla.as_ref()?.verdict("", sla);
        };
        let worst = p.most_overdue.as_ref()?;
        let like_it = match worst.sla.level {
            SlaLevel::Failed => p.sla_failed,
            SlaLevel::Warn => p.sla_warn,
            SlaLevel::Ok => 0,
        };
        let what = worst.sla.describe(&worst.key);
        let subject = if like_it > 1 {
            format!("{like_it} partitions, the most overdue {what}")
        } else {
            what
        };
        worst.sla.verdict_on(&subject, sla)
    }

    /// Units (partitions, or the asset itself) past `fail_after` and past
    /// only `warn_after`.
    pub fn sla_counts(&self) -> (usize, usize) {
        match (&self.partitions, &self.sla) {
            (Some(p), _) => (p.sla_failed, p.sla_warn),
            (None, Some(r)) => (
                usize::from(r.level == SlaLevel::Failed),
                usize::from(r.level == SlaLevel::Warn),
            ),
            (None, None) => (0, 0),
        }
    }
}

fn sla_limits<S: Serializer>(sla: &Option<FreshnessSla>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Limits {
        warn_after_secs: Option<u64>,
        fail_after_secs: Option<u64>,
    }
    sla.map(|l| Limits {
        warn_after_secs: l.warn_after.map(|d| d.as_secs()),
        fail_after_secs: l.fail_after.map(|d| d.as_secs()),
    })
    .serialize(s)
}

/// What the assessment reads.
pub struct Inputs<'a> {
    /// The project.
    pub project: &'a Project,
    /// The graph.
    pub graph: &'a AssetGraph,
    /// Partition keys and mappings.
    pub index: &'a PartitionIndex,
    /// Code version of every asset.
    pub code_versions: &'a FastMap<String, String>,
    /// Data version of every source partition.
    pub source_versions: &'a UnitMap<String>,
    /// Current committed version of every asset partition.
    pub current: &'a UnitMap<Arc<Committed>>,
    /// The latest attempt of every asset partition whose latest attempt
    /// failed (the others do not change a status).
    pub failures: &'a UnitMap<AttemptRecord>,
    /// When each source partition's current content was first seen (times
    /// staleness for freshness SLAs).
    pub source_observed: &'a UnitMap<DateTime<Utc>>,
    /// Assess only these assets (they must include their ancestors: a
    /// status depends on its upstreams'); every asset when `None`.
    pub only: Option<&'a std::collections::BTreeSet<String>>,
    /// The recorded inputs of a materialization (used only to explain why
    /// a stale partition is stale).
    pub recorded_inputs: &'a (dyn Fn(MaterializationId) -> Option<Vec<UpstreamVersion>> + Sync),
}

/// The current data version of an upstream partition, if it has one.
pub fn upstream_data_version<'a>(inputs: &'a Inputs<'_>, name: &str, key: &str) -> Option<&'a str> {
    match inputs.graph.kind(name)? {
        NodeKind::Source => inputs.source_versions.get(name, key).map(String::as_str),
        NodeKind::Asset => inputs
            .current
            .get(name, key)
            .map(|c| c.data_version.as_str()),
    }
}

/// Explaining a stale partition reads its recorded inputs from the catalog;
/// past this many, causes are summarised without that read.
const EXPLAIN_LIMIT: usize = 2_000;

/// How one asset reads one of its upstreams, resolved once per asset so
/// that each partition costs only key lookups.
struct UpstreamReader<'a> {
    name: &'a str,
    /// The upstream's partitioning.
    def: Option<&'a PartitionsDef>,
    /// Same partitioning and identity mapping (or both unpartitioned): a
    /// partition reads the upstream partition with its own key.
    same_key: bool,
    versions: Versions<'a>,
}

/// The data versions of one upstream's partitions.
enum Versions<'a> {
    Source {
        versions: Option<&'a KeyMap<String>>,
        observed: Option<&'a KeyMap<DateTime<Utc>>>,
    },
    Asset(Option<&'a KeyMap<Arc<Committed>>>),
}

impl<'a> Versions<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        match self {
            Versions::Source { versions, .. } => {
                versions.and_then(|m| m.get(key)).map(String::as_str)
            }
            Versions::Asset(m) => m.and_then(|m| m.get(key)).map(|c| c.data_version.as_str()),
        }
    }

    /// When the upstream partition's current version appeared: an asset's
    /// commit, a source's first sight of its content.
    fn since(&self, key: &str) -> Option<DateTime<Utc>> {
        match self {
            Versions::Source { observed, .. } => observed.and_then(|m| m.get(key)).copied(),
            Versions::Asset(m) => m.and_then(|m| m.get(key)).map(|c| c.committed_at),
        }
    }
}

impl<'a> UpstreamReader<'a> {
    fn new(
        inputs: &Inputs<'a>,
        by_name: &AssetsByName<'a>,
        asset: &SqlAsset,
        name: &'a str,
    ) -> UpstreamReader<'a> {
        let down = asset.partitions.as_ref();
        let def = by_name.partitions_of(name);
        // Identical definitions at the same instant have identical keys.
        let same_key = match (down, def) {
            (None, None) => true,
            (Some(d), Some(u)) => d == u && asset.mapping(name) == PartitionMapping::Identity,
            _ => false,
        };
        let versions = match inputs.graph.kind(name) {
            Some(NodeKind::Source) => Versions::Source {
                versions: inputs.source_versions.of(name),
                observed: inputs.source_observed.of(name),
            },
            _ => Versions::Asset(inputs.current.of(name)),
        };
        UpstreamReader {
            name,
            def,
            same_key,
            versions,
        }
    }
}

/// Below this many partitions in one level of the graph, assessing it on
/// one thread is cheaper than starting others.
const PARALLEL_MIN_UNITS: usize = 20_000;

/// Assesses every asset and partition, in dependency order. Assets whose
/// upstreams are all assessed (one level of the graph) are assessed in
/// parallel when they are many.
pub fn assess(inputs: &Inputs<'_>) -> Vec<AssetStatus> {
    assess_with(inputs, PARALLEL_MIN_UNITS)
}

/// [`assess`], going parallel for levels of at least `parallel_min` units.
fn assess_with(inputs: &Inputs<'_>, parallel_min: usize) -> Vec<AssetStatus> {
    let by_name = AssetsByName::new(inputs.project);
    let order: Vec<&SqlAsset> = inputs
        .graph
        .assets_in_order()
        .filter(|a| inputs.only.is_none_or(|only| only.contains(*a)))
        .filter_map(|a| by_name.get(a))
        .collect();
    let mut results: Vec<Option<AssetStatus>> = Vec::new();
    results.resize_with(order.len(), || None);
    let mut not_fresh: UnitMap<Behind> = UnitMap::new();
    // Reading recorded inputs to explain staleness is budgeted; each asset
    // of a level gets an equal share of what is left, so the explanations
    // do not depend on thread timing or on how many cores there are.
    let mut explain_left = EXPLAIN_LIMIT;
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 8);
    for level in levels(&order) {
        let units: usize = level
            .iter()
            .map(|&i| inputs.index.keys(&order[i].name).len())
            .sum();
        let budget = explain_left.div_ceil(level.len().max(1));
        let assessed: Vec<Assessed> = if threads > 1 && level.len() > 1 && units >= parallel_min {
            assess_in_parallel(
                inputs, &by_name, &order, &level, threads, &not_fresh, budget,
            )
        } else {
            level
                .iter()
                .map(|&i| {
                    (
                        i,
                        assess_asset(inputs, &by_name, order[i], &not_fresh, budget),
                    )
                })
                .collect()
        };
        for (i, asset) in assessed {
            for (key, since) in asset.stale {
                not_fresh.insert(&order[i].name, key.as_str(), since);
            }
            explain_left = explain_left.saturating_sub(asset.explained);
            results[i] = Some(asset.status);
        }
    }
    results.into_iter().flatten().collect()
}

/// One assessed asset: its position in the order and its assessment.
type Assessed = (usize, AssetAssessment);

/// What assessing one asset yields.
struct AssetAssessment {
    status: AssetStatus,
    /// Its keys that are not fresh, and since when each is behind.
    stale: Vec<(String, Behind)>,
    /// Stale partitions explained from their recorded inputs.
    explained: usize,
}

/// Assesses the assets of one level on up to `threads` threads, balanced
/// by partition count.
fn assess_in_parallel(
    inputs: &Inputs<'_>,
    by_name: &AssetsByName<'_>,
    order: &[&SqlAsset],
    level: &[usize],
    threads: usize,
    not_fresh: &UnitMap<Behind>,
    explain_budget: usize,
) -> Vec<Assessed> {
    let chunks = balanced(level, threads, |i| inputs.index.keys(&order[i].name).len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| {
                            let assessed =
                                assess_asset(inputs, by_name, order[i], not_fresh, explain_budget);
                            (i, assessed)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(assessed) => assessed,
                // A bug, not bad input: keep its message.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Positions in `order` grouped by depth: every asset's upstream assets
/// (other than itself) are in earlier groups.
fn levels(order: &[&SqlAsset]) -> Vec<Vec<usize>> {
    let position: FastMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut depth = vec![0usize; order.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, a) in order.iter().enumerate() {
        let d = a
            .upstream
            .iter()
            .filter(|u| **u != a.name)
            .filter_map(|u| position.get(u.as_str()))
            .map(|&p| depth[p] + 1)
            .max()
            .unwrap_or(0);
        depth[i] = d;
        if out.len() <= d {
            out.resize_with(d + 1, Vec::new);
        }
        out[d].push(i);
    }
    out
}

/// Splits `items` into at most `n` groups of about equal total `weight`.
fn balanced(items: &[usize], n: usize, weight: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); n.min(items.len()).max(1)];
    let mut sorted: Vec<usize> = items.to_vec();
    sorted.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    for i in sorted {
        if let Some(lightest) = groups.iter_mut().min_by_key(|g| g.0) {
            lightest.0 += weight(i);
            lightest.1.push(i);
        }
    }
    groups.into_iter().map(|g| g.1).collect()
}

/// Assesses every partition of one asset; also returns the keys that are
/// not fresh. `not_fresh` holds the units of earlier levels that are not.
fn assess_asset<'a>(
    inputs: &Inputs<'a>,
    by_name: &AssetsByName<'a>,
    asset: &'a SqlAsset,
    not_fresh: &UnitMap<Behind>,
    explain_budget: usize,
) -> AssetAssessment {
    let name = asset.name.as_str();
    let code_version = inputs.code_versions.get(name).cloned().unwrap_or_default();
    let readers: Vec<UpstreamReader<'_>> = asset
        .upstream
        .iter()
        .map(|up| UpstreamReader::new(inputs, by_name, asset, up))
        .collect();
    let own = Own {
        current: inputs.current.of(name),
        failures: inputs.failures.of(name),
        space: inputs.index.key_space(name),
        sla: asset.freshness.as_ref(),
    };
    let keys = inputs.index.keys(name);
    let mut list = Vec::with_capacity(keys.len());
    // Its own keys that are not fresh (it may read its earlier partitions).
    let mut stale: Vec<(String, Behind)> = Vec::new();
    let mut own_stale: FastMap<&str, Behind> = FastMap::default();
    let mut explained = 0usize;
    for (position, key) in keys.iter().enumerate() {
        let behind = |up: &str, up_key: &str| {
            if up == name {
                own_stale.get(up_key).copied()
            } else {
                not_fresh.get(up, up_key).copied()
            }
        };
        let (unit, since) = assess_unit(
            inputs,
            asset,
            (position, key),
            &code_version,
            (&readers, &own),
            &behind,
            (&mut explained, explain_budget),
        );
        if unit.state != AssetState::Fresh {
            stale.push((key.clone(), since));
            own_stale.insert(key, since);
        }
        list.push(unit);
    }
    AssetAssessment {
        status: summarise(name, code_version, asset, list),
        stale,
        explained,
    }
}

/// Since when a unit that is not fresh is behind (see
/// [`crate::state::freshness`]); `None`: unknown.
type Behind = Option<DateTime<Utc>>;

/// An asset's own committed versions, failures, keys and SLA.
struct Own<'a> {
    current: Option<&'a KeyMap<Arc<Committed>>>,
    failures: Option<&'a KeyMap<AttemptRecord>>,
    /// Its keys with their time windows (partitioned assets).
    space: Option<&'a KeySpace>,
    sla: Option<&'a FreshnessSla>,
}

fn summarise(
    name: &str,
    code_version: String,
    asset: &SqlAsset,
    mut list: Vec<PartitionStatus>,
) -> AssetStatus {
    let freshness = asset.freshness;
    if asset.partitions.is_none()
        && let Some(unit) = list.pop()
    {
        return AssetStatus {
            name: name.to_owned(),
            state: unit.state,
            causes: unit.causes,
            code_version,
            input_version: unit
                .input_version
                .or_else(|| unit.current.as_ref().map(|c| c.input_version.to_string())),
            current: unit.current.map(|c| c.to_current_version(name, "")),
            last_failure: unit.last_failure,
            partitions: None,
            failing_checks: Vec::new(),
            warning_checks: Vec::new(),
            health: unit.health,
            freshness,
            sla: unit.sla,
        };
    }
    let count = |s: AssetState| list.iter().filter(|p| p.state == s).count();
    let (fresh, stale, missing, failed) = (
        count(AssetState::Fresh),
        count(AssetState::Stale),
        count(AssetState::NeverMaterialized),
        count(AssetState::Failed),
    );
    let state = if failed > 0 {
        AssetState::Failed
    } else if !list.is_empty() && missing == list.len() {
        AssetState::NeverMaterialized
    } else if stale + missing > 0 {
        AssetState::Stale
    } else {
        AssetState::Fresh
    };
    let mut causes: Vec<StaleCause> = Vec::new();
    for p in &list {
        for c in &p.causes {
            if !causes.contains(c) {
                causes.push(c.clone());
            }
        }
    }
    let mut stale_causes: Vec<String> = Vec::new();
    for p in list.iter().filter(|p| p.state == AssetState::Stale) {
        for c in &p.causes {
            let text = c.to_string();
            if !stale_causes.contains(&text) {
                stale_causes.push(text);
            }
        }
    }
    let committed = list.iter().filter_map(|p| p.current.as_ref());
    let rows = committed.clone().map(|c| c.row_count).sum();
    let last_committed_at = committed.map(|c| c.committed_at).max();
    let health = list.iter().map(|p| p.health).max().unwrap_or_default();
    let (mut sla_warn, mut sla_failed) = (0, 0);
    let mut most_overdue: Option<(&str, &SlaReading)> = None;
    for p in &list {
        let Some(r) = &p.sla else { continue };
        match r.level {
            SlaLevel::Ok => continue,
            SlaLevel::Warn => sla_warn += 1,
            SlaLevel::Failed => sla_failed += 1,
        }
        if most_overdue.is_none_or(|(_, worst)| more_overdue(r, worst)) {
            most_overdue = Some((&p.key, r));
        }
    }
    let most_overdue = most_overdue.map(|(key, r)| OverduePartition {
        key: key.to_owned(),
        sla: *r,
    });
    AssetStatus {
        name: name.to_owned(),
        state,
        causes,
        code_version,
        input_version: None,
        current: None,
        last_failure: None,
        failing_checks: Vec::new(),
        warning_checks: Vec::new(),
        health,
        freshness,
        sla: None,
        partitions: Some(PartitionSummary {
            total: list.len(),
            fresh,
            stale,
            missing,
            failed,
            rows,
            last_committed_at,
            stale_causes,
            sla_warn,
            sla_failed,
            most_overdue,
            list,
        }),
    }
}

/// Assesses the partition at `position` of an asset's keys; also returns
/// since when it is behind when it is not fresh. `behind` tells for an
/// upstream unit whether it is not fresh, and since when it is behind.
fn assess_unit(
    inputs: &Inputs<'_>,
    asset: &SqlAsset,
    (position, key): (usize, &str),
    code_version: &str,
    (readers, own): (&[UpstreamReader<'_>], &Own<'_>),
    behind: &dyn Fn(&str, &str) -> Option<Behind>,
    (explained, explain_budget): (&mut usize, usize),
) -> (PartitionStatus, Behind) {
    let current = own.current.and_then(|m| m.get(key)).cloned();

    // (reader, upstream key) pairs this partition reads, sorted.
    let mut upstream: Vec<(usize, Cow<'_, str>)> = Vec::with_capacity(readers.len());
    for (i, r) in readers.iter().enumerate() {
        if r.same_key {
            upstream.push((i, Cow::Borrowed(key)));
        } else {
            upstream.extend(
                inputs
                    .index
                    .upstream_keys_with(asset, r.name, r.def, key)
                    .into_iter()
                    .map(|k| (i, Cow::Owned(k))),
            );
        }
    }
    upstream.sort_by(|a, b| (readers[a.0].name, &a.1).cmp(&(readers[b.0].name, &b.1)));

    let mut causes = Vec::new();
    let mut upstream_inputs = Vec::with_capacity(upstream.len());
    for (i, up_key) in &upstream {
        let r = &readers[*i];
        match r.versions.get(up_key) {
            Some(v) => upstream_inputs.push(UpstreamInput {
                name: r.name,
                partition: up_key,
                data_version: v,
            }),
            None => {
                let cause = StaleCause::upstream(&asset.name, r.name, UpstreamProblem::Missing);
                if !causes.contains(&cause) {
                    causes.push(cause);
                }
            }
        }
    }
    let input_version = causes
        .is_empty()
        .then(|| input_hash(code_version, key, &upstream_inputs).to_hex());

    match &current {
        None => causes.insert(0, StaleCause::NeverMaterialized),
        Some(cur) => {
            if let Some(iv) = &input_version
                && iv.as_bytes() != cur.input_version.as_bytes()
            {
                let read_recorded = *explained < explain_budget;
                if read_recorded {
                    *explained += 1;
                }
                let pairs: Vec<(&str, &str)> = upstream
                    .iter()
                    .map(|(i, k)| (readers[*i].name, k.as_ref()))
                    .collect();
                explain_change(
                    inputs,
                    &asset.name,
                    &pairs,
                    cur,
                    code_version,
                    read_recorded,
                    &mut causes,
                );
            }
        }
    }
    for (i, up_key) in &upstream {
        let up = readers[*i].name;
        let already = causes.iter().any(|c| c.concerns(&asset.name, up));
        if !already && behind(up, up_key).is_some() {
            causes.push(StaleCause::upstream(
                &asset.name,
                up,
                UpstreamProblem::Stale,
            ));
        }
    }

    let last_failure = own
        .failures
        .and_then(|m| m.get(key))
        .filter(|a| current.as_ref().is_none_or(|c| a.at > c.committed_at));
    let state = if last_failure.is_some() {
        AssetState::Failed
    } else if current.is_none() {
        AssetState::NeverMaterialized
    } else if causes.is_empty() {
        AssetState::Fresh
    } else {
        AssetState::Stale
    };
    let now = inputs.index.now();
    // A failed rebuild of a unit that is up to date leaves it current.
    let is_behind = state != AssetState::Fresh && (current.is_none() || !causes.is_empty());
    let since = match &current {
        _ if state == AssetState::Fresh => None,
        _ if !is_behind => Some(now),
        None => own
            .space
            .and_then(|s| s.time_window(position))
            .map(|w| w.end),
        Some(cur) => stale_since(cur, code_version, &upstream, readers, behind),
    };
    let sla = own.sla.filter(|_| is_behind).map(|sla| {
        let basis = match (&current, since) {
            (Some(_), _) => SlaBasis::Stale,
            (None, Some(_)) => SlaBasis::NotBuilt,
            (None, None) => SlaBasis::NeverBuilt,
        };
        SlaReading::at(sla, basis, since, now)
    });
    let mut health = sla.map_or(Health::Ok, |r| r.level.health());
    if state == AssetState::Failed {
        health = Health::FailedRun;
    }
    let unit = PartitionStatus {
        key: key.to_owned(),
        state,
        causes,
        input_version: input_version
            .filter(|iv| {
                current
                    .as_ref()
                    .is_none_or(|c| iv.as_bytes() != c.input_version.as_bytes())
            })
            .map(|iv| iv.as_str().to_owned()),
        current,
        last_failure: last_failure.cloned(),
        health,
        sla,
    };
    (unit, since)
}

/// Since when committed `cur` is out of date: its own commit when its code
/// changed or an upstream it reads is behind since an unknown instant;
/// else the earliest upstream change after it (an asset's commit, a
/// source's first sight of new content) or upstream unit behind; its own
/// commit when nothing tells.
fn stale_since(
    cur: &Committed,
    code_version: &str,
    upstream: &[(usize, Cow<'_, str>)],
    readers: &[UpstreamReader<'_>],
    behind: &dyn Fn(&str, &str) -> Option<Behind>,
) -> Behind {
    if *cur.code_version != *code_version {
        return Some(cur.committed_at);
    }
    let mut since: Option<DateTime<Utc>> = None;
    for (i, up_key) in upstream {
        let r = &readers[*i];
        let upstream_behind = match behind(r.name, up_key) {
            Some(None) => return Some(cur.committed_at),
            Some(t) => t,
            None => None,
        };
        let changed = r.versions.since(up_key).filter(|t| *t > cur.committed_at);
        for t in [changed, upstream_behind].into_iter().flatten() {
            since = Some(since.map_or(t, |s| s.min(t)));
        }
    }
    since.or(Some(cur.committed_at))
}

/// Works out which of code and upstream data changed since `cur` was made.
fn explain_change(
    inputs: &Inputs<'_>,
    asset: &str,
    upstream: &[(&str, &str)],
    cur: &Committed,
    code_version: &str,
    read_recorded: bool,
    causes: &mut Vec<StaleCause>,
) {
    if *cur.code_version != *code_version {
        causes.push(StaleCause::CodeChanged);
    }
    let recorded = if read_recorded {
        (inputs.recorded_inputs)(cur.id).unwrap_or_default()
    } else {
        Vec::new()
    };
    let recorded: HashMap<(&str, &str), &str> = recorded
        .iter()
        .map(|u| {
            (
                (u.name.as_str(), u.partition.as_str()),
                u.data_version.as_str(),
            )
        })
        .collect();
    for &(up, up_key) in upstream {
        let now = upstream_data_version(inputs, up, up_key);
        let then = recorded.get(&(up, up_key)).copied();
        // Without the recorded inputs, an upstream committed after this
        // partition is the likely cause.
        let changed = if read_recorded {
            now.is_some() && now != then
        } else {
            inputs
                .current
                .get(up, up_key)
                .is_some_and(|u| u.committed_at > cur.committed_at)
        };
        if changed {
            let cause = match inputs.graph.kind(up) {
                Some(NodeKind::Source) => StaleCause::SourceChanged {
                    name: up.to_owned(),
                },
                _ => StaleCause::upstream(asset, up, UpstreamProblem::Changed),
            };
            if !causes.contains(&cause) {
                causes.push(cause);
            }
        }
    }
    if causes.is_empty() {
        // Same inputs by name but a different version: the set of upstream
        // partitions read changed, or the code did.
        causes.push(if read_recorded {
            StaleCause::InputsChanged
        } else {
            StaleCause::CodeChanged
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::model::workspace::Workspace;
    use cairn_catalog::{
        AttemptOutcome, NewAttempt, NewMaterialization, NewRun, RunId, UpstreamKind,
    };
    use chrono::Utc;

    const DAILY: &str = "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-02-09\"\n";

    /// A source over 40 days, `a` reading it, and four assets reading `a`
    /// (one level of the graph): identity, a 3-day window, and one also
    /// reading its own previous day.
    fn project(dir: &std::path::Path) {
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "cairn.toml",
            "[sources.events]\npath = \"data\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-02-09\" }\n",
        );
        for day in 0..40 {
            let d = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day);
            write(&format!("data/date={d}/part.csv"), &format!("x\n{day}\n"));
        }
        write("assets/a.sql", &format!("{DAILY}select x from events"));
        write("assets/b.sql", &format!("{DAILY}select x from a"));
        write("assets/c.sql", &format!("{DAILY}select x from a"));
        write(
            "assets/d.sql",
            &format!(
                "{DAILY}--- [upstream.a]\n--- mapping = \"window\"\n--- lag = 2\nselect sum(x) as x from a"
            ),
        );
        write(
            "assets/e.sql",
            &format!(
                "{DAILY}--- [upstream.e]\n--- mapping = \"window\"\n--- offset = -1\n--- [columns]\n--- x = \"BIGINT\"\nselect x from a union all select x from e"
            ),
        );
    }

    /// Commits every unit as the engine would (fresh), except: `b` day 7
    /// missing, `c` day 5 with a wrong input version, `e` day 20 with other
    /// data (so days 21.. read a changed earlier partition), and a failed
    /// attempt of `d` day 3 after its commit.
    fn seed(ws: &Workspace) {
        let snapshot = crate::state::snapshot::snapshot(ws).unwrap();
        let run = RunId("seed".to_owned());
        ws.catalog
            .begin_run(&NewRun {
                id: run.clone(),
                user: "t".into(),
                host: "t".into(),
                pid: 1,
                command: "seed".into(),
                trigger: "test".into(),
                started_at: Utc::now(),
                backfill_id: None,
            })
            .unwrap();
        let mut data: HashMap<(String, String), String> = HashMap::new();
        for name in ws.graph.assets_in_order() {
            let asset = &ws.project.assets[name];
            let code = &snapshot.code_versions[name];
            for key in snapshot.index.keys(name) {
                let inputs: Vec<UpstreamVersion> = snapshot
                    .index
                    .upstream_units(&ws.project, asset, key)
                    .into_iter()
                    .map(|(up, up_key)| {
                        let version = match snapshot.source_versions.get(&up, &up_key) {
                            Some(v) => v.clone(),
                            None => data[&(up.clone(), up_key.clone())].clone(),
                        };
                        UpstreamVersion {
                            name: up,
                            kind: UpstreamKind::Asset,
                            partition: up_key,
                            data_version: version,
                            materialization: None,
                        }
                    })
                    .collect();
                let refs: Vec<UpstreamInput<'_>> = inputs.iter().map(UpstreamInput::from).collect();
                let day = key.as_str();
                if name == "b" && day == "2024-01-08" {
                    continue;
                }
                let mut input = crate::model::version::input_version(code, key, &refs);
                if name == "c" && day == "2024-01-06" {
                    input = "not what it would be".into();
                }
                let mut data_version = format!("{name}/{key}");
                if name == "e" && day == "2024-01-21" {
                    data_version.push_str("/v2");
                }
                data.insert((name.to_owned(), key.clone()), format!("{name}/{key}"));
                ws.catalog
                    .commit_materialization(&NewMaterialization {
                        run_id: run.clone(),
                        asset: name.to_owned(),
                        partition: key.clone(),
                        code_version: code.clone(),
                        input_version: input,
                        data_version,
                        row_count: 1,
                        bytes_written: 1,
                        wall_ms: 1,
                        schema_json: "[]".into(),
                        inputs,
                        files: Vec::new(),
                        committed_at: Utc::now(),
                        metrics: Default::default(),
                        checks: Vec::new(),
                    })
                    .unwrap();
            }
        }
        ws.catalog
            .record_attempt(&NewAttempt {
                run_id: run,
                asset: "d".into(),
                partition: "2024-01-04".into(),
                outcome: AttemptOutcome::Failed,
                error: Some("boom".into()),
                at: Utc::now() + chrono::TimeDelta::try_seconds(1).unwrap_or_default(),
            })
            .unwrap();
    }

    #[test]
    fn parallel_levels_assess_exactly_like_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let ws = Workspace::open(dir.path()).unwrap();
        seed(&ws);
        let snapshot = crate::state::snapshot::snapshot(&ws).unwrap();
        let failures: UnitMap<AttemptRecord> = ws
            .catalog
            .latest_failed_attempts()
            .unwrap()
            .into_iter()
            .map(|a| ((a.asset.clone(), a.partition.clone()), a))
            .collect();
        let no_inputs = |_| None;
        let inputs = Inputs {
            project: &ws.project,
            graph: &ws.graph,
            index: &snapshot.index,
            code_versions: &snapshot.code_versions,
            source_versions: &snapshot.source_versions,
            current: &snapshot.current,
            failures: &failures,
            source_observed: &snapshot.source_observed,
            only: None,
            recorded_inputs: &no_inputs,
        };
        let serial = assess_with(&inputs, usize::MAX);
        let parallel = assess_with(&inputs, 0);
        assert_eq!(serial, parallel);

        let summary = |name: &str| {
            let s = serial.iter().find(|s| s.name == name).unwrap();
            let p = s.partitions.as_ref().unwrap();
            (p.fresh, p.stale, p.missing, p.failed)
        };
        let not_fresh = |name: &str| -> Vec<String> {
            let s = serial.iter().find(|s| s.name == name).unwrap();
            s.partitions
                .as_ref()
                .unwrap()
                .list
                .iter()
                .filter(|u| u.state != AssetState::Fresh)
                .map(|u| u.key.clone())
                .collect()
        };
        assert_eq!(summary("a"), (40, 0, 0, 0));
        assert_eq!(summary("b"), (39, 0, 1, 0));
        assert_eq!(not_fresh("c"), vec!["2024-01-06".to_owned()]);
        assert_eq!(summary("d"), (39, 0, 0, 1));
        // e day 20 changed its data: day 21 reads it, so it is stale; the
        // days after only wait on an earlier stale partition.
        let e = not_fresh("e");
        assert_eq!(e.first().map(String::as_str), Some("2024-01-22"));
        assert_eq!(e.len(), 40 - 21);
        assert_eq!(
            serial.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c", "d", "e"]
        );

        // The status of some assets, read and assessed alone, is exactly
        // their part of the whole.
        let whole = crate::state::snapshot::status(&ws, &[]).unwrap();
        for selection in [vec!["e"], vec!["c", "d"], vec!["a"]] {
            let selection: Vec<String> = selection.into_iter().map(str::to_owned).collect();
            let part = crate::state::snapshot::status(&ws, &selection).unwrap();
            let expected: Vec<&AssetStatus> = whole
                .iter()
                .filter(|s| selection.contains(&s.name))
                .collect();
            assert_eq!(part.iter().collect::<Vec<_>>(), expected, "{selection:?}");
        }
    }

    #[test]
    fn balanced_groups_spread_weight() {
        let weights = [10, 1, 1, 8, 3, 3];
        let groups = balanced(&[0, 1, 2, 3, 4, 5], 2, |i| weights[i]);
        let totals: Vec<usize> = groups
            .iter()
            .map(|g| g.iter().map(|&i| weights[i]).sum())
            .collect();
        assert_eq!(totals.iter().sum::<usize>(), 26);
        assert!(totals.iter().all(|&t| t == 13), "{totals:?}");
    }

    /// Commits `name` [`key`] as the engine would from the current
    /// versions (so it is fresh), with data `data`, at `at`.
    fn commit(ws: &Workspace, name: &str, key: &str, data: &str, at: DateTime<Utc>) {
        let snapshot = crate::state::snapshot::snapshot(ws).unwrap();
        let asset = &ws.project.assets[name];
        let code = &snapshot.code_versions[name];
        let inputs: Vec<UpstreamVersion> = snapshot
            .index
            .upstream_units(&ws.project, asset, key)
            .into_iter()
            .map(|(up, up_key)| UpstreamVersion {
                data_version: snapshot
                    .source_versions
                    .get(&up, &up_key)
                    .cloned()
                    .or_else(|| {
                        let c = snapshot.current.get(&up, &up_key)?;
                        Some(c.data_version.to_string())
                    })
                    .unwrap(),
                name: up,
                kind: UpstreamKind::Asset,
                partition: up_key,
                materialization: None,
            })
            .collect();
        let refs: Vec<UpstreamInput<'_>> = inputs.iter().map(UpstreamInput::from).collect();
        let run = RunId(format!("run-{name}-{at}"));
        ws.catalog
            .begin_run(&NewRun {
                id: run.clone(),
                user: "t".into(),
                host: "t".into(),
                pid: 1,
                command: "test".into(),
                trigger: "test".into(),
                started_at: at,
                backfill_id: None,
            })
            .unwrap();
        ws.catalog
            .commit_materialization(&NewMaterialization {
                run_id: run,
                asset: name.to_owned(),
                partition: key.to_owned(),
                code_version: code.clone(),
                input_version: crate::model::version::input_version(code, key, &refs),
                data_version: data.to_owned(),
                row_count: 1,
                bytes_written: 1,
                wall_ms: 1,
                schema_json: "[]".into(),
                inputs,
                files: Vec::new(),
                committed_at: at,
                metrics: Default::default(),
                checks: Vec::new(),
            })
            .unwrap();
    }

    /// Moves the instant the source's current content was first seen.
    fn observed(ws: &Workspace, source: &str, at: DateTime<Utc>) {
        crate::state::snapshot::snapshot(ws).unwrap();
        let mut f = ws
            .catalog
            .source_fingerprints()
            .unwrap()
            .into_iter()
            .find(|f| f.source == source)
            .unwrap();
        f.observed_at = at;
        ws.catalog.put_source_fingerprint(&f).unwrap();
    }

    /// (state, SLA verdict) of every asset at `now`.
    fn slas(ws: &Workspace, now: DateTime<Utc>) -> Vec<(String, String, String)> {
        let ws = Workspace::open(&ws_root(ws))
            .unwrap()
            .with_clock(crate::model::workspace::Clock::Fixed(now));
        crate::state::snapshot::status(&ws, &[])
            .unwrap()
            .into_iter()
            .map(|s| {
                let verdict = match (&s.sla, &s.freshness) {
                    (Some(r), Some(sla)) => r
                        .verdict("", sla)
                        .unwrap_or_else(|| format!("within: {}", r.describe(""))),
                    _ => "-".to_owned(),
                };
                (s.name, s.health.as_str().to_owned(), verdict)
            })
            .collect()
    }

    fn ws_root(ws: &Workspace) -> std::path::PathBuf {
        ws.project.root.clone()
    }

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// A stale unit is behind since the earliest upstream change it has
    /// not seen (an asset's commit, a source's first sight of new
    /// content) or since its own commit when its code changed.
    #[test]
    fn stale_units_are_behind_since_the_change_they_miss() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let sla = "--- [freshness]\n--- warn_after = \"2h\"\n--- fail_after = \"6h\"\n";
        write("cairn.toml", "[sources.events]\npath = \"data/e.csv\"\n");
        write("data/e.csv", "n\n1\n");
        write("assets/a.sql", "select n from events");
        write("assets/b.sql", &format!("{sla}select n from a"));
        write("assets/c.sql", &format!("{sla}select n from events"));
        let ws = Workspace::open(dir.path()).unwrap();
        let t0 = t("2024-03-01T00:00:00Z");
        let hours = |h: i64| t0 + chrono::TimeDelta::try_hours(h).unwrap();
        observed(&ws, "events", hours(-1));
        for name in ["a", "b", "c"] {
            commit(&ws, name, "", &format!("{name}/1"), t0);
        }
        let row = |name: &str, health: &str, verdict: &str| {
            (name.to_owned(), health.to_owned(), verdict.to_owned())
        };
        assert_eq!(
            slas(&ws, hours(100)),
            vec![
                row("a", "ok", "-"),
                row("b", "ok", "-"),
                row("c", "ok", "-")
            ],
            "fresh, however old"
        );

        // `a` commits new data at +10h: `b` is behind since then.
        commit(&ws, "a", "", "a/2", hours(10));
        assert_eq!(
            slas(&ws, hours(13)),
            vec![
                row("a", "ok", "-"),
                row("b", "warn", "sla warn: stale for 3h (warn_after 2h)"),
                row("c", "ok", "-"),
            ]
        );

        // The source changes, first seen at +12h: `c` is behind since
        // then, `b` still since `a` committed (the earlier of the two).
        write("data/e.csv", "n\n2\n");
        observed(&ws, "events", hours(12));
        assert_eq!(
            slas(&ws, hours(17)),
            vec![
                row("a", "ok", "-"),
                row(
                    "b",
                    "sla failed",
                    "sla failed: stale for 7h (fail_after 6h)"
                ),
                row("c", "warn", "sla warn: stale for 5h (warn_after 2h)"),
            ]
        );
        let ws17 = Workspace::open(dir.path())
            .unwrap()
            .with_clock(crate::model::workspace::Clock::Fixed(hours(17)));
        let misses = crate::state::snapshot::sla_misses(&ws17).unwrap();
        let listed: Vec<String> = misses.iter().map(|m| m.describe()).collect();
        assert_eq!(
            listed,
            [
                "b stale for 7h (fail_after 6h)",
                "c stale for 5h (warn_after 2h)"
            ]
        );
        assert_eq!(misses[0].since, Some(hours(10)));
        assert_eq!(
            misses[0].age,
            Some(std::time::Duration::from_secs(7 * 3600))
        );

        // A code change is not timed: from its own commit.
        write(
            "assets/c.sql",
            &format!("{sla}select n + 0 as n from events"),
        );
        assert_eq!(
            slas(&ws, hours(17))[2],
            row(
                "c",
                "sla failed",
                "sla failed: stale for 17h (fail_after 6h)"
            )
        );
    }
}
