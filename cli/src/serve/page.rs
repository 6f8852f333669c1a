//! The lineage web page (`lineage-ui/`), embedded in the binary: its built
//! bundle (`lineage-ui/dist/`, committed, so building Cairn needs no npm)
//! is served at `/`, `/app.js` and `/app.css` without a token — the files
//! hold no data; the page asks for its token and sends it with every API
//! call (`http.rs`). Deep links are hash routes (`/#/asset/orders`), so
//! the server serves no other paths.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &[u8] = include_bytes!("../../../lineage-ui/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../lineage-ui/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../lineage-ui/dist/app.css");

/// What a browser may load and run on the page: only this server's own
/// files and API (no inline scripts, nothing from elsewhere).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page's routes.
pub(super) fn routes() -> axum::Router {
    axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| file("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/index.html",
            axum::routing::get(|| file("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/app.js",
            axum::routing::get(|| file("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            axum::routing::get(|| file("text/css; charset=utf-8", APP_CSS)),
        )
        .layer(super::http::compression())
}

/// One embedded file. Names carry no content hash, so browsers revalidate
/// (`no-cache`) rather than keep an old page after an upgrade.
async fn file(content_type: &'static str, bytes: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        bytes,
    )
}
