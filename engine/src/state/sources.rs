//! Source data versions: blake3 of the source files' content, cached in the
//! catalog under a cheap fingerprint (paths, sizes, modification times) so
//! unchanged sources are not re-read on every command.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use chrono::{DateTime, SubsecRound, Utc};
use object_store::ObjectStoreExt;

use cairn_assets::{Project, Source, StorageConfig};
use cairn_catalog::{Catalog, SourceFingerprint};

use crate::error::EngineError;
use crate::model::partition_index::PartitionIndex;
use crate::model::storage::Storage;
use crate::model::units::UnitMap;

const SOURCE_DOMAIN: &[u8] = b"cairn/source/v1\0";

/// One file of a source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is read: a local path, or an object-store URL.
    pub location: String,
    /// Its name relative to the source's path (`""` for a source that is
    /// one file): part of the data version, so that moving the project (or
    /// the bucket) changes nothing.
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
    /// What changes when it is rewritten: the modification time (local),
    /// the e-tag or last-modified instant (object store). Fingerprint only.
    stamp: Vec<u8>,
}

/// The files of one partition of a source (`""` when unpartitioned),
/// sorted: the file itself, or every file with the source's extension under
/// its directory (`<path>/<dimension>=<value>/...` for a partition). A
/// partition whose folder does not exist has no files. A source in an
/// object store is listed there, with the `[storage]` connection settings
/// when `[storage]` is the same kind of store (`storage`).
pub fn source_files(
    source: &Source,
    key: &str,
    storage: &StorageConfig,
) -> Result<Vec<SourceFile>, EngineError> {
    if let Some(url) = &source.url {
        return remote_files(source, url, key, storage);
    }
    let paths = if source.path.is_file() {
        vec![source.path.clone()]
    } else {
        let dir = match &source.partitions {
            Some(def) if !key.is_empty() => source.path.join(def.hive_path(key)),
            _ => source.path.clone(),
        };
        let mut files = Vec::new();
        if dir.is_dir() {
            collect(&dir, source.format.extension(), &mut files)?;
        }
        files.sort();
        files
    };
    paths
        .into_iter()
        .map(|path| {
            let meta = fs::metadata(&path).map_err(|e| io(&path, e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            Ok(SourceFile {
                relative: path
                    .strip_prefix(&source.path)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
                location: path.to_string_lossy().into_owned(),
                size: meta.len(),
                stamp: mtime.to_le_bytes().to_vec(),
            })
        })
        .collect()
}

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<(), EngineError> {
    let entries = fs::read_dir(dir).map_err(|source| EngineError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| EngineError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `io` — object-store requests — on a thread and runtime of its own,
/// so that it can be called from synchronous code and from inside any
/// runtime alike; the store is opened there too (a client's connections
/// belong to the runtime that made them).
fn on_io_thread<T: Send>(
    io: impl FnOnce() -> futures::future::BoxFuture<'static, Result<T, EngineError>> + Send,
) -> Result<T, EngineError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        EngineError::Internal(format!("cannot start an I/O runtime: {e}"))
                    })?;
                runtime.block_on(io())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(EngineError::Internal(
                    "the object-store thread of a source panicked".to_owned(),
                ))
            })
    })
}

/// A store failure reading source `name`, said as such (not as the
/// outputs' storage).
fn as_source_error(name: &str, e: EngineError) -> EngineError {
    match e {
        EngineError::Storage { url, reason } => {
            EngineError::Query(format!("source `{name}` at {url}: {reason}"))
        }
        e => e,
    }
}

/// [`source_files`] of a source in an object store.
fn remote_files(
    source: &Source,
    url: &str,
    key: &str,
    storage: &StorageConfig,
) -> Result<Vec<SourceFile>, EngineError> {
    let store = Storage::open_source(url, storage)?;
    let folder = source.is_remote_folder();
    let partitioned = source.partitions.is_some();
    let prefix = match &source.partitions {
        Some(def) if !key.is_empty() => store.object_path(&def.hive_path(key)),
        _ => store.object_path(""),
    };
    let ext = format!(".{}", source.format.extension());
    let name = source.name.clone();
    let declared = url.to_owned();
    on_io_thread(move || {
        Box::pin(async move {
            let not_read = |e: object_store::Error| match e {
                object_store::Error::NotFound { .. } => EngineError::Query(format!(
                    "source `{name}`: {declared} does not exist (check its path in cairn.toml)"
                )),
                e => as_source_error(&name, store.error(&e)),
            };
            let mut metas = if folder {
                use futures::TryStreamExt;
                let mut listed: Vec<object_store::ObjectMeta> = store
                    .store
                    .list(Some(&prefix))
                    .try_collect()
                    .await
                    .map_err(not_read)?;
                listed.retain(|m| m.location.as_ref().ends_with(&ext));
                listed
            } else {
                vec![store.store.head(&prefix).await.map_err(not_read)?]
            };
            if metas.is_empty() && !partitioned {
                return Err(EngineError::Query(format!(
                    "source `{name}`: no {ext} files under {declared} (check its path in cairn.toml; a folder's files need the format's extension)"
                )));
            }
            metas.sort_by(|a, b| a.location.cmp(&b.location));
            let root = store.object_path("");
            Ok(metas
                .into_iter()
                .map(|m| {
                    let relative = m
                        .location
                        .prefix_match(&root)
                        .map(|parts| {
                            parts
                                .map(|p| p.as_ref().to_owned())
                                .collect::<Vec<_>>()
                                .join("/")
                        })
                        .unwrap_or_default();
                    let stamp = match &m.e_tag {
                        Some(tag) => tag.as_bytes().to_vec(),
                        None => m
                            .last_modified
                            .timestamp_nanos_opt()
                            .unwrap_or_default()
                            .to_le_bytes()
                            .to_vec(),
                    };
                    SourceFile {
                        location: format!("{}{}", store.store_url, m.location),
                        relative,
                        size: m.size,
                        stamp,
                    }
                })
                .collect())
        })
    })
}

