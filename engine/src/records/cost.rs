//! Cost per asset, and rolled up along lineage: what an asset cost
//! including everything upstream that it needs, each upstream counted once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use cairn_catalog::{CurrentVersion, MaterializationMetrics};

use crate::error::EngineError;
use crate::model::graph::NodeKind;
use crate::model::selection;
use crate::model::workspace::Workspace;

/// Measured usage and money for one asset over a set of materializations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostFigures {
    /// Materializations counted.
    pub materializations: u64,
    /// Wall time, seconds.
    pub wall_seconds: f64,
    /// CPU time, seconds.
    pub cpu_seconds: f64,
    /// Bytes read through the object store.
    pub bytes_read: u64,
    /// Bytes written through the object store.
    pub bytes_written: u64,
    /// Object-store requests.
    pub requests: u64,
    /// Largest peak memory of any one materialization.
    pub peak_memory_bytes: u64,
    /// Money, per the `[cost]` rates.
    pub cost_usd: f64,
}

impl CostFigures {
    fn add(&mut self, v: &CurrentVersion, m: &MaterializationMetrics) {
        self.materializations += 1;
        self.wall_seconds += v.wall_ms as f64 / 1000.0;
        self.cpu_seconds += m.cpu_seconds;
        self.bytes_read += m.bytes_read;
        self.bytes_written += m.bytes_written;
        self.requests += m.read_requests + m.write_requests + m.other_requests;
        self.peak_memory_bytes = self.peak_memory_bytes.max(m.peak_memory_bytes);
        self.cost_usd += m.cost_usd;
    }

    fn merge(&mut self, o: &CostFigures) {
        self.materializations += o.materializations;
        self.wall_seconds += o.wall_seconds;
        self.cpu_seconds += o.cpu_seconds;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.requests += o.requests;
        self.peak_memory_bytes = self.peak_memory_bytes.max(o.peak_memory_bytes);
        self.cost_usd += o.cost_usd;
    }
}

/// The cost of one asset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetCost {
    /// The asset.
    pub asset: String,
    /// Its own cost.
    pub own: CostFigures,
    /// Its cost plus that of every upstream asset it needs (each once),
    /// when a roll-up was asked for.
    pub rollup: Option<CostFigures>,
    /// The upstream assets included in the roll-up.
    pub rollup_assets: Vec<String>,
}

/// Cost of the selected assets: of their current versions, or of every
/// materialization since `since`; with `rollup`, including upstream.
pub(crate) fn cost(
    ws: &Workspace,
    selection: &[String],
    since: Option<DateTime<Utc>>,
    rollup: bool,
) -> Result<Vec<AssetCost>, EngineError> {
    let selected = selection::resolve(&ws.graph, selection)?;
    let rows = match since {
        Some(t) => ws.catalog.metrics_since(Some(t))?,
        None => ws.catalog.current_metrics()?,
    };
    let mut own: BTreeMap<String, CostFigures> = BTreeMap::new();
    for (v, m) in &rows {
        own.entry(v.asset.clone()).or_default().add(v, m);
    }
    let mut out = Vec::new();
    for name in ws.graph.assets_in_order().filter(|a| selected.contains(*a)) {
        let mine = own.get(name).cloned().unwrap_or_default();
        let (rolled, upstream) = if rollup {
            let ups: BTreeSet<String> = ws
                .graph
                .ancestors(name)
                .into_iter()
                .filter(|a| ws.graph.kind(a) == Some(NodeKind::Asset))
                .collect();
            let mut total = mine.clone();
            for u in &ups {
                if let Some(c) = own.get(u) {
                    total.merge(c);
                }
            }
            (Some(total), ups.into_iter().collect())
        } else {
            (None, Vec::new())
        };
        out.push(AssetCost {
            asset: name.to_owned(),
            own: mine,
            rollup: rolled,
            rollup_assets: upstream,
        });
    }
    Ok(out)
}
