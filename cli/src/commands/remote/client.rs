//! The connection to a `cairn serve`: the URL as given, a tonic client
//! sending the bearer secret from `CAIRN_TOKEN`, and gRPC statuses turned
//! into the CLI's [`Failure`]s (the server answers a command's own
//! mistakes with INVALID_ARGUMENT and the local command's message).

use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use cairn_proto::v1::cairn_client::CairnClient;

use crate::Failure;

/// The variable holding the bearer secret sent with every call (never a
/// flag: command lines are visible to other users of the machine).
pub(crate) const TOKEN_ENV: &str = "CAIRN_TOKEN";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected server.
pub(crate) struct Remote {
    /// The gRPC client.
    pub client: CairnClient<InterceptedService<Channel, Bearer>>,
    /// The URL connected to (`http://` added to a bare `HOST:PORT`).
    pub url: String,
    /// Whether a secret is sent (for the advice on a refusal).
    token: bool,
}

/// Adds `authorization: Bearer <secret>` to every call, when there is a
/// secret.
#[derive(Clone)]
pub(crate) struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// `url` with a scheme: `HOST:PORT` means `http://HOST:PORT`.
fn with_scheme(url: &str) -> Result<String, Failure> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Failure::Usage(
            "--server (or CAIRN_SERVER) is empty; give the address `cairn serve` listens on, e.g. http://127.0.0.1:7575".to_owned(),
        ));
    }
    if url.starts_with("https://") {
        return Err(Failure::Usage(format!(
            "--server `{url}`: this cairn speaks plain http:// to servers only (no TLS); use http://, e.g. through an SSH tunnel or a TLS-terminating proxy"
        )));
    }
    if url.starts_with("http://") {
        Ok(url.to_owned())
    } else if url.contains("://") {
        Err(Failure::Usage(format!(
            "--server `{url}`: give http://HOST:PORT or HOST:PORT, e.g. 127.0.0.1:7575"
        )))
    } else {
        Ok(format!("http://{url}"))
    }
}

impl Remote {
    /// Connects to `url` (`http://HOST:PORT` or `HOST:PORT`), sending the
    /// secret in `CAIRN_TOKEN`, if set, with every call.
    pub(crate) async fn connect(url: &str) -> Result<Remote, Failure> {
        let url = with_scheme(url)?;
        let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| {
            Failure::Usage(format!(
                "--server `{url}` is not a server address ({e}); give http://HOST:PORT or HOST:PORT, e.g. 127.0.0.1:7575"
            ))
        })?;
        let token = match std::env::var(TOKEN_ENV) {
            Ok(secret) if !secret.is_empty() => Some(
                format!("Bearer {secret}")
                    .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                    .ok()
                    .filter(|_| secret.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| {
                        Failure::Usage(format!(
                            "{TOKEN_ENV} has spaces, control or non-ASCII characters, which an `authorization` header cannot carry; set it to the token's secret exactly"
                        ))
                    })?,
            ),
            _ => None,
        };
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|e| {
                Failure::Runtime(format!(
                    "cannot reach a Cairn server at {url} ({}): is `cairn serve` running there? Start it in the project folder (`cairn serve --listen HOST:PORT`), or point --server / CAIRN_SERVER at the address it prints",
                    cause_chain(&e)
                ))
            })?;
        Ok(Remote {
            client: CairnClient::with_interceptor(channel, Bearer(token.clone())),
            token: token.is_some(),
            url,
        })
    }

    /// A call's error status as the CLI reports it: the server's message
    /// for what the local command would refuse too (same exit code), and
    /// advice for what concerns the connection or the token.
    pub(crate) fn failure(&self, status: &Status) -> Failure {
        let url = &self.url;
        let message = status.message();
        match status.code() {
            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                Failure::Usage(message.to_owned())
            }
            Code::Unauthenticated if self.token => Failure::Usage(format!(
                "the server at {url} does not accept the secret in {TOKEN_ENV}: {message}"
            )),
            Code::Unauthenticated => Failure::Usage(format!(
                "the server at {url} needs a token: set {TOKEN_ENV} to the secret of one of its [server.tokens] (the value of that token's variable where `cairn serve` runs)"
            )),
            Code::PermissionDenied => Failure::Usage(format!(
                "the server at {url} refused the token in {TOKEN_ENV}: {message}"
            )),
            Code::Unavailable => Failure::Runtime(format!(
                "the server at {url} is unavailable ({message}): is `cairn serve` still running there?"
            )),
            Code::Unimplemented => Failure::Runtime(format!(
                "the server at {url} does not offer this ({message}): it runs an older cairn; upgrade it"
            )),
            _ => Failure::Runtime(message.to_owned()),
        }
    }
}

/// An error and its causes, `: `-separated (tonic's transport errors say
/// little at the top).
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::with_scheme;
    use crate::Failure;

    fn url(text: &str) -> String {
        match with_scheme(text) {
            Ok(url) => url,
            Err(Failure::Usage(m) | Failure::Runtime(m)) => format!("refused: {m}"),
            Err(Failure::Reported(code)) => format!("reported {code}"),
        }
    }

    #[test]
    fn a_bare_address_means_http() {
        assert_eq!(url("127.0.0.1:7575"), "http://127.0.0.1:7575");
        assert_eq!(url(" http://127.0.0.1:7575/ "), "http://127.0.0.1:7575/");
        assert_eq!(url("localhost:1"), "http://localhost:1");
    }

    #[test]
    fn tls_and_other_schemes_are_refused() {
        assert!(url("https://cairn.example:443").contains("no TLS"));
        assert!(url("grpc://cairn.example:1").contains("give http://HOST:PORT"));
        assert!(url("").contains("empty"));
    }
}
