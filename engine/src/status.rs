//! Staleness: for every asset, is its committed version what its code and
//! inputs would produce now, and if not, why. A pure function of the graph,
//! the current versions and the catalog's records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use cairn_catalog::{
    AttemptOutcome, AttemptRecord, CurrentVersion, MaterializationId, UpstreamKind, UpstreamVersion,
};

use crate::graph::{AssetGraph, NodeKind};
use crate::version::{UpstreamInput, input_version};

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

/// The assessment of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetStatus {
    /// Asset name.
    pub name: String,
    /// Overall state.
    pub state: AssetState,
    /// Why it is not fresh (empty when fresh).
    pub causes: Vec<StaleCause>,
    /// Its code version now.
    pub code_version: String,
    /// The input version it would have now, when every upstream has a version.
    pub input_version: Option<String>,
    /// Its committed version, if any.
    pub current: Option<CurrentVersion>,
    /// Its latest attempt, when that failed after the last commit.
    pub last_failure: Option<AttemptRecord>,
}

/// What the assessment reads.
pub struct Inputs<'a> {
    /// The graph.
    pub graph: &'a AssetGraph,
    /// Code version of every asset.
    pub code_versions: &'a HashMap<String, String>,
    /// Data version of every source.
    pub source_versions: &'a BTreeMap<String, String>,
    /// Current committed version of every asset.
    pub current: &'a HashMap<String, CurrentVersion>,
    /// Latest attempt of every asset.
    pub attempts: &'a HashMap<String, AttemptRecord>,
    /// The recorded inputs of a materialization (used only to explain why
    /// a stale asset is stale).
    pub recorded_inputs: &'a dyn Fn(MaterializationId) -> Option<Vec<UpstreamVersion>>,
}

/// The current data version of an upstream, if it has one.
pub fn upstream_data_version<'a>(inputs: &'a Inputs<'_>, name: &str) -> Option<&'a str> {
    match inputs.graph.kind(name)? {
        NodeKind::Source => inputs.source_versions.get(name).map(String::as_str),
        NodeKind::Asset => inputs.current.get(name).map(|c| c.data_version.as_str()),
    }
}

/// Assesses every asset, in dependency order.
pub fn assess(inputs: &Inputs<'_>) -> Vec<AssetStatus> {
    let mut out = Vec::new();
    let mut not_fresh: HashSet<String> = HashSet::new();
    for name in inputs.graph.assets_in_order() {
        let status = assess_one(inputs, name, &not_fresh);
        if status.state != AssetState::Fresh {
            not_fresh.insert(name.to_owned());
        }
        out.push(status);
    }
    out
}

fn assess_one(inputs: &Inputs<'_>, name: &str, not_fresh: &HashSet<String>) -> AssetStatus {
    let code_version = inputs.code_versions.get(name).cloned().unwrap_or_default();
    let current = inputs.current.get(name).cloned();
    let upstream = inputs.graph.upstream(name);

    let mut causes = Vec::new();
    let mut upstream_inputs = Vec::with_capacity(upstream.len());
    for up in &upstream {
        match upstream_data_version(inputs, up) {
            Some(v) => upstream_inputs.push(UpstreamInput {
                name: up,
                partition: "",
                data_version: v,
            }),
            None => causes.push(StaleCause::UpstreamNeverMaterialized {
                name: (*up).to_owned(),
            }),
        }
    }
    let input_version = causes
        .is_empty()
        .then(|| input_version(&code_version, "", &upstream_inputs));

    match &current {
        None => causes.insert(0, StaleCause::NeverMaterialized),
        Some(cur) => {
            if input_version.as_deref() != Some(cur.input_version.as_str())
                && input_version.is_some()
            {
                explain_change(inputs, name, cur, &code_version, &mut causes);
            }
        }
    }
    for up in &upstream {
        let already = causes.iter().any(|c| {
            matches!(c, StaleCause::UpstreamChanged { name } | StaleCause::UpstreamNeverMaterialized { name } if name == up)
        });
        if not_fresh.contains(*up) && !already {
            causes.push(StaleCause::UpstreamStale {
                name: (*up).to_owned(),
            });
        }
    }

    let last_failure = inputs.attempts.get(name).filter(|a| {
        a.outcome == AttemptOutcome::Failed
            && current.as_ref().is_none_or(|c| a.at > c.committed_at)
    });
    let state = if last_failure.is_some() {
        AssetState::Failed
    } else if current.is_none() {
        AssetState::NeverMaterialized
    } else if causes.is_empty() {
        AssetState::Fresh
    } else {
        AssetState::Stale
    };
    AssetStatus {
        name: name.to_owned(),
        state,
        causes,
        code_version,
        input_version,
        current,
        last_failure: last_failure.cloned(),
    }
}

/// Works out which of code and upstream data changed since `cur` was made.
fn explain_change(
    inputs: &Inputs<'_>,
    name: &str,
    cur: &CurrentVersion,
    code_version: &str,
    causes: &mut Vec<StaleCause>,
) {
    if cur.code_version != code_version {
        causes.push(StaleCause::CodeChanged);
    }
    let recorded = (inputs.recorded_inputs)(cur.id).unwrap_or_default();
    let recorded: HashMap<&str, &UpstreamVersion> =
        recorded.iter().map(|u| (u.name.as_str(), u)).collect();
    for up in inputs.graph.upstream(name) {
        let now = upstream_data_version(inputs, up);
        let then = recorded.get(up).map(|u| u.data_version.as_str());
        if now.is_some() && now != then {
            let name = up.to_owned();
            causes.push(match recorded.get(up).map(|u| u.kind) {
                Some(UpstreamKind::Source) => StaleCause::SourceChanged { name },
                Some(UpstreamKind::Asset) => StaleCause::UpstreamChanged { name },
                // A new dependency: the code changed (already said) or a
                // source was redeclared.
                None if inputs.graph.kind(up) == Some(NodeKind::Source) => {
                    StaleCause::SourceChanged { name }
                }
                None => StaleCause::UpstreamChanged { name },
            });
        }
    }
    if causes.is_empty() {
        // Inputs equal but version differs: only the code can explain it.
        causes.push(StaleCause::CodeChanged);
    }
}
