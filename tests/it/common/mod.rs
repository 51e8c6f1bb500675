//! Test harness: a real riverlog server on 127.0.0.1:0 with a temporary
//! SQLite file, and the generated Rust client.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use riverlog::config::Config;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{self, subscribe_response::Message};
use riverlog::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue, EventPayload};
use riverlog::server::Application;
use riverlog::storage::testing::PostgresSchema;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

mod api;
mod groups;
mod load;
pub use api::*;
pub use groups::*;
pub use load::*;

/// How long a test waits for something that should happen promptly before
/// it fails instead of hanging. Not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

static LOGS: Once = Once::new();

/// Server logs appear only when `TEST_LOG` is set.
fn init_logs() {
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            riverlog::telemetry::init_logging(riverlog::config::LogFormat::Text, None);
        }
    });
}

/// A test's own empty database: a temporary SQLite file, or a fresh schema
/// in the test PostgreSQL when `RIVERLOG_TEST_BACKEND=postgres` (so tests
/// run in parallel without seeing each other). It outlives server restarts;
/// the file, or the schema, goes when the last `TestDb` on it does (also
/// when the test fails).
pub struct TestDb {
    /// The database URL a server is started with.
    pub url: String,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<TempDir>,
    /// Keeps the PostgreSQL schema alive; shared with replicas.
    _schema: Option<PostgresSchema>,
}

/// Which backend the suite runs against.
pub fn backend_is_postgres() -> bool {
    std::env::var("RIVERLOG_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The PostgreSQL the suite uses (`RIVERLOG_TEST_DATABASE_URL`).
pub fn postgres_url() -> String {
    riverlog::storage::testing::postgres_url()
}

impl TestDb {
    /// An empty database of the backend the suite runs against.
    pub async fn new() -> Self {
        if backend_is_postgres() {
            Self::postgres().await
        } else {
            Self::sqlite()
        }
    }

    /// A temporary SQLite file, whatever the suite's backend.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("riverlog.db").display());
        Self {
            url,
            _dir: Some(dir),
            _schema: None,
        }
    }

    /// A fresh schema in the test PostgreSQL, whatever the suite's backend.
    pub async fn postgres() -> Self {
        let schema = riverlog::storage::testing::fresh_postgres_schema().await;
        Self {
            url: schema.url().to_owned(),
            _dir: None,
            _schema: Some(schema),
        }
    }
}

impl TestDb {
    /// A database reached through another URL (a proxy in front of it).
    /// It owns nothing: the `TestDb` it stands in front of must outlive it.
    pub fn with_url(url: String) -> Self {
        Self {
            url,
            _dir: None,
            _schema: None,
        }
    }

    /// The schema (and application name) of a PostgreSQL test database.
    pub fn schema(&self) -> &str {
        self.url.rsplit('=').next().unwrap_or_default()
    }

    /// The same database for a second server (a replica). PostgreSQL only:
    /// a SQLite file has one writer process.
    pub fn replica(&self) -> Self {
        assert!(
            backend_is_postgres(),
            "replicas share a PostgreSQL database"
        );
        Self {
            url: self.url.clone(),
            _dir: None,
            _schema: self._schema.clone(),
        }
    }
}

/// A running server and its database.
pub struct TestServer {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// `/metrics` on its own listener, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server with default settings on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server on a fresh database with adjusted settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(TestDb::new().await, adjust).await
    }

    /// A server on `db` (perhaps kept from a previous server).
    pub async fn start_in(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let mut config = Config::new(db.url.clone(), "127.0.0.1:0");
        config.health_check_interval = Duration::from_millis(50);
        adjust(&mut config);
        let app = Application::build(config).await.expect("server builds");
        let addr = app.grpc_addr();
        let http_addr = app.http_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs and stops cleanly");
        });
        Self {
            addr,
            http_addr,
            metrics_addr,
            db,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("valid url")
            .connect()
            .await
            .expect("connects")
    }

    pub async fn client(&self) -> EventLogClient<Channel> {
        EventLogClient::new(self.channel().await)
    }

    /// Shuts down gracefully and hands back the database.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown().await;
        let placeholder = TestDb::with_url(String::new());
        std::mem::replace(&mut self.db, placeholder)
    }

    /// Starts the graceful shutdown and waits for it to finish.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            within(task).await.expect("server task completes");
        }
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("did not complete in time")
}

