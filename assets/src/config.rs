//! `cairn.toml`: storage, catalog and sources. Every key is optional.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The parsed `cairn.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Where outputs are written.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Where metadata is recorded.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// Declared sources by name.
    #[serde(default)]
    pub(crate) sources: BTreeMap<String, RawSource>,
    /// Rates that turn measured usage into money.
    #[serde(default)]
    pub cost: CostConfig,
    /// How long replaced versions stay readable.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Where OpenLineage events go, if anywhere.
    #[serde(default)]
    pub openlineage: Option<OpenLineageConfig>,
    /// How `cairn serve` listens, who may call it and how much it runs at once.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[alerts]]`: where incidents are sent.
    #[serde(default)]
    pub alerts: Vec<AlertConfig>,
    /// `[pools]`: named limits on how many asset partitions of the assets in
    /// a pool (`pool = "NAME"` in an asset's header) build at once, across
    /// every run of a process.
    #[serde(default)]
    pub pools: BTreeMap<String, u32>,
    /// `[engine]`: where asset queries run (this process by default).
    #[serde(default)]
    pub engine: EngineConfig,
}

/// `[engine]`: where each asset's query runs. Without a `url`, in this
/// process (DataFusion); with `url = "df://HOST:PORT"`, on the Apache
/// DataFusion Ballista cluster whose scheduler listens there. The project
/// loader accepts only `df://` URLs with a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The Ballista scheduler (`df://host:50050`); `None`: run locally.
    #[serde(default)]
    pub url: Option<String>,
    /// On a cluster, how long one query may take from its submission to
    /// its last result batch before its unit fails (a job the cluster
    /// never runs — no executor — would otherwise hang the run);
    /// [`DEFAULT_QUERY_TIMEOUT_SECONDS`] when not written.
    #[serde(default)]
    pub query_timeout_seconds: Option<u64>,
    /// The memory DataFusion may hold at once for the whole run, every
    /// unit computing at the same time sharing it (`"512MB"`, `"2GiB"`,
    /// see [`parse_memory_size`]); sorts, aggregates and joins past it
    /// spill to the temporary folder. `None`: unbounded. Local execution
    /// only: a cluster's executors have their own.
    #[serde(default)]
    pub memory_limit: Option<String>,
}

/// The smallest memory limit accepted: below it DataFusion cannot hold
/// even the batches a spilling operator merges.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// A memory size as `[engine] memory_limit` and `--memory-limit` write it:
/// a whole number of bytes, or a number with a unit, `KB` `MB` `GB` `TB`
/// (powers of 1000, as DuckDB reads them) or `KiB` `MiB` `GiB` `TiB`
/// (powers of 1024), case-insensitive, a space allowed before the unit.
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if number.is_empty() {
        return Err(format!(
            "`{text}` is not a size; write e.g. \"512MB\" or \"2GiB\""
        ));
    }
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`; write e.g. \"512MB\" or \"2GiB\" (KB MB GB TB, KiB MiB GiB TiB)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. \"512MB\" or \"2GiB\""))?;
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is out of range"));
    }
    let bytes = bytes as u64;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "`{text}` is below the smallest memory limit, 16MiB (DataFusion needs room for the batches a spilling operator merges)"
        ));
    }
    Ok(bytes)
}

/// `[engine] query_timeout_seconds` when not written: one hour.
pub const DEFAULT_QUERY_TIMEOUT_SECONDS: u64 = 3600;

/// The port a Ballista scheduler listens on by default (`df://host` alone).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

impl EngineConfig {
    /// The scheduler's `(host, port)` from a `df://HOST[:PORT]` URL (the
    /// port defaults to [`DEFAULT_SCHEDULER_PORT`]), or what is wrong with
    /// the URL.
    pub fn scheduler(url: &str) -> Result<(String, u16), String> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("`{url}` is not a URL"));
        };
        if !scheme.eq_ignore_ascii_case("df") {
            return Err(format!(
                "`{url}`: the `{scheme}://` scheme is not supported; only df:// (a Ballista scheduler) is"
            ));
        }
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.contains('?') || authority.contains('@') {
            return Err(format!("`{url}` has more than a host and port"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal (`[::1]:50050`) keeps its brackets.
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{url}`: `{port}` is not a port number"))?;
                (host, port)
            }
            _ => (authority, DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        Ok((host.to_owned(), port))
    }
}

/// One `[[alerts]]` entry: incidents are POSTed to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Where to POST (http; loopback in tests).
    pub url: String,
    /// The body's shape.
    #[serde(default)]
    pub format: AlertFormat,
    /// Which incidents (all by default).
    #[serde(default = "AlertEvent::all")]
    pub on: Vec<AlertEvent>,
}

/// An alert body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// A Slack incoming-webhook message (`{"text": ..., "blocks": [...]}`).
    Slack,
    /// The incident as a JSON object.
    #[default]
    Json,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A run failed (once per failure, not per retry).
    RunFailed,
    /// An `error` check failed.
    CheckFailed,
    /// A freshness SLA (`fail_after`) was missed.
    FreshnessMissed,
    /// An incident cleared.
    Recovered,
}

impl AlertEvent {
    /// Every event.
    pub fn all() -> Vec<AlertEvent> {
        vec![
            AlertEvent::RunFailed,
            AlertEvent::CheckFailed,
            AlertEvent::FreshnessMissed,
            AlertEvent::Recovered,
        ]
    }

    /// The name used in `on = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::RunFailed => "run_failed",
            AlertEvent::CheckFailed => "check_failed",
            AlertEvent::FreshnessMissed => "freshness_missed",
            AlertEvent::Recovered => "recovered",
        }
    }
}

