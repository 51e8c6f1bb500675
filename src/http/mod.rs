//! The HTTP side: the JSON API and CloudEvents over HTTP under `/api/v1`,
//! Server-Sent Events, the web console at `/`, and `/metrics`. It calls the same domain, checks
//! the same permissions and limits as gRPC, and never touches storage.

mod accept;
pub mod bodies;
mod caller;
mod console;
mod history;
mod observe;
pub mod openapi;
mod problem;
pub(crate) mod publish;
mod rest;
pub(crate) mod sse;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::auth::Authenticator;
use crate::log::EventLog;
use crate::metrics::Metrics;
use crate::service::admission::CallLimits;
use caller::Caller;

pub use problem::{Problem, http_status};

/// What the HTTP handlers share.
pub struct HttpState {
    /// The log.
    pub log: EventLog,
    /// Tokens.
    pub auth: Arc<Authenticator>,
    /// Open streams and publish rates, shared with gRPC.
    pub limits: Arc<CallLimits>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// SSE heartbeat comments when idle.
    pub sse_heartbeat: Duration,
    /// Serve the console from this folder instead of the built-in copy.
    pub console_dir: Option<std::path::PathBuf>,
    /// `url.scheme` of requests: `https` when serving TLS, else `http`.
    pub url_scheme: &'static str,
    /// Log one `riverlog::access` line per request.
    pub access_log: bool,
}

/// Everything served over HTTP; `/metrics` too unless `with_metrics` is
/// false (it is then served on its own listener by [`metrics_router`]).
pub fn router(state: Arc<HttpState>, with_metrics: bool) -> Router {
    let api = Router::new()
        .route(
            "/streams",
            get(rest::list_streams).post(rest::create_stream),
        )
        .route(
            "/streams/{stream}",
            get(rest::get_stream).delete(rest::delete_stream),
        )
        .route("/streams/{stream}/trim", post(rest::trim))
        .route("/streams/{stream}/history", get(history::stream_history))
        .route(
            "/streams/{stream}/groups/{group}/history",
            get(history::group_history),
        )
        .route(
            "/streams/{stream}/events",
            get(rest::read).post(publish::publish),
        )
        .route("/streams/{stream}/groups", get(rest::list_groups))
        .route(
            "/streams/{stream}/groups/{group}/pending",
            get(rest::list_pending),
        )
        .route("/streams/{stream}/groups/{group}/ack", post(rest::ack))
        .route("/streams/{stream}/groups/{group}/seek", post(rest::seek))
        .route(
            "/streams/{stream}/groups/{group}/redrive",
            post(rest::redrive),
        )
        .route("/openapi.json", get(openapi))
        .route("/subscribe", get(sse::subscribe))
        .route("/groups/{group}/consume", get(sse::consume));
    let router = Router::new()
        .fallback(not_found)
        .route("/", get(console::index))
        .route("/console/app.js", get(console::app_js))
        .route("/console/app.css", get(console::app_css))
        .nest("/api/v1", api);
    let router = if with_metrics {
        router.route("/metrics", get(guarded_prometheus))
    } else {
        router
    };
    observed(router, state)
}

/// `router` with the request metric and access log on every route and the
/// fallback (a layer added after the routes sees their templates).
fn observed(router: Router<Arc<HttpState>>, state: Arc<HttpState>) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// Only `/metrics`, with no token asked: for `metrics_listen`, an address
/// that only the scraper can reach.
pub fn metrics_router(state: Arc<HttpState>) -> Router {
    let router = Router::new()
        .fallback(not_found)
        .route("/metrics", get(prometheus));
    observed(router, state)
}

/// Unknown paths get problem+json like every other error.
async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem(crate::service::failure::Failure::new(
        tonic::Code::NotFound,
        "NOT_FOUND",
        format!("no such endpoint: {}", uri.path()),
        Default::default(),
    ))
}

async fn openapi(
    problem::Params(problem::NoQuery {}): problem::Params<problem::NoQuery>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::openapi_json(),
    )
}

/// `/metrics` beside the API: series name streams and groups, so with tokens
/// configured only a token with the `metrics` permission may scrape
/// (Prometheus sends it as `authorization: Bearer`).
async fn guarded_prometheus(
    state: State<Arc<HttpState>>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, Problem> {
    caller.require_some(crate::auth::Permission::Metrics)?;
    Ok(prometheus(state).await)
}

async fn prometheus(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
