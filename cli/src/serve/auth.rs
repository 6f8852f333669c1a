//! Tokens and roles for `cairn serve`: reads each `[server.tokens]` secret
//! from its environment variable at startup, recognises the caller of every
//! request — gRPC, Flight SQL and plain HTTP alike, as one axum middleware
//! over the whole router — and refuses a missing or unknown token
//! (UNAUTHENTICATED, HTTP 401) and a viewer calling a method that starts,
//! cancels or records runs (PERMISSION_DENIED, HTTP 403). An admitted
//! request carries its caller as a [`Principal`] in its extensions, which
//! handlers read with [`principal`].
//!
//! Secrets are kept only as blake3 digests once read, compared in constant
//! time, and never appear in a message or a log line. With no tokens
//! configured every request passes without a principal (the engine then
//! records the OS user); `run()` only listens on loopback then.

use std::ffi::OsString;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use cairn_assets::{Role, ServerConfig, TokenConfig};

use crate::Failure;

/// Methods only an operator may call: they start or cancel runs, or
/// (Checks) record a run and its check results.
const OPERATOR_ONLY: [&str; 5] = ["Tick", "Materialize", "Backfill", "CancelRun", "Checks"];

/// Where a method of `cairn.v1.Cairn` is reached: gRPC, and the web page's
/// JSON API (`serve/http.rs`). Compared with the raw request path — the
/// JSON API dispatches on the raw path too, so a percent-encoded name
/// reaches no method.
pub(super) const METHOD_PREFIXES: [&str; 2] = ["/cairn.v1.Cairn/", "/api/v1/"];

/// Whether `path` calls a method only an operator may call.
fn operator_only(path: &str) -> bool {
    METHOD_PREFIXES
        .iter()
        .filter_map(|prefix| path.strip_prefix(prefix))
        .any(|method| OPERATOR_ONLY.contains(&method))
}

/// blake3 key-derivation context for secret digests: a digest of a Cairn
/// token can never collide with any other blake3 use in the program.
const DIGEST_CONTEXT: &str = "cairn serve 2026-11 bearer token secret";

/// Who made a request: inserted into the request's extensions once its
/// token is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Principal {
    /// The token's name in `[server.tokens]`.
    pub(super) name: String,
    /// What its holder may do.
    pub(super) role: Role,
}

/// The name of the token that made `request`, for the record of who
/// started a run; `None` when the server has no tokens (the engine then
/// records the OS user).
pub(super) fn principal<T>(request: &tonic::Request<T>) -> Option<String> {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone())
}

/// One configured token; its secret only as a digest.
struct Token {
    principal: Principal,
    digest: blake3::Hash,
}

/// The server's tokens, secrets read at startup. Empty when `[server.tokens]`
/// is: then nothing is checked.
pub(super) struct Tokens {
    tokens: Vec<Token>,
}

/// Why a request is refused; the text says what to do and never holds the
/// presented secret.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No usable token: gRPC UNAUTHENTICATED, HTTP 401.
    Unauthenticated(String),
    /// A valid token whose role may not do this: gRPC PERMISSION_DENIED,
    /// HTTP 403.
    Forbidden(String),
}

impl Tokens {
    /// Reads every token's secret from its environment variable. A missing,
    /// empty or unsendable secret, or two tokens sharing one, is a usage
    /// error naming the tokens and variables (every problem at once), never
    /// the secret.
    pub(super) fn from_config(config: &ServerConfig) -> Result<Tokens, Failure> {
        Tokens::from_lookup(config, |var| std::env::var_os(var))
    }

