//! The dashboard: the project's own ES modules, CSS and SVG from `host/ui/`,
//! embedded and compressed at build time, served at `/` with ETag
//! revalidation and a Content-Security-Policy that allows this origin only.

use axum::Router;
use axum::http::{HeaderValue, header};
use memory_serve::CacheControl;
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of every dashboard response: scripts, styles, images and
/// connections (HTTP and WebSocket) from this origin only; no inline script
/// or style, no `eval`, no plugins, no framing by another site.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes (`/`, `/index.html`, `/app.css`, `/js/…`).
pub fn router() -> Router {
    // Module imports name plain paths (`./gql.js`), so assets are not
    // served under hashed names; `no-cache` makes the browser revalidate
    // each one by ETag, a 304 without a body when nothing changed.
    memory_serve::load!()
        .index_file(Some("/index.html"))
        .enable_brotli(true)
        .enable_gzip(true)
        .html_cache_control(CacheControl::NoCache)
        .cache_control(CacheControl::NoCache)
        .into_router()
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}
