//! Source data versions: blake3 of the source files' content, cached in the
//! catalog under a cheap fingerprint (paths, sizes, modification times) so
//! unchanged sources are not re-read on every command.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use chrono::{DateTime, SubsecRound, Utc};

use cairn_assets::{Project, Source};
use cairn_catalog::{Catalog, SourceFingerprint};

use crate::error::EngineError;
use crate::model::partition_index::PartitionIndex;
use crate::model::units::UnitMap;

const SOURCE_DOMAIN: &[u8] = b"cairn/source/v1\0";

/// The files of one partition of a source (`""` when unpartitioned),
/// sorted: the file itself, or every file with the source's extension under
/// its directory (`<path>/<dimension>=<value>/...` for a partition). A
/// partition whose folder does not exist has no files.
pub fn source_files(source: &Source, key: &str) -> Result<Vec<PathBuf>, EngineError> {
    if source.path.is_file() {
        return Ok(vec![source.path.clone()]);
    }
    let dir = match &source.partitions {
        Some(def) if !key.is_empty() => source.path.join(def.hive_path(key)),
        _ => source.path.clone(),
    };
    let mut files = Vec::new();
    if dir.is_dir() {
        collect(&dir, source.format.extension(), &mut files)?;
    }
    files.sort();
    Ok(files)
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
        for key in index.keys(&source.name) {
            let cache_key = if key.is_empty() {
                source.name.clone()
            } else {
                format!("{}@{key}", source.name)
            };
            let files = source_files(source, key)?;
            let fingerprint = fingerprint(source, &files)?;
            let cached = cached.get(&cache_key);
            let (data_version, observed_at) = match cached {
                Some(c) if c.fingerprint == fingerprint => (c.data_version.clone(), c.observed_at),
                _ => {
                    let data_version = content_hash(source, &files)?;
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

fn relative<'a>(source: &Source, file: &'a Path) -> std::borrow::Cow<'a, str> {
    file.strip_prefix(&source.path)
        .unwrap_or(file)
        .to_string_lossy()
}

fn fingerprint(source: &Source, files: &[PathBuf]) -> Result<String, EngineError> {
    let mut h = blake3::Hasher::new();
    for file in files {
        let meta = fs::metadata(file).map_err(|e| io(file, e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        h.update(relative(source, file).as_bytes());
        h.update(&[0]);
        h.update(&meta.len().to_le_bytes());
        h.update(&mtime.to_le_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
}

fn content_hash(source: &Source, files: &[PathBuf]) -> Result<String, EngineError> {
    let mut h = blake3::Hasher::new();
    h.update(SOURCE_DOMAIN);
    for file in files {
        let name = relative(source, file);
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        let mut content = blake3::Hasher::new();
        let f = fs::File::open(file).map_err(|e| io(file, e))?;
        content.update_reader(f).map_err(|e| io(file, e))?;
        h.update(content.finalize().as_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
}

fn io(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.display().to_string(),
        source,
    }
}
