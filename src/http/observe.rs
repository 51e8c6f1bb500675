//! Middleware over every HTTP request: the `http.server.request.duration`
//! histogram of the stable HTTP semantic conventions (OpenTelemetry semconv
//! v1.45.0, `docs/http/http-metrics.md`) and, when switched on, one access
//! log line.
//!
//! Attributes: `http.request.method` (the RFC 9110 methods and PATCH; any
//! other is `_OTHER`), `http.route` (the route template, like
//! `/api/v1/streams/{stream}`, never the raw path; absent when no route
//! matched), `http.response.status_code`, `url.scheme`,
//! `network.protocol.version`, and `error.type` (the status code) for 5xx
//! answers or `_OTHER` when the response body fails.
//!
//! A request is timed until its response body ends. Server-Sent Events
//! (`/api/v1/subscribe`, `/api/v1/groups/{group}/consume`) are therefore
//! recorded once, when the stream closes, with their whole lifetime: select
//! or exclude them by `http.route` when looking at latency.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use opentelemetry::KeyValue;

use super::HttpState;
use crate::metrics::Metrics;

/// Times `request` and counts it in `http.server.request.duration`.
pub(super) async fn observe(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let access = state.access_log.then(|| Access {
        path: request.uri().path().to_owned(),
        peer: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
    });
    let method = known_method(request.method());
    let version = protocol_version(request.version());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let recorder = Recorder {
        metrics: state.metrics.clone(),
        started,
        method,
        route,
        status,
        scheme: state.url_scheme,
        version,
        access,
        bytes: 0,
        failed: false,
        done: false,
    };
    response.map(|inner| Body::new(ObservedBody { inner, recorder }))
}

/// `http.request.method`: a method the conventions know, else `_OTHER`
/// (clients cannot grow label sets).
fn known_method(method: &http::Method) -> &'static str {
    use http::Method;
    [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::CONNECT, "CONNECT"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::PATCH, "PATCH"),
    ]
    .into_iter()
    .find(|(known, _)| known == method)
    .map_or("_OTHER", |(_, name)| name)
}

/// `network.protocol.version` as the conventions write it.
fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// What the access log line needs beyond the metric's attributes.
struct Access {
    path: String,
    peer: Option<SocketAddr>,
}

/// Records a request once, when its response body ends or is dropped.
struct Recorder {
    metrics: Arc<Metrics>,
    started: Instant,
    method: &'static str,
    route: Option<String>,
    status: u16,
    scheme: &'static str,
    version: &'static str,
    /// With the access log on: the line's extra fields.
    access: Option<Access>,
    /// Response body bytes sent so far.
    bytes: u64,
    /// The response body failed after the status was sent.
    failed: bool,
    done: bool,
}

impl Recorder {
    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let mut attributes = vec![
            KeyValue::new("http.request.method", self.method),
            KeyValue::new("http.response.status_code", i64::from(self.status)),
            KeyValue::new("url.scheme", self.scheme),
            KeyValue::new("network.protocol.version", self.version),
        ];
        if let Some(route) = &self.route {
            attributes.push(KeyValue::new("http.route", route.clone()));
        }
        if self.status >= 500 {
            attributes.push(KeyValue::new("error.type", self.status.to_string()));
        } else if self.failed {
            attributes.push(KeyValue::new("error.type", "_OTHER"));
        }
        self.metrics
            .http_duration
            .record(elapsed.as_secs_f64(), &attributes);
        if let Some(access) = &self.access {
            tracing::info!(
                target: "riverlog::access",
                protocol = "http",
                method = self.method,
                route = self.route.as_deref(),
                path = %access.path,
                status = self.status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                peer = access.peer.map(tracing::field::display),
                bytes = self.bytes,
                "request"
            );
        }
    }
}

/// A response body that reports its request when it ends.
struct ObservedBody {
    inner: Body,
    recorder: Recorder,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.recorder.bytes += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => {
                self.recorder.failed = true;
                self.recorder.finish();
            }
            Poll::Ready(None) => self.recorder.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // A client that leaves mid-stream (an SSE tab closed) ends it here.
        self.recorder.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_value() {
        assert_eq!(known_method(&http::Method::PATCH), "PATCH");
        let propfind = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(known_method(&propfind), "_OTHER");
    }

    #[test]
    fn protocol_versions_are_written_as_the_conventions_do() {
        assert_eq!(protocol_version(http::Version::HTTP_11), "1.1");
        assert_eq!(protocol_version(http::Version::HTTP_2), "2");
    }
}
