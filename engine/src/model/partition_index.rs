//! Which partitions exist for every asset and source right now, and which
//! upstream partitions each partition reads (through its mappings).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use cairn_assets::partitions::{Dimension, KeySpace, PartitionsDef, upstream_keys};
use cairn_assets::{Project, SqlAsset, bind_placeholders};

use crate::model::units::FastMap;

/// Partition keys as of one instant.
pub struct PartitionIndex {
    now: DateTime<Utc>,
    spaces: FastMap<String, Arc<KeySpace>>,
    keys: FastMap<String, Arc<Vec<String>>>,
}

const UNPARTITIONED: &[String] = &[];

impl PartitionIndex {
    /// Enumerates the complete partitions of every asset and source at `now`.
    pub fn build(project: &Project, now: DateTime<Utc>) -> PartitionIndex {
        let mut spaces = FastMap::default();
        let mut keys = FastMap::default();
        let defs = project
            .assets
            .values()
            .map(|a| (&a.name, a.partitions.as_ref()))
            .chain(
                project
                    .sources
                    .values()
                    .map(|s| (&s.name, s.partitions.as_ref())),
            );
        // Assets usually share a handful of partitionings: enumerate each
        // distinct one once.
        let mut distinct: HashMap<String, (Arc<KeySpace>, Arc<Vec<String>>)> = HashMap::new();
        let unpartitioned = Arc::new(vec![String::new()]);
        for (name, def) in defs {
            match def {
                Some(def) => {
                    let (space, list) = distinct
                        .entry(format!("{def:?}"))
                        .or_insert_with(|| {
                            let space = def.key_space(now);
                            let list = Arc::new(space.keys());
                            (Arc::new(space), list)
                        })
                        .clone();
                    keys.insert(name.clone(), list);
                    spaces.insert(name.clone(), space);
                }
                None => {
                    keys.insert(name.clone(), Arc::clone(&unpartitioned));
                }
            }
        }
        PartitionIndex { now, spaces, keys }
    }

    /// The instant the index was built for.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The partition keys of `name` (`[""]` when unpartitioned).
    pub fn keys(&self, name: &str) -> &[String] {
        self.keys
            .get(name)
            .map(|k| k.as_slice())
            .unwrap_or(UNPARTITIONED)
    }

    /// The keys of `name` with their time windows, by position in
    /// [`PartitionIndex::keys`] (`None` when unpartitioned).
    pub fn key_space(&self, name: &str) -> Option<&KeySpace> {
        self.spaces.get(name).map(|s| s.as_ref())
    }

    /// Whether `key` exists for `name`.
    pub fn contains(&self, name: &str, key: &str) -> bool {
        match self.spaces.get(name) {
            Some(space) => space.contains(key),
            None => key.is_empty(),
        }
    }

    /// The (upstream, upstream key) pairs partition `key` of `asset` reads,
    /// sorted.
    pub fn upstream_units(
        &self,
        project: &Project,
        asset: &SqlAsset,
        key: &str,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for up in &asset.upstream {
            out.extend(
                self.upstream_keys_of(project, asset, up, key)
                    .into_iter()
                    .map(|k| (up.clone(), k)),
            );
        }
        out.sort();
        out
    }

    /// The keys of upstream `up` that partition `key` of `asset` reads.
    pub fn upstream_keys_of(
        &self,
        project: &Project,
        asset: &SqlAsset,
        up: &str,
        key: &str,
    ) -> Vec<String> {
        self.upstream_keys_with(asset, up, partitions_of(project, up), key)
    }

    /// [`PartitionIndex::upstream_keys_of`], given the upstream's
    /// partitioning `up_def`.
    pub fn upstream_keys_with(
        &self,
        asset: &SqlAsset,
        up: &str,
        up_def: Option<&PartitionsDef>,
        key: &str,
    ) -> Vec<String> {
        let down = asset.partitions.as_ref().map(|d| (d, key));
        let up_space = up_def.and_then(|d| self.spaces.get(up).map(|s| (d, s.as_ref())));
        match (up_def, up_space) {
            (Some(_), None) => Vec::new(),
            _ => upstream_keys(&asset.mapping(up), down, up_space),
        }
    }
}

/// A project's assets by name, hashed: where a command looks assets up
/// several times each (a `BTreeMap` lookup compares a dozen names).
pub(crate) struct AssetsByName<'a> {
    project: &'a Project,
    assets: FastMap<&'a str, &'a SqlAsset>,
}

impl<'a> AssetsByName<'a> {
    /// Every asset of `project`.
    pub(crate) fn new(project: &'a Project) -> AssetsByName<'a> {
        let assets = project
            .assets
            .iter()
            .map(|(name, asset)| (name.as_str(), asset))
            .collect();
        AssetsByName { project, assets }
    }

    /// The asset called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&'a SqlAsset> {
        self.assets.get(name).copied()
    }

    /// [`partitions_of`], hashed.
    pub(crate) fn partitions_of(&self, name: &str) -> Option<&'a PartitionsDef> {
        match self.get(name) {
            Some(asset) => asset.partitions.as_ref(),
            None => partitions_of(self.project, name),
        }
    }
}

/// The partitioning of an asset or source.
pub fn partitions_of<'a>(project: &'a Project, name: &str) -> Option<&'a PartitionsDef> {
    project
        .assets
        .get(name)
        .and_then(|a| a.partitions.as_ref())
        .or_else(|| {
            project
                .sources
                .get(name)
                .and_then(|s| s.partitions.as_ref())
        })
}

/// The partition dimension names of asset `name` (empty when it is not
/// partitioned, or is a source): the columns its committed table adds.
pub fn dimension_names(project: &Project, name: &str) -> Vec<String> {
    project
        .assets
        .get(name)
        .and_then(|a| a.partitions.as_ref())
        .map(|p| p.dimensions.iter().map(|d| d.name().to_owned()).collect())
        .unwrap_or_default()
}

/// The SQL of one partition of an asset: placeholders replaced by the
/// partition's bounds and values.
pub fn bind_partition(asset: &SqlAsset, key: &str) -> Result<String, String> {
    let Some(def) = &asset.partitions else {
        return Ok(asset.sql.clone());
    };
    let parts = def.split_key(key).map_err(|e| e.to_string())?;
    let mut values: HashMap<String, String> = HashMap::new();
    values.insert("partition_key".to_owned(), sql_string(key));
    for (dim, part) in def.dimensions.iter().zip(&parts) {
        match dim {
            Dimension::Time(t) => {
                let w = t.window(part).map_err(|e| e.to_string())?;
                let ts =
                    |t: DateTime<Utc>| format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S"));
                let date = |t: DateTime<Utc>| {
                    format!(
                        "DATE '{}'",
                        t.with_timezone(&dim_tz(dim)).format("%Y-%m-%d")
                    )
                };
                values.insert("start".to_owned(), ts(w.start));
                values.insert("end".to_owned(), ts(w.end));
                values.insert("start_date".to_owned(), date(w.start));
                values.insert("end_date".to_owned(), date(w.end));
            }
            Dimension::Static(s) => {
                values.insert(s.name.clone(), sql_string(part));
            }
        }
    }
    bind_placeholders(&asset.sql, |name| values.get(name).cloned()).map_err(|p| {
        format!(
            "line {}: placeholder {{{{{}}}}} has no value for partition {key}",
            p.line, p.name
        )
    })
}

fn dim_tz(dim: &Dimension) -> chrono_tz::Tz {
    match dim {
        Dimension::Time(t) => t.timezone,
        Dimension::Static(_) => chrono_tz::UTC,
    }
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