/// The data version of every source partition, and when its current
/// content was first seen (the real clock; a touched file with the same
/// content keeps that instant). Hashes content only where the fingerprint
/// changed since the last time, and records the new fingerprints.
pub fn observed_source_versions(
    project: &Project,
    index: &PartitionIndex,
    catalog: &dyn Catalog,
) -> Result<(UnitMap<String>, UnitMap<DateTime<Utc>>), EngineError> {
    let cached: HashMap<String, SourceFingerprint> = catalog
        .source_fingerprints()?
        .into_iter()
        .map(|f| (f.source.clone(), f))
        .collect();
    let mut versions = UnitMap::new();
    let mut observed = UnitMap::new();
    for source in project.sources.values() {
        // A partitioned folder in an object store is listed once, not once
        // per partition (a year of days would be 365 round trips).
        let listed = match (&source.url, &source.partitions) {
            (Some(_), Some(def)) => Some((def, source_files(source, "", &project.config.storage)?)),
            _ => None,
        };
        for key in index.keys(&source.name) {
            let cache_key = if key.is_empty() {
                source.name.clone()
            } else {
                format!("{}@{key}", source.name)
            };
            let files = match &listed {
                Some((def, all)) if !key.is_empty() => {
                    let folder = format!("{}/", def.hive_path(key));
                    all.iter()
                        .filter(|f| f.relative.starts_with(&folder))
                        .cloned()
                        .collect()
                }
                _ => source_files(source, key, &project.config.storage)?,
            };
            let fingerprint = fingerprint(&files);
            let cached = cached.get(&cache_key);
            let (data_version, observed_at) = match cached {
                Some(c) if c.fingerprint == fingerprint => (c.data_version.clone(), c.observed_at),
                _ => {
                    let data_version = content_hash(source, &files, &project.config.storage)?;
                    // Microseconds, as the catalog keeps it: the first
                    // status says what every later one does.
                    let observed_at = cached
                        .filter(|c| c.data_version == data_version)
                        .map_or_else(|| Utc::now().trunc_subsecs(6), |c| c.observed_at);
                    catalog.put_source_fingerprint(&SourceFingerprint {
                        source: cache_key,
                        fingerprint,
                        data_version: data_version.clone(),
                        observed_at,
                    })?;
                    (data_version, observed_at)
                }
            };
            let key: Arc<str> = key.as_str().into();
            versions.insert(&source.name, Arc::clone(&key), data_version);
            observed.insert(&source.name, key, observed_at);
        }
    }
    Ok((versions, observed))
}

fn fingerprint(files: &[SourceFile]) -> String {
    let mut h = blake3::Hasher::new();
    for file in files {
        h.update(file.relative.as_bytes());
        h.update(&[0]);
        h.update(&file.size.to_le_bytes());
        h.update(&file.stamp);
    }
    h.finalize().to_hex().to_string()
}

/// The data version of `files`: blake3 over each one's relative name and
/// content hash, read from disk or fetched from the object store.
fn content_hash(
    source: &Source,
    files: &[SourceFile],
    storage: &StorageConfig,
) -> Result<String, EngineError> {
    let contents = match &source.url {
        None => files
            .iter()
            .map(|file| {
                let path = Path::new(&file.location);
                let mut content = blake3::Hasher::new();
                let f = fs::File::open(path).map_err(|e| io(path, e))?;
                content.update_reader(f).map_err(|e| io(path, e))?;
                Ok(*content.finalize().as_bytes())
            })
            .collect::<Result<Vec<_>, EngineError>>()?,
        Some(url) => remote_contents(source, url, files, storage)?,
    };
    let mut h = blake3::Hasher::new();
    h.update(SOURCE_DOMAIN);
    for (file, content) in files.iter().zip(contents) {
        h.update(&(file.relative.len() as u64).to_le_bytes());
        h.update(file.relative.as_bytes());
        h.update(&content);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// The blake3 of each file's content, streamed from the object store.
fn remote_contents(
    source: &Source,
    url: &str,
    files: &[SourceFile],
    storage: &StorageConfig,
) -> Result<Vec<[u8; 32]>, EngineError> {
    let store = Storage::open_source(url, storage)?;
    let name = source.name.clone();
    let locations: Vec<object_store::path::Path> = files
        .iter()
        .map(|f| store.object_path(&f.relative))
        .collect();
    on_io_thread(move || {
        Box::pin(async move {
            use futures::StreamExt;
            let mut hashes = Vec::with_capacity(locations.len());
            for location in &locations {
                let mut content = blake3::Hasher::new();
                let mut body = store
                    .store
                    .get(location)
                    .await
                    .map_err(|e| as_source_error(&name, store.error(&e)))?
                    .into_stream();
                while let Some(chunk) = body.next().await {
                    content.update(&chunk.map_err(|e| as_source_error(&name, store.error(&e)))?);
                }
                hashes.push(*content.finalize().as_bytes());
            }
            Ok(hashes)
        })
    })
}

fn io(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.display().to_string(),
        source,
    }
}
