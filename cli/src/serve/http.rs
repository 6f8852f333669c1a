//! The web page's API: every method of `cairn.v1.Cairn` is also `POST
//! /api/v1/<Method>`, its request message as JSON in the body (proto field
//! names; an omitted field takes its default, an unknown one is refused;
//! an empty body is the empty message) and its reply message as JSON — the very handlers gRPC calls,
//! with the same tokens and roles (`auth.rs` runs first), so the page, the
//! CLI and any gRPC client see one API. Streaming methods answer
//! newline-delimited JSON (`application/x-ndjson`), one message a line,
//! written as it happens. A refusal or failure is the gRPC status as an
//! HTTP status with `{"code": "invalid_argument", "message": "…"}`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Code, Status};
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use cairn_proto::v1::cairn_server::Cairn;

use super::Api;
use super::auth::{METHOD_PREFIXES, Principal};

/// Where the JSON API is mounted.
const PREFIX: &str = "/api/v1/";

/// The largest request body accepted (requests are a few names).
const MAX_BODY: usize = 1 << 20;

/// The routes of the JSON API. Replies are gzipped for clients that
/// accept it (a 10,000-asset Status is ~7 MB of JSON, ~10x less gzipped),
/// except streams: a compressor holds lines back until it has enough.
pub(super) fn routes(api: Api) -> axum::Router {
    debug_assert!(METHOD_PREFIXES.contains(&PREFIX));
    axum::Router::new()
        .route("/api/v1/{method}", axum::routing::post(call))
        .with_state(api)
        .layer(compression())
}

/// gzip where the client accepts it and the reply is worth it (not
/// streams, not tiny replies).
pub(super) fn compression() -> tower_http::compression::CompressionLayer<impl Predicate> {
    tower_http::compression::CompressionLayer::new()
        // Level 1: most of the saving (JSON of names and hashes) at a
        // fraction of the default level's time.
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson")),
        )
}

/// One call: the method is read from the raw path, the same text the
/// token check looked at.
async fn call(State(api): State<Api>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .to_owned();
    let principal = parts.extensions.get::<Principal>().cloned();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => {
            return error_reply(&Status::invalid_argument(format!(
                "request body: {e} (at most {MAX_BODY} bytes)"
            )));
        }
    };
    dispatch(&api, &method, principal, &body)
        .await
        .unwrap_or_else(|status| error_reply(&status))
}

/// Calls `method` of the gRPC service with the decoded request.
async fn dispatch(
    api: &Api,
    method: &str,
    principal: Option<Principal>,
    body: &[u8],
) -> Result<Response, Status> {
    macro_rules! unary {
        ($handler:ident) => {
            json(
                Cairn::$handler(api, request(body, principal)?)
                    .await?
                    .get_ref(),
            )
        };
    }
    macro_rules! streaming {
        ($handler:ident) => {
            ndjson(
                Cairn::$handler(api, request(body, principal)?)
                    .await?
                    .into_inner(),
            )
        };
    }
    Ok(match method {
        "Status" => unary!(status),
        "GetAsset" => unary!(get_asset),
        "Lineage" => unary!(lineage),
        "ColumnLineage" => unary!(column_lineage),
        "Explain" => unary!(explain),
        "Materialize" => unary!(materialize),
        "Backfill" => unary!(backfill),
        "WatchRun" => streaming!(watch_run),
        "ListRuns" => unary!(list_runs),
        "GetRun" => unary!(get_run),
        "CancelRun" => unary!(cancel_run),
        "Checks" => unary!(checks),
        "Cost" => unary!(cost),
        "AuditLog" => unary!(audit_log),
        "Provenance" => unary!(provenance),
        "Tick" => unary!(tick),
        "Graph" => unary!(graph),
        "WhoAmI" => unary!(who_am_i),
        "WatchRuns" => streaming!(watch_runs),
        _ => {
            return Err(Status::not_found(format!(
                "no method `{method}` in the API: POST /api/v1/<Method> takes the methods of service cairn.v1.Cairn (e.g. /api/v1/Status)"
            )));
        }
    })
}

/// The request message from its JSON, carrying the caller like a gRPC
/// request does.
fn request<T: DeserializeOwned + Default>(
    body: &[u8],
    principal: Option<Principal>,
) -> Result<tonic::Request<T>, Status> {
    let message = if body.trim_ascii().is_empty() {
        T::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Status::invalid_argument(format!(
                "request body is not the method's request message as JSON: {e}; send e.g. {{\"selection\": [\"orders\"]}} with proto field names"
            ))
        })?
    };
    let mut request = tonic::Request::new(message);
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    Ok(request)
}

/// A reply message as JSON.
fn json<T: Serialize>(message: &T) -> Response {
    match serde_json::to_vec(message) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => error_reply(&Status::internal(format!("internal error: {e}"))),
    }
}

/// A stream of messages as JSON lines, each sent as it comes; a failure
/// mid-stream is the last line, as `{"code", "message"}`.
fn ndjson<T: Serialize + Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
) -> Response {
    let lines = stream.map(|item| {
        let mut line = match item {
            Ok(message) => serde_json::to_vec(&message)
                .unwrap_or_else(|e| error_body(&Status::internal(format!("internal error: {e}")))),
            Err(status) => error_body(&status),
        };
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

/// A gRPC status as an HTTP reply with a JSON body.
pub(super) fn error_reply(status: &Status) -> Response {
    (
        http_status(status.code()),
        [(header::CONTENT_TYPE, "application/json")],
        error_body(status),
    )
        .into_response()
}

/// `{"code": "not_found", "message": "…"}`.
fn error_body(status: &Status) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        code: &'a str,
        message: &'a str,
    }
    serde_json::to_vec(&ErrorBody {
        code: code_name(status.code()),
        message: status.message(),
    })
    .unwrap_or_default()
}

/// The HTTP status people expect for a gRPC code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// gRPC's name of a code, in snake case.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}
