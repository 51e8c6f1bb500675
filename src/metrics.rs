//! The server's metrics, through the OpenTelemetry SDK: always readable as
//! Prometheus text (`/metrics` on the HTTP port), and pushed over OTLP when
//! an endpoint is configured.
//!
//! Names, units and attributes follow the OpenTelemetry semantic
//! conventions v1.45.0 ([`SEMCONV_VERSION`]): the stable RPC conventions
//! for `rpc.server.call.duration`, the stable HTTP conventions for
//! `http.server.request.duration`, the process conventions for
//! `process.*`; the README's "Metrics" section lists every metric and
//! label, checked against `/metrics` by a test.
//!
//! Labels stay bounded: RPC methods and HTTP routes come from fixed lists
//! (anything else is `_OTHER` or has no route), and only consumer groups
//! (which an admin creates) get per-stream labels.

mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _, UpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// The OpenTelemetry semantic-conventions release whose names riverlog's
/// metrics and spans carry.
pub const SEMCONV_VERSION: &str = "1.45.0";

/// Latency buckets in seconds, from sub-millisecond commits to long calls.
/// Finer below 5 ms than the conventions' advice for call durations
/// (`[0.005, ..., 10]`): a publish commits in about a millisecond.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];
/// Event-count buckets for commit batches.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// A consumer group's backlog, as last sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSample {
    /// Its stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// Retained events not yet delivered.
    pub lag: u64,
    /// Delivered, not yet acked.
    pub pending: u64,
}

/// Values the observable gauges read when metrics are collected.
#[derive(Default)]
struct Observed {
    storage_up: AtomicBool,
    groups: Mutex<Vec<GroupSample>>,
}

/// Every instrument the server records.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    observed: Arc<Observed>,
    /// `rpc.server.call.duration`: seconds per gRPC call (streams until
    /// they end), with `rpc.system.name`, `rpc.method`, `rpc.status_code`
    /// and, on server errors, `error.type` (RPC conventions, stable).
    pub rpc_duration: Histogram<f64>,
    /// `http.server.request.duration`: seconds per HTTP request, until its
    /// response body ends, with `http.request.method`, `http.route`,
    /// `http.response.status_code`, `url.scheme`, `network.protocol.version`
    /// and, on 5xx, `error.type` (HTTP conventions, stable).
    pub http_duration: Histogram<f64>,
    /// `riverlog.events.appended`: events committed (dead letters included).
    pub events_appended: Counter<u64>,
    /// `riverlog.append.batch.size`: events per committed transaction.
    pub append_batch_size: Histogram<u64>,
    /// `riverlog.commit.duration`: seconds per write transaction.
    pub commit_duration: Histogram<f64>,
    /// `riverlog.subscriptions.active`: open Subscribe streams.
    pub subscriptions_active: UpDownCounter<i64>,
    /// `riverlog.consumers.active`: open Consume streams.
    pub consumers_active: UpDownCounter<i64>,
    /// `riverlog.events.delivered`: events sent, by `via` (subscription, group).
    pub events_delivered: Counter<u64>,
    /// `riverlog.subscription.storage.events`: events subscriptions read
    /// from storage (history, or after falling behind the live buffer).
    pub subscription_storage_events: Counter<u64>,
    /// `riverlog.events.redelivered`: group deliveries after the first.
    pub events_redelivered: Counter<u64>,
    /// `riverlog.events.dead_lettered`: events moved to a dead-letter stream.
    pub events_dead_lettered: Counter<u64>,
    /// `riverlog.retention.removed`: events removed by retention, by `rule`.
    pub retention_removed: Counter<u64>,
    /// `riverlog.publish_stream.requests`: PublishStream requests answered,
    /// by `rpc.grpc.status_code` (0: appended; else the refusal's code).
    pub publish_stream_requests: Counter<u64>,
    /// `riverlog.publish_stream.in_flight`: PublishStream requests read and
    /// not answered yet, over all calls.
    pub publish_stream_in_flight: UpDownCounter<i64>,
}

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up metrics: {0}")]
pub struct MetricsError(String);

impl Metrics {
    /// Metrics readable only through [`Metrics::render`].
    pub fn new() -> Result<Self, MetricsError> {
        Self::build(None)
    }

    /// Metrics that are also pushed to an OTLP/gRPC `endpoint` every
    /// `interval`. Must run inside a Tokio runtime.
    pub fn with_otlp(endpoint: &str, interval: Duration) -> Result<Self, MetricsError> {
        Self::build(Some((endpoint, interval)))
    }

