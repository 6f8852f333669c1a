//! Where outputs live: an object store and the root under which every
//! asset writes its immutable files (`<asset>/<run id>-<n>.parquet`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cairn_assets::StorageConfig;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RetryConfig,
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
    /// Opens the storage named by `config.url`, resolving
    /// `file://./relative` paths against `project_root`. Nothing is created
    /// and no request is made until something is read or written.
    pub fn open(config: &StorageConfig, project_root: &Path) -> Result<Storage, EngineError> {
        let url = config.url.as_str();
        if let Some(path) = url.strip_prefix("file://") {
            return Self::open_local(url, path, project_root);
        }
        let scheme = url.split("://").next().unwrap_or(url);
        match scheme {
            "s3" => Self::open_s3(config),
            "az" => Self::open_azure(config),
            "gs" => Self::open_gcs(config),
            _ => Err(EngineError::BadStorageUrl {
                url: url.to_owned(),
                reason: format!(
                    "unsupported storage scheme `{scheme}`; use url = \"file://./warehouse\" (relative to the project), \"file:///absolute/path\", \"s3://bucket/prefix\", \"gs://bucket/prefix\" or \"az://container/prefix\""
                ),
            }),
        }
    }

    fn open_local(url: &str, path: &str, project_root: &Path) -> Result<Storage, EngineError> {
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

    /// `s3://bucket/prefix`: configured from the AWS environment variables
    /// (`AmazonS3Builder::from_env`), which `[storage]` keys override.
    /// Timeouts and retries are bounded so that a dead endpoint fails in
    /// seconds: a build's own retries (`[retries]`) come on top.
    fn open_s3(config: &StorageConfig) -> Result<Storage, EngineError> {
        let remote = RemoteUrl::parse(config, "bucket")?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(bounded_retries());
        for (key, value) in BOUNDED_TIMEOUTS {
            builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(allow) = config.allow_http {
            builder = builder.with_allow_http(allow);
        }
        if let Some(path_style) = config.path_style {
            builder = builder.with_virtual_hosted_style_request(!path_style);
        }
        let store = builder.build().map_err(|e| {
            remote.bad(format!(
                "{e}; check [storage] endpoint/region and the AWS_* environment variables"
            ))
        })?;
        Ok(remote.storage(Arc::new(store)))
    }

    /// `az://container/prefix` (Azure Blob Storage): the account and its
    /// credentials from the `AZURE_*` environment variables
    /// (`MicrosoftAzureBuilder::from_env`: `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, a SAS or a service principal);
    /// `[storage] endpoint` is the account's URL (Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`), `allow_http` as for S3.
    fn open_azure(config: &StorageConfig) -> Result<Storage, EngineError> {
        let remote = RemoteUrl::parse(config, "container")?;
        remote.refuse_s3_only_keys(config)?;
        let mut builder = MicrosoftAzureBuilder::from_env()
            .with_container_name(&remote.bucket)
            .with_retry(bounded_retries());
        for (key, value) in BOUNDED_TIMEOUTS {
            builder = builder.with_config(AzureConfigKey::Client(key), value);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(allow) = config.allow_http {
            builder = builder.with_allow_http(allow);
        }
        let store = builder.build().map_err(|e| {
            remote.bad(format!(
                "{e}; set AZURE_STORAGE_ACCOUNT_NAME and a credential (AZURE_STORAGE_ACCOUNT_KEY, ...) in the environment"
            ))
        })?;
        Ok(remote.storage(Arc::new(store)))
    }

    /// `gs://bucket/prefix` (Google Cloud Storage): credentials from
    /// `GOOGLE_SERVICE_ACCOUNT` (a key file), `GOOGLE_SERVICE_ACCOUNT_KEY`,
    /// `GOOGLE_APPLICATION_CREDENTIALS` or the instance
    /// (`GoogleCloudStorageBuilder::from_env`); `[storage] endpoint` is the
    /// service's base URL (an emulator's), `allow_http` as for S3.
    fn open_gcs(config: &StorageConfig) -> Result<Storage, EngineError> {
        let remote = RemoteUrl::parse(config, "bucket")?;
        remote.refuse_s3_only_keys(config)?;
        let mut builder = GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(bounded_retries());
        for (key, value) in BOUNDED_TIMEOUTS {
            builder = builder.with_config(GoogleConfigKey::Client(key), value);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_base_url(endpoint);
        }
        if let Some(allow) = config.allow_http {
            builder = builder.with_config(
                GoogleConfigKey::Client(ClientConfigKey::AllowHttp),
                allow.to_string(),
            );
        }
        let store = builder.build().map_err(|e| {
            remote.bad(format!(
                "{e}; set GOOGLE_SERVICE_ACCOUNT (a key file), GOOGLE_SERVICE_ACCOUNT_KEY or GOOGLE_APPLICATION_CREDENTIALS in the environment"
            ))
        })?;
        Ok(remote.storage(Arc::new(store)))
    }

    /// The store of a source kept in an object store (`Source::url`),
    /// rooted at the URL's path (the object itself, or the folder). When
    /// `[storage]` (`storage`) is on the same kind of store, its connection
    /// keys (endpoint, region, allow_http, path_style) apply too: one
    /// S3-compatible server for outputs and sources; otherwise only the
    /// environment does. No request is made.
    pub fn open_source(url: &str, storage: &StorageConfig) -> Result<Storage, EngineError> {
        let mut config = StorageConfig::default();
        url.clone_into(&mut config.url);
        let scheme = |u: &str| u.split("://").next().map(str::to_owned);
        if scheme(url) == scheme(&storage.url) {
            config.endpoint.clone_from(&storage.endpoint);
            config.region.clone_from(&storage.region);
            config.allow_http = storage.allow_http;
            config.path_style = storage.path_style;
        }
        Storage::open(&config, Path::new("/"))
    }

    /// One request to the store, before anything is built: an unreachable
    /// endpoint, wrong credentials or a missing bucket fail here, with one
    /// error naming the URL and what to check, instead of as many failed
    /// builds. Local storage needs no check.
    pub async fn check_reachable(&self) -> Result<(), EngineError> {
        if self.local_root.is_some() {
            return Ok(());
        }
        // Listing a missing prefix is an empty answer: any error is real
        // (a missing bucket included).
        match self.store.list_with_delimiter(Some(&self.root)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// A store failure as the user should read it: the URL, what happened
    /// and what to check.
    pub fn error(&self, e: &object_store::Error) -> EngineError {
        let hint = match remote_fault(e) {
            _ if self.local_root.is_some() => "check the folder's permissions and free space",
            Some(RemoteFault::Credentials) => match self.scheme() {
                "az" => {
                    "the credentials were refused: check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or the SAS or service principal in AZURE_*), and that they may use this container"
                }
                "gs" => {
                    "the credentials were refused: check GOOGLE_SERVICE_ACCOUNT / GOOGLE_APPLICATION_CREDENTIALS, and that the account may use this bucket"
                }
                _ => {
                    "the credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and that they may use this bucket"
                }
            },
            Some(RemoteFault::NoBucket) => match self.scheme() {
                "az" => "the container does not exist: create it first",
                _ => "the bucket does not exist: create it first",
            },
            None => match self.scheme() {
                "s3" => {
                    "check that the endpoint is reachable ([storage] endpoint or AWS_ENDPOINT_URL, allow_http for http://) and the bucket exists"
                }
                _ => {
                    "check that the endpoint is reachable ([storage] endpoint, allow_http for http://) and the bucket or container exists"
                }
            },
        };
        EngineError::Storage {
            url: self.configured_url.clone(),
            reason: format!("{e}; {hint}"),
        }
    }

    /// The URL scheme of the store (`file`, `s3`, `az`, `gs`).
    fn scheme(&self) -> &str {
        self.store_url.split("://").next().unwrap_or("")
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

/// Connect and request timeouts of every remote store: a dead endpoint fails
/// in seconds (a build's own retries, `[retries]`, come on top).
const BOUNDED_TIMEOUTS: [(ClientConfigKey, &str); 2] = [
    (ClientConfigKey::ConnectTimeout, "5s"),
    (ClientConfigKey::Timeout, "60s"),
];

/// The store client's own retries of a failed request, bounded likewise.
fn bounded_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..RetryConfig::default()
    }
}

/// A remote storage URL, `SCHEME://BUCKET/prefix`, taken apart.
struct RemoteUrl<'c> {
    url: &'c str,
    scheme: &'c str,
    /// The bucket (S3, GCS) or container (Azure).
    bucket: String,
    root: ObjectPath,
}

impl<'c> RemoteUrl<'c> {
    /// `what` names the part after `://` (bucket, container) in messages.
    fn parse(config: &'c StorageConfig, what: &str) -> Result<RemoteUrl<'c>, EngineError> {
        let url = config.url.as_str();
        let scheme = url.split("://").next().unwrap_or("");
        let bad = |reason: String| EngineError::BadStorageUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad(format!("no {what}: write {scheme}://{what}/prefix")))?
            .to_owned();
        let root = ObjectPath::parse(parsed.path().trim_matches('/'))
            .map_err(|e| bad(format!("bad prefix: {e}")))?;
        Ok(RemoteUrl {
            url,
            scheme,
            bucket,
            root,
        })
    }

    fn bad(&self, reason: String) -> EngineError {
        EngineError::BadStorageUrl {
            url: self.url.to_owned(),
            reason,
        }
    }

    /// `region` and `path_style` mean something to S3 only: written for
    /// another store, they are a mistake to point out, not to ignore.
    fn refuse_s3_only_keys(&self, config: &StorageConfig) -> Result<(), EngineError> {
        let key = if config.region.is_some() {
            "region"
        } else if config.path_style.is_some() {
            "path_style"
        } else {
            return Ok(());
        };
        Err(self.bad(format!(
            "[storage] {key} applies to s3:// only; remove it for {}://",
            self.scheme
        )))
    }

    fn storage(self, store: Arc<dyn ObjectStore>) -> Storage {
        Storage {
            store,
            configured_url: self.url.to_owned(),
            store_url: format!("{}://{}/", self.scheme, self.bucket),
            root: self.root,
            local_root: None,
        }
    }
}

/// A committed file as the catalog lists it: its path relative to the
/// storage root and, when known, its size. Readers take the size from here
/// instead of asking the store (a HEAD is a round trip on S3); it is exact
/// because a committed file is never rewritten — every run writes files of
/// its own name ([`Storage::new_file_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedFile {
    /// Path relative to the storage root, `/`-separated.
    pub path: String,
    /// Size in bytes; `None` when unknown (the store is then asked).
    pub size: Option<u64>,
}

impl CommittedFile {
    /// A file whose size is not known.
    pub fn size_unknown(path: impl Into<String>) -> Self {
        CommittedFile {
            path: path.into(),
            size: None,
        }
    }
}

impl From<cairn_catalog::FileRecord> for CommittedFile {
    fn from(f: cairn_catalog::FileRecord) -> Self {
        CommittedFile {
            path: f.path,
            size: Some(f.size_bytes),
        }
    }
}

/// What a remote store's refusal means for the user.
enum RemoteFault {
    Credentials,
    NoBucket,
}

/// Judged by the variant where object_store gives one; its S3 client
/// reports a refused list request as `Generic` and keeps the HTTP status
/// in a type it does not export, so the status line and S3's error code
/// in the message are read as well.
fn remote_fault(e: &object_store::Error) -> Option<RemoteFault> {
    match e {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => return Some(RemoteFault::Credentials),
        _ => {}
    }
    let text = e.to_string();
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if any(&[
        "403 Forbidden",
        "401 Unauthorized",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
    ]) {
        Some(RemoteFault::Credentials)
    } else if any(&[
        "NoSuchBucket",
        "ContainerNotFound",
        "The specified bucket does not exist",
    ]) {
        Some(RemoteFault::NoBucket)
    } else {
        None
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
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn relative_file_urls_resolve_against_the_project() {
        let s = Storage::open(&config("file://./warehouse"), Path::new("/p/proj"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.local_root.as_deref(),
            Some(Path::new("/p/proj/warehouse"))
        );
        assert_eq!(
            s.file_url("a/b.parquet"),
            "file:///p/proj/warehouse/a/b.parquet"
        );
        let other = Storage::open(&config("ftp://host/x"), Path::new("/p")).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("unsupported storage scheme `ftp`")
                && other.to_string().contains("az://container/prefix"),
            "{other}"
        );
    }

    fn config(url: &str) -> StorageConfig {
        let mut c = StorageConfig::default();
        url.clone_into(&mut c.url);
        c
    }

    #[test]
    fn s3_urls_name_the_bucket_and_the_prefix() {
        let mut c = config("s3://bucket/wh/x");
        c.endpoint = Some("http://127.0.0.1:1".to_owned());
        c.region = Some("us-east-1".to_owned());
        c.allow_http = Some(true);
        c.path_style = Some(true);
        let s = Storage::open(&c, Path::new("/p")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.store_url, "s3://bucket/");
        assert!(s.local_root.is_none());
        assert_eq!(s.file_url("a/b.parquet"), "s3://bucket/wh/x/a/b.parquet");
        assert!(Storage::open(&config("s3:///x"), Path::new("/p")).is_err());
    }

    /// gs:// opens like s3:// (its root URL as DataFusion registers it,
    /// the prefix); az:// is taken apart the same way (opening one needs
    /// an account from the environment: tests/e2e/azure.rs). S3's own
    /// keys are refused for both.
    #[test]
    fn azure_and_gcs_urls_name_the_container_or_bucket_and_the_prefix() {
        let mut c = config("gs://bucket/wh");
        c.endpoint = Some("http://127.0.0.1:1".to_owned());
        c.allow_http = Some(true);
        let s = Storage::open(&c, Path::new("/p")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.store_url, "gs://bucket/");
        assert_eq!(s.file_url("a/b.parquet"), "gs://bucket/wh/a/b.parquet");
        assert!(s.local_root.is_none());

        for url in ["gs://bucket/wh", "az://container/wh"] {
            let mut c = config(url);
            c.region = Some("us-east-1".to_owned());
            let refused = Storage::open(&c, Path::new("/p")).unwrap_err().to_string();
            assert!(
                refused.contains("region applies to s3:// only"),
                "{refused}"
            );
        }
        let no_container = Storage::open(&config("az:///wh"), Path::new("/p")).unwrap_err();
        assert!(
            no_container
                .to_string()
                .contains("no container: write az://container/prefix"),
            "{no_container}"
        );
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
