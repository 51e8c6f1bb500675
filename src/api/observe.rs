//! A tower layer over every gRPC call: a tracing span (a child of the
//! caller's W3C `traceparent`, exported over OTLP when tracing is on), the
//! `rpc.server.call.duration` histogram, and the access log line when it is
//! switched on.
//!
//! Span and metric follow the stable RPC semantic conventions of
//! OpenTelemetry semconv v1.45.0 (`docs/rpc/rpc-spans.md`,
//! `rpc-metrics.md`, `grpc.md`): `rpc.system.name` = `grpc`, `rpc.method` =
//! the fully-qualified `package.Service/Method` (`_OTHER` for a method the
//! server does not serve, the span then also carrying
//! `rpc.method_original`), `rpc.status_code` = the status name (`OK`,
//! `NOT_FOUND`, ...), and `error.type` = that name for the codes the gRPC
//! conventions count as server errors.
//!
//! A call ends when its response body does, so streaming calls are timed
//! until their stream ends, and their status comes from the trailers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::propagation::Extractor;
use prost::Message;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;

/// `rpc.method` of a method the server does not serve (the conventions'
/// fallback, which keeps clients from growing label sets).
const OTHER: &str = "_OTHER";
/// Longest `rpc.method_original` kept on a span, in bytes.
const MAX_ORIGINAL_METHOD: usize = 256;

/// The methods the server knows, by request path.
#[derive(Debug, Default)]
struct KnownMethods(HashMap<String, Arc<str>>);

impl KnownMethods {
    fn from_descriptor_sets(sets: &[&[u8]]) -> Self {
        let mut known = HashMap::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    for method in &service.method {
                        let name = format!("{package}.{}/{}", service.name(), method.name());
                        known.insert(format!("/{name}"), name.into());
                    }
                }
            }
        }
        Self(known)
    }

    /// `rpc.method` for a request path: `package.Service/Method`, or `None`
    /// for a method not served.
    fn lookup(&self, path: &str) -> Option<Arc<str>> {
        self.0.get(path).cloned()
    }
}

/// Adds a span and the call-duration metric to every call.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    methods: Arc<KnownMethods>,
    /// Write one `riverlog::access` line per call.
    access_log: bool,
}

impl ObserveLayer {
    /// Observes the services described by `descriptor_sets`.
    pub fn new(metrics: Arc<Metrics>, descriptor_sets: &[&[u8]]) -> Self {
        Self {
            metrics,
            methods: Arc::new(KnownMethods::from_descriptor_sets(descriptor_sets)),
            access_log: false,
        }
    }

