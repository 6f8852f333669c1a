//! A Ballista scheduler and executors hosted in this process on free
//! loopback ports, each configured as the `ballista-scheduler` and
//! `ballista-executor` binaries configure themselves: s3:// files through
//! ballista-core's registry (`AmazonS3Builder::from_env`, then the `s3.*`
//! options a query brings). Shared by the e2e tests (`tests/e2e/ballista.rs`)
//! and the `ballista_cluster` example the benchmarks run against — cheaper
//! than `cargo install`ing the binaries, and the same gRPC and Arrow Flight
//! services over the network.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista::prelude::SessionContextExt;
use ballista_core::object_store::{
    runtime_env_with_s3_support, session_config_with_s3_support, session_state_with_s3_support,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::prelude::SessionContext;

/// A scheduler and its executors, served by their own runtime (stopped on
/// drop).
pub struct BallistaHost {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    _work_dirs: Vec<tempfile::TempDir>,
}

/// S3 credentials an executor holds as its own (what its environment
/// would give it): `(access key id, secret)`.
pub type Credentials = (&'static str, &'static str);

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl BallistaHost {
    /// A scheduler and `executors` executors of `vcores` task slots each,
    /// ready once a query has run (if there is an executor to run it). With `credentials`, the executors use
    /// them for S3; otherwise they read `AWS_*` from the environment.
    pub fn start(
        executors: usize,
        vcores: usize,
        credentials: Option<Credentials>,
    ) -> BallistaHost {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let port = free_port();
        let config = SchedulerConfig {
            bind_host: "127.0.0.1".into(),
            external_host: "127.0.0.1".into(),
            bind_port: port,
            ..SchedulerConfig::default()
        }
        // Plans naming s3:// files deserialize with an S3 store for them.
        .with_override_config_producer(Arc::new(session_config_with_s3_support))
        .with_override_session_builder(Arc::new(session_state_with_s3_support));
        runtime.spawn(async move {
            let cluster = BallistaCluster::new_from_config(&config).await.unwrap();
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            start_server(cluster, addr, Arc::new(config)).await.unwrap();
        });
        wait_for_port(port, "the scheduler");

        let mut work_dirs = Vec::new();
        for _ in 0..executors {
            let (flight_port, grpc_port) = (free_port(), free_port());
            let work_dir = tempfile::tempdir().unwrap();
            let executor = ExecutorProcessConfig {
                bind_host: "127.0.0.1".into(),
                external_host: Some("127.0.0.1".into()),
                port: flight_port,
                grpc_port,
                scheduler_host: "127.0.0.1".into(),
                scheduler_port: port,
                vcores,
                work_dir: Some(work_dir.path().to_string_lossy().into_owned()),
                override_config_producer: Some(Arc::new(move || {
                    let mut config = session_config_with_s3_support();
                    if let Some((key, secret)) = credentials {
                        let options = config.options_mut();
                        options.set("s3.access_key_id", key).unwrap();
                        options.set("s3.secret_access_key", secret).unwrap();
                    }
                    config
                })),
                override_runtime_producer: Some(Arc::new(runtime_env_with_s3_support)),
                ..ExecutorProcessConfig::default()
            };
            runtime.spawn(async move {
                start_executor_process(Arc::new(executor)).await.unwrap();
            });
            wait_for_port(flight_port, "an executor");
            work_dirs.push(work_dir);
        }

        let host = BallistaHost {
            runtime: Some(runtime),
            port,
            _work_dirs: work_dirs,
        };
        // With no executor, no query runs: ready once the scheduler is.
        if executors > 0 {
            host.wait_until_it_runs_a_query();
        }
        host
    }

    /// `df://127.0.0.1:PORT`, for `[engine] url`.
    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// Ready once a query runs through Ballista's own client (an executor
    /// has registered).
    fn wait_until_it_runs_a_query(&self) {
        let url = self.url();
        let runtime = self.runtime.as_ref().unwrap();
        runtime.block_on(async {
            let ctx = SessionContext::remote(&url).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ran = tokio::time::timeout(Duration::from_secs(10), async {
                    ctx.sql("select 1 as one").await?.collect().await
                })
                .await;
                match ran {
                    Ok(Ok(batches)) if batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1 => {
                        return;
                    }
                    other => assert!(
                        Instant::now() < deadline,
                        "the cluster ran no query in 30 s: {other:?}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

impl Drop for BallistaHost {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
