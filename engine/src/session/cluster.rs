//! Where an asset's query executes: in this process, or on an Apache
//! DataFusion Ballista cluster (`[engine] url = "df://host:50050"` in
//! `cairn.toml`).
//!
//! On a cluster, only the execution moves. The query is planned here, in
//! the unit's own session, exactly as for a local run: the same
//! single-partition configuration ([`super::tables::reproducible_config`]),
//! the same tables (sources, the catalog's committed files, partitioned
//! assets as [`super::committed_table::CommittedTable`] scans). The physical
//! plan is serialized with DataFusion's protobuf codec and submitted to the
//! scheduler; its executors read the files the plan names — exactly the
//! committed ones, never a listing — from the same storage, and the result
//! batches stream back here. Cairn then writes the Parquet file, hashes,
//! checks and commits it as it does locally: the catalog commits, so a
//! crash (of Cairn or of the cluster) never exposes half a partition, and
//! the same plan on the same files gives the same rows and data version.
//!
//! Why the physical plan rather than SQL or a logical plan: the scheduler
//! would have to plan from table providers it cannot rebuild (a
//! `CommittedTable` is ours, and Ballista's default codec does not know
//! it), whereas its scan is DataFusion's own `DataSourceExec` over listed
//! files with their partition values, which the default codec carries.
//! With one partition per query the plan needs no shuffle, and it is kept
//! without one (see [`QueryEngine::session_config`] and [`single_stage`]):
//! a unit is one task on one executor that runs the very operators a local
//! run would, in the same order — so float sums add up alike — and the
//! cluster scales out across units (`--jobs`).
//!
//! Storage on a cluster: the executors read the committed files from the
//! same object store. For `s3://` storage, the `[storage]` keys of
//! `cairn.toml` that say where the store is (endpoint, region, plain http)
//! travel with each query as Ballista's `s3.*` session options, which the
//! `ballista-executor` binary's object-store registry applies; credentials
//! never leave this process — executors take their own from their
//! environment (`AWS_ACCESS_KEY_ID`, ..., or an instance role), like any
//! other S3 client. Local storage and local sources are read at their
//! paths, so executors must see the same filesystem (one machine, or a
//! shared mount).
//!
//! What is measured on a cluster: rows, bytes and requests written,
//! wall time and the data version are Cairn's own, as locally. The
//! executors' operator metrics do not come back with the batches, so the
//! bytes read are the sizes of the files the plan scans (read in full at
//! most), and the compute time is the time the remote query took, as one
//! executor slot is held for it.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::config::BallistaConfig;
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use ballista_core::object_store::S3Options;
use ballista_core::serde::protobuf::GetJobStatusParams;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::utils::{GrpcClientConfig, create_grpc_client_endpoint};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionConfig;
use datafusion::prelude::SessionContext;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::{StreamExt, TryStreamExt};

use cairn_assets::{DEFAULT_QUERY_TIMEOUT_SECONDS, EngineConfig, StorageConfig};

use crate::error::EngineError;

/// How long the reachability check may take before the cluster counts as
/// unreachable: a black-holed address fails here rather than hanging.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where asset queries execute.
#[derive(Debug, Clone, Default)]
pub enum QueryEngine {
    /// In this process, on the unit's own DataFusion session.
    #[default]
    Local,
    /// On a Ballista cluster.
    Ballista(Cluster),
}

/// A Ballista cluster, by its scheduler.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The URL as written in `[engine] url` (for messages).
    configured: String,
    /// The scheduler's gRPC endpoint (`http://host:port`).
    scheduler: String,
    /// Ballista session options that tell executors where the storage is
    /// (`s3.endpoint`, ...): see [`storage_options`].
    storage_options: Vec<(&'static str, String)>,
    /// How long a query may take, submission to results
    /// (`[engine] query_timeout_seconds`).
    query_timeout: Duration,
}

