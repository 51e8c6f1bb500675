//! The live web console: static assets compiled into the binary, served at
//! `/`. It talks to the same `/api/v1` endpoints as any other client.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::HttpState;

const INDEX: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

/// Content security: everything comes from this origin.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'";

/// The built-in asset, or the file of the same name in `console_dir`
/// (for working on the console without rebuilding).
async fn asset(state: &HttpState, name: &str, built_in: &'static str) -> String {
    match &state.console_dir {
        Some(dir) => tokio::fs::read_to_string(dir.join(name))
            .await
            .unwrap_or_else(|e| format!("/* cannot read {name} from the console_dir: {e} */")),
        None => built_in.to_owned(),
    }
}

pub(super) async fn index(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset(&state, "index.html", INDEX).await,
    )
}

pub(super) async fn app_js(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset(&state, "app.js", APP_JS).await,
    )
}

pub(super) async fn app_css(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset(&state, "app.css", APP_CSS).await,
    )
}
