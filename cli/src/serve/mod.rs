//! `cairn serve`: one process, one port — the gRPC API (`cairn.v1.Cairn`),
//! Arrow Flight SQL (`flight.rs`), gRPC server reflection (v1 and v1alpha)
//! and health, and plain HTTP
//! (`/healthz`) — merged the way Ballista's scheduler merges tonic and axum
//! routes. Each request opens the project afresh (definitions edited on
//! disk are seen at once; opening 100 assets takes milliseconds) and goes
//! through the engine's facade; replies are converted at this edge.
//!
//! This first slice serves the read-only methods (Status, GetAsset,
//! Lineage, ColumnLineage, Explain, ListRuns, GetRun, Cost, AuditLog,
//! Provenance); the run queue behind Materialize, Backfill, WatchRun, CancelRun,
//! Checks (which records a run) is not built yet,
//! and those methods answer `UNIMPLEMENTED` saying so.

mod auth;
mod convert;
mod flight;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;

use tonic::{Request, Response, Status};

use cairn_engine::{MaterializeOptions, PartitionFilter, Workspace};
use cairn_proto::v1 as pb;
use cairn_proto::v1::cairn_server::{Cairn, CairnServer};

use crate::Failure;

/// The service: the project it serves.
#[derive(Clone)]
struct Api {
    project: PathBuf,
}

impl Api {
    /// A freshly opened workspace (opening reads files: off the async
    /// threads).
    async fn workspace(&self) -> Result<Workspace, Status> {
        let dir = self.project.clone();
        tokio::task::spawn_blocking(move || Workspace::open(&dir))
            .await
            .map_err(|e| Status::internal(format!("internal error: {e}")))?
            .map_err(engine_status)
    }

    /// Runs `f` on a freshly opened workspace, off the async threads.
    async fn with_workspace<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Workspace) -> Result<T, cairn_engine::EngineError> + Send + 'static,
    ) -> Result<T, Status> {
        let ws = self.workspace().await?;
        tokio::task::spawn_blocking(move || f(&ws).map_err(engine_status))
            .await
            .map_err(|e| Status::internal(format!("internal error: {e}")))?
    }
}

/// An engine error as a gRPC status, by whose fault it is.
fn engine_status(e: cairn_engine::EngineError) -> Status {
    if e.is_user_error() {
        Status::invalid_argument(e.to_string())
    } else {
        Status::internal(e.to_string())
    }
}

/// An optional RFC 3339 argument ("" for none).
fn time_arg(name: &str, text: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|e| {
            Status::invalid_argument(format!(
                "{name} `{text}` is not an RFC 3339 time ({e}), e.g. 2024-06-01T00:00:00Z"
            ))
        })
}

fn not_yet(method: &str) -> Status {
    Status::unimplemented(format!(
        "{method} arrives with the run queue; this server answers Status, GetAsset, Lineage, ColumnLineage, Explain, ListRuns, GetRun, Cost, AuditLog and Provenance"
    ))
}