impl QueryEngine {
    /// The engine `[engine]` configures, for outputs in the storage
    /// `[storage]` configures. The project loader has already refused URLs
    /// other than `df://HOST[:PORT]`; this says so again for configurations
    /// built elsewhere.
    pub fn from_config(
        config: &EngineConfig,
        storage: &StorageConfig,
    ) -> Result<QueryEngine, EngineError> {
        let Some(url) = &config.url else {
            return Ok(QueryEngine::Local);
        };
        let (host, port) = EngineConfig::scheduler(url).map_err(|reason| {
            EngineError::Usage(format!(
                "[engine] url {reason}; use df://HOST:PORT (a Ballista scheduler)"
            ))
        })?;
        // The registry of the `ballista-executor` binary resolves s3://,
        // http(s):// and local files only.
        if let Some(scheme) = ["az", "gs"]
            .into_iter()
            .find(|scheme| storage.url.starts_with(&format!("{scheme}://")))
        {
            return Err(EngineError::Usage(format!(
                "[engine] url runs queries on a Ballista cluster, whose executors read s3:// and local storage only, not {scheme}://; use s3:// (or local) storage with a cluster, or remove [engine] url"
            )));
        }
        Ok(QueryEngine::Ballista(Cluster {
            configured: url.trim().to_owned(),
            scheduler: format!("http://{host}:{port}"),
            storage_options: storage_options(storage),
            query_timeout: Duration::from_secs(
                config
                    .query_timeout_seconds
                    .unwrap_or(DEFAULT_QUERY_TIMEOUT_SECONDS)
                    .max(1),
            ),
        }))
    }

    /// `config` (the reproducible configuration) adjusted for where the
    /// query runs. On a cluster: no join dynamic filters, and Ballista's
    /// broadcast-join promotion off. Ballista's scheduler cuts a
    /// `CollectLeft` hash join into a broadcast stage and may then swap the
    /// join's inputs by their runtime sizes — which changes the order rows
    /// reach the operators above (and a float sum's last bits), and which
    /// DataFusion refuses once a join has built its dynamic filter (the
    /// job then never finishes). Dynamic filters only spare reading rows
    /// that would not match; results are the same without them.
    pub fn session_config(&self, config: SessionConfig) -> SessionConfig {
        match self {
            QueryEngine::Local => config,
            QueryEngine::Ballista(cluster) => {
                let mut config = config
                    .with_option_extension(BallistaConfig::default())
                    .with_option_extension(S3Options::default());
                let options = config.options_mut();
                options.optimizer.enable_join_dynamic_filter_pushdown = false;
                for key in [
                    "ballista.optimizer.broadcast_join_threshold_bytes",
                    "ballista.optimizer.broadcast_join_threshold_rows",
                ] {
                    // Both keys exist in Ballista 55 (the tests read them back).
                    let _ = options.set(key, "0");
                }
                for (key, value) in &cluster.storage_options {
                    // Keys of Ballista 55's `S3Options` (a test reads them back).
                    let _ = options.set(key, value);
                }
                config
            }
        }
    }

    /// Whether queries run on a cluster.
    pub fn is_remote(&self) -> bool {
        matches!(self, QueryEngine::Ballista(_))
    }

    /// One request to the scheduler, before anything is built: an
    /// unreachable cluster fails here, within [`CONNECT_TIMEOUT`], with one
    /// error naming the URL and what to check — not once per unit. Local
    /// execution needs no check.
    pub async fn check_reachable(&self) -> Result<(), EngineError> {
        match self {
            QueryEngine::Local => Ok(()),
            QueryEngine::Ballista(cluster) => cluster.check_reachable().await,
        }
    }

    /// Executes `plan`, planned on `ctx`, and streams its result: on
    /// `ctx` itself, or on the cluster with `ctx`'s configuration.
    pub async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> DfResult<SendableRecordBatchStream> {
        match self {
            QueryEngine::Local => datafusion::physical_plan::execute_stream(plan, ctx.task_ctx()),
            QueryEngine::Ballista(cluster) => cluster.execute(plan, ctx).await,
        }
    }
}