    /// [`Tokens::from_config`] with the environment given as a function.
    fn from_lookup(
        config: &ServerConfig,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Tokens, Failure> {
        let mut problems = Vec::new();
        let mut tokens: Vec<(Token, &str)> = Vec::new();
        for (name, token) in &config.tokens {
            match secret_digest(name, token, &lookup) {
                Ok(digest) => tokens.push((
                    Token {
                        principal: Principal {
                            name: name.clone(),
                            role: token.role,
                        },
                        digest,
                    },
                    &token.env,
                )),
                Err(problem) => problems.push(problem),
            }
        }
        for (i, (a, a_env)) in tokens.iter().enumerate() {
            for (b, b_env) in &tokens[i + 1..] {
                if a.digest == b.digest {
                    problems.push(format!(
                        "tokens `{}` and `{}` in [server.tokens] have the same secret ({a_env} and {b_env}); give each token its own secret so the server can tell who called",
                        a.principal.name, b.principal.name
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Tokens {
                tokens: tokens.into_iter().map(|(t, _)| t).collect(),
            })
        } else {
            Err(Failure::Usage(problems.join("\nerror: ")))
        }
    }

    /// No tokens configured: nothing is checked.
    pub(super) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token whose secret is `presented`. Every stored digest is
    /// compared, without stopping at a match, and each comparison is
    /// constant-time (`blake3::Hash`'s `==`); comparing digests rather than
    /// secrets also hides the secrets' lengths.
    fn identify(&self, presented: &[u8]) -> Option<&Principal> {
        let presented = digest(presented);
        let mut found = None;
        for token in &self.tokens {
            if token.digest == presented {
                found = Some(&token.principal);
            }
        }
        found
    }

    /// Whether a request for `path` with this `authorization` header may
    /// pass, and as whom (`None` when no tokens are configured).
    fn admit(
        &self,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<Option<Principal>, Refusal> {
        if self.is_empty() {
            return Ok(None);
        }
        let Some(value) = authorization else {
            return Err(Refusal::Unauthenticated(
                "this server needs a token: send `authorization: Bearer <secret>`, the secret being the value of a [server.tokens] entry's environment variable on the server".to_owned(),
            ));
        };
        let Some(secret) = bearer(value.as_bytes()) else {
            return Err(Refusal::Unauthenticated(
                "the `authorization` header is not `Bearer <secret>`: send `authorization: Bearer <secret>` with the secret of a token in [server.tokens]".to_owned(),
            ));
        };
        let Some(principal) = self.identify(secret) else {
            return Err(Refusal::Unauthenticated(
                "the bearer token is not one of this server's tokens: send `authorization: Bearer <secret>` with the secret of a token in [server.tokens]".to_owned(),
            ));
        };
        if principal.role != Role::Operator && operator_only(path) {
            return Err(Refusal::Forbidden(format!(
                "token `{}` is a {}; {path} starts, cancels or records runs and needs a token with role = \"operator\" in [server.tokens]",
                principal.name,
                principal.role.as_str()
            )));
        }
        Ok(Some(principal.clone()))
    }
}

/// The digest a secret is kept and compared as.
fn digest(secret: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    hasher.update(secret);
    hasher.finalize()
}

/// One token's secret, read from its variable, as a digest; or what is
/// wrong and how to fix it.
fn secret_digest(
    name: &str,
    token: &TokenConfig,
    lookup: &impl Fn(&str) -> Option<OsString>,
) -> Result<blake3::Hash, String> {
    let var = &token.env;
    if var.is_empty() || var.contains(['=', '\0']) {
        return Err(format!(
            "token `{name}` in [server.tokens] has env = {var:?}, which is not an environment variable name; name the variable holding its secret, e.g. env = \"CAIRN_TOKEN_{}\"",
            name.to_ascii_uppercase()
        ));
    }
    let Some(secret) = lookup(var).filter(|s| !s.is_empty()) else {
        return Err(format!(
            "token `{name}` in [server.tokens]: environment variable {var} is not set or empty; set it to the token's secret before starting the server (e.g. `export {var}=$(openssl rand -hex 32)`) or remove the token from cairn.toml"
        ));
    };
    // An `authorization` header carries visible ASCII only; a secret with
    // anything else could never be presented.
    let Some(secret) = secret
        .to_str()
        .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
    else {
        return Err(format!(
            "token `{name}` in [server.tokens]: the secret in {var} has spaces, control or non-ASCII characters, which an `authorization` header cannot carry; use printable ASCII only, e.g. `export {var}=$(openssl rand -hex 32)`"
        ));
    };
    Ok(digest(secret.as_bytes()))
}

/// The secret in an `authorization: Bearer <secret>` value (the scheme is
/// case-insensitive, RFC 9110).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let secret = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !secret.is_empty()).then_some(secret)
}

/// The middleware over the whole router: admits the request (inserting its
/// [`Principal`]) or answers the refusal itself — a gRPC trailers-only
/// status for gRPC calls (Flight SQL included), 401/403 with the JSON
/// API's error body under `/api/`, with a one-line text for other HTTP.
pub(super) async fn authorize(
    State(tokens): State<Arc<Tokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    match tokens.admit(path, request.headers().get(header::AUTHORIZATION)) {
        Ok(principal) => {
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(refusal) => {
            tracing::info!(path, ?refusal, "cairn serve: refused");
            if path.starts_with("/api/") {
                return super::http::error_reply(&refusal.into_status());
            }
            refuse(is_grpc(request.headers()), refusal)
        }
    }
}

/// A gRPC request (content type `application/grpc`, `application/grpc+proto`, ...).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl Refusal {
    /// As a gRPC status.
    fn into_status(self) -> tonic::Status {
        match self {
            Refusal::Unauthenticated(message) => tonic::Status::unauthenticated(message),
            Refusal::Forbidden(message) => tonic::Status::permission_denied(message),
        }
    }
}

/// The reply to a refused request.
fn refuse(grpc: bool, refusal: Refusal) -> Response {
    match (grpc, refusal) {
        (true, refusal) => refusal.into_status().into_http(),
        (false, Refusal::Unauthenticated(message)) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{message}\n"),
        )
            .into_response(),
        (false, Refusal::Forbidden(message)) => {
            (StatusCode::FORBIDDEN, format!("{message}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::collections::BTreeMap;

    use super::*;

    const VIEWER_SECRET: &str = "viewer-secret-0123456789";
    const OPERATOR_SECRET: &str = "operator-secret-0123456789";

    fn config(tokens: &[(&str, Role, &str)]) -> ServerConfig {
        ServerConfig {
            tokens: tokens
                .iter()
                .map(|(name, role, env)| {
                    (
                        (*name).to_owned(),
                        TokenConfig {
                            role: *role,
                            env: (*env).to_owned(),
                        },
                    )
                })
                .collect(),
            ..ServerConfig::default()
        }
    }

    fn tokens_from(env: &[(&str, &str)]) -> Result<Tokens, Failure> {
        let env: BTreeMap<String, OsString> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Tokens::from_lookup(
            &config(&[
                ("ci", Role::Viewer, "CAIRN_TOKEN_CI"),
                ("ops", Role::Operator, "CAIRN_TOKEN_OPS"),
            ]),
            |var| env.get(var).cloned(),
        )
    }

    fn two_tokens() -> Tokens {
        accepted(tokens_from(&[
            ("CAIRN_TOKEN_CI", VIEWER_SECRET),
            ("CAIRN_TOKEN_OPS", OPERATOR_SECRET),
        ]))
    }

    fn accepted(result: Result<Tokens, Failure>) -> Tokens {
        match result {
            Ok(tokens) => tokens,
            Err(Failure::Usage(message) | Failure::Runtime(message)) => panic!("{message}"),
            Err(Failure::Reported(code)) => panic!("exit {code}"),
        }
    }

    fn usage(result: Result<Tokens, Failure>) -> String {
        match result {
            Err(Failure::Usage(message)) => message,
            Err(_) => panic!("not a usage error"),
            Ok(_) => panic!("accepted"),
        }
    }

    fn admit(tokens: &Tokens, path: &str, header: Option<&str>) -> Result<Option<String>, Refusal> {
        let header = header.map(|h| HeaderValue::from_str(h).unwrap());
        tokens
            .admit(path, header.as_ref())
            .map(|p| p.map(|p| format!("{} {}", p.name, p.role.as_str())))
    }

    fn is_unauthenticated(r: &Result<Option<String>, Refusal>) -> bool {
        matches!(r, Err(Refusal::Unauthenticated(_)))
    }

    #[test]
    fn roles_decide_by_path() {
        let tokens = two_tokens();
        let viewer = format!("Bearer {VIEWER_SECRET}");
        let operator = format!("Bearer {OPERATOR_SECRET}");
        for path in [
            "/cairn.v1.Cairn/Status",
            "/cairn.v1.Cairn/ListRuns",
            "/api/v1/Status",
            "/api/v1/WatchRuns",
            "/healthz",
        ] {
            assert_eq!(
                admit(&tokens, path, Some(&viewer)),
                Ok(Some("ci viewer".to_owned()))
            );
            assert_eq!(
                admit(&tokens, path, Some(&operator)),
                Ok(Some("ops operator".to_owned()))
            );
        }
        let protected = METHOD_PREFIXES
            .iter()
            .flat_map(|prefix| OPERATOR_ONLY.map(|method| format!("{prefix}{method}")));
        for path in protected {
            let path = path.as_str();
            let refused = admit(&tokens, path, Some(&viewer));
            let Err(Refusal::Forbidden(message)) = refused else {
                panic!("{path}: {refused:?}");
            };
            assert!(message.contains("`ci` is a viewer"), "{message}");
            assert!(message.contains("role = \"operator\""), "{message}");
            assert_eq!(
                admit(&tokens, path, Some(&operator)),
                Ok(Some("ops operator".to_owned()))
            );
        }
        // Lookalike paths are not the protected methods, and the router
        // does not route them to them either.
        assert!(admit(&tokens, "/cairn.v1.Cairn/Materialize/", Some(&viewer)).is_ok());
        assert!(admit(&tokens, "/api/v1/Materi%61lize", Some(&viewer)).is_ok());
    }

    #[test]
    fn only_an_exact_secret_passes() {
        let tokens = two_tokens();
        let same_length_wrong = "viewer-secret-0123456780";
        assert_eq!(same_length_wrong.len(), VIEWER_SECRET.len());
        for header in [
            format!("Bearer {same_length_wrong}"),
            format!("Bearer {VIEWER_SECRET}x"),
            "Bearer viewer".to_owned(),
            "Bearer ".to_owned(),
            "Bearer".to_owned(),
            format!("Basic {VIEWER_SECRET}"),
            VIEWER_SECRET.to_owned(),
        ] {
            let refused = admit(&tokens, "/cairn.v1.Cairn/Status", Some(&header));
            assert!(is_unauthenticated(&refused), "{header}: {refused:?}");
            let Err(Refusal::Unauthenticated(message)) = refused else {
                unreachable!()
            };
            assert!(
                message.contains("authorization: Bearer <secret>"),
                "{message}"
            );
            assert!(!message.contains(VIEWER_SECRET), "{message}");
        }
        assert!(is_unauthenticated(&admit(&tokens, "/healthz", None)));
        // The scheme is case-insensitive; surrounding spaces do not count.
        assert_eq!(
            admit(
                &tokens,
                "/healthz",
                Some(&format!("bearer  {VIEWER_SECRET} "))
            ),
            Ok(Some("ci viewer".to_owned()))
        );
    }

    #[test]
    fn without_tokens_everything_passes_anonymously() {
        let tokens = accepted(Tokens::from_config(&ServerConfig::default()));
        assert!(tokens.is_empty());
        assert_eq!(
            admit(&tokens, "/cairn.v1.Cairn/Materialize", None),
            Ok(None)
        );
    }

    #[test]
    fn bad_secrets_are_refused_at_startup_naming_token_and_variable() {
        let missing = usage(tokens_from(&[("CAIRN_TOKEN_OPS", OPERATOR_SECRET)]));
        assert!(missing.contains("`ci`"), "{missing}");
        assert!(missing.contains("CAIRN_TOKEN_CI is not set"), "{missing}");
        assert!(missing.contains("export CAIRN_TOKEN_CI="), "{missing}");
        // Every problem at once.
        let both = usage(tokens_from(&[
            ("CAIRN_TOKEN_CI", ""),
            ("CAIRN_TOKEN_OPS", "a b"),
        ]));
        assert!(
            both.contains("CAIRN_TOKEN_CI is not set or empty"),
            "{both}"
        );
        assert!(both.contains("CAIRN_TOKEN_OPS has spaces"), "{both}");
        let shared = usage(tokens_from(&[
            ("CAIRN_TOKEN_CI", VIEWER_SECRET),
            ("CAIRN_TOKEN_OPS", VIEWER_SECRET),
        ]));
        assert!(shared.contains("`ci` and `ops`"), "{shared}");
        assert!(shared.contains("same secret"), "{shared}");
        assert!(!shared.contains(VIEWER_SECRET), "{shared}");
        let no_var = usage(Tokens::from_lookup(
            &config(&[("ci", Role::Viewer, "")]),
            |_| None,
        ));
        assert!(no_var.contains("env = \"CAIRN_TOKEN_CI\""), "{no_var}");
    }

    #[test]
    fn refusals_are_grpc_statuses_for_grpc_and_401_403_for_http() {
        let grpc = refuse(true, Refusal::Unauthenticated("send a token".to_owned()));
        assert_eq!(grpc.status(), StatusCode::OK);
        assert_eq!(grpc.headers()["grpc-status"], "16");
        assert!(is_grpc(grpc.headers()));
        let grpc = refuse(true, Refusal::Forbidden("operators only".to_owned()));
        assert_eq!(grpc.headers()["grpc-status"], "7");
        let http = refuse(false, Refusal::Unauthenticated("send a token".to_owned()));
        assert_eq!(http.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(http.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let http = refuse(false, Refusal::Forbidden("operators only".to_owned()));
        assert_eq!(http.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn handlers_see_the_principal_through_tonic() {
        let mut http = axum::http::Request::new(());
        http.extensions_mut().insert(Principal {
            name: "ci".to_owned(),
            role: Role::Viewer,
        });
        let request = tonic::Request::from_http(http);
        assert_eq!(principal(&request).as_deref(), Some("ci"));
        assert_eq!(principal(&tonic::Request::new(())), None);
    }
}
