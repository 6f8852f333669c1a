//! Where outputs live: an object store and the root under which every
//! asset writes its immutable files (`<asset>/<run id>-<n>.parquet`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;

use crate::error::EngineError;

/// The storage root of a project.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The URL as configured.
    pub configured_url: String,
    /// URL of the store's root, as DataFusion registers stores
    /// (`file:///`).
    pub store_url: String,
    /// Prefix of the storage root inside the store.
    pub root: ObjectPath,
    /// The local directory of the root, for `file://` storage.
    pub local_root: Option<PathBuf>,
}

impl Storage {
    /// Opens the storage named by `url`, resolving `file://./relative` paths
    /// against `project_root`. Nothing is created until something is written.
    pub fn open(url: &str, project_root: &Path) -> Result<Storage, EngineError> {
        let Some(path) = url.strip_prefix("file://") else {
            let scheme = url.split("://").next().unwrap_or(url);
            return Err(EngineError::BadStorageUrl {
                url: url.to_owned(),
                reason: format!(
                    "unsupported storage scheme `{scheme}`; this build writes to local storage only: use url = \"file://./warehouse\" (relative to the project) or \"file:///absolute/path\""
                ),
            });
        };
        let dir = if path.starts_with('/') {
            PathBuf::from(path)
        } else {
            project_root.join(path.strip_prefix("./").unwrap_or(path))
        };
        let dir = normalize(&dir);
        let root =
            ObjectPath::from_absolute_path(&dir).map_err(|e| EngineError::BadStorageUrl {
                url: url.to_owned(),
                reason: format!("unsupported path {}: {e}", dir.display()),
            })?;
        Ok(Storage {
            store: Arc::new(LocalFileSystem::new()),
            configured_url: url.to_owned(),
            store_url: "file:///".to_owned(),
            root,
            local_root: Some(dir),
        })
    }

    /// The object path of a file given relative to the storage root.
    pub fn object_path(&self, relative: &str) -> ObjectPath {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// The full URL of a file given relative to the storage root, as
    /// DataFusion and external engines read it.
    pub fn file_url(&self, relative: &str) -> String {
        format!("{}{}", self.store_url, self.object_path(relative))
    }

    /// Relative path of a new output file of `asset` written by `run_id`.
    pub fn new_file_path(asset: &str, partition: &str, run_id: &str, index: usize) -> String {
        if partition.is_empty() {
            format!("{asset}/{run_id}-{index:05}.parquet")
        } else {
            format!("{asset}/{partition}/{run_id}-{index:05}.parquet")
        }
    }
}

/// Removes `.` and `..` components without touching the file system (the
/// directory may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_file_urls_resolve_against_the_project() {
        let s = Storage::open("file://./warehouse", Path::new("/p/proj"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.local_root.as_deref(),
            Some(Path::new("/p/proj/warehouse"))
        );
        assert_eq!(
            s.file_url("a/b.parquet"),
            "file:///p/proj/warehouse/a/b.parquet"
        );
        assert!(Storage::open("s3://bucket/x", Path::new("/p")).is_err());
    }
}
