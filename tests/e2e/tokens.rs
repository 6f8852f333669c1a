//! The example warehouse with two `[server.tokens]` — `ci`, a viewer, and
//! `ops`, an operator — and their secrets, for the tests of a server with
//! tokens (gRPC, `--server`, the JSON API and the web page).

use crate::util::Project;

pub const VIEWER_ENV: &str = "CAIRN_E2E_TOKEN_CI";
pub const OPERATOR_ENV: &str = "CAIRN_E2E_TOKEN_OPS";
pub const VIEWER_SECRET: &str = "viewer-5b0c7e1f2a";
pub const OPERATOR_SECRET: &str = "operator-91d2aa3c44";

/// The variables a server needs to know both secrets.
pub const SECRETS: [(&str, &str); 2] =
    [(VIEWER_ENV, VIEWER_SECRET), (OPERATOR_ENV, OPERATOR_SECRET)];

/// The example project with `[server]` settings appended to cairn.toml.
pub fn example_with(server: &str) -> Project {
    let p = Project::example();
    let toml = p.read("cairn.toml");
    p.write("cairn.toml", &format!("{toml}\n{server}\n"));
    p
}

/// The example with the tokens `ci` and `ops` (and `[server] listen`
/// when given).
pub fn example_with_tokens(listen: Option<&str>) -> Project {
    let listen = listen.map_or(String::new(), |l| format!("listen = \"{l}\"\n"));
    example_with(&format!(
        "[server]\n{listen}[server.tokens]\n\
         ci = {{ role = \"viewer\", env = \"{VIEWER_ENV}\" }}\n\
         ops = {{ role = \"operator\", env = \"{OPERATOR_ENV}\" }}"
    ))
}
