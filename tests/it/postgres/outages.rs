//! The database goes away and comes back: health follows, publishes fail
//! with UNAVAILABLE (never acknowledged and then lost), and the server
//! recovers by itself.

use std::net::SocketAddr;

use riverlog::proto::v1::start_position::Start;
use riverlog::proto::v1::subscribe_response::Message;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::*;

/// A TCP proxy in front of PostgreSQL that the test can cut and restore on
/// the same address: to the server it looks like the database going away.
struct Proxy {
    addr: SocketAddr,
    target: String,
    running: CancellationToken,
}

fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind");
    socket.listen(64).expect("listen")
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let running = serve(listener, target.clone());
        Self {
            addr,
            target,
            running,
        }
    }

    /// Drops the listener and every proxied connection.
    fn cut(&self) {
        self.running.cancel();
    }

    fn restore(&mut self) {
        self.running = serve(bind(self.addr), self.target.clone());
    }
}

fn serve(listener: TcpListener, target: String) -> CancellationToken {
    let running = CancellationToken::new();
    let token = running.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = tokio::select! {
                () = token.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => return },
            };
            let target = target.clone();
            let connection = token.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = connection.cancelled() => {}
                }
            });
        }
    });
    running
}

/// host:port of the test PostgreSQL URL.
fn postgres_host_port() -> String {
    let url = postgres_url();
    let after_at = url.rsplit_once('@').map_or(url.as_str(), |(_, h)| h);
    after_at
        .split(['/', '?'])
        .next()
        .unwrap_or("127.0.0.1:5432")
        .to_owned()
}

#[tokio::test]
async fn while_the_database_is_away_health_is_not_serving_and_publishes_fail_then_all_recovers() {
    assert!(
        backend_is_postgres(),
        "needs RIVERLOG_TEST_BACKEND=postgres"
    );
    let db = TestDb::new().await;
    let target = postgres_host_port();
    let mut proxy = Proxy::start(target.clone()).await;
    let proxied = TestDb::with_url(db.url.replacen(&target, &proxy.addr.to_string(), 1));
    let server = TestServer::start_in(proxied, |_| {}).await;
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("before")]).await;

    proxy.cut();
    assert_eq!(
        next_status(&mut watch).await,
        ServingStatus::NotServing as i32
    );
    let err = client
        .publish(publish_request("s", vec![event("during")]))
        .await
        .unwrap_err();
    assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");

    proxy.restore();
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("after")]).await;
    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(ids, ["before", "after"], "the refused publish left nothing");
    drop(watch);
}

#[tokio::test]
async fn after_its_connections_are_terminated_the_server_carries_on_by_itself() {
    assert!(
        backend_is_postgres(),
        "needs RIVERLOG_TEST_BACKEND=postgres"
    );
    let db = TestDb::new().await;
    let schema = db.schema().to_owned();
    let server = TestServer::start_in(db, |_| {}).await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("before")]).await;
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["s"], Some(Start::Latest(()))),
    )
    .await;
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));

    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&schema)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        terminated.len() >= 2,
        "the writer, readers and listener were connected"
    );

    // Publishing works again without a restart (pooled connections are
    // checked before use), and live delivery resumes once the listener
    // has reconnected.
    publish(&mut client, "s", vec![event("after")]).await;
    let got = next_events(&mut sub, 1).await;
    assert_eq!(event_id(&got[0]), "after");
    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(ids, ["before", "after"]);
}

/// A database of its own, dropped at the end: `ALTER DATABASE` acts on the
/// whole database, which the other tests share.
struct OwnDatabase {
    name: String,
}

impl OwnDatabase {
    async fn create() -> Self {
        use sqlx::Connection;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("rl_t_db_{}_{n}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        let base = postgres_url();
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        format!("{server}/{}?application_name={}", self.name, self.name)
    }

    async fn admin(&self, sql: String) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside the test's runtime: a thread with its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_url()).await {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                            .execute(&mut admin)
                            .await;
                    }
                });
        })
        .join();
    }
}