type EventStream = Pin<Box<dyn futures::Stream<Item = Result<pb::RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Cairn for Api {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let req = request.into_inner();
        let statuses = self
            .with_workspace(move |ws| ws.status(&req.selection).map(|s| (s, req.partitions)))
            .await?;
        Ok(Response::new(convert::status_response(
            &statuses.0,
            statuses.1,
        )))
    }

    async fn get_asset(
        &self,
        request: Request<pb::GetAssetRequest>,
    ) -> Result<Response<pb::AssetDetails>, Status> {
        let name = request.into_inner().name;
        let details = self.with_workspace(move |ws| ws.details(&name)).await?;
        Ok(Response::new(convert::asset_details(&details)))
    }

    async fn lineage(
        &self,
        request: Request<pb::LineageRequest>,
    ) -> Result<Response<pb::LineageResponse>, Status> {
        let req = request.into_inner();
        let out = self
            .with_workspace(move |ws| convert::lineage(ws, &req))
            .await?;
        Ok(Response::new(out))
    }

    async fn column_lineage(
        &self,
        request: Request<pb::ColumnLineageRequest>,
    ) -> Result<Response<pb::ColumnNode>, Status> {
        let req = request.into_inner();
        let ws = self.workspace().await?;
        let depth = (req.depth > 0).then_some(req.depth as usize);
        let node = ws
            .column_lineage(&req.asset, &req.column, depth)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(convert::column_node(&node)))
    }

    async fn explain(
        &self,
        request: Request<pb::MaterializeRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        let req = request.into_inner();
        let units = self
            .with_workspace(move |ws| {
                ws.explain(&MaterializeOptions {
                    selection: req.selection,
                    force: req.force,
                    jobs: 1,
                    command: "cairn serve: Explain".to_owned(),
                    partitions: PartitionFilter::All,
                    backfill: None,
                })
            })
            .await?;
        Ok(Response::new(convert::explain(&units)))
    }

    async fn materialize(
        &self,
        _: Request<pb::MaterializeRequest>,
    ) -> Result<Response<pb::RunAccepted>, Status> {
        Err(not_yet("Materialize"))
    }

    async fn backfill(
        &self,
        _: Request<pb::BackfillRequest>,
    ) -> Result<Response<pb::RunAccepted>, Status> {
        Err(not_yet("Backfill"))
    }

    type WatchRunStream = EventStream;

    async fn watch_run(
        &self,
        _: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        Err(not_yet("WatchRun"))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 50,
            n => n as usize,
        };
        let runs = self.with_workspace(move |ws| ws.runs(limit)).await?;
        Ok(Response::new(convert::runs(&runs)))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let id = request.into_inner().run_id;
        let wanted = cairn_engine::RunId(id.clone());
        let found = self.with_workspace(move |ws| ws.run(&wanted)).await?;
        match found {
            Some((run, attempts)) => Ok(Response::new(convert::run(&run, &attempts))),
            None => Err(Status::not_found(format!("no run `{id}`"))),
        }
    }

    async fn cancel_run(
        &self,
        _: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        Err(not_yet("CancelRun"))
    }

    async fn checks(
        &self,
        _: Request<pb::ChecksRequest>,
    ) -> Result<Response<pb::ChecksResponse>, Status> {
        Err(not_yet("Checks"))
    }

    async fn cost(
        &self,
        request: Request<pb::CostRequest>,
    ) -> Result<Response<pb::CostResponse>, Status> {
        let req = request.into_inner();
        let since = time_arg("since", &req.since)?;
        let costs = self
            .with_workspace(move |ws| ws.cost(&req.selection, since, req.rollup))
            .await?;
        Ok(Response::new(convert::cost(&costs)))
    }

    async fn audit_log(
        &self,
        request: Request<pb::AuditLogRequest>,
    ) -> Result<Response<pb::AuditLogResponse>, Status> {
        let req = request.into_inner();
        let since = time_arg("since", &req.since)?;
        let who = (!req.who.is_empty()).then_some(req.who);
        let entries = self
            .with_workspace(move |ws| ws.audit_log(since, who.as_deref()))
            .await?;
        Ok(Response::new(convert::audit_log(&entries)))
    }

    async fn provenance(
        &self,
        request: Request<pb::ProvenanceRequest>,
    ) -> Result<Response<pb::ProvenanceNode>, Status> {
        let req = request.into_inner();
        let version = (req.version > 0).then_some(req.version);
        let node = self
            .with_workspace(move |ws| ws.provenance(&req.asset, &req.partition, version))
            .await?;
        Ok(Response::new(convert::provenance(&node)))
    }
}

/// Serves `project` on `listen` (else `[server] listen` in cairn.toml)
/// until Ctrl-C or SIGTERM.
pub(crate) async fn run(project: PathBuf, listen: &Option<String>) -> Result<u8, Failure> {
    // Fail fast on a broken project, before binding.
    let server = Workspace::open(&project)?.project().config.server.clone();
    let (listen, given_by) = match listen {
        Some(listen) => (listen.as_str(), "--listen"),
        None => (server.listen.as_str(), "[server] listen in cairn.toml:"),
    };
    let addr: SocketAddr = listen.parse().map_err(|e| {
        Failure::Usage(format!(
            "{given_by} `{listen}`: {e}; give host:port, e.g. 127.0.0.1:7575"
        ))
    })?;
    let tokens = auth::Tokens::from_config(&server)?;
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "refusing to listen on {addr} without tokens: anyone who can reach it could start runs; configure [server.tokens] in cairn.toml (e.g. `ops = {{ role = \"operator\", env = \"CAIRN_TOKEN_OPS\" }}`) or listen on 127.0.0.1"
        )));
    }
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<CairnServer<Api>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Failure::Runtime(format!("gRPC reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Failure::Runtime(format!("gRPC reflection: {e}")))?;
    let api = Api { project };
    let grpc = tonic::service::Routes::new(flight::service(api.clone()))
        .add_service(CairnServer::new(api))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router();
    // Last, so that it covers every route above: gRPC, Flight SQL, HTTP.
    let app = grpc
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(tokens),
            auth::authorize,
        ));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
    // Not eprintln!: a closed stderr must not stop the server.
    let _ = writeln!(
        std::io::stderr(),
        "cairn serve: listening on {bound} (gRPC cairn.v1.Cairn, Flight SQL, reflection, health; HTTP /healthz)"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| Failure::Runtime(format!("serving: {e}")))?;
    let _ = writeln!(std::io::stderr(), "cairn serve: stopped");
    Ok(0)
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
