//! A project opened for work: loaded definitions, graph, catalog, storage.
//! The entry point the CLI (and later the API) calls.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde::Serialize;

use cairn_assets::{Project, SqlAsset};
use cairn_catalog::{
    AttemptRecord, Catalog, CurrentVersion, MaterializationRecord, RunRecord, open_catalog,
};

use crate::committed::{Committed, CommittedReader};
use crate::error::EngineError;
use crate::graph::AssetGraph;
use crate::partition_index::PartitionIndex;
use crate::plan::PlannedUnit;
use crate::run::{MaterializeOptions, Progress, RunReport};
use crate::status::{AssetState, AssetStatus, Inputs, assess};
use crate::storage::Storage;
use crate::units::UnitMap;
use crate::version::code_version;
use crate::{query, run, selection, sources, whoami};

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

/// Everything known about the project's versions right now.
pub struct Snapshot {
    /// Partition keys that exist now, and mappings.
    pub index: PartitionIndex,
    /// Code version per asset.
    pub code_versions: HashMap<String, String>,
    /// Data version per source partition.
    pub source_versions: UnitMap<String>,
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

/// Everything `cairn show` prints about an asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetDetails {
    /// Its status now.
    pub status: AssetStatus,
    /// Its definition file.
    pub file: String,
    /// Description.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// SQL as written.
    pub sql: String,
    /// Direct upstreams.
    pub upstream: Vec<String>,
    /// Direct downstreams.
    pub downstream: Vec<String>,
    /// How it is partitioned, for people (`None` when it is not).
    pub partitioning: Option<String>,
    /// How each partitioned upstream (itself included, when it reads its
    /// earlier partitions) is read, for people: `(upstream, reading)`.
    pub reads: Vec<(String, String)>,
    /// Its declared `[columns]`, as `name TYPE`.
    pub declared_columns: Vec<String>,
    /// The current version with its inputs and files.
    pub current: Option<MaterializationRecord>,
    /// Committed versions, newest first.
    pub history: Vec<CurrentVersion>,
    /// Its latest attempt.
    pub last_attempt: Option<AttemptRecord>,
}

