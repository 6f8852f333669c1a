//! Where outputs live: an object store and the root under which every
//! asset writes its immutable files (`<asset>/<run id>-<n>.parquet`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

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

/// A test hook: an object store whose write requests fail, transiently,
/// while a shared budget of failures lasts (the retry tests' "store failing
/// the first N requests"; `Failpoints::fail_store_requests`).
///
/// Only writes count and fail — a `put` or the start of a multipart
/// upload, i.e. one per output file written — so reading sources and
/// committed versions is never affected and each failure costs exactly one
/// build attempt. The failure is `object_store::Error::Generic`, as a
/// network error of a remote store arrives.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn ObjectStore>,
    failures_left: Arc<AtomicUsize>,
}

impl FailingStore {
    /// Wraps `inner`; each write while `failures_left` is above zero takes
    /// one from it and fails.
    pub fn new(inner: Arc<dyn ObjectStore>, failures_left: Arc<AtomicUsize>) -> Self {
        FailingStore {
            inner,
            failures_left,
        }
    }

    fn fail_this_write(&self, location: &ObjectPath) -> object_store::Result<()> {
        match self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err(object_store::Error::Generic {
                store: "test failpoint",
                source: format!("injected failure writing {location} (a transient store error)")
                    .into(),
            }),
            Err(_) => Ok(()),
        }
    }
}

impl std::fmt::Display for FailingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Failing({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.fail_this_write(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.fail_this_write(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
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

    #[tokio::test]
    async fn the_failing_store_fails_the_first_writes_only() {
        use object_store::ObjectStoreExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = ObjectPath::from_absolute_path(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let budget = Arc::new(AtomicUsize::new(2));
        let store = FailingStore::new(Arc::new(LocalFileSystem::new()), Arc::clone(&budget));
        let path = root.join("a.txt");
        for _ in 0..2 {
            let e = store.put(&path, "x".into()).await.err();
            assert!(
                e.as_ref().is_some_and(
                    |e| crate::error::is_transient(e) && e.to_string().contains("injected")
                ),
                "{e:?}"
            );
        }
        assert!(store.put(&path, "x".into()).await.is_ok());
        assert!(store.get(&path).await.is_ok());
        assert_eq!(budget.load(Ordering::SeqCst), 0);
    }
}