/// Polls `probe` until it finds what it looks for, failing with `what`
/// after [`PATIENCE`]. For state the server reaches in the background,
/// where there is no event to await.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let poll = async {
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("still waiting for {what} after {PATIENCE:?}"))
}

/// A CloudEvent with the given id and type, text data and optional subject.
pub fn cloud_event(id: &str, event_type: &str, subject: Option<&str>) -> CloudEvent {
    let mut attributes = std::collections::HashMap::new();
    if let Some(s) = subject {
        attributes.insert(
            "subject".to_owned(),
            CloudEventAttributeValue {
                attr: Some(AttributeValue::CeString(s.to_owned())),
            },
        );
    }
    CloudEvent {
        id: id.to_owned(),
        source: "/tests".to_owned(),
        spec_version: "1.0".to_owned(),
        r#type: event_type.to_owned(),
        attributes,
        data: Some(Data::TextData(format!("{{\"id\":\"{id}\"}}"))),
    }
}

/// An event of type `test.created`.
pub fn event(id: &str) -> EventPayload {
    cloud_event(id, "test.created", None).into()
}

/// Events `{prefix}-{i}` for i in range.
pub fn events(prefix: &str, range: std::ops::Range<usize>) -> Vec<EventPayload> {
    range.map(|i| event(&format!("{prefix}-{i}"))).collect()
}

pub fn publish_request(stream: &str, events: Vec<EventPayload>) -> v1::PublishRequest {
    v1::PublishRequest {
        stream: stream.to_owned(),
        events,
        expected: None,
    }
}

/// Creates `stream` with `retention`, panicking on error.
pub async fn create_stream(
    client: &mut EventLogClient<Channel>,
    stream: &str,
    retention: v1::Retention,
) {
    client
        .create_stream(v1::CreateStreamRequest {
            stream: stream.into(),
            retention: Some(retention),
        })
        .await
        .expect("created");
}

/// What GetStream says of `stream`.
pub async fn stream_info(
    client: &mut EventLogClient<Channel>,
    stream: &str,
) -> Result<v1::StreamInfo, Status> {
    client
        .get_stream(v1::GetStreamRequest {
            stream: stream.into(),
        })
        .await
        .map(|r| r.into_inner().info.expect("info"))
}

/// Publishes and returns the positions, panicking on error.
pub async fn publish(
    client: &mut EventLogClient<Channel>,
    stream: &str,
    events: Vec<EventPayload>,
) -> Vec<v1::PublishedPosition> {
    client
        .publish(publish_request(stream, events))
        .await
        .expect("publish succeeds")
        .into_inner()
        .positions
}

/// The id of the CloudEvent inside a recorded event.
pub fn event_id(e: &v1::RecordedEvent) -> String {
    e.event
        .as_ref()
        .expect("event present")
        .decode()
        .expect("decodes")
        .id
}

/// Asserts a status's code and ErrorInfo reason.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert_eq!(info.domain, "riverlog.dev");
}

/// Reads the whole stream forward.
pub async fn read_all(
    client: &mut EventLogClient<Channel>,
    stream: &str,
) -> Vec<v1::RecordedEvent> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = client
            .read(v1::ReadRequest {
                stream: stream.to_owned(),
                from: Some(v1::read_request::From::FromSequence(from)),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("read succeeds")
            .into_inner();
        out.extend(page.events);
        if page.end_of_stream {
            return out;
        }
        from = page.next_sequence;
    }
}

pub fn subscribe_request(
    streams: &[&str],
    start: Option<v1::start_position::Start>,
) -> v1::SubscribeRequest {
    v1::SubscribeRequest {
        streams: streams.iter().map(|s| (*s).to_owned()).collect(),
        start: start.map(|s| v1::StartPosition { start: Some(s) }),
        filter: None,
        heartbeat_interval: None,
    }
}