    fn build(otlp: Option<(&str, Duration)>) -> Result<Self, MetricsError> {
        use opentelemetry_otlp::WithExportConfig;
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource())
            .with_reader(prometheus);
        if let Some((endpoint, interval)) = otlp {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| MetricsError(e.to_string()))?;
            let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
                .with_interval(interval)
                .build();
            builder = builder.with_reader(reader);
        }
        let provider = builder.build();
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder("riverlog")
                .with_version(env!("CARGO_PKG_VERSION"))
                .with_schema_url(format!(
                    "https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
                ))
                .build(),
        );
        process::register(&meter);
        let observed = Arc::new(Observed::default());

        let up = observed.clone();
        meter
            .u64_observable_gauge("riverlog.storage.up")
            .with_description("1 while the storage answers the health probe, else 0")
            .with_callback(move |o| {
                o.observe(u64::from(up.storage_up.load(Ordering::Relaxed)), &[])
            })
            .build();
        let groups = observed.clone();
        meter
            .u64_observable_gauge("riverlog.group.lag")
            .with_description("Retained events a consumer group has not been given yet")
            .with_callback(move |o| {
                for g in lock(&groups.groups).iter() {
                    o.observe(g.lag, &group_labels(g));
                }
            })
            .build();
        let groups = observed.clone();
        meter
            .u64_observable_gauge("riverlog.group.pending")
            .with_description("Events delivered to a consumer group and not acked yet")
            .with_callback(move |o| {
                for g in lock(&groups.groups).iter() {
                    o.observe(g.pending, &group_labels(g));
                }
            })
            .build();

        let metrics = Self {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of gRPC calls, streams until they end")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            http_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description(
                    "Duration of HTTP requests until the response body ends (SSE: until the stream closes)",
                )
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            events_appended: meter
                .u64_counter("riverlog.events.appended")
                .with_description("Events committed to the log")
                .build(),
            append_batch_size: meter
                .u64_histogram("riverlog.append.batch.size")
                .with_description("Events appended per committed write transaction")
                .with_boundaries(BATCH_BUCKETS.to_vec())
                .build(),
            commit_duration: meter
                .f64_histogram("riverlog.commit.duration")
                .with_unit("s")
                .with_description("Duration of write transactions, commit included")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            subscriptions_active: meter
                .i64_up_down_counter("riverlog.subscriptions.active")
                .with_description("Open Subscribe streams")
                .build(),
            consumers_active: meter
                .i64_up_down_counter("riverlog.consumers.active")
                .with_description("Open Consume streams")
                .build(),
            events_delivered: meter
                .u64_counter("riverlog.events.delivered")
                .with_description("Events sent to subscribers and consumers")
                .build(),
            subscription_storage_events: meter
                .u64_counter("riverlog.subscription.storage.events")
                .with_description(
                    "Events subscriptions read from storage: history, or after falling behind the live buffer",
                )
                .build(),
            events_redelivered: meter
                .u64_counter("riverlog.events.redelivered")
                .with_description("Consumer-group deliveries of an event after its first")
                .build(),
            events_dead_lettered: meter
                .u64_counter("riverlog.events.dead_lettered")
                .with_description("Events moved to a dead-letter stream")
                .build(),
            retention_removed: meter
                .u64_counter("riverlog.retention.removed")
                .with_description("Events removed by retention rules")
                .build(),
            publish_stream_requests: meter
                .u64_counter("riverlog.publish_stream.requests")
                .with_description("PublishStream requests answered, by status code")
                .build(),
            publish_stream_in_flight: meter
                .i64_up_down_counter("riverlog.publish_stream.in_flight")
                .with_description("PublishStream requests read and not answered yet")
                .build(),
            provider,
            registry,
            observed,
        };
        // Series appear on first use; start the unlabelled ones at zero so
        // dashboards and alerts see them from the first scrape.
        metrics.events_appended.add(0, &[]);
        metrics.subscription_storage_events.add(0, &[]);
        metrics.events_redelivered.add(0, &[]);
        metrics.events_dead_lettered.add(0, &[]);
        metrics.subscriptions_active.add(0, &[]);
        metrics.consumers_active.add(0, &[]);
        metrics.publish_stream_in_flight.add(0, &[]);
        Ok(metrics)
    }

    /// Records whether storage answered the last health probe.
    pub fn set_storage_up(&self, up: bool) {
        self.observed.storage_up.store(up, Ordering::Relaxed);
    }

    /// Replaces the consumer-group backlog samples.
    pub fn set_groups(&self, samples: Vec<GroupSample>) {
        *lock(&self.observed.groups) = samples;
    }

    /// The current values in the Prometheus text format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        // Encoding into a Vec only fails on malformed families, which the
        // exporter does not produce; an empty page is the fallback.
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Pushes what is pending to OTLP and stops the exporters.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "metrics shutdown");
        }
    }
}

/// Counts something in an up-down counter for as long as it lives.
pub struct Active(UpDownCounter<i64>);

