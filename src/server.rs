//! Builds the application, reports its bound address, and runs it until a
//! shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use crate::api::guard::Guard;
use crate::api::message_size::MessageSizeLayer;
use crate::api::observe::ObserveLayer;
use crate::api::{CheckpointsApi, ConsumerGroupsApi, EventLogApi};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::log::{EventLog, LogError, LogTasks};
use crate::metrics::{Metrics, MetricsError};
use crate::model::StorageError;
use crate::proto::{self, v1};
use crate::service::admission::{CallLimits, PublishRate, PublishStreamLimits, SubscriptionSlots};
use crate::storage::{self, Storage};
use crate::tls::{TlsError, TlsMaterial};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The storage could not be opened.
    #[error("cannot open the database: {0}")]
    Storage(#[from] StorageError),
    /// The log could not start.
    #[error("cannot start the log: {0}")]
    Log(#[from] LogError),
    /// Reflection could not load the descriptors.
    #[error("reflection setup failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// TLS files are missing or unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// HTTP/2 receive window of each gRPC call, in bytes: how far a client may
/// send ahead of what the call has read (a PublishStream whose window is
/// full reads nothing, so this is what a client may have in transit).
pub const HTTP2_STREAM_WINDOW: u32 = 1 << 20;
/// HTTP/2 receive window of a whole connection, in bytes.
pub const HTTP2_CONNECTION_WINDOW: u32 = 1 << 20;

/// A built, bound, not yet running riverlog server.
pub struct Application {
    config: Config,
    listener: TcpListener,
    http_listener: TcpListener,
    /// `/metrics` on its own address (`metrics_listen`), when set.
    metrics_listener: Option<TcpListener>,
    tls: Option<TlsMaterial>,
    metrics: Arc<Metrics>,
    storage: Arc<dyn Storage>,
    log: EventLog,
    /// The writer and the log's background tasks: finished before storage
    /// closes, so none of them works on a closed pool.
    tasks: LogTasks,
    /// Ends subscriptions and stops the health probe when cancelled.
    shutdown: CancellationToken,
}

/// Service names the health service reports on, besides the server as a
/// whole ("").
fn service_names() -> [&'static str; 3] {
    [
        <v1::event_log_server::EventLogServer<EventLogApi> as NamedService>::NAME,
        <v1::consumer_groups_server::ConsumerGroupsServer<ConsumerGroupsApi> as NamedService>::NAME,
        <v1::checkpoints_server::CheckpointsServer<CheckpointsApi> as NamedService>::NAME,
    ]
}

/// The health service name Kubernetes liveness probes ask: SERVING while
/// the process runs, whatever the storage does. Restarting a replica cannot
/// bring a database back, so liveness must not follow storage the way
/// readiness (any service name above) does.
pub const LIVENESS_SERVICE: &str = "liveness";

async fn set_health(reporter: &HealthReporter, serving: bool) {
    use tonic_health::ServingStatus;
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    for name in service_names() {
        reporter.set_service_status(name, status).await;
    }
}

/// Reflection over every service served, plus `google.rpc` so tools like
/// grpcurl can decode the `ErrorInfo` details of errors.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

impl Application {
    /// Opens storage, starts the writer and binds the listen address.
    pub async fn build(config: Config) -> Result<Self, ServerError> {
        let storage = storage::open(&config.database_url, &config.storage_options()).await?;
        Self::build_with_storage(config, storage).await
    }

    /// Like [`Application::build`], over storage the caller opened (for
    /// embedding, and for tests that inject storage faults).
    pub async fn build_with_storage(
        config: Config,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, ServerError> {
        let tls = tls_material(&config)?;
        let metrics = Arc::new(match &config.otlp_endpoint {
            Some(endpoint) => Metrics::with_otlp(endpoint, config.otlp_metrics_interval)?,
            None => Metrics::new()?,
        });
        let shutdown = CancellationToken::new();
        let (log, tasks) = EventLog::start(
            storage.clone(),
            config.limits(),
            shutdown.clone(),
            metrics.clone(),
        )
        .await?;
        let listener = bind(&config.listen).await?;
        let http_listener = bind(&config.http_listen).await?;
        let metrics_listener = match &config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Self {
            config,
            listener,
            http_listener,
            metrics_listener,
            tls,
            metrics,
            storage,
            log,
            tasks,
            shutdown,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The bound `metrics_listen` address, when set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The bound gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `signal` resolves, then shuts down gracefully: health
    /// turns NOT_SERVING, subscriptions end with UNAVAILABLE
    /// (SHUTTING_DOWN), in-flight calls finish, queued writes commit.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Self {
            config,
            listener,
            http_listener,
            metrics_listener,
            tls,
            metrics,
            storage,
            log,
            tasks,
            shutdown,
        } = self;
        let addr = listener
            .local_addr()
            .map_or_else(|_| config.listen.clone(), |a| a.to_string());

        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        set_health(&reporter, true).await;
        let probe = tokio::spawn(probe_storage(
            storage.clone(),
            log.clone(),
            reporter.clone(),
            metrics.clone(),
            config.health_check_interval,
            shutdown.clone(),
        ));
        tasks.spawn_retention(&log, config.retention_defaults(), config.retention_interval);
        tasks.spawn_group_metrics(&log, config.group_metrics_interval);
        tasks.spawn_dead_letters(&log, config.dead_letter_interval);

        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        // Requests: a full publish plus framing. Responses: Read and Take
        // pages stop at max_batch_bytes but always hold one event.
        let max_request = config.max_batch_bytes.saturating_add(1 << 20);
        let max_response = max_request.saturating_add(config.max_event_size);
        let authenticator = Arc::new(Authenticator::new(&config.auth));
        let guard = Guard::new(authenticator.clone());
        let burst = match config.publish_burst {
            0 => config
                .publish_rate_limit
                .max(u32::try_from(config.max_batch_events).unwrap_or(u32::MAX)),
            b => b,
        };
        let limits = Arc::new(CallLimits {
            slots: SubscriptionSlots::new(
                config.max_subscriptions,
                config.max_subscriptions_per_connection,
            ),
            publish_streams: PublishStreamLimits::new(
                config.max_publish_streams,
                config.publish_stream_buffer_bytes,
            ),
            publish_rate: PublishRate::new(config.publish_rate_limit, burst),
            max_event_size: config.max_event_size,
        });
        // gzip and zstd both ways, whenever the client asks for them.
        macro_rules! compressed {
            ($server:expr) => {
                $server
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .send_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Zstd)
            };
        }
        let consumer_groups = InterceptedService::new(
            compressed!(
                v1::consumer_groups_server::ConsumerGroupsServer::new(ConsumerGroupsApi::new(
                    log.clone(),
                    limits.clone(),
                ))
                .max_encoding_message_size(max_response)
            ),
            guard.clone(),
        );
        let checkpoints = InterceptedService::new(
            compressed!(v1::checkpoints_server::CheckpointsServer::new(
                CheckpointsApi::new(log.clone())
            )),
            guard.clone(),
        );
        let http_state = Arc::new(crate::http::HttpState {
            log: log.clone(),
            auth: authenticator,
            limits: limits.clone(),
            metrics: metrics.clone(),
            sse_heartbeat: config.sse_heartbeat,
            console_dir: config.console_dir.as_ref().map(Into::into),
            url_scheme: if tls.is_some() { "https" } else { "http" },
            access_log: config.access_log,
        });
        let event_log = InterceptedService::new(
            compressed!(
                v1::event_log_server::EventLogServer::new(EventLogApi::new(
                    log,
                    limits,
                    metrics.clone()
                ))
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(max_response)
            ),
            guard,
        );

        let stopping = shutdown.clone();
        let on_signal = {
            let reporter = reporter.clone();
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = signal => {}
                    () = shutdown.cancelled() => {}
                }
                info!("shutting down");
                // Ends subscriptions and the probe; the probe must be gone
                // before NOT_SERVING is set, or it could set SERVING again.
                shutdown.cancel();
                let _ = probe.await;
                set_health(&reporter, false).await;
            }
        };

        let http_addr = http_listener
            .local_addr()
            .map_or_else(|_| config.http_listen.clone(), |a| a.to_string());
        let http_stop = CancellationToken::new();
        let metrics_http = metrics_listener.map(|listener| {
            tokio::spawn(serve_http(
                listener,
                crate::http::metrics_router(http_state.clone()),
                tls.as_ref().map(TlsMaterial::http),
                http_stop.clone(),
            ))
        });
        let http = tokio::spawn(serve_http(
            http_listener,
            crate::http::router(http_state, metrics_http.is_none())
                .layer(axum::extract::DefaultBodyLimit::max(max_request))
                // SSE is left out by the default predicate: it compresses
                // itself, flushing per event (http/sse.rs).
                .layer(tower_http::compression::CompressionLayer::new())
                .layer(cors(&config)),
            tls.as_ref().map(TlsMaterial::http),
            http_stop.clone(),
        ));

        info!(grpc = %addr, http = %http_addr, database = %config.database_url_redacted(), "riverlog serving");
        let observe = ObserveLayer::new(
            metrics.clone(),
            &[
                proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ],
        )
        .with_access_log(config.access_log);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &tls {
            builder = builder.tls_config(tls.grpc())?;
        }
        let serve = builder
            // Flow control, stated rather than inherited from hyper: how
            // much a client may send that no call has read yet.
            .initial_stream_window_size(HTTP2_STREAM_WINDOW)
            .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
            .http2_adaptive_window(Some(false))
            // grpc-web rides on HTTP/1.1 too.
            .accept_http1(true)
            .layer(cors(&config))
            .layer(tonic_web::GrpcWebLayer::new())
            // Inside grpc-web: every call looks like plain gRPC here, so its
            // status is read from real trailers.
            .layer(observe)
            .layer(MessageSizeLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(event_log)
            .add_service(consumer_groups)
            .add_service(checkpoints)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY small responses wait for delayed ACKs
                // (~40 ms each): a sequential publisher would crawl.
                TcpIncoming::from(listener)
                    .with_nodelay(Some(true))
                    .with_keepalive(Some(Duration::from_secs(60))),
                on_signal,
            );
        // Graceful shutdown waits for open calls to end; calls the server
        // does not end itself (a health Watch, a slow unary call) get the
        // grace period, then the server stops waiting for them.
        let grace_expired = {
            let stopping = stopping.clone();
            async move {
                stopping.cancelled().await;
                tokio::time::sleep(config.shutdown_grace).await;
            }
        };
        let served = tokio::select! {
            served = serve => served,
            () = grace_expired => {
                warn!("calls still open after the shutdown grace period; not waiting for them");
                Ok(())
            }
        };
        stopping.cancel();

        // Background tasks stop first (retention, group metrics, the
        // tailer); then calls still open after the grace period get
        // SHUTTING_DOWN, and what is already queued commits. Only then
        // does storage close.
        tasks.finish(config.shutdown_grace).await;
        storage.close().await;
        // /metrics answers until the end, so the last values can be read.
        http_stop.cancel();
        let _ = http.await;
        if let Some(metrics_http) = metrics_http {
            let _ = metrics_http.await;
        }
        metrics.shutdown();
        info!("stopped");
        served.map_err(ServerError::from)
    }
}