/// Opens a subscription.
pub async fn subscribe(
    client: &mut EventLogClient<Channel>,
    request: v1::SubscribeRequest,
) -> Streaming<v1::SubscribeResponse> {
    client
        .subscribe(request)
        .await
        .expect("subscribe succeeds")
        .into_inner()
}

/// The next subscription message, skipping heartbeats.
pub async fn next_message(stream: &mut Streaming<v1::SubscribeResponse>) -> Message {
    loop {
        let msg = within(stream.message())
            .await
            .expect("stream healthy")
            .expect("stream open")
            .message
            .expect("message set");
        if !matches!(msg, Message::Heartbeat(_)) {
            return msg;
        }
    }
}

/// The next `n` events of a subscription, skipping heartbeats and the
/// caught-up marker.
pub async fn next_events(
    stream: &mut Streaming<v1::SubscribeResponse>,
    n: usize,
) -> Vec<v1::RecordedEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match next_message(stream).await {
            Message::Event(e) => out.push(e),
            Message::CaughtUp(_) => {}
            Message::Heartbeat(_) => unreachable!(),
        }
    }
    out
}

pub fn millis(ms: u64) -> prost_types::Duration {
    prost_types::Duration::try_from(Duration::from_millis(ms)).expect("fits")
}

/// Starts the real binary on a free port over `db`.
pub async fn spawn_binary(db: &TestDb) -> (tokio::process::Child, String) {
    let spawned = spawn_binary_with(db, &[], &[]).await;
    (spawned.child, spawned.grpc_url)
}

/// The real binary, running.
pub struct Spawned {
    pub child: tokio::process::Child,
    pub grpc_url: String,
    pub http_url: String,
}

/// Starts the real binary on free ports over `db`, with more flags and
/// environment variables.
pub async fn spawn_binary_with(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> Spawned {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .args(args)
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (grpc, http) = within(async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            // Text logs say `grpc=ADDR`, JSON logs `"grpc":"ADDR"`.
            let field = |name: &str| {
                let text = line
                    .split(&format!("{name}="))
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next());
                let json = line
                    .split(&format!("\"{name}\":\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next());
                text.or(json).map(str::to_owned)
            };
            if let (Some(grpc), Some(http)) = (field("grpc"), field("http")) {
                return (grpc, http);
            }
            seen.push(line);
        }
        panic!(
            "the server exited before it was serving:\n{}",
            seen.join("\n")
        );
    })
    .await;
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Spawned {
        child,
        grpc_url: format!("http://{grpc}"),
        http_url: format!("http://{http}"),
    }
}

impl TestServer {
    /// A health Watch on `riverlog.v1.EventLog`, the readiness service.
    pub async fn watch_readiness(&self) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
        tonic_health::pb::health_client::HealthClient::new(self.channel().await)
            .watch(tonic_health::pb::HealthCheckRequest {
                service: "riverlog.v1.EventLog".into(),
            })
            .await
            .expect("health watch")
            .into_inner()
    }
}

/// The next status of a health Watch stream.
pub async fn next_status(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> i32 {
    within(watch.message())
        .await
        .expect("healthy")
        .expect("open")
        .status
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = addr.trim_start_matches("http://");
    let mut conn = within(tokio::net::TcpStream::connect(addr))
        .await
        .expect("HTTP port accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    within(conn.read_to_end(&mut response))
        .await
        .expect("response read");
    let response = String::from_utf8(response).expect("text response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, body.to_owned())
}

impl TestServer {
    /// The Prometheus text of `/metrics` on the HTTP port.
    pub async fn scrape(&self) -> String {
        let (status, body) = http_get(&self.http_addr.to_string(), "/metrics").await;
        assert_eq!(status, 200);
        body
    }
}

/// The value of the Prometheus sample `name` whose labels include every
/// `name="value"` of `labels`; `None` when there is no such sample.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .reduce(f64::max)
}

/// SQL run on the test's own database beside the server.
pub async fn run_sql(db: &TestDb, statements: &[String]) {
    use sqlx::Connection;
    if backend_is_postgres() {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}
