//! `cairn serve`: one process, one port — the gRPC API (`cairn.v1.Cairn`),
//! Arrow Flight SQL (`flight.rs`), gRPC server reflection (v1 and v1alpha)
//! and health, and plain HTTP (`/healthz`), all behind the bearer-token
//! check of `auth.rs` — merged the way Ballista's scheduler merges tonic and axum
//! routes; the same methods as JSON over HTTP for the web page
//! (`http.rs`, `/api/v1/<Method>`) and the page itself (`page.rs`, `/`). Each request opens the project afresh (definitions edited on
//! disk are seen at once; opening 100 assets takes milliseconds) and goes
//! through the engine's facade; replies are converted at this edge.
//!
//! Materialize and Backfill go through the engine's run queue
//! (`cairn_engine::RunQueue`, persisted in the catalog): they answer with
//! the run id at once; WatchRun streams a run's updates live; CancelRun
//! stops one. On SIGTERM/Ctrl-C the server stops accepting, the queue
//! drains (in-flight units commit, for at most `[server]
//! shutdown_grace_seconds`) and
//! unfinished runs are resumed by the next start.

mod alerts;
mod auth;
mod convert;
mod flight;
mod http;
mod page;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;

use tonic::{Request, Response, Status};

use axum::serve::ListenerExt;
use cairn_engine::{
    DefinitionsCache, MaterializeOptions, PartitionFilter, QueueSettings, RunId, RunQueue,
    RunRequest, Workspace,
};
use cairn_proto::v1 as pb;
use cairn_proto::v1::cairn_server::{Cairn, CairnServer};

use crate::Failure;
use crate::commands::Environment;

/// The service: the project it serves and its run queue.
#[derive(Clone)]
struct Api {
    project: PathBuf,
    env: Environment,
    queue: RunQueue,
    /// Definitions reused while the project's files are unchanged.
    definitions: Arc<DefinitionsCache>,
    /// Whether requests carry tokens (`[server.tokens]` is not empty).
    tokens: bool,
}