#[tokio::test]
async fn a_database_refusing_connections_is_unavailable_never_internal() {
    assert!(
        backend_is_postgres(),
        "needs RIVERLOG_TEST_BACKEND=postgres"
    );
    let db = OwnDatabase::create().await;
    let server = TestServer::start_in(TestDb::with_url(db.url()), |_| {}).await;
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("before")]).await;

    // What an operator does to take a database away: no new connections,
    // and the open ones terminated.
    db.admin(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        db.name
    ))
    .await;
    db.admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    ))
    .await;
    let mut refused = 0;
    for i in 0..50 {
        let err = client
            .publish(publish_request("s", vec![event(&format!("during-{i}"))]))
            .await
            .expect_err("the database refuses connections");
        assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");
        refused += 1;
    }
    assert_eq!(refused, 50);
    let err = client
        .read(riverlog::proto::v1::ReadRequest {
            stream: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");
    assert_eq!(
        next_status(&mut watch).await,
        ServingStatus::NotServing as i32
    );

    db.admin(format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name))
        .await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("after")]).await;
    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(
        ids,
        ["before", "after"],
        "the refused publishes left nothing"
    );
    drop(watch);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn an_outage_under_publish_load_refuses_with_unavailable_and_loses_nothing() {
    assert!(
        backend_is_postgres(),
        "needs RIVERLOG_TEST_BACKEND=postgres"
    );
    let db = TestDb::new().await;
    let target = postgres_host_port();
    let mut proxy = Proxy::start(target.clone()).await;
    let proxied = TestDb::with_url(db.url.replacen(&target, &proxy.addr.to_string(), 1));
    let server = TestServer::start_in(proxied, |_| {}).await;
    let client = server.client().await;

    // Publishers that carry on through refusals, reporting each outcome.
    let stop = CancellationToken::new();
    let (outcomes, results) = tokio::sync::mpsc::unbounded_channel();
    let publishers: Vec<_> = (0..8)
        .map(|w| {
            let mut client = client.clone();
            let outcomes = outcomes.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.is_cancelled() {
                        return;
                    }
                    let id = format!("w{w}-{i}");
                    let outcome = client
                        .publish(publish_request("load", vec![event(&id)]))
                        .await
                        .map(|r| (id, r.into_inner().positions[0].sequence));
                    if outcomes.send(outcome).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(outcomes);
    let mut seen = Outcomes {
        results,
        acked: Vec::new(),
        refused: Vec::new(),
    };
    seen.until(200, 0).await;
    proxy.cut();
    seen.until(0, 16).await;
    proxy.restore();
    let before = seen.acked.len();
    seen.until(before + 200, 0).await;
    stop.cancel();
    for p in publishers {
        within(p).await.unwrap();
    }
    let Outcomes {
        mut results,
        mut acked,
        mut refused,
    } = seen;
    while let Some(outcome) = results.recv().await {
        match outcome {
            Ok(ack) => acked.push(ack),
            Err(status) => refused.push(status),
        }
    }

    for status in &refused {
        assert_error(status, Code::Unavailable, "STORAGE_UNAVAILABLE");
    }
    drop(client);
    let db = server.stop().await;
    let direct = TestDb::with_url(db.url.replacen(&proxy.addr.to_string(), &target, 1));
    let sequences = assert_acked_stored(direct, "load", &acked).await;
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
}

/// What load publishers reported: acknowledged (id, sequence) and refusals.
struct Outcomes {
    results: tokio::sync::mpsc::UnboundedReceiver<Result<(String, u64), tonic::Status>>,
    acked: Vec<(String, u64)>,
    refused: Vec<tonic::Status>,
}

impl Outcomes {
    /// Collects outcomes until at least `acks` acknowledgements and
    /// `refusals` refusals were seen.
    async fn until(&mut self, acks: usize, refusals: usize) {
        while self.acked.len() < acks || self.refused.len() < refusals {
            match within(self.results.recv())
                .await
                .expect("publishers running")
            {
                Ok(ack) => self.acked.push(ack),
                Err(status) => self.refused.push(status),
            }
        }
    }
}