impl Workspace {
    /// Loads the project in `dir` and opens its catalog and storage. The
    /// project is validated before anything is created on disk.
    pub fn open(dir: &Path) -> Result<Workspace, EngineError> {
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

    /// Reads versions and assesses every asset.
    pub fn snapshot(&self) -> Result<Snapshot, EngineError> {
        Ok(self.snapshot_timed()?.0)
    }

    /// [`Workspace::snapshot`], timing each stage (for benchmarks).
    pub fn snapshot_timed(&self) -> Result<(Snapshot, SnapshotTimings), EngineError> {
        self.snapshot_of(None)
    }

    /// A snapshot of `assets` and everything upstream of them only (all
    /// assets when `None`): reads and assesses just those, so the status of
    /// one asset does not cost the status of the whole project.
    pub fn snapshot_of(
        &self,
        assets: Option<&BTreeSet<String>>,
    ) -> Result<(Snapshot, SnapshotTimings), EngineError> {
        let scope: Option<BTreeSet<String>> = assets.map(|selected| {
            let mut scope = selected.clone();
            for a in selected {
                scope.extend(
                    self.graph
                        .ancestors(a)
                        .into_iter()
                        .filter(|n| self.project.assets.contains_key(n)),
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
        let code_versions: HashMap<String, String> = self
            .project
            .assets
            .values()
            .map(|a| (a.name.clone(), code_version(a)))
            .collect();
        stage(&mut timings, "code versions");
        let index = PartitionIndex::build(&self.project, now()?);
        stage(&mut timings, "partition index");
        let source_versions =
            sources::source_versions(&self.project, &index, self.catalog.as_ref())?;
        stage(&mut timings, "source versions");
        let mut current: UnitMap<Arc<Committed>> = UnitMap::new();
        let mut reader = CommittedReader::default();
        // Rows come sorted by asset: ask the project once per asset.
        let mut known: Option<(String, bool)> = None;
        let mut visit = |c: &cairn_catalog::CurrentVersionRef<'_>| {
            let is_asset = match &known {
                Some((name, is_asset)) if name == c.asset => *is_asset,
                _ => {
                    let is_asset = self.project.assets.contains_key(c.asset);
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
            None => self.catalog.visit_current_versions(&mut visit)?,
            Some(scope) => {
                let list: Vec<String> = scope.iter().cloned().collect();
                self.catalog.visit_current_versions_of(&list, &mut visit)?;
            }
        }
        timings.current_versions = current.len();
        stage(&mut timings, "catalog: current versions (compact)");
        let failures: UnitMap<AttemptRecord> = self
            .catalog
            .latest_failed_attempts()?
            .into_iter()
            .map(|a| ((a.asset.clone(), a.partition.clone()), a))
            .collect();
        timings.failures = failures.len();
        stage(&mut timings, "catalog: failed attempts");
        let catalog = Arc::clone(&self.catalog);
        let recorded = move |id| {
            catalog
                .materialization(id)
                .ok()
                .flatten()
                .map(|m| m.body.inputs)
        };
        let statuses = assess(&Inputs {
            project: &self.project,
            index: &index,
            graph: &self.graph,
            code_versions: &code_versions,
            source_versions: &source_versions,
            current: &current,
            failures: &failures,
            only: scope.as_ref(),
            recorded_inputs: &recorded,
        });
        stage(&mut timings, "assess");
        Ok((
            Snapshot {
                index,
                code_versions,
                source_versions,
                current,
                statuses,
            },
            timings,
        ))
    }

    /// The status of the selected assets (all when `selection` is empty).
    pub fn status(&self, selection: &[String]) -> Result<Vec<AssetStatus>, EngineError> {
        let selected = selection::resolve(&self.graph, selection)?;
        let snapshot = if selection.is_empty() {
            self.snapshot()?
        } else {
            self.snapshot_of(Some(&selected))?.0
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
        let mut failing: HashMap<String, Vec<String>> = HashMap::new();
        for r in self.catalog.latest_failing_error_checks()? {
            // Results older than the current version are about a version
            // that is no longer served.
            if snapshot
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
                failing.entry(r.asset).or_default().push(label);
            }
        }
        Ok(snapshot
            .statuses
            .into_iter()
            .filter(|s| selected.contains(&s.name))
            .map(|mut s| {
                s.failing_checks = failing.remove(&s.name).unwrap_or_default();
                s
            })
            .collect())
    }

    /// Brings the selected assets up to date (see [`crate::run`]).
    pub async fn materialize(
        &self,
        opts: &MaterializeOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, EngineError> {
        run::materialize(self, opts, progress).await
    }

    /// What [`Workspace::materialize`] would do with `opts`, unit by unit,
    /// with the causes `status` reports; nothing is run or written.
    pub fn explain(&self, opts: &MaterializeOptions) -> Result<Vec<PlannedUnit>, EngineError> {
        let snapshot = match crate::plan::scope_of(self, opts)? {
            None => self.snapshot()?,
            Some(scope) => self.snapshot_of(Some(&scope))?.0,
        };
        Ok(crate::plan::plan(self, &snapshot, opts)?.decisions(self, &snapshot))
    }

    /// Runs ad-hoc read-only SQL over the committed versions of all assets
    /// and all sources.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        query::run_query(self, sql, None).await
    }

    /// Like [`Workspace::query`], over the versions current at `as_of`.
    pub async fn query_as_of(
        &self,
        sql: &str,
        as_of: &crate::provenance::AsOf,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        query::run_query(self, sql, Some(as_of)).await
    }

    /// The asset called `name`, or a usage error saying it is a source or
    /// suggesting the closest name.
    pub fn require_asset(&self, name: &str) -> Result<&SqlAsset, EngineError> {
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
    pub fn current_files(
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

    /// Details of one asset.
    pub fn details(&self, name: &str) -> Result<AssetDetails, EngineError> {
        let asset = self.require_asset(name)?;
        let only: BTreeSet<String> = std::iter::once(name.to_owned()).collect();
        let (snapshot, _) = self.snapshot_of(Some(&only))?;
        let Some(status) = snapshot.statuses.into_iter().find(|s| s.name == name) else {
            return Err(EngineError::Internal(format!("no status for `{name}`")));
        };
        let current = match &status.current {
            Some(c) => self.catalog.materialization(c.id)?,
            None => None,
        };
        let last_attempt = self.catalog.latest_attempt_of(name)?;
        Ok(AssetDetails {
            file: asset.file.display().to_string(),
            description: asset.description.clone(),
            owner: asset.owner.clone(),
            tags: asset.tags.clone(),
            sql: asset.sql.clone(),
            upstream: self
                .graph
                .upstream(name)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            downstream: self
                .graph
                .downstream(name)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            partitioning: asset.partitions.as_ref().map(|p| p.describe()),
            reads: asset
                .upstream
                .iter()
                .filter(|up| crate::partition_index::partitions_of(&self.project, up).is_some())
                .map(|up| (up.clone(), asset.mapping(up).describe()))
                .collect(),
            declared_columns: asset
                .columns
                .iter()
                .flat_map(|d| d.columns.iter())
                .map(|c| format!("{} {}", c.name, c.sql_type))
                .collect(),
            history: self.catalog.history(name, 20)?,
            current,
            last_attempt,
            status,
        })
    }
}
