//! A tower layer over every gRPC call: a tracing span (a child of the
//! caller's W3C `traceparent`, exported over OTLP when tracing is on) and
//! the `rpc.server.call.duration` histogram by method and status code.
//!
//! A call ends when its response body does, so streaming calls are timed
//! until their stream ends, and their status comes from the trailers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::propagation::Extractor;
use prost::Message;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;

/// The methods the server knows, by request path; any other path is
/// labelled `unknown` so clients cannot grow label sets.
#[derive(Debug, Default)]
struct KnownMethods(HashMap<String, Method>);

/// A method's labels, built once rather than per call.
#[derive(Debug, Clone)]
struct Method {
    service: Arc<str>,
    method: Arc<str>,
    /// `service/method`, the span name.
    name: Arc<str>,
}

impl Method {
    fn new(service: Arc<str>, method: &str) -> Self {
        Self {
            name: format!("{service}/{method}").into(),
            service,
            method: method.into(),
        }
    }
}

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
                    let full: Arc<str> = format!("{package}.{}", service.name()).into();
                    for method in &service.method {
                        let path = format!("/{full}/{}", method.name());
                        known.insert(path, Method::new(full.clone(), method.name()));
                    }
                }
            }
        }
        Self(known)
    }

    fn lookup(&self, path: &str) -> Method {
        self.0
            .get(path)
            .cloned()
            .unwrap_or_else(|| Method::new("unknown".into(), "unknown"))
    }
}

/// Adds a span and the call-duration metric to every call.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    methods: Arc<KnownMethods>,
}

impl ObserveLayer {
    /// Observes the services described by `descriptor_sets`.
    pub fn new(metrics: Arc<Metrics>, descriptor_sets: &[&[u8]]) -> Self {
        Self {
            metrics,
            methods: Arc::new(KnownMethods::from_descriptor_sets(descriptor_sets)),
        }
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
        let Method {
            service,
            method,
            name,
        } = self.layer.methods.lookup(request.uri().path());
        let span = tracing::info_span!(
            "rpc",
            otel.name = &*name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = &*service,
            rpc.method = &*method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(request.headers()))
        });
        // Fails only when no OpenTelemetry layer is installed: nothing to link.
        let _ = span.set_parent(parent);
        let recorder = Recorder {
            metrics: self.layer.metrics.clone(),
            service,
            method,
            started: Instant::now(),
            span: span.clone(),
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

fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Records a call once: when its response body ends, or as CANCELLED when
/// it is dropped first (the client went away, even before the handler
/// answered).
struct Recorder {
    metrics: Arc<Metrics>,
    service: Arc<str>,
    method: Arc<str>,
    started: Instant,
    span: tracing::Span,
    done: bool,
}

impl Recorder {
    fn finish(&mut self, status: i64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.span.record("rpc.grpc.status_code", status);
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", self.service.clone()),
            KeyValue::new("rpc.method", self.method.clone()),
            KeyValue::new("rpc.grpc.status_code", status),
        ];
        self.metrics
            .rpc_duration
            .record(self.started.elapsed().as_secs_f64(), &attributes);
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
    status: Option<i64>,
    recorder: Recorder,
}

/// `CANCELLED`: the client went away before the call ended.
const CANCELLED: i64 = 1;
/// `UNKNOWN`: the body ended without saying how.
const UNKNOWN: i64 = 2;

impl<B> ObservedBody<B> {
    fn finish(&mut self, status: i64) {
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
