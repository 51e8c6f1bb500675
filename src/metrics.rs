//! The server's metrics, through the OpenTelemetry SDK: always readable as
//! Prometheus text (`/metrics` on the HTTP port), and pushed over OTLP when
//! an endpoint is configured.
//!
//! Labels stay bounded: RPC method names come from a fixed list, and only
//! consumer groups (which an admin creates) get per-stream labels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _, UpDownCounter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// Latency buckets in seconds, from sub-millisecond commits to long calls.
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
    /// `rpc.server.call.duration`: seconds per call, by method and status.
    pub rpc_duration: Histogram<f64>,
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
        let meter = provider.meter("riverlog");
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

/// `service.name` and `service.version` of every export.
pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name("riverlog")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
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
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.method", "Publish"),
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
            text.contains("rpc_server_call_duration_seconds_bucket{rpc_method=\"Publish\""),
            "{text}"
        );
    }
}
