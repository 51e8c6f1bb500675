//! Logs and traces. Logs go to stderr as text or JSON; spans also go to an
//! OTLP collector when one is configured. W3C trace context is understood
//! either way, so incoming `traceparent` headers are honoured.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// Installs logging and, with an `otlp_endpoint`, span export over
/// OTLP/gRPC. Must run inside a Tokio runtime when exporting.
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = match otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| format!("cannot set up trace export to {endpoint}: {e}"))?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(crate::metrics::resource())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        None => None,
    };
    let otel = tracer
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("riverlog")));
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry()
        .with(filter(level))
        .with(otel);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // Already installed (tests start many servers): keep the first.
    let _ = installed;
    Ok(Telemetry { tracer })
}
