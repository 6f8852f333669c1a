//! Time travel: which versions were current at a past run or moment
//! (`cairn query --as-of`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use cairn_catalog::{MaterializationId, RunId};

use crate::error::EngineError;
use crate::model::storage::CommittedFile;
use crate::model::workspace::Workspace;

/// What `cairn query --as-of` resolves: a run or a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// The versions current right after this run committed.
    Run(RunId),
    /// The versions current at this instant.
    Time(DateTime<Utc>),
}

/// The files of every asset version current at `as_of`, per asset.
pub(crate) fn files_as_of(
    ws: &Workspace,
    as_of: &AsOf,
) -> Result<BTreeMap<String, Vec<CommittedFile>>, EngineError> {
    let all = ws.catalog.metrics_since(None)?;
    let at = match as_of {
        AsOf::Time(t) => *t,
        AsOf::Run(run) => all
            .iter()
            .filter(|(v, _)| &v.run_id == run)
            .map(|(v, _)| v.committed_at)
            .max()
            .or_else(|| {
                ws.catalog
                    .runs(usize::MAX)
                    .ok()?
                    .into_iter()
                    .find(|r| &r.id == run)
                    .map(|r| r.finished_at.unwrap_or(r.started_at))
            })
            .ok_or_else(|| EngineError::Usage(format!("no run `{run}`")))?,
    };
    let mut chosen: HashMap<(String, String), (DateTime<Utc>, MaterializationId)> = HashMap::new();
    for (v, _) in all.iter().filter(|(v, _)| v.committed_at <= at) {
        let key = (v.asset.clone(), v.partition.clone());
        let newer = chosen
            .get(&key)
            .is_none_or(|(t, id)| (v.committed_at, v.id) > (*t, *id));
        if newer {
            chosen.insert(key, (v.committed_at, v.id));
        }
    }
    let ids: HashMap<MaterializationId, String> = chosen
        .iter()
        .map(|((a, _), (_, id))| (*id, a.clone()))
        .collect();
    let mut out: BTreeMap<String, Vec<CommittedFile>> = BTreeMap::new();
    for f in ws.catalog.all_files()? {
        if let Some(asset) = ids.get(&f.materialization) {
            if f.expired {
                return Err(EngineError::Usage(format!(
                    "the version of `{asset}` current at {} was removed by retention (`cairn gc`); raise [retention] days to keep versions longer",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )));
            }
            out.entry(asset.clone()).or_default().push(CommittedFile {
                path: f.path,
                size: Some(f.size_bytes),
            });
        }
    }
    Ok(out)
}
