//! A project opened for work: its loaded definitions, graph, catalog and
//! storage. Every layer of the engine works on this; the operations users
//! call on it are the facade in `api.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use object_store::ObjectStore;

use cairn_assets::{Project, ProjectStamp, SqlAsset};
use cairn_catalog::{Catalog, CurrentVersion, RunRecord, open_catalog};

use crate::error::EngineError;
use crate::model::graph::AssetGraph;
use crate::model::storage::{CommittedFile, FailingStore, Storage};
use crate::model::whoami;

/// An opened project.
pub struct Workspace {
    /// Definitions.
    pub(crate) project: Arc<Project>,
    /// The dependency graph.
    pub(crate) graph: Arc<AssetGraph>,
    /// The metadata store.
    pub(crate) catalog: Arc<dyn Catalog>,
    /// Output storage.
    pub(crate) storage: Storage,
    /// What "now" is when judging time: which partitions exist, freshness.
    pub(crate) clock: Clock,
    /// Pauses a crash test installs; none in normal use.
    pub(crate) failpoints: Failpoints,
    /// Who acts (a server token's name); `None`: the OS user.
    pub(crate) principal: Option<String>,
    /// The bytes DataFusion may hold at once in a run (`[engine]
    /// memory_limit`, or the CLI's `--memory-limit`); `None`: unbounded.
    pub(crate) memory_limit: Option<u64>,
}

/// The time source, injected rather than read deep inside: which time
/// windows are complete and whether data is fresh are judged at
/// [`Clock::now`]. (Commit and run timestamps are always the real clock.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant (the CLI's `CAIRN_NOW`, tests).
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The instant time is judged at.
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => t,
        }
    }
}

/// Decides, for a unit (asset, partition key) whose files are written but
/// not committed, how long to pause before committing.
pub type PauseHook = Arc<dyn Fn(&str, &str) -> Option<std::time::Duration> + Send + Sync>;

/// Points where a test harness may stop the engine (crash tests kill the
/// process there) or make it fail; empty in normal use.
#[derive(Clone, Default)]
pub struct Failpoints {
    /// Called after a unit's files are written, before its commit.
    pub before_commit: Option<PauseHook>,
    /// How many more writes of output files fail with a transient object
    /// store error ([`FailingStore`]: the retry tests). Shared by every
    /// workspace given these failpoints, so "the first N writes" counts
    /// across a server's runs too.
    pub fail_store_requests: Option<Arc<AtomicUsize>>,
}

impl Failpoints {
    /// The store builds write through: `store`, or `store` failing writes
    /// while [`Failpoints::fail_store_requests`] lasts.
    pub(crate) fn output_store(&self, store: &Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        match &self.fail_store_requests {
            Some(left) => Arc::new(FailingStore::new(Arc::clone(store), Arc::clone(left))),
            None => Arc::clone(store),
        }
    }
}

impl std::fmt::Debug for Failpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failpoints")
            .field("before_commit", &self.before_commit.is_some())
            .field("fail_store_requests", &self.fail_store_requests)
            .finish()
    }
}

/// Loads the project in `dir` and opens its catalog and storage. The
/// project is validated before anything is created on disk.
pub(crate) fn open(dir: &Path) -> Result<Workspace, EngineError> {
    let project = Project::load(dir)?;
    let graph = AssetGraph::build(&project)?;
    with_definitions(Arc::new(project), Arc::new(graph))
}

/// Loaded definitions kept by a long-running process (a server opens the
/// project for every request): reused while the project's definition
/// files are unchanged ([`ProjectStamp`]), loaded again when any changes.
/// The catalog and storage are opened afresh each time (cheap, and each
/// request gets its own catalog connection).
#[derive(Default)]
pub struct DefinitionsCache {
    entry: Mutex<Option<CachedDefinitions>>,
}

struct CachedDefinitions {
    dir: PathBuf,
    stamp: ProjectStamp,
    project: Arc<Project>,
    graph: Arc<AssetGraph>,
}

/// [`open`], reusing `cache`'s definitions when the files are unchanged.
pub(crate) fn open_cached(dir: &Path, cache: &DefinitionsCache) -> Result<Workspace, EngineError> {
    let Ok(stamp) = ProjectStamp::read(dir) else {
        // Unreadable: the full load reports what is wrong.
        return open(dir);
    };
    let hit = {
        let entry = cache.entry.lock().unwrap_or_else(|p| p.into_inner());
        entry
            .as_ref()
            .filter(|c| c.dir == dir && c.stamp == stamp)
            .map(|c| (Arc::clone(&c.project), Arc::clone(&c.graph)))
    };
    let (project, graph) = match hit {
        Some(definitions) => definitions,
        None => {
            let project = Arc::new(Project::load(dir)?);
            let graph = Arc::new(AssetGraph::build(&project)?);
            *cache.entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(CachedDefinitions {
                dir: dir.to_path_buf(),
                stamp,
                project: Arc::clone(&project),
                graph: Arc::clone(&graph),
            });
            (project, graph)
        }
    };
    with_definitions(project, graph)
}

/// Opens the catalog and storage of loaded definitions.
fn with_definitions(
    project: Arc<Project>,
    graph: Arc<AssetGraph>,
) -> Result<Workspace, EngineError> {
    let storage = Storage::open(&project.config.storage, &project.root)?;
    let catalog: Arc<dyn Catalog> =
        Arc::from(open_catalog(&project.config.catalog.url, &project.root)?);
    let this_host = whoami::host();
    catalog.mark_crashed_runs(&|run: &RunRecord| {
        run.host != this_host || whoami::process_alive(run.pid)
    })?;
    Ok(Workspace {
        graph,
        catalog,
        storage,
        clock: Clock::System,
        failpoints: Failpoints::default(),
        principal: None,
        // Checked when the project was loaded.
        memory_limit: project
            .config
            .engine
            .memory_limit
            .as_deref()
            .and_then(|l| cairn_assets::parse_memory_size(l).ok()),
        project,
    })
}

impl Workspace {
    /// Who acts, as runs and the audit log record it.
    pub(crate) fn principal(&self) -> String {
        self.principal.clone().unwrap_or_else(whoami::user)
    }

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
    ) -> Result<Vec<CommittedFile>, EngineError> {
        let mut files = Vec::new();
        for c in current
            .iter()
            .filter(|c| c.asset == asset && partition.is_none_or(|p| p == c.partition))
        {
            if let Some(m) = self.catalog.materialization(c.id)? {
                files.extend(m.body.files.into_iter().map(CommittedFile::from));
            }
        }
        Ok(files)
    }
}
