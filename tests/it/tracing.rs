//! Traces and logs: spans reach a real OTLP collector as children of the
//! caller's `traceparent` (which is also stored with the published events)
//! under the resource `OTEL_*` variables describe; JSON logs carry the ids
//! of the span they are written in; the access log.

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
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

/// What a collector receives: each span, or each metric's name, with the
/// resource it came under.
type Received<T> = (Option<Resource>, T);

/// An OTLP/gRPC collector that hands over what it receives.
struct Collector {
    spans: mpsc::UnboundedSender<Received<Span>>,
    metrics: mpsc::UnboundedSender<Received<String>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for spans in request.into_inner().resource_spans {
            for scope in spans.scope_spans {
                for span in scope.spans {
                    let _ = self.spans.send((spans.resource.clone(), span));
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
        for metrics in request.into_inner().resource_metrics {
            for scope in metrics.scope_metrics {
                for metric in scope.metrics {
                    let _ = self.metrics.send((metrics.resource.clone(), metric.name));
                }
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts a collector on a free port; returns its URL and what it receives.
async fn start_collector() -> (
    String,
    mpsc::UnboundedReceiver<Received<Span>>,
    mpsc::UnboundedReceiver<Received<String>>,
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

/// A string attribute among `attributes`.
fn string_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?
    {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// The resource attributes a test sets, and what an export must then say.
const SERVICE_ENV: [(&str, &str); 2] = [
    ("OTEL_SERVICE_NAME", "orders-log"),
    (
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=overridden,deployment.environment.name=staging,team=a%2Cb",
    ),
];

fn assert_service_resource(resource: &Option<Resource>) {
    let attributes = &resource.as_ref().expect("a resource").attributes;
    assert_eq!(
        string_of(attributes, "service.name").as_deref(),
        Some("orders-log")
    );
    assert_eq!(
        string_of(attributes, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        string_of(attributes, "deployment.environment.name").as_deref(),
        Some("staging")
    );
    assert_eq!(string_of(attributes, "team").as_deref(), Some("a,b"));
}

#[tokio::test]
async fn spans_reach_the_collector_as_children_of_the_callers_trace() {
    let (collector, mut spans, mut metrics) = start_collector().await;
    let db = TestDb::new().await;
    let mut envs = vec![("OTEL_BSP_SCHEDULE_DELAY", "100")];
    envs.extend(SERVICE_ENV);
    let spawned = spawn_binary_with(
        &db,
        &[
            "--otlp-endpoint",
            &collector,
            "--otlp-metrics-interval",
            "200ms",
        ],
        &envs,
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

    let (resource, span) = within(async {
        loop {
            let (resource, span) = spans.recv().await.expect("collector running");
            if span.name == "riverlog.v1.EventLog/Publish" {
                return (resource, span);
            }
        }
    })
    .await;
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_ID);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    let string = |s: &str| Some(Value::StringValue(s.into()));
    assert_eq!(attribute("rpc.system.name"), string("grpc"));
    assert_eq!(
        attribute("rpc.method"),
        string("riverlog.v1.EventLog/Publish")
    );
    assert_eq!(attribute("rpc.status_code"), string("OK"));
    assert_eq!(attribute("error.type"), None, "OK is no error");
    for old in ["rpc.system", "rpc.service", "rpc.grpc.status_code"] {
        assert_eq!(attribute(old), None, "{old} is of the old conventions");
    }
    assert_service_resource(&resource);

    // A method the server does not serve: one span name and rpc.method for
    // all of them, the path kept as rpc.method_original.
    let channel = tonic::transport::Channel::from_shared(spawned.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<
        riverlog::proto::v1::GetStreamRequest,
        riverlog::proto::v1::GetStreamResponse,
    >::default();
    let err = grpc
        .unary(
            Request::new(riverlog::proto::v1::GetStreamRequest::default()),
            http::uri::PathAndQuery::from_static("/riverlog.v1.EventLog/NoSuchMethod"),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    let (_, other) = within(async {
        loop {
            let received = spans.recv().await.expect("collector running");
            if received.1.name == "grpc" {
                return received;
            }
        }
    })
    .await;
    assert_eq!(
        string_of(&other.attributes, "rpc.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        string_of(&other.attributes, "rpc.method_original").as_deref(),
        Some("riverlog.v1.EventLog/NoSuchMethod")
    );
    assert_eq!(
        string_of(&other.attributes, "error.type").as_deref(),
        Some("UNIMPLEMENTED")
    );
    assert_eq!(
        other.status.as_ref().map(|s| s.code),
        Some(2),
        "STATUS_CODE_ERROR"
    );

    let resource = within(async {
        loop {
            let (resource, name) = metrics.recv().await.expect("collector running");
            if name == "rpc.server.call.duration" {
                return resource;
            }
        }
    })
    .await;
    assert_service_resource(&resource);
    // Prometheus shows the same resource as target_info.
    let (status, text) = http_get(&spawned.http_url, "/metrics").await;
    assert_eq!(status, 200);
    let info = text
        .lines()
        .find(|l| l.starts_with("target_info{"))
        .unwrap_or_else(|| panic!("no target_info:\n{text}"));
    for label in [
        "service_name=\"orders-log\"",
        "deployment_environment_name=\"staging\"",
        "team=\"a,b\"",
    ] {
        assert!(info.contains(label), "{label}: {info}");
    }
    drop(spawned);
}

#[tokio::test]
async fn the_resource_is_riverlog_by_default_and_a_malformed_variable_is_ignored() {
    let db = TestDb::new().await;
    let server = Logged::spawn(
        &db,
        &[],
        &[
            ("OTEL_SERVICE_NAME", ""),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=x,no-equals-sign"),
        ],
    )
    .await;
    let (status, text) = http_get(&server.http_url, "/metrics").await;
    assert_eq!(status, 200);
    let info = text
        .lines()
        .find(|l| l.starts_with("target_info{"))
        .unwrap_or_else(|| panic!("no target_info:\n{text}"));
    assert!(info.contains("service_name=\"riverlog\""), "{info}");
    assert!(
        info.contains(&format!(
            "service_version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{info}"
    );
    assert!(
        !info.contains("team="),
        "a malformed variable is void: {info}"
    );
    assert!(
        server.startup.iter().any(|l| {
            l.contains("OTEL_RESOURCE_ATTRIBUTES ignored") && l.contains("no-equals-sign")
        }),
        "a warning names the entry: {:?}",
        server.startup
    );
}

/// The real binary with its log lines handed over.
struct Logged {
    child: tokio::process::Child,
    grpc_url: String,
    http_url: String,
    /// The lines written before the server said it was serving.
    startup: Vec<String>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Logged {
    /// Starts the binary and waits until it serves.
    async fn spawn(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(["--database-url", &db.url])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut logged = Self {
            child,
            grpc_url: String::new(),
            http_url: String::new(),
            startup: Vec::new(),
            lines,
        };
        let serving = within(async {
            loop {
                let line = logged.lines.recv().await.expect("the server exited");
                if line.contains("riverlog serving") {
                    return line;
                }
                logged.startup.push(line);
            }
        })
        .await;
        // Text logs say `grpc=ADDR`, JSON logs `"grpc":"ADDR"`.
        let field = |name: &str| {
            let text = serving
                .split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next());
            let json = serving
                .split(&format!("\"{name}\":\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next());
            text.or(json).expect("address logged").to_owned()
        };
        logged.grpc_url = format!("http://{}", field("grpc"));
        logged.http_url = format!("http://{}", field("http"));
        logged
    }

    /// The next log line that `wanted` accepts.
    async fn line_with(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        within(async {
            loop {
                let line = self.lines.recv().await.expect("the server exited");
                if wanted(&line) {
                    return line;
                }
            }
        })
        .await
    }

    /// Stops the server with SIGTERM and returns the rest of its log.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().expect("running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let mut rest = Vec::new();
        within(async {
            while let Some(line) = self.lines.recv().await {
                rest.push(line);
            }
        })
        .await;
        rest
    }
}

/// A JSON log line as an object.
fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[tokio::test]
async fn json_logs_carry_the_trace_and_span_ids_of_the_span_they_are_written_in() {
    let db = TestDb::new().await;
    let mut server =
        Logged::spawn(&db, &["--log-format", "json", "--access-log", "true"], &[]).await;
    let mut client = EventLogClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    client
        .publish(with_traceparent(publish_request(
            "orders",
            vec![event("a")],
        )))
        .await
        .expect("publish");
    // The access line of the call is written inside the call's span.
    let line = server
        .line_with(|l| l.contains("riverlog::access") && l.contains("EventLog/Publish"))
        .await;
    let logged = json(&line);
    assert_eq!(logged["trace_id"], TRACE_ID, "the caller's trace: {line}");
    let span_id = logged["span_id"].as_str().expect("a span id");
    assert!(
        span_id.len() == 16
            && span_id.bytes().all(|b| b.is_ascii_hexdigit())
            && span_id != PARENT_ID,
        "the server span's own id: {line}"
    );
    // A call without a caller's trace starts a trace of its own.
    client
        .publish(publish_request("orders", vec![event("b")]))
        .await
        .expect("publish");
    let line = server
        .line_with(|l| l.contains("riverlog::access") && l.contains("EventLog/Publish"))
        .await;
    let own = json(&line);
    let trace_id = own["trace_id"].as_str().expect("a trace id");
    assert!(trace_id.len() == 32 && trace_id != TRACE_ID, "{line}");
    // Outside any span (start-up, shutdown) there are no ids.
    let rest = server.stop().await;
    let stopped = rest
        .iter()
        .find(|l| l.contains("\"stopped\""))
        .unwrap_or_else(|| panic!("no stop line: {rest:?}"));
    assert!(json(stopped).get("trace_id").is_none(), "{stopped}");
}

#[tokio::test]
async fn the_access_log_writes_one_line_per_grpc_call_and_http_request() {
    let db = TestDb::new().await;
    let mut server =
        Logged::spawn(&db, &["--log-format", "json", "--access-log", "true"], &[]).await;
    let mut client = EventLogClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    publish(&mut client, "orders", vec![event("a")]).await;
    let err = client
        .get_stream(riverlog::proto::v1::GetStreamRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let (status, body) = http_get(&server.http_url, "/api/v1/streams/orders").await;
    assert_eq!(status, 200);

    let access = |l: &str| l.contains("riverlog::access");
    let fields = |line: &str| json(line)["fields"].clone();
    let publish = fields(
        &server
            .line_with(|l| access(l) && l.contains("/Publish"))
            .await,
    );
    assert_eq!(publish["protocol"], "grpc");
    assert_eq!(publish["rpc"], "riverlog.v1.EventLog/Publish");
    assert_eq!(publish["status"], "OK");
    assert!(publish["duration_ms"].as_f64().expect("duration") >= 0.0);
    assert!(publish["bytes"].as_u64().expect("bytes") > 0);
    assert!(
        publish["peer"]
            .as_str()
            .expect("peer")
            .starts_with("127.0.0.1:"),
        "{publish}"
    );
    let missing = fields(
        &server
            .line_with(|l| access(l) && l.contains("/GetStream"))
            .await,
    );
    assert_eq!(missing["status"], "NOT_FOUND");
    let request = fields(
        &server
            .line_with(|l| access(l) && l.contains("\"http\""))
            .await,
    );
    assert_eq!(request["method"], "GET");
    assert_eq!(request["route"], "/api/v1/streams/{stream}");
    assert_eq!(request["path"], "/api/v1/streams/orders");
    assert_eq!(request["status"], 200);
    assert_eq!(request["bytes"].as_u64(), Some(body.len() as u64));
    assert!(
        request["peer"]
            .as_str()
            .expect("peer")
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn the_access_log_is_off_by_default() {
    let db = TestDb::new().await;
    let server = Logged::spawn(&db, &[], &[]).await;
    let mut client = EventLogClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    publish(&mut client, "orders", vec![event("a")]).await;
    assert_eq!(
        http_get(&server.http_url, "/api/v1/streams/orders").await.0,
        200
    );
    drop(client);
    let rest = server.stop().await;
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    assert!(
        !rest.iter().any(|l| l.contains("riverlog::access")),
        "{rest:?}"
    );
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
