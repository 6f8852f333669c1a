//! Staleness: for every asset, is its committed version what its code and
//! inputs would produce now, and if not, why. A pure function of the graph,
//! the current versions and the catalog's records.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use cairn_assets::partitions::PartitionMapping;
use cairn_assets::{Project, SqlAsset};
use cairn_catalog::{AttemptRecord, CurrentVersion, MaterializationId, UpstreamVersion};

use crate::committed::Committed;
use crate::graph::{AssetGraph, NodeKind};
use crate::partition_index::{PartitionIndex, partitions_of};
use crate::units::{KeyMap, UnitMap};
use crate::version::{UpstreamInput, input_hash};

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
    /// version and it differs from the committed one's (a fresh partition's
    /// is its committed `input_version`).
    pub input_version: Option<String>,
    /// Its committed version (shared with the snapshot it was assessed
    /// from: hundreds of thousands of partitions must not copy theirs).
    #[serde(serialize_with = "shared_version")]
    pub current: Option<Arc<Committed>>,
    /// Its latest attempt, when that failed after the last commit.
    pub last_failure: Option<AttemptRecord>,
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
}

/// A unit of materialization: an asset and one of its partition keys.
pub type Unit = (String, String);

/// What the assessment reads.
pub struct Inputs<'a> {
    /// The project.
    pub project: &'a Project,
    /// The graph.
    pub graph: &'a AssetGraph,
    /// Partition keys and mappings.
    pub index: &'a PartitionIndex,
    /// Code version of every asset.
    pub code_versions: &'a HashMap<String, String>,
    /// Data version of every source partition.
    pub source_versions: &'a UnitMap<String>,
    /// Current committed version of every asset partition.
    pub current: &'a UnitMap<Arc<Committed>>,
    /// The latest attempt of every asset partition whose latest attempt
    /// failed (the others do not change a status).
    pub failures: &'a UnitMap<AttemptRecord>,
    /// The recorded inputs of a materialization (used only to explain why
    /// a stale partition is stale).
    pub recorded_inputs: &'a dyn Fn(MaterializationId) -> Option<Vec<UpstreamVersion>>,
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
    /// Same partitioning and identity mapping (or both unpartitioned): a
    /// partition reads the upstream partition with its own key.
    same_key: bool,
    versions: Versions<'a>,
}

/// The data versions of one upstream's partitions.
enum Versions<'a> {
    Source(Option<&'a KeyMap<String>>),
    Asset(Option<&'a KeyMap<Arc<Committed>>>),
}

impl<'a> Versions<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        match self {
            Versions::Source(m) => m.and_then(|m| m.get(key)).map(String::as_str),
            Versions::Asset(m) => m.and_then(|m| m.get(key)).map(|c| c.data_version.as_str()),
        }
    }
}

impl<'a> UpstreamReader<'a> {
    fn new(inputs: &Inputs<'a>, asset: &SqlAsset, name: &'a str) -> UpstreamReader<'a> {
        let down = asset.partitions.as_ref();
        let up = partitions_of(inputs.project, name);
        // Identical definitions at the same instant have identical keys.
        let same_key = match (down, up) {
            (None, None) => true,
            (Some(d), Some(u)) => d == u && asset.mapping(name) == PartitionMapping::Identity,
            _ => false,
        };
        let versions = match inputs.graph.kind(name) {
            Some(NodeKind::Source) => Versions::Source(inputs.source_versions.of(name)),
            _ => Versions::Asset(inputs.current.of(name)),
        };
        UpstreamReader {
            name,
            same_key,
            versions,
        }
    }
}

/// Assesses every asset and partition, in dependency order.
pub fn assess(inputs: &Inputs<'_>) -> Vec<AssetStatus> {
    let mut out = Vec::new();
    let mut not_fresh: UnitMap<()> = UnitMap::new();
    let mut explained = 0usize;
    for name in inputs.graph.assets_in_order() {
        let Some(asset) = inputs.project.assets.get(name) else {
            continue;
        };
        let code_version = inputs.code_versions.get(name).cloned().unwrap_or_default();
        let readers: Vec<UpstreamReader<'_>> = asset
            .upstream
            .iter()
            .map(|up| UpstreamReader::new(inputs, asset, up))
            .collect();
        let own = Own {
            current: inputs.current.of(name),
            failures: inputs.failures.of(name),
        };
        let keys = inputs.index.keys(name);
        let mut list = Vec::with_capacity(keys.len());
        for key in keys {
            let unit = assess_unit(
                inputs,
                asset,
                key,
                &code_version,
                (&readers, &own),
                &not_fresh,
                &mut explained,
            );
            if unit.state != AssetState::Fresh {
                not_fresh.insert(name, key.clone(), ());
            }
            list.push(unit);
        }
        out.push(summarise(
            name,
            code_version,
            asset.partitions.is_some(),
            list,
        ));
    }
    out
}

/// An asset's own committed versions and failures, by key.
struct Own<'a> {
    current: Option<&'a KeyMap<Arc<Committed>>>,
    failures: Option<&'a KeyMap<AttemptRecord>>,
}

fn summarise(
    name: &str,
    code_version: String,
    partitioned: bool,
    mut list: Vec<PartitionStatus>,
) -> AssetStatus {
    if !partitioned && let Some(unit) = list.pop() {
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
    AssetStatus {
        name: name.to_owned(),
        state,
        causes,
        code_version,
        input_version: None,
        current: None,
        last_failure: None,
        failing_checks: Vec::new(),
        partitions: Some(PartitionSummary {
            total: list.len(),
            fresh,
            stale,
            missing,
            failed,
            rows,
            last_committed_at,
            stale_causes,
            list,
        }),
    }
}

fn assess_unit(
    inputs: &Inputs<'_>,
    asset: &SqlAsset,
    key: &str,
    code_version: &str,
    (readers, own): (&[UpstreamReader<'_>], &Own<'_>),
    not_fresh: &UnitMap<()>,
    explained: &mut usize,
) -> PartitionStatus {
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
                    .upstream_keys_of(inputs.project, asset, r.name, key)
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
                && iv.as_str() != cur.input_version.as_str()
            {
                *explained += 1;
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
                    *explained <= EXPLAIN_LIMIT,
                    &mut causes,
                );
            }
        }
    }
    for (i, up_key) in &upstream {
        let up = readers[*i].name;
        let already = causes.iter().any(|c| c.concerns(&asset.name, up));
        if !already && not_fresh.contains(up, up_key) {
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
    PartitionStatus {
        key: key.to_owned(),
        state,
        causes,
        input_version: input_version
            .filter(|iv| {
                current
                    .as_ref()
                    .is_none_or(|c| iv.as_str() != c.input_version.as_str())
            })
            .map(|iv| iv.as_str().to_owned()),
        current,
        last_failure: last_failure.cloned(),
    }
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