impl Cluster {
    async fn check_reachable(&self) -> Result<(), EngineError> {
        let grpc = GrpcClientConfig::from(&BallistaConfig::default());
        let endpoint = create_grpc_client_endpoint(self.scheduler.clone(), Some(&grpc))
            .map_err(|e| self.error(&format!("bad scheduler address: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT);
        let probe = async {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| format!("cannot connect ({})", source_chain(&e)))?;
            // Any job id: an answer, even "no such job", proves a scheduler.
            SchedulerGrpcClient::new(channel)
                .get_job_status(GetJobStatusParams {
                    job_id: "cairn-reachability-check".to_owned(),
                })
                .await
                .map(|_| ())
                .or_else(|status| match status.code() {
                    // What a scheduler answers for a job it does not know
                    // (and what any gRPC server may answer a stranger).
                    tonic::Code::Internal
                    | tonic::Code::NotFound
                    | tonic::Code::InvalidArgument
                    | tonic::Code::FailedPrecondition => Ok(()),
                    tonic::Code::Unimplemented => Err(
                        "something answers there, but it is not a Ballista scheduler".to_owned(),
                    ),
                    // Transport failures and timeouts (Unavailable,
                    // DeadlineExceeded, Cancelled, Unknown, ...).
                    _ => Err(format!(
                        "the scheduler did not answer ({})",
                        status.message()
                    )),
                })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(self.error(&reason)),
            Err(_) => Err(self.error(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// An unreachable cluster as the user should read it: the URL, what
    /// happened and what to do.
    fn error(&self, reason: &str) -> EngineError {
        EngineError::Cluster {
            url: self.configured.clone(),
            reason: format!(
                "{reason}; check that the Ballista scheduler is running there and reachable from this machine (`ballista-scheduler --bind-port PORT`, with at least one `ballista-executor`), or remove [engine] url from cairn.toml to run queries in this process"
            ),
        }
    }

    async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> DfResult<SendableRecordBatchStream> {
        // The unit's own configuration (one partition, its type options),
        // not Ballista's defaults: the executors then run what a local run
        // would.
        let config = ctx.copied_config();
        let ballista = config.ballista_config();
        let codec = config.ballista_physical_extension_codec();
        let plan = single_stage(plan)?;
        let schema = plan.schema();
        let url = self.configured.clone();
        let on_cluster = move |e: DataFusionError| {
            DataFusionError::Execution(format!(
                "on the Ballista cluster {url}: {}",
                e.strip_backtrace()
            ))
        };
        // Ballista's client waits for the job without a bound (a job no
        // executor takes stays queued): the whole query — the wait for the
        // job, then its result batches — is bounded here.
        let limit = self.query_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let timed_out = {
            let url = self.configured.clone();
            move || {
                DataFusionError::Execution(format!(
                    "on the Ballista cluster {url}: the query did not finish within {} s ([engine] query_timeout_seconds); check that the cluster has executors and free task slots, or raise the limit",
                    limit.as_secs()
                ))
            }
        };
        let submitted = execute_physical_plan::<PhysicalPlanNode>(
            self.scheduler.clone(),
            &ballista,
            plan,
            codec.as_ref(),
            ctx.session_id(),
            config,
        );
        let stream = tokio::time::timeout_at(deadline, submitted)
            .await
            .map_err(|_| timed_out())?
            .map_err(on_cluster.clone())?;
        // The result batches, within the same deadline; nothing after a
        // timeout.
        let stream = Box::pin(stream.map_err(on_cluster));
        let bounded = futures::stream::unfold(Some(stream), move |state| {
            let timed_out = timed_out.clone();
            async move {
                let mut stream = state?;
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(batch)) => Some((batch, Some(stream))),
                    Ok(None) => None,
                    Err(_) => Some((Err(timed_out()), None)),
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, bounded)))
    }
}

/// The `s3.*` options of Ballista's executor registry that locate `s3://`
/// storage as `[storage]` configures it (none for other storage). What is
/// not written in `cairn.toml` — credentials above all — each executor
/// takes from its own environment, as Cairn does from its own.
fn storage_options(storage: &StorageConfig) -> Vec<(&'static str, String)> {
    if !storage.url.starts_with("s3://") {
        return Vec::new();
    }
    let mut options = Vec::new();
    if let Some(endpoint) = &storage.endpoint {
        options.push(("s3.endpoint", endpoint.clone()));
    }
    if let Some(region) = &storage.region {
        options.push(("s3.region", region.clone()));
    }
    if let Some(allow) = storage.allow_http {
        options.push(("s3.allow_http", allow.to_string()));
    }
    options
}

/// `plan` with its single-partition `CollectLeft` hash joins in
/// `Partitioned` mode, which Ballista's scheduler leaves in the stage it
/// plans them in (with the broadcast promotion off). With one partition on
/// each side both modes build the same table from the same rows and probe
/// it in the same order: the output is the same, row for row.
pub fn single_stage(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(join) = node.downcast_ref::<HashJoinExec>() else {
            return Ok(Transformed::no(node));
        };
        let one = |side: &Arc<dyn ExecutionPlan>| {
            side.properties().output_partitioning().partition_count() == 1
        };
        if *join.partition_mode() != PartitionMode::CollectLeft
            || !one(join.left())
            || !one(join.right())
        {
            return Ok(Transformed::no(node));
        }
        join.builder()
            .with_partition_mode(PartitionMode::Partitioned)
            .build_exec()
            .map(Transformed::yes)
    })
    .map(|t| t.data)
}

/// An error and its causes on one line (tonic's transport errors say
/// "transport error" and keep the reason in their sources), a cause that
/// repeats the one before it said once.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// What a plan executed on a cluster reads, from the plan itself: the
/// files its scans name and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteScan {
    /// Files scanned.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// The files every scan of `plan` reads (a file scanned twice counts twice,
/// as it is read twice).
pub fn remote_scan(plan: &Arc<dyn ExecutionPlan>) -> RemoteScan {
    let mut scan = RemoteScan::default();
    fn walk(node: &Arc<dyn ExecutionPlan>, scan: &mut RemoteScan) {
        if let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        {
            for file in config.file_groups.iter().flat_map(|g| g.iter()) {
                scan.files += 1;
                scan.bytes += file.object_meta.size;
            }
        }
        for child in node.children() {
            walk(child, scan);
        }
    }
    walk(plan, &mut scan);
    scan
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn engine(url: Option<&str>) -> Result<QueryEngine, EngineError> {
        QueryEngine::from_config(
            &EngineConfig {
                url: url.map(str::to_owned),
                ..EngineConfig::default()
            },
            &StorageConfig::default(),
        )
    }

    fn s3_storage(url: &str) -> StorageConfig {
        let mut storage = StorageConfig::default();
        storage.url = url.to_owned();
        storage.endpoint = Some("http://127.0.0.1:9000".to_owned());
        storage.region = Some("eu-west-3".to_owned());
        storage.allow_http = Some(true);
        storage.path_style = Some(true);
        storage
    }

    /// Where `s3://` storage is travels with each query, in the options the
    /// executors' registry reads; credentials never do.
    #[test]
    fn executors_are_told_where_s3_storage_is_and_nothing_else() {
        let config = EngineConfig {
            url: Some("df://127.0.0.1:50050".to_owned()),
            ..EngineConfig::default()
        };
        let options = |storage: &StorageConfig| {
            let engine = QueryEngine::from_config(&config, storage).unwrap();
            let session = engine.session_config(super::super::tables::reproducible_config());
            session
                .options()
                .entries()
                .into_iter()
                .filter(|e| e.key.starts_with("s3."))
                .filter_map(|e| Some((e.key, e.value?)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            options(&s3_storage("s3://bucket/prefix")),
            [
                ("s3.region".to_owned(), "eu-west-3".to_owned()),
                ("s3.endpoint".to_owned(), "http://127.0.0.1:9000".to_owned()),
                ("s3.allow_http".to_owned(), "true".to_owned()),
            ]
        );
        assert_eq!(options(&s3_storage("file://./warehouse")), []);
        let refused = QueryEngine::from_config(&config, &s3_storage("az://container/wh"))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("not az://"), "{refused}");
    }

    #[test]
    fn no_url_runs_locally_and_df_names_the_scheduler() {
        assert!(!engine(None).unwrap().is_remote());
        let Ok(QueryEngine::Ballista(c)) = engine(Some("df://sched.example:6000")) else {
            panic!("a df:// url is a cluster");
        };
        assert_eq!(c.scheduler, "http://sched.example:6000");
        let Ok(QueryEngine::Ballista(c)) = engine(Some("df://10.0.0.7")) else {
            panic!("a df:// url is a cluster");
        };
        assert_eq!(c.scheduler, "http://10.0.0.7:50050");
        assert!(engine(Some("http://10.0.0.7:50050")).is_err_and(|e| e.is_user_error()));
    }

    /// The plan a cluster runs: the same rows as the local plan, with its
    /// join in a mode Ballista keeps in one stage.
    #[tokio::test]
    async fn a_single_partition_join_stays_in_one_stage_with_the_same_rows() {
        let remote = engine(Some("df://127.0.0.1:1")).unwrap();
        let config = remote.session_config(super::super::tables::reproducible_config());
        assert!(
            !config
                .options()
                .optimizer
                .enable_join_dynamic_filter_pushdown
        );
        let ballista = config.ballista_config();
        assert_eq!(ballista.broadcast_join_threshold_bytes(), 0);
        assert_eq!(ballista.broadcast_join_threshold_rows(), 0);
        let ctx = SessionContext::new_with_config(config);
        ctx.sql(
            "create table a (k int, x double) as values (1, 0.1), (2, 0.2), (2, 1e17), (3, 0.3)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.sql(
            "create table b (k int, y varchar) as values (2, 'two'), (3, 'three'), (3, 'drei')",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let sql = "select b.y, sum(a.x) as s from a left join b on a.k = b.k group by b.y";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = |p: &Arc<dyn ExecutionPlan>| {
            datafusion::physical_plan::displayable(p.as_ref())
                .indent(true)
                .to_string()
        };
        assert!(
            shown(&plan).contains("mode=CollectLeft"),
            "{}",
            shown(&plan)
        );
        let staged = single_stage(Arc::clone(&plan)).unwrap();
        assert!(
            shown(&staged).contains("mode=Partitioned"),
            "{}",
            shown(&staged)
        );
        assert!(
            !shown(&staged).contains("CollectLeft"),
            "{}",
            shown(&staged)
        );
        let rows = |p: Arc<dyn ExecutionPlan>| {
            let task = ctx.task_ctx();
            async move {
                let batches = datafusion::physical_plan::collect(p, task).await.unwrap();
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        assert_eq!(rows(staged).await, rows(plan).await);
    }

    #[tokio::test]
    async fn a_closed_port_is_one_error_naming_the_url_and_the_fix() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("df://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let err = engine(Some(&url))
            .unwrap()
            .check_reachable()
            .await
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < CONNECT_TIMEOUT * 2, "{err}");
        assert!(err.contains(&url), "{err}");
        assert!(err.contains("cannot connect"), "{err}");
        assert!(err.contains("remove [engine] url"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        // Accepts connections but never speaks HTTP/2.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let err = engine(Some(&format!("df://127.0.0.1:{port}")))
            .unwrap()
            .check_reachable()
            .await
            .unwrap_err()
            .to_string();
        let took = started.elapsed();
        assert!(took < CONNECT_TIMEOUT + Duration::from_secs(3), "{took:?}");
        assert!(err.contains(&format!("df://127.0.0.1:{port}")), "{err}");
    }
}
