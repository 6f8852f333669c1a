//! Source data versions: blake3 of the source files' content, cached in the
//! catalog under a cheap fingerprint (paths, sizes, modification times) so
//! unchanged sources are not re-read on every command.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::Utc;

use cairn_assets::{Project, Source};
use cairn_catalog::{Catalog, SourceFingerprint};

use crate::error::EngineError;

const SOURCE_DOMAIN: &[u8] = b"cairn/source/v1\0";

/// The files of a source, sorted: the file itself, or every file with the
/// source's extension under its directory.
pub fn source_files(source: &Source) -> Result<Vec<PathBuf>, EngineError> {
    if source.path.is_file() {
        return Ok(vec![source.path.clone()]);
    }
    let mut files = Vec::new();
    collect(&source.path, source.format.extension(), &mut files)?;
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

/// The data version of every source, by name. Hashes content only for
/// sources whose fingerprint changed since the last time, and records the
/// new fingerprints.
pub fn source_versions(
    project: &Project,
    catalog: &dyn Catalog,
) -> Result<BTreeMap<String, String>, EngineError> {
    let cached: BTreeMap<String, SourceFingerprint> = catalog
        .source_fingerprints()?
        .into_iter()
        .map(|f| (f.source.clone(), f))
        .collect();
    let mut versions = BTreeMap::new();
    for source in project.sources.values() {
        let files = source_files(source)?;
        let fingerprint = fingerprint(source, &files)?;
        let data_version = match cached.get(&source.name) {
            Some(c) if c.fingerprint == fingerprint => c.data_version.clone(),
            _ => {
                let data_version = content_hash(source, &files)?;
                catalog.put_source_fingerprint(&SourceFingerprint {
                    source: source.name.clone(),
                    fingerprint,
                    data_version: data_version.clone(),
                    observed_at: Utc::now(),
                })?;
                data_version
            }
        };
        versions.insert(source.name.clone(), data_version);
    }
    Ok(versions)
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
