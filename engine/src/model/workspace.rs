//! A project opened for work: its loaded definitions, graph, catalog and
//! storage. Every layer of the engine works on this; the operations users
//! call on it are the facade in `api.rs`.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use cairn_assets::{Project, SqlAsset};
use cairn_catalog::{Catalog, CurrentVersion, RunRecord, open_catalog};

use crate::error::EngineError;
use crate::model::graph::AssetGraph;
use crate::model::storage::Storage;
use crate::model::whoami;

/// An opened project.
pub struct Workspace {
    /// Definitions.
    pub project: Arc<Project>,
    /// The dependency graph.
    pub graph: AssetGraph,
    /// The metadata store.
    pub catalog: Arc<dyn Catalog>,
    /// Output storage.
    pub storage: Storage,
}

/// The instant partitions are enumerated for: now, or `CAIRN_NOW`
/// (RFC 3339) when set, so runs can be reproduced as of a moment.
pub fn now() -> Result<DateTime<Utc>, EngineError> {
    match std::env::var("CAIRN_NOW") {
        Ok(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                EngineError::Usage(format!(
                    "CAIRN_NOW=`{text}` is not an RFC 3339 time ({e}), e.g. 2024-06-01T00:00:00Z"
                ))
            }),
        Err(_) => Ok(Utc::now()),
    }
}

/// Loads the project in `dir` and opens its catalog and storage. The
/// project is validated before anything is created on disk.
pub(crate) fn open(dir: &Path) -> Result<Workspace, EngineError> {
    let project = Project::load(dir)?;
    let graph = AssetGraph::build(&project)?;
    let storage = Storage::open(&project.config.storage.url, &project.root)?;
    let catalog: Arc<dyn Catalog> =
        Arc::from(open_catalog(&project.config.catalog.url, &project.root)?);
    let this_host = whoami::host();
    catalog.mark_crashed_runs(&|run: &RunRecord| {
        run.host != this_host || whoami::process_alive(run.pid)
    })?;
    Ok(Workspace {
        project: Arc::new(project),
        graph,
        catalog,
        storage,
    })
}

impl Workspace {
    /// The asset called `name`, or a usage error saying it is a source or
    /// suggesting the closest name.
    pub(crate) fn require_asset(&self, name: &str) -> Result<&SqlAsset, EngineError> {
        if let Some(asset) = self.project.assets.get(name) {
            return Ok(asset);
        }
        let hint = cairn_assets::closest_name(name, self.graph.names())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        Err(EngineError::Usage(
            if self.project.sources.contains_key(name) {
                format!("`{name}` is a source, not an asset; its declaration is in cairn.toml")
            } else {
                format!("unknown asset `{name}`{hint}")
            },
        ))
    }

    /// The files of the current committed versions of `asset`: of one
    /// partition, or of all of them.
    pub(crate) fn current_files(
        &self,
        current: &[CurrentVersion],
        asset: &str,
        partition: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let mut files = Vec::new();
        for c in current
            .iter()
            .filter(|c| c.asset == asset && partition.is_none_or(|p| p == c.partition))
        {
            if let Some(m) = self.catalog.materialization(c.id)? {
                files.extend(m.body.files.into_iter().map(|f| f.path));
            }
        }
        Ok(files)
    }
}