/// `[server]`: `cairn serve`'s address, its tokens and its run limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port` to listen on (`--listen` overrides it).
    pub listen: String,
    /// `[server.tokens]`: token name -> its role and the environment
    /// variable holding its secret. No tokens: no authentication, and the
    /// server only listens on loopback addresses.
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Runs the server's queue executes at once.
    pub max_concurrent_runs: u32,
    /// On SIGTERM/Ctrl-C, how long units in flight may take to commit
    /// before the server exits anyway (nothing half-committed either way;
    /// unfinished runs resume at the next start).
    pub shutdown_grace_seconds: u64,
    /// How often the server evaluates automation (`cairn tick`); a
    /// source's shorter `poll` makes it tick that often instead.
    pub tick_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7575".to_owned(),
            tokens: BTreeMap::new(),
            max_concurrent_runs: 4,
            shutdown_grace_seconds: 20,
            tick_seconds: 30,
        }
    }
}

/// One API token: `name = { role = "viewer", env = "CAIRN_TOKEN_NAME" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// What its holder may do.
    pub role: Role,
    /// The environment variable holding the secret (never the secret itself,
    /// so `cairn.toml` can be committed).
    pub env: String,
}

/// What a token's holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything (status, lineage, runs, SQL); changes nothing.
    Viewer,
    /// Also starts and cancels runs (Materialize, Backfill, CancelRun).
    Operator,
}

impl Role {
    /// The name used in `cairn.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// `[openlineage]`: emit a RunEvent (START, COMPLETE, FAIL) per asset
/// partition materialization, as JSON lines (`path`) and/or POSTed to an
/// OpenLineage HTTP endpoint (`url`) such as Marquez.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLineageConfig {
    /// The JSON-lines file, relative to the project.
    #[serde(default)]
    pub path: Option<String>,
    /// The receiver's base URL (`http://HOST:PORT` or `https://...`);
    /// events are POSTed to `{url}/{endpoint}`.
    #[serde(default)]
    pub url: Option<String>,
    /// The path under `url` (default `api/v1/lineage`, as Marquez and the
    /// OpenLineage clients use).
    #[serde(default = "default_openlineage_endpoint")]
    pub endpoint: String,
    /// The environment variable holding the API key sent as `Authorization:
    /// Bearer <key>` (never the key itself in cairn.toml).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Seconds one POST may take (default 5).
    #[serde(default = "default_openlineage_timeout")]
    pub timeout_seconds: u64,
    /// Retries of a failed POST (default 3), with exponential backoff.
    #[serde(default = "default_openlineage_retries")]
    pub retries: u32,
    /// Events waiting to be POSTed at most (default 10,000); past it, events
    /// are dropped (counted) rather than slowing the run.
    #[serde(default = "default_openlineage_queue")]
    pub queue_size: usize,
    /// Job namespace (default `cairn`).
    #[serde(default)]
    pub namespace: Option<String>,
}

fn default_openlineage_endpoint() -> String {
    "api/v1/lineage".to_owned()
}

fn default_openlineage_timeout() -> u64 {
    5
}

fn default_openlineage_retries() -> u32 {
    3
}

fn default_openlineage_queue() -> usize {
    10_000
}

/// `[retention]`: replaced (non-current) versions stay readable for time
/// travel and audits this long; `cairn gc` removes them afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days a replaced version is kept.
    pub days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { days: 30 }
    }
}

/// `[cost]`: rates in US dollars. Defaults are typical public-cloud list
/// prices (one vCPU-hour of compute, a GB scanned as by a query service,
/// a GB-month of object storage, a thousand object-store requests).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Per CPU-hour of compute.
    pub cpu_hour: f64,
    /// Per GB (10^9 bytes) scanned.
    pub gb_scanned: f64,
    /// Per GB stored for a month.
    pub gb_stored_month: f64,
    /// Per 1,000 object-store requests.
    pub per_1k_requests: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            cpu_hour: 0.048,
            gb_scanned: 0.005,
            gb_stored_month: 0.023,
            per_1k_requests: 0.0004,
        }
    }
}

