//! Logs and traces. Logs go to stderr as text or JSON; spans also go to an
//! OTLP collector when one is configured. W3C trace context is understood
//! either way, so incoming `traceparent` headers are honoured, and every
//! span has OpenTelemetry ids even without export: JSON log lines written
//! inside a span carry its `trace_id` and `span_id` (lowercase hex, as in
//! W3C `traceparent`), so logs and traces join up.
//!
//! Spans and the resource follow OpenTelemetry semantic conventions
//! v1.45.0 (see [`crate::metrics::SEMCONV_VERSION`]); the resource honours
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
//! ([`crate::metrics::resource`]).

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Keeps trace export running; [`Telemetry::shutdown`] flushes it.
#[derive(Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans not exported yet and stops exporting.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer {
            if let Err(e) = provider.shutdown() {
                eprintln!("riverlog: trace export shutdown: {e}");
            }
        }
    }
}

fn filter(level: Option<&str>) -> EnvFilter {
    let quiet_deps = "sqlx=warn,h2=warn,tower=warn,hyper=warn";
    level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(format!("info,{quiet_deps}")))
}

/// Installs logging only. The level is `level` if given, else `RUST_LOG`,
/// else `info`. Calling it again is harmless.
pub fn init_logging(format: LogFormat, level: Option<&str>) {
    let _ = init(format, level, None);
}

/// Installs logging and tracing: spans get OpenTelemetry ids always, and
/// with an `otlp_endpoint` they are exported over OTLP/gRPC. Must run
/// inside a Tokio runtime when exporting. Only the first call in a process
/// installs anything (tests start many servers).
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporting = otlp_endpoint.is_some();
    let mut provider = SdkTracerProvider::builder().with_resource(crate::metrics::resource());
    if !exporting {
        // Ids only: nothing records what no exporter would send.
        provider = provider.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    }
    if let Some(endpoint) = otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("cannot set up trace export to {endpoint}: {e}"))?;
        provider = provider.with_batch_exporter(exporter);
    }
    // Without an exporter the provider only hands out ids (for the logs);
    // nothing is buffered.
    let provider = provider.build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("riverlog"));
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry()
        .with(filter(level))
        .with(otel);
    let dispatch_slot = Arc::new(OnceLock::new());
    let dispatch = match format {
        LogFormat::Text => tracing::Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            ),
        ),
        LogFormat::Json => tracing::Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(WithTraceIds {
                        inner: format::format().json(),
                        dispatch: dispatch_slot.clone(),
                    })
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let _ = dispatch_slot.set(dispatch.downgrade());
    if dispatch.try_init().is_err() {
        // Already installed: keep the first, and its provider.
        return Ok(Telemetry::default());
    }
    Ok(Telemetry {
        tracer: exporting.then_some(provider),
    })
}

/// A JSON event format that adds the OpenTelemetry `trace_id` and `span_id`
/// of the event's span to each line written inside one.
struct WithTraceIds<F> {
    inner: F,
    /// The subscriber this format belongs to, set once it is built: the
    /// span's OpenTelemetry context is read through it (the global
    /// dispatcher cannot be asked from inside an event it is dispatching).
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<F> WithTraceIds<F> {
    /// The ids of the span `id`, if it has valid OpenTelemetry ones.
    fn ids(&self, id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| {
            (
                context.trace_id().to_string(),
                context.span_id().to_string(),
            )
        })
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx.parent_span().and_then(|span| self.ids(&span.id()));
        // The JSON format writes one object and a newline: the ids go in
        // as its last members.
        match (ids, line.trim_end().strip_suffix('}')) {
            (Some((trace_id, span_id)), Some(object)) => writeln!(
                writer,
                "{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            _ => writer.write_str(&line),
        }
    }
}