impl Active {
    /// Adds one to `counter` until dropped.
    pub fn new(counter: &UpDownCounter<i64>) -> Self {
        counter.add(1, &[]);
        Self(counter.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

fn group_labels(g: &GroupSample) -> [KeyValue; 2] {
    [
        KeyValue::new("stream", g.stream.clone()),
        KeyValue::new("group", g.group.clone()),
    ]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The resource of every export (metrics, spans, Prometheus `target_info`):
/// `service.name` `riverlog` and `service.version` by default, the SDK's
/// `telemetry.sdk.*`, then `OTEL_RESOURCE_ATTRIBUTES`, then
/// `OTEL_SERVICE_NAME`, each overriding the one before (OpenTelemetry SDK
/// environment variables specification).
pub fn resource() -> Resource {
    let service_name = std::env::var("OTEL_SERVICE_NAME").ok();
    let attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok();
    let from_env = resource_from_env(attributes.as_deref(), service_name.as_deref())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "OTEL_RESOURCE_ATTRIBUTES ignored");
            // Without attributes nothing can be malformed.
            resource_from_env(None, service_name.as_deref()).unwrap_or_default()
        });
    Resource::builder_empty()
        .with_service_name("riverlog")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(from_env)
        .build()
}

/// Why `OTEL_RESOURCE_ATTRIBUTES` was ignored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {0:?} is not key=value with a non-empty key and percent-encoded value")]
pub struct ResourceAttributesError(String);

/// The attributes the environment gives: `attributes` is
/// `OTEL_RESOURCE_ATTRIBUTES` (`key=value,...`, values percent-encoded as
/// W3C Baggage values), `service_name` is `OTEL_SERVICE_NAME`, which wins
/// over a `service.name` in `attributes`. Empty values of either variable
/// count as unset. One malformed entry voids the whole variable, as the
/// specification asks.
pub fn resource_from_env(
    attributes: Option<&str>,
    service_name: Option<&str>,
) -> Result<Vec<KeyValue>, ResourceAttributesError> {
    let mut out = Vec::new();
    for entry in attributes
        .unwrap_or_default()
        .split(',')
        .filter(|e| !e.trim().is_empty())
    {
        let bad = || ResourceAttributesError(entry.to_owned());
        let (key, value) = entry.split_once('=').ok_or_else(bad)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad());
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| bad())?;
        out.push(KeyValue::new(key.to_owned(), value.into_owned()));
    }
    if let Some(name) = service_name.map(str::trim).filter(|n| !n.is_empty()) {
        out.push(KeyValue::new("service.name", name.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruments_render_as_prometheus_text() {
        let m = Metrics::new().unwrap();
        m.events_appended.add(3, &[]);
        m.set_storage_up(true);
        m.set_groups(vec![GroupSample {
            stream: "orders".into(),
            group: "billing".into(),
            lag: 7,
            pending: 2,
        }]);
        m.rpc_duration.record(
            0.002,
            &[
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", "riverlog.v1.EventLog/Publish"),
            ],
        );
        let text = m.render();
        assert!(text.contains("riverlog_events_appended_total 3"), "{text}");
        assert!(text.contains("riverlog_storage_up 1"), "{text}");
        assert!(
            text.contains("riverlog_group_lag{group=\"billing\",stream=\"orders\"} 7"),
            "{text}"
        );
        assert!(
            text.contains(
                "rpc_server_call_duration_seconds_bucket{rpc_method=\"riverlog.v1.EventLog/Publish\""
            ),
            "{text}"
        );
    }

    fn pairs(kvs: &[KeyValue]) -> Vec<(String, String)> {
        kvs.iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn resource_attributes_from_the_environment_are_percent_decoded() {
        let kvs = resource_from_env(
            Some("deployment.environment.name=prod, team = a%2Cb%3Dc ,,"),
            None,
        )
        .unwrap();
        assert_eq!(
            pairs(&kvs),
            [
                ("deployment.environment.name".into(), "prod".into()),
                ("team".into(), "a,b=c".into())
            ]
        );
    }

    #[test]
    fn otel_service_name_wins_over_the_attributes_and_empty_means_unset() {
        let kvs = resource_from_env(Some("service.name=from-attrs"), Some("from-var")).unwrap();
        assert_eq!(
            pairs(&kvs).last(),
            Some(&("service.name".into(), "from-var".into()))
        );
        assert!(resource_from_env(Some(""), Some("  ")).unwrap().is_empty());
    }

    #[test]
    fn one_malformed_entry_voids_the_resource_attributes() {
        for bad in ["a=1,novalue", "=x", "a=%FF"] {
            let err = resource_from_env(Some(bad), None).unwrap_err();
            assert!(bad.contains(&err.0), "{bad}: {err}");
        }
    }
}
