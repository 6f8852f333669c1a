//! A cheap fingerprint of a project's definition files — name, size and
//! modification time of `cairn.toml` and of every file under `assets/` and
//! `sources/` — so that a long-running process can keep a loaded
//! [`crate::Project`] while the stamp is unchanged instead of parsing every
//! definition again (a server answers each request from the project as it
//! is on disk). Stat-ing costs microseconds per file; loading parses SQL.
//!
//! It covers a superset of what [`crate::Project::load`] reads (any file
//! in those folders), so an unrelated file there only causes a needless
//! reload, never a stale project.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The stamp of a project folder. Equal stamps: the same definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStamp {
    files: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

impl ProjectStamp {
    /// Stats the definition files of the project in `dir`.
    pub fn read(dir: &Path) -> std::io::Result<ProjectStamp> {
        let mut files = Vec::new();
        add(&dir.join("cairn.toml"), &mut files)?;
        for folder in ["assets", "sources"] {
            walk(&dir.join(folder), &mut files)?;
        }
        files.sort();
        Ok(ProjectStamp { files })
    }
}

fn add(path: &Path, files: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) -> std::io::Result<()> {
    match fs::metadata(path) {
        Ok(m) => files.push((path.to_path_buf(), m.len(), m.modified().ok())),
        // A missing file is part of the stamp by its absence.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            add(&path, files)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::ProjectStamp;

    #[test]
    fn any_definition_change_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cairn.toml"), "").unwrap();
        std::fs::create_dir_all(root.join("assets/marts")).unwrap();
        std::fs::write(root.join("assets/marts/a.sql"), "select 1 as x").unwrap();
        let first = ProjectStamp::read(root).unwrap();
        assert_eq!(ProjectStamp::read(root).unwrap(), first);

        // An edit (here a different size), a new file, a removed file.
        std::fs::write(root.join("assets/marts/a.sql"), "select 12 as x").unwrap();
        let edited = ProjectStamp::read(root).unwrap();
        assert_ne!(edited, first);
        std::fs::create_dir_all(root.join("sources")).unwrap();
        std::fs::write(root.join("sources/s.toml"), "path = \"s.csv\"").unwrap();
        let added = ProjectStamp::read(root).unwrap();
        assert_ne!(added, edited);
        std::fs::remove_file(root.join("sources/s.toml")).unwrap();
        assert_eq!(ProjectStamp::read(root).unwrap(), edited);
        std::fs::write(root.join("cairn.toml"), "[storage]\n").unwrap();
        assert_ne!(ProjectStamp::read(root).unwrap(), edited);
    }
}