impl Api {
    /// The project as it is on disk now (definitions parsed again only
    /// when a definition file changed; catalog and storage opened afresh),
    /// off the async threads.
    async fn workspace(&self) -> Result<Workspace, Status> {
        let (dir, cache) = (self.project.clone(), Arc::clone(&self.definitions));
        let ws = tokio::task::spawn_blocking(move || Workspace::open_cached(&dir, &cache))
            .await
            .map_err(|e| Status::internal(format!("internal error: {e}")))?
            .map_err(engine_status)?;
        Ok(self.env.apply(ws))
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

impl Api {
    /// Queues `run` for `principal`: the run id at once.
    async fn submit(
        &self,
        run: RunRequest,
        principal: Option<String>,
    ) -> Result<Response<pb::RunAccepted>, Status> {
        let submitted = self
            .queue
            .submit(run, principal)
            .await
            .map_err(engine_status)?;
        Ok(Response::new(pb::RunAccepted {
            run_id: submitted.run_id.0,
            attached: submitted.attached,
        }))
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
    crate::commands::parse_instant(&format!("{name} `{text}`"), text)
        .map(Some)
        .map_err(Status::invalid_argument)
}

type EventStream = Pin<Box<dyn futures::Stream<Item = Result<pb::RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Cairn for Api {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let req = request.into_inner();
        let (statuses, partitions, undelivered) = self
            .with_workspace(move |ws| {
                let undelivered = crate::commands::alerts::undelivered_count(ws).transpose()?;
                Ok((ws.status(&req.selection)?, req.partitions, undelivered))
            })
            .await?;
        Ok(Response::new(pb::StatusResponse {
            undelivered_alerts: undelivered,
            ..convert::status_response(&statuses, partitions)
        }))
    }

    async fn get_asset(
        &self,
        request: Request<pb::GetAssetRequest>,
    ) -> Result<Response<pb::AssetDetails>, Status> {
        let name = request.into_inner().name;
        let details = self
            .with_workspace(move |ws| {
                let d = ws.details(&name)?;
                Ok(convert::asset_details(&d, &|path| ws.file_url(path)))
            })
            .await?;
        Ok(Response::new(details))
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
        request: Request<pb::MaterializeRequest>,
    ) -> Result<Response<pb::RunAccepted>, Status> {
        let principal = auth::principal(&request);
        let req = request.into_inner();
        let run = RunRequest::Materialize {
            selection: req.selection,
            force: req.force,
            partitions: req.partitions,
            jobs: req.jobs as usize,
        };
        self.submit(run, principal).await
    }

    async fn backfill(
        &self,
        request: Request<pb::BackfillRequest>,
    ) -> Result<Response<pb::RunAccepted>, Status> {
        let principal = auth::principal(&request);
        let req = request.into_inner();
        let jobs = req.jobs as usize;
        let run = if req.resume.is_empty() {
            let text = |s: String| (!s.is_empty()).then_some(s);
            RunRequest::Backfill {
                selection: req.selection,
                from: text(req.from),
                to: text(req.to),
                partitions: (!req.partitions.is_empty()).then_some(req.partitions),
                force: req.force,
                jobs,
            }
        } else {
            RunRequest::ResumeBackfill {
                id: cairn_engine::BackfillId(req.resume),
                jobs,
            }
        };
        self.submit(run, principal).await
    }

    type WatchRunStream = EventStream;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let pb::WatchRunRequest {
            run_id: id,
            reports,
        } = request.into_inner();
        let watch = self
            .queue
            .watch(&RunId(id.clone()))
            .map_err(engine_status)?
            .ok_or_else(|| Status::not_found(format!("no run `{id}`")))?;
        let past = futures::stream::iter(watch.past);
        let live = futures::stream::unfold(watch.live, |live| async move {
            let mut rx = live?;
            let update = rx.recv().await?;
            Some((update, Some(rx)))
        });
        let events = past
            .chain(live)
            .filter_map(move |u| std::future::ready(convert::run_event(&u, reports).map(Ok)));
        Ok(Response::new(Box::pin(events)))
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
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let principal = auth::principal(&request);
        let id = RunId(request.into_inner().run_id);
        self.queue
            .cancel(&id, principal)
            .await
            .map_err(|e| match e {
                cairn_engine::EngineError::Usage(m) => Status::failed_precondition(m),
                e => engine_status(e),
            })?
            .ok_or_else(|| Status::not_found(format!("no run `{id}`")))?;
        let (run, attempts) = self
            .with_workspace({
                let id = id.clone();
                move |ws| ws.run(&id)
            })
            .await?
            .ok_or_else(|| Status::not_found(format!("no run `{id}`")))?;
        Ok(Response::new(convert::run(&run, &attempts)))
    }

    async fn checks(
        &self,
        request: Request<pb::ChecksRequest>,
    ) -> Result<Response<pb::ChecksResponse>, Status> {
        let principal = auth::principal(&request);
        let selection = request.into_inner().selection;
        let mut ws = self.workspace().await?;
        if let Some(p) = principal {
            ws = ws.with_principal(p);
        }
        let (run_id, reports) = ws
            .check(&selection, "cairn serve: Checks")
            .await
            .map_err(engine_status)?;
        Ok(Response::new(convert::checks(run_id.as_ref(), &reports)))
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

    async fn tick(
        &self,
        request: Request<pb::TickRequest>,
    ) -> Result<Response<pb::TickResponse>, Status> {
        let at = time_arg("at", &request.into_inner().at)?.unwrap_or_else(chrono::Utc::now);
        let report = self.queue.tick(at).await.map_err(engine_status)?;
        Ok(Response::new(convert::tick(&report)))
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

    async fn graph(
        &self,
        _request: Request<pb::GraphRequest>,
    ) -> Result<Response<pb::GraphResponse>, Status> {
        let graph = self.with_workspace(|ws| Ok(convert::graph(ws))).await?;
        Ok(Response::new(graph))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::Identity>, Status> {
        let caller = request.extensions().get::<auth::Principal>();
        Ok(Response::new(pb::Identity {
            name: caller.map(|p| p.name.clone()).unwrap_or_default(),
            // Without tokens every caller may do everything (loopback only).
            role: caller
                .map_or(cairn_assets::Role::Operator, |p| p.role)
                .as_str()
                .to_owned(),
            tokens: self.tokens,
        }))
    }

    type WatchRunsStream = EventStream;

    async fn watch_runs(
        &self,
        _request: Request<pb::WatchRunsRequest>,
    ) -> Result<Response<Self::WatchRunsStream>, Status> {
        let live = futures::stream::unfold(self.queue.watch_all(), |mut rx| async move {
            let update = rx.recv().await?;
            Some((update, rx))
        });
        let events = live.filter_map(|u| std::future::ready(convert::run_event(&u, false).map(Ok)));
        Ok(Response::new(Box::pin(events)))
    }
}

/// Serves `project` on `listen` (else `[server] listen` in cairn.toml)
/// until Ctrl-C or SIGTERM.
pub(crate) async fn run(project: PathBuf, listen: &Option<String>) -> Result<u8, Failure> {
    // Fail fast on a broken project, before binding.
    let opened = Workspace::open(&project)?;
    let server = opened.project().config.server.clone();
    // A source's `poll` shorter than the tick makes the server tick that often.
    let poll = opened
        .project()
        .sources
        .values()
        .filter_map(|s| s.poll)
        .min();
    drop(opened);
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
    let env = Environment::read()?;
    let max_concurrent_runs = usize::try_from(server.max_concurrent_runs).unwrap_or(usize::MAX);
    let definitions = Arc::new(DefinitionsCache::default());
    let queue = RunQueue::start(QueueSettings {
        project: project.clone(),
        definitions: Arc::clone(&definitions),
        max_concurrent_runs,
        configure: {
            let env = env.clone();
            Arc::new(move |ws| env.apply(ws))
        },
    })
    .await?;
    // Automation: the same evaluation as `cairn tick`, on a timer, in a
    // task of its own (a slow run never delays a tick).
    let every = std::time::Duration::from_secs(poll.map_or(server.tick_seconds, |poll| {
        poll.as_secs().clamp(1, server.tick_seconds)
    }));
    let ticker = queue.clone();
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            if let Err(e) = ticker.tick(chrono::Utc::now()).await {
                tracing::warn!("automation tick: {e}");
            }
        }
    });
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
    let api = Api {
        project,
        env,
        queue: queue.clone(),
        definitions,
        tokens: !tokens.is_empty(),
    };
    alerts::start(api.clone());
    let json_api = http::routes(api.clone());
    let grpc = tonic::service::Routes::new(flight::service(api.clone()))
        .add_service(CairnServer::new(api))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router();
    // Last, so that it covers every route above: gRPC, Flight SQL, the
    // JSON API, HTTP. The page's own files come after: they hold no data,
    // and a browser loads them before it can send a token.
    let app = grpc
        .merge(json_api)
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(tokens),
            auth::authorize,
        ))
        .merge(page::routes());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
    // Not eprintln!: a closed stderr must not stop the server.
    let _ = writeln!(
        std::io::stderr(),
        "cairn serve: listening on {bound} (gRPC cairn.v1.Cairn, Flight SQL, reflection, health; web page http://{bound}/, JSON API /api/v1/, /healthz)"
    );
    // On a signal: drain the queue, then stop accepting and wait a little
    // for open calls (a watcher of a drained run sees its stream end).
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let grace = std::time::Duration::from_secs(server.shutdown_grace_seconds);
    let drain = {
        let queue = queue.clone();
        async move {
            shutdown().await;
            let _ = writeln!(
                std::io::stderr(),
                "cairn serve: stopping; letting in-flight units commit (at most {} s)",
                grace.as_secs()
            );
            queue.shutdown(grace).await;
            let _ = stopping.send(());
        }
    };
    // Replies and their trailers are small separate writes: without
    // TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to a call.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = axum::serve(listener, app).with_graceful_shutdown(drain);
    tokio::select! {
        served = serving => served.map_err(|e| Failure::Runtime(format!("serving: {e}")))?,
        () = async {
            let _ = stopped.await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        } => {}
    }
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
