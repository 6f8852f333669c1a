//! Parsed asset SQL kept between loads: `.cairn/parsed-sql.json` maps the
//! blake3 hash of a file's text (for this very build of cairn) to what
//! [`parse_asset_sql`] made of it, so a project of thousands of unchanged
//! assets is not parsed again on every command. Keyed by content, never by
//! name or modification time: an edit is always parsed. Only successes are
//! kept (an error is reported from a fresh parse). The file holds exactly
//! the entries the last load used, is replaced atomically, and a missing,
//! unreadable or unwritable one only costs the parse. It is written only
//! into an existing `.cairn/` (made by the first command that opens the
//! catalog): loading a project never creates anything by itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::sql::{ParsedQuery, parse_asset_sql};

/// The cache file, under the project root.
pub const CACHE_FILE: &str = ".cairn/parsed-sql.json";

/// What a load parsed or found parsed.
pub(crate) struct ParseCache {
    path: PathBuf,
    /// Entries read from the file, each with whether this load used it
    /// (a hit takes no lock).
    known: HashMap<String, (ParsedQuery, AtomicBool)>,
    /// Entries this load parsed afresh.
    fresh: Mutex<HashMap<String, ParsedQuery>>,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    /// The build that parsed: another build may parse differently.
    version: String,
    entries: HashMap<String, ParsedQuery>,
}

/// The build that parses: the release, and the running executable's size
/// and modification time, so any new build (a parser change even without
/// a new release number) starts from an empty cache.
fn build_version() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} {modified}", m.len())
        })
        .unwrap_or_default();
    format!("cairn {} {exe}", env!("CARGO_PKG_VERSION"))
}

impl ParseCache {
    /// The cache of the project at `root` (empty when there is none).
    pub(crate) fn open(root: &Path) -> ParseCache {
        let path = root.join(CACHE_FILE);
        let known = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|file| file.version == build_version())
            .map(|file| file.entries)
            .unwrap_or_default()
            .into_iter()
            .map(|(key, parsed)| (key, (parsed, AtomicBool::new(false))))
            .collect();
        ParseCache {
            path,
            known,
            fresh: Mutex::default(),
        }
    }

    /// [`parse_asset_sql`] of `text`, from the cache when it holds it.
    pub(crate) fn parse(&self, text: &str, file: &Path) -> Result<ParsedQuery, Diagnostic> {
        let key = blake3::hash(text.as_bytes()).to_hex().to_string();
        if let Some((parsed, used)) = self.known.get(&key) {
            used.store(true, Ordering::Relaxed);
            return Ok(parsed.clone());
        }
        let parsed = parse_asset_sql(text, file)?;
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, parsed.clone());
        Ok(parsed)
    }

    /// Writes the entries this load used, when it parsed anything afresh
    /// or dropped entries no file uses any more. Best effort.
    pub(crate) fn save(self) {
        let fresh = self.fresh.into_inner().unwrap_or_else(|p| p.into_inner());
        let all_used = self
            .known
            .values()
            .all(|(_, used)| used.load(Ordering::Relaxed));
        if fresh.is_empty() && all_used {
            return;
        }
        let mut entries = fresh;
        entries.extend(
            self.known
                .into_iter()
                .filter(|(_, (_, used))| used.load(Ordering::Relaxed))
                .map(|(key, (parsed, _))| (key, parsed)),
        );
        let file = CacheFile {
            version: build_version(),
            entries,
        };
        let Ok(bytes) = serde_json::to_vec(&file) else {
            return;
        };
        let Some(dir) = self.path.parent() else {
            return;
        };
        if !dir.is_dir() {
            return;
        }
        let temp = dir.join(format!(".parsed-sql.{}.tmp", std::process::id()));
        if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, &self.path).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn a_second_load_reads_what_the_first_parsed_and_an_edit_is_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = Path::new("assets/a.sql");
        // No `.cairn/` yet: nothing is written.
        let cache = ParseCache::open(dir.path());
        cache.parse("select x from up", file).unwrap();
        cache.save();
        assert!(!dir.path().join(".cairn").exists());
        std::fs::create_dir(dir.path().join(".cairn")).unwrap();
        let cache = ParseCache::open(dir.path());
        let first = cache.parse("select x from up", file).unwrap();
        cache.save();
        assert!(dir.path().join(CACHE_FILE).exists());

        let cache = ParseCache::open(dir.path());
        assert_eq!(cache.known.len(), 1);
        assert_eq!(cache.parse("select x from up", file).unwrap(), first);
        cache.save();

        // The file is edited: parsed again, and the old text's entry,
        // which no file uses any more, is dropped.
        let cache = ParseCache::open(dir.path());
        let edited = cache.parse("select x from other", file).unwrap();
        assert_eq!(edited.tables, vec![("other".to_owned(), 1)]);
        cache.save();
        let cache = ParseCache::open(dir.path());
        assert_eq!(cache.known.len(), 1);
        assert!(cache.known.values().all(|(e, _)| e.tables[0].0 == "other"));
        // Errors come from a fresh parse and are never kept.
        assert!(cache.parse("selekt x frum up", file).is_err());
    }
}