    /// Also logs each call (target `riverlog::access`, level INFO) when it
    /// ends: method, status, duration, peer and response bytes.
    pub fn with_access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ObserveLayer`] makes.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + Send + Unpin + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        let method = self.layer.methods.lookup(path);
        let span = match &method {
            Some(method) => tracing::info_span!(
                "rpc",
                otel.name = &**method,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system.name = "grpc",
                rpc.method = &**method,
                rpc.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
            ),
            // The conventions name such a span after the RPC system.
            None => tracing::info_span!(
                "rpc",
                otel.name = "grpc",
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system.name = "grpc",
                rpc.method = OTHER,
                rpc.method_original = bounded(path.trim_start_matches('/')),
                rpc.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
            ),
        };
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(request.headers()))
        });
        // Fails only when no OpenTelemetry layer is installed: nothing to link.
        let _ = span.set_parent(parent);
        let recorder = Recorder {
            metrics: self.layer.metrics.clone(),
            method: method.unwrap_or_else(|| OTHER.into()),
            started: Instant::now(),
            span: span.clone(),
            access: self.layer.access_log.then(|| peer(&request)),
            bytes: 0,
            done: false,
        };
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                // Errors before any message travel in the headers
                // ("trailers-only"); otherwise the trailers carry the status.
                let header_status = grpc_status(response.headers());
                Ok(response.map(|body| ObservedBody {
                    inner: body,
                    status: header_status,
                    recorder,
                }))
            }
            .instrument(span),
        )
    }
}

/// The client's address, from the connection info tonic attaches.
fn peer<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>()
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
}

/// `value` cut to at most [`MAX_ORIGINAL_METHOD`] bytes on a char boundary.
fn bounded(value: &str) -> &str {
    let mut end = value.len().min(MAX_ORIGINAL_METHOD);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The status name `rpc.status_code` carries: the gRPC spec's upper-case
/// name (`OK`, `NOT_FOUND`), or the number for a code outside it.
fn status_name(code: i32) -> std::borrow::Cow<'static, str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| code.to_string().into(), |n| (*n).into())
}

/// Whether a server that answered `code` failed, per the gRPC conventions:
/// UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and
/// DATA_LOSS. The others describe the caller's request (NOT_FOUND,
/// INVALID_ARGUMENT, ...) or its leaving (CANCELLED).
fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Records a call once: when its response body ends, or as CANCELLED when
/// it is dropped first (the client went away, even before the handler
/// answered).
struct Recorder {
    metrics: Arc<Metrics>,
    /// `rpc.method`: `package.Service/Method` or `_OTHER`.
    method: Arc<str>,
    started: Instant,
    span: tracing::Span,
    /// With the access log on: the peer, if known.
    access: Option<Option<SocketAddr>>,
    /// Response body bytes sent so far (gRPC framing included).
    bytes: u64,
    done: bool,
}

impl Recorder {
    fn finish(&mut self, status: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let name = status_name(status);
        self.span.record("rpc.status_code", &*name);
        let mut attributes = vec![
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", self.method.clone()),
            KeyValue::new("rpc.status_code", name.clone()),
        ];
        if is_server_error(status) {
            self.span.record("error.type", &*name);
            self.span.record("otel.status_code", "ERROR");
            attributes.push(KeyValue::new("error.type", name.clone()));
        }
        self.metrics
            .rpc_duration
            .record(elapsed.as_secs_f64(), &attributes);
        if let Some(peer) = self.access {
            tracing::info!(
                target: "riverlog::access",
                parent: &self.span,
                protocol = "grpc",
                rpc = &*self.method,
                status = &*name,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                peer = peer.map(tracing::field::display),
                bytes = self.bytes,
                "call"
            );
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish(CANCELLED);
    }
}

/// A response body that reports its call's status and duration when it
/// ends.
pub struct ObservedBody<B> {
    inner: B,
    status: Option<i32>,
    recorder: Recorder,
}

/// `CANCELLED`: the client went away before the call ended.
const CANCELLED: i32 = 1;
/// `UNKNOWN`: the body ended without saying how.
const UNKNOWN: i32 = 2;

impl<B> ObservedBody<B> {
    fn finish(&mut self, status: i32) {
        self.recorder.finish(status);
    }
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    use bytes::Buf;
                    self.recorder.bytes += data.remaining() as u64;
                }
                if let Some(status) = frame.trailers_ref().and_then(grpc_status) {
                    self.status = Some(status);
                    self.finish(status);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(UNKNOWN),
            Poll::Ready(None) => {
                let status = self.status.unwrap_or(UNKNOWN);
                self.finish(status);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // A trailers-only response may be dropped without being polled.
        let status = self.status.unwrap_or(CANCELLED);
        self.finish(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_grpc_specs() {
        assert_eq!(status_name(0), "OK");
        assert_eq!(status_name(5), "NOT_FOUND");
        assert_eq!(status_name(16), "UNAUTHENTICATED");
        assert_eq!(status_name(17), "17");
        assert_eq!(status_name(-1), "-1");
    }

    #[test]
    fn only_the_conventions_server_errors_are_errors() {
        let errors: Vec<_> = (0..=16)
            .filter(|&c| is_server_error(c))
            .map(status_name)
            .collect();
        assert_eq!(
            errors,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
    }

    #[test]
    fn original_methods_are_cut_on_a_char_boundary() {
        let long = format!("{}é", "a".repeat(MAX_ORIGINAL_METHOD - 1));
        assert_eq!(bounded(&long), "a".repeat(MAX_ORIGINAL_METHOD - 1));
        assert_eq!(bounded("svc/M"), "svc/M");
    }

    #[test]
    fn methods_are_named_package_service_method() {
        let known = KnownMethods::from_descriptor_sets(&[crate::proto::FILE_DESCRIPTOR_SET]);
        assert_eq!(
            known.lookup("/riverlog.v1.EventLog/Publish").as_deref(),
            Some("riverlog.v1.EventLog/Publish")
        );
        assert_eq!(known.lookup("/riverlog.v1.EventLog/Nope"), None);
    }
}
