//! Traces: spans reach a real OTLP collector as children of the caller's
//! `traceparent`, which is also stored with the published events.

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::{AttributeValue, CloudEventAttributeValue};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::common::*;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

/// An OTLP/gRPC collector that hands over what it receives.
struct Collector {
    spans: mpsc::UnboundedSender<Span>,
    metrics: mpsc::UnboundedSender<String>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.spans.send(span);
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                for metric in scope.metrics {
                    let _ = self.metrics.send(metric.name);
                }
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts a collector on a free port; returns its URL and what it receives.
async fn start_collector() -> (
    String,
    mpsc::UnboundedReceiver<Span>,
    mpsc::UnboundedReceiver<String>,
) {
    let (spans, span_rx) = mpsc::unbounded_channel();
    let (metrics, metric_rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let traces = TraceServiceServer::new(Collector {
        spans: spans.clone(),
        metrics: metrics.clone(),
    });
    let metrics = MetricsServiceServer::new(Collector { spans, metrics });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(traces)
            .add_service(metrics)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), span_rx, metric_rx)
}

fn with_traceparent<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("traceparent", traceparent().parse().unwrap());
    request
        .metadata_mut()
        .insert("tracestate", "vendor=abc".parse().unwrap());
    request
}

fn string_attribute(e: &riverlog::proto::v1::RecordedEvent, name: &str) -> Option<String> {
    let event = e.event.as_ref()?.decode().ok()?;
    match event.attributes.get(name) {
        Some(CloudEventAttributeValue {
            attr: Some(AttributeValue::CeString(s)),
        }) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn spans_reach_the_collector_as_children_of_the_callers_trace() {
    let (collector, mut spans, mut metrics) = start_collector().await;
    let db = TestDb::new().await;
    let spawned = spawn_binary_with(
        &db,
        &[
            "--otlp-endpoint",
            &collector,
            "--otlp-metrics-interval",
            "200ms",
        ],
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let mut client = EventLogClient::connect(spawned.grpc_url.clone())
        .await
        .unwrap();
    client
        .publish(with_traceparent(publish_request(
            "orders",
            vec![event("a")],
        )))
        .await
        .expect("publish");

    let span = within(async {
        loop {
            let span = spans.recv().await.expect("collector running");
            if span.name == "riverlog.v1.EventLog/Publish" {
                return span;
            }
        }
    })
    .await;
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_ID);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    let status = span
        .attributes
        .iter()
        .find(|kv| kv.key == "rpc.grpc.status_code")
        .and_then(|kv| kv.value.as_ref()?.value.clone());
    assert_eq!(status, Some(Value::IntValue(0)));

    within(async {
        loop {
            let name = metrics.recv().await.expect("collector running");
            if name == "rpc.server.call.duration" {
                return;
            }
        }
    })
    .await;
    drop(spawned);
}

#[tokio::test]
async fn the_callers_trace_context_is_stored_with_events_that_have_none() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut own = cloud_event("own", "test.created", None);
    own.attributes.insert(
        "traceparent".into(),
        CloudEventAttributeValue {
            attr: Some(AttributeValue::CeString(
                "00-11111111111111111111111111111111-2222222222222222-01".into(),
            )),
        },
    );
    client
        .publish(with_traceparent(publish_request(
            "orders",
            vec![event("plain"), own.into()],
        )))
        .await
        .expect("publish");
    let mut bad = Request::new(publish_request("orders", vec![event("untraced")]));
    bad.metadata_mut()
        .insert("traceparent", "not-a-trace".parse().unwrap());
    client
        .publish(bad)
        .await
        .expect("bad trace headers are ignored");

    let stored = read_all(&mut client, "orders").await;
    assert_eq!(
        string_attribute(&stored[0], "traceparent"),
        Some(traceparent())
    );
    assert_eq!(
        string_attribute(&stored[0], "tracestate").as_deref(),
        Some("vendor=abc")
    );
    assert_eq!(
        string_attribute(&stored[1], "traceparent").as_deref(),
        Some("00-11111111111111111111111111111111-2222222222222222-01"),
        "the producer's own context wins"
    );
    assert_eq!(string_attribute(&stored[2], "traceparent"), None);
    // Subscribers see the same bytes.
    let mut sub = subscribe(&mut client, subscribe_request(&["orders"], None)).await;
    let live = next_events(&mut sub, 1).await;
    assert_eq!(
        string_attribute(&live[0], "traceparent"),
        Some(traceparent())
    );
}

#[tokio::test]
async fn trace_context_never_pushes_an_event_over_the_size_limit() {
    let server = TestServer::start_with(|c| c.max_event_size = 1024).await;
    let mut client = server.client().await;
    let mut big = cloud_event("big", "test.created", None);
    big.data = Some(riverlog::proto::cloudevent::cloud_event::Data::TextData(
        String::new(),
    ));
    // Fill the event up to just under the limit.
    let base = riverlog::proto::EventPayload::from(big.clone())
        .encoded()
        .len();
    big.data = Some(riverlog::proto::cloudevent::cloud_event::Data::TextData(
        "x".repeat(1024 - base - 8),
    ));
    client
        .publish(with_traceparent(publish_request("s", vec![big.into()])))
        .await
        .expect("tracing never fails a publish");
    let stored = read_all(&mut client, "s").await;
    assert_eq!(string_attribute(&stored[0], "traceparent"), None);
}