/// CORS for browsers on other origins (grpc-web and the HTTP API): only
/// the configured origins; none by default.
fn cors(config: &Config) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let origins: Vec<&str> = config
        .cors_allowed_origins
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(Any)
        // A `*` never covers Authorization, and ce-* headers cannot be
        // listed ahead: echo what the preflight asks for.
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .expose_headers([
            http::HeaderName::from_static("grpc-status"),
            http::HeaderName::from_static("grpc-message"),
            http::HeaderName::from_static("grpc-status-details-bin"),
            http::HeaderName::from_static("retry-after"),
        ])
}

fn tls_material(config: &Config) -> Result<Option<TlsMaterial>, TlsError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => TlsMaterial::load(
            cert.as_ref(),
            key.as_ref(),
            config.tls_client_ca.as_deref().map(std::path::Path::new),
            config.tls_client_auth_optional,
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// Serves the HTTP side until `stop`, over TLS when configured.
async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let served = match tls {
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                stopper.graceful_shutdown(Some(Duration::from_secs(1)));
            });
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            match listener
                .into_std()
                .and_then(|l| axum_server::from_tcp_rustls(l, config))
            {
                Ok(server) => {
                    server
                        .handle(handle)
                        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = served {
        warn!(error = %e, "HTTP server failed");
    }
}

async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// Longest a health probe may take before storage counts as unavailable.
const PROBE_PATIENCE: Duration = Duration::from_secs(5);

/// Probes storage and keeps the health service's status in step with it:
/// SERVING while storage answers reads and takes writes. Reads alone do not
/// tell: a full disk still serves them while every publish fails.
async fn probe_storage(
    storage: Arc<dyn Storage>,
    log: EventLog,
    reporter: HealthReporter,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    metrics.set_storage_up(true);
    let mut serving = true;
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Bounded: a writer stuck on a half-open connection must turn health
        // NOT_SERVING, not freeze it.
        let patience = every.max(PROBE_PATIENCE);
        let checked = match tokio::time::timeout(patience, storage.ping()).await {
            Ok(Ok(())) => match tokio::time::timeout(patience, log.check_writes()).await {
                Ok(checked) => checked.map_err(|e| e.to_string()),
                Err(_) => Err(format!("a write probe took over {patience:?}")),
            },
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("a read probe took over {patience:?}")),
        };
        let healthy = match checked {
            Ok(()) => true,
            Err(e) => {
                if serving {
                    warn!(error = %e, "storage unreachable or not taking writes; health is NOT_SERVING");
                }
                false
            }
        };
        metrics.set_storage_up(healthy);
        if healthy != serving && !shutdown.is_cancelled() {
            if healthy {
                info!("storage reachable and taking writes again; health is SERVING");
            }
            set_health(&reporter, healthy).await;
            serving = healthy;
        }
    }
}