/// `[storage]`. For `s3://` the other keys override the usual AWS
/// environment variables; credentials come only from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// An object-store URL; `file://./warehouse` (relative to the project) by default.
    #[serde(default = "default_storage_url")]
    pub url: String,
    /// Where the store answers: the S3 endpoint (`http://127.0.0.1:9000`;
    /// `AWS_ENDPOINT_URL` otherwise), the Azure account URL or the GCS base
    /// URL (an emulator's).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region; `AWS_REGION` otherwise (S3 only).
    #[serde(default)]
    pub region: Option<String>,
    /// Whether a plain-http endpoint is allowed; `AWS_ALLOW_HTTP` otherwise.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted
    /// ones (`bucket.endpoint/key`).
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Credentials written here are refused (see `Project::load`): they
    /// belong in the environment, never in a file kept in version control.
    #[serde(default, alias = "access_key_id", alias = "aws_access_key_id")]
    pub(crate) access_key: Option<Spanned<RefusedValue>>,
    /// Refused, as `access_key`.
    #[serde(
        default,
        alias = "secret_access_key",
        alias = "aws_secret_access_key",
        alias = "session_token"
    )]
    pub(crate) secret: Option<Spanned<RefusedValue>>,
}

impl StorageConfig {
    /// The key of a credential written in `[storage]` and its byte offset
    /// in `cairn.toml`, if there is one.
    pub(crate) fn credential_key(&self) -> Option<(&'static str, usize)> {
        self.access_key
            .as_ref()
            .map(|v| ("access_key", v.span().start))
            .or_else(|| self.secret.as_ref().map(|v| ("secret", v.span().start)))
    }
}

/// Any value, kept only to say where it was written (a refused key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefusedValue;

impl<'de> Deserialize<'de> for RefusedValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| RefusedValue)
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: default_storage_url(),
            endpoint: None,
            region: None,
            allow_http: None,
            path_style: None,
            access_key: None,
            secret: None,
        }
    }
}

fn default_storage_url() -> String {
    "file://./warehouse".to_owned()
}

/// `[catalog]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// The catalog URL; `sqlite://.cairn/catalog.db` (relative to the project) by default.
    #[serde(default = "default_catalog_url")]
    pub url: String,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            url: default_catalog_url(),
        }
    }
}

fn default_catalog_url() -> String {
    "sqlite://.cairn/catalog.db".to_owned()
}

/// A source as written in `cairn.toml` or `sources/NAME.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    /// File or directory, relative to the project.
    pub path: Spanned<String>,
    /// `csv`, `parquet` or `json`; inferred from the extension by default.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Who owns it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Partitions: files of partition KEY live under `<path>/<dimension>=KEY/`.
    #[serde(default)]
    pub partitions: Option<crate::header::RawPartitions>,
    /// How often a server checks it for changes (`"1m"`), if at all.
    #[serde(default)]
    pub poll: Option<Spanned<String>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn an_engine_url_names_a_ballista_scheduler() {
        let ok = |url: &str| EngineConfig::scheduler(url);
        assert_eq!(ok("df://sched:6000"), Ok(("sched".to_owned(), 6000)));
        assert_eq!(ok(" df://10.0.0.7/ "), Ok(("10.0.0.7".to_owned(), 50050)));
        assert_eq!(ok("DF://[::1]:7"), Ok(("[::1]".to_owned(), 7)));
        assert_eq!(ok("df://[::1]"), Ok(("[::1]".to_owned(), 50050)));
        let err = |url: &str| EngineConfig::scheduler(url).unwrap_err();
        assert!(err("grpc://sched:50050").contains("`grpc://` scheme is not supported"));
        assert!(err("sched:50050").contains("is not a URL"));
        assert!(err("df://:50050").contains("names no host"));
        assert!(err("df://sched:0").contains("is not a port number"));
        assert!(err("df://sched:http").contains("is not a port number"));
        assert!(err("df://sched:50050/db").contains("more than a host and port"));
    }

    #[test]
    fn memory_sizes_read_decimal_and_binary_units() {
        let ok = |s: &str| parse_memory_size(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("512MB"), 512_000_000);
        assert_eq!(ok("512 mb"), 512_000_000);
        assert_eq!(ok("64MiB"), 64 << 20);
        assert_eq!(ok("1.5GiB"), 3 << 29);
        assert_eq!(ok("2gb"), 2_000_000_000);
        assert_eq!(ok("16777216"), 16 << 20);
        let err = |s: &str| parse_memory_size(s).err().unwrap_or_default();
        assert!(err("lots").contains("is not a size"), "{}", err("lots"));
        assert!(err("512XB").contains("unknown unit `XB`"));
        assert!(err("1MB").contains("below the smallest memory limit, 16MiB"));
        assert!(parse_memory_size("-5GB").is_err());
    }
}
