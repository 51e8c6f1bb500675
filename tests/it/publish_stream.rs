//! PublishStream: many publishes on one call, pipelined, each answered in
//! request order with what a unary Publish would have answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use riverlog::auth::{TokenConfig, token_digest};
use riverlog::proto::v1::{self, publish_request::Expected};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status, Streaming};
use tonic_types::StatusExt;

use crate::common::*;

/// Sends `requests` on one call, half-closes, and returns every answer and
/// how the call ended.
async fn publish_all(
    server: &TestServer,
    requests: Vec<v1::PublishRequest>,
) -> (Vec<v1::PublishResponse>, Result<(), Status>) {
    let mut client = server.client().await;
    let call = client
        .publish_stream(futures::stream::iter(requests))
        .await
        .expect("the call opens");
    collect(call.into_inner()).await
}

/// Every answer of a call, and how it ended.
async fn collect(
    mut answers: Streaming<v1::PublishResponse>,
) -> (Vec<v1::PublishResponse>, Result<(), Status>) {
    let mut got = Vec::new();
    loop {
        match within(answers.message()).await {
            Ok(Some(answer)) => got.push(answer),
            Ok(None) => return (got, Ok(())),
            Err(status) => return (got, Err(status)),
        }
    }
}

/// The ids an answer names, or its refusal's reason.
fn ids(answer: &v1::PublishResponse) -> Result<Vec<String>, String> {
    match &answer.error {
        Some(e) => {
            assert!(answer.positions.is_empty(), "a refusal has no positions");
            Err(e.reason.clone())
        }
        None => Ok(answer.positions.iter().map(|p| p.id.clone()).collect()),
    }
}

/// Asserts that a stream answer's refusal is exactly what a unary Publish
/// returned as its status: code, message, reason, domain, metadata.
#[track_caller]
fn assert_same_refusal(answer: &v1::PublishResponse, unary: &Status) {
    let error = answer.error.as_ref().expect("a refusal");
    let info = unary.get_details_error_info().expect("ErrorInfo");
    assert_eq!(error.code, unary.code() as i32, "code of {error:?}");
    assert_eq!(error.message, unary.message());
    assert_eq!(error.reason, info.reason);
    assert_eq!(error.domain, info.domain);
    assert_eq!(error.metadata, info.metadata);
    assert!(answer.positions.is_empty());
}

fn with_expected(mut request: v1::PublishRequest, expected: Expected) -> v1::PublishRequest {
    request.expected = Some(expected);
    request
}

#[tokio::test]
async fn answers_come_in_request_order_across_streams() {
    let server = TestServer::start().await;
    let streams = ["a", "b", "a", "c", "b", "a"];
    let requests = streams
        .iter()
        .enumerate()
        .map(|(i, s)| publish_request(s, events(&format!("r{i}"), 0..2)))
        .collect();
    let (answers, end) = publish_all(&server, requests).await;
    end.expect("ends OK after the half-close");
    assert_eq!(answers.len(), streams.len());
    let mut next_sequence: HashMap<&str, u64> = HashMap::new();
    let mut last_position = 0;
    for (i, (answer, stream)) in answers.iter().zip(streams).enumerate() {
        assert_eq!(
            ids(answer),
            Ok(vec![format!("r{i}-0"), format!("r{i}-1")]),
            "answer {i} is request {i}'s"
        );
        let next = next_sequence.entry(stream).or_insert(1);
        for p in &answer.positions {
            assert_eq!(p.sequence, *next, "sequences follow request order");
            assert!(p.position > last_position, "positions follow request order");
            assert!(!p.duplicate);
            *next += 1;
            last_position = p.position;
        }
    }
    let mut client = server.client().await;
    let stored: Vec<String> = read_all(&mut client, "a")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, ["r0-0", "r0-1", "r2-0", "r2-1", "r5-0", "r5-1"]);
}

#[tokio::test]
async fn many_pipelined_requests_are_answered_in_order_and_share_commits() {
    let server = TestServer::start().await;
    let before = metric(
        &server.scrape().await,
        "riverlog_append_batch_size_count",
        &[],
    );
    const REQUESTS: usize = 2000;
    let requests = (0..REQUESTS)
        .map(|i| publish_request("many", vec![event(&format!("e{i}"))]))
        .collect();
    let (answers, end) = publish_all(&server, requests).await;
    end.expect("ends OK");
    assert_eq!(answers.len(), REQUESTS);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(ids(answer), Ok(vec![format!("e{i}")]));
        assert_eq!(answer.positions[0].sequence, i as u64 + 1);
    }
    // Pipelined: the server queued requests before earlier ones committed,
    // so commits held several requests each (one by one, each would have
    // had its own).
    let commits = metric(
        &server.scrape().await,
        "riverlog_append_batch_size_count",
        &[],
    )
    .unwrap_or(0.0)
        - before.unwrap_or(0.0);
    assert!(
        commits <= (REQUESTS / 2) as f64,
        "{commits} commits for {REQUESTS} requests"
    );
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "riverlog_publish_stream_requests_total",
            &[("rpc_grpc_status_code", "0")]
        ),
        Some(REQUESTS as f64)
    );
    assert_eq!(
        metric(&text, "riverlog_publish_stream_in_flight", &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_refused_request_gets_what_publish_would_have_said_and_later_ones_still_commit() {
    let server = TestServer::start().await;
    let mut event_without_type = cloud_event("bad", "t", None);
    event_without_type.r#type = String::new();
    let bad_requests = [
        publish_request("no spaces allowed", vec![event("x")]),
        publish_request("s", vec![event("ok-1"), event_without_type.into()]),
        publish_request("s", vec![]),
        with_expected(
            publish_request("s", vec![event("y")]),
            Expected::ExpectedState(99),
        ),
    ];
    let mut requests = vec![publish_request("s", vec![event("first")])];
    for bad in bad_requests.iter().cloned() {
        requests.push(bad);
        requests.push(publish_request(
            "s",
            vec![event(&format!("after-{}", requests.len()))],
        ));
    }
    let (answers, end) = publish_all(&server, requests.clone()).await;
    end.expect("refusals leave the call open; it ends OK");
    assert_eq!(answers.len(), requests.len());

    let mut client = server.client().await;
    for (i, bad) in bad_requests.into_iter().enumerate() {
        let unary = client.publish(bad).await.unwrap_err();
        assert_same_refusal(&answers[1 + 2 * i], &unary);
    }
    assert_eq!(
        answers.iter().map(|a| ids(a).err()).collect::<Vec<_>>(),
        [
            None,
            Some("INVALID_STREAM_NAME".to_owned()),
            None,
            Some("INVALID_EVENT".to_owned()),
            None,
            Some("INVALID_ARGUMENT".to_owned()),
            None,
            Some("INVALID_ARGUMENT".to_owned()),
            None,
        ]
        .to_vec()
    );
    let stored: Vec<String> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(
        stored,
        ["first", "after-2", "after-4", "after-6", "after-8"],
        "a refused request appended nothing, not even its valid events"
    );
}

#[tokio::test]
async fn an_expected_sequence_sees_the_requests_before_it_and_a_conflict_refuses_only_its_own() {
    let server = TestServer::start().await;
    let requests = vec![
        with_expected(
            publish_request("acct", events("open", 0..2)),
            Expected::ExpectedState(v1::StreamState::NoStream as i32),
        ),
        // Sees the two events of the request before it, not yet committed
        // when this one was queued.
        with_expected(
            publish_request("acct", vec![event("deposit")]),
            Expected::ExpectedLastSequence(2),
        ),
        // Stale: written as if the deposit had not happened.
        with_expected(
            publish_request("acct", vec![event("withdraw")]),
            Expected::ExpectedLastSequence(2),
        ),
        with_expected(
            publish_request("acct", vec![event("close")]),
            Expected::ExpectedLastSequence(3),
        ),
    ];
    let (answers, end) = publish_all(&server, requests).await;
    end.expect("ends OK");
    assert_eq!(ids(&answers[0]), Ok(vec!["open-0".into(), "open-1".into()]));
    assert_eq!(answers[1].positions[0].sequence, 3);
    let conflict = answers[2].error.as_ref().expect("refused");
    assert_eq!(conflict.code, Code::FailedPrecondition as i32);
    assert_eq!(conflict.reason, "WRONG_EXPECTED_SEQUENCE");
    assert_eq!(conflict.domain, "riverlog.dev");
    assert_eq!(conflict.metadata["stream"], "acct");
    assert_eq!(conflict.metadata["actual_last_sequence"], "3");
    assert_eq!(answers[3].positions[0].sequence, 4);
    let mut client = server.client().await;
    let stored: Vec<String> = read_all(&mut client, "acct")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, ["open-0", "open-1", "deposit", "close"]);
}

#[tokio::test]
async fn ids_seen_in_earlier_requests_of_the_call_are_answered_as_duplicates() {
    let server = TestServer::start().await;
    let requests = vec![
        publish_request("d", vec![event("a"), event("b")]),
        publish_request("d", vec![event("b"), event("c")]),
        // A retry of the first request, with an expectation that no longer
        // holds: all duplicates, so it is answered, not refused.
        with_expected(
            publish_request("d", vec![event("a"), event("b")]),
            Expected::ExpectedState(v1::StreamState::NoStream as i32),
        ),
    ];
    let (answers, end) = publish_all(&server, requests).await;
    end.expect("ends OK");
    let first = &answers[0].positions;
    let second = &answers[1].positions;
    assert!(second[0].duplicate && !second[1].duplicate);
    assert_eq!(
        second[0].position, first[1].position,
        "b's original position"
    );
    assert_eq!(second[1].sequence, 3);
    let retry = &answers[2].positions;
    assert!(answers[2].error.is_none() && retry.iter().all(|p| p.duplicate));
    assert_eq!(retry.iter().map(|p| p.sequence).collect::<Vec<_>>(), [1, 2]);
    let mut client = server.client().await;
    assert_eq!(read_all(&mut client, "d").await.len(), 3);
}

fn token(name: &str, publish: &[&str]) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: token_digest(&format!("{name}-secret")),
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: vec!["*".into()],
        admin: false,
        metrics: false,
    }
}

fn as_token<T>(name: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {name}-secret").parse().expect("ascii");
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn each_request_needs_publish_on_its_own_stream() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![token("orders", &["orders:*"]), token("all", &["*"])];
    })
    .await;
    let mut client = server.client().await;
    let requests = vec![
        publish_request("orders:1", vec![event("o1")]),
        publish_request("audit", vec![event("a1")]),
        publish_request("orders:2", vec![event("o2")]),
    ];
    let call = client
        .publish_stream(as_token("orders", futures::stream::iter(requests)))
        .await
        .expect("the call opens");
    let (answers, end) = collect(call.into_inner()).await;
    end.expect("ends OK");
    assert_eq!(ids(&answers[0]), Ok(vec!["o1".into()]));
    assert_eq!(ids(&answers[2]), Ok(vec!["o2".into()]));
    let unary = client
        .publish(as_token(
            "orders",
            publish_request("audit", vec![event("a1")]),
        ))
        .await
        .unwrap_err();
    assert_error(&unary, Code::PermissionDenied, "PERMISSION_DENIED");
    assert_same_refusal(&answers[1], &unary);
    assert_eq!(
        answers[1].error.as_ref().unwrap().metadata["stream"],
        "audit"
    );
    let stored = client
        .read(as_token(
            "all",
            v1::ReadRequest {
                stream: "audit".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner().events.len());
    assert_error(
        &stored.expect_err("nothing was appended to audit"),
        Code::NotFound,
        "STREAM_NOT_FOUND",
    );

    // Without a token the whole call is refused, before any request.
    let missing = client
        .publish_stream(futures::stream::iter(vec![publish_request(
            "orders:3",
            vec![event("o3")],
        )]))
        .await;
    let status = match missing {
        Err(status) => status,
        Ok(call) => collect(call.into_inner()).await.1.expect_err("refused"),
    };
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_publish_rate_is_spent_per_request_and_a_limited_request_says_when_to_retry() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![token("slow", &["*"])];
        // One event per second after a burst of 3: the test cannot outrun it.
        c.publish_rate_limit = 1;
        c.publish_burst = 3;
    })
    .await;
    let mut client = server.client().await;
    let requests = vec![
        publish_request("r", events("a", 0..3)),
        publish_request("r", vec![event("b")]),
    ];
    let call = client
        .publish_stream(as_token("slow", futures::stream::iter(requests)))
        .await
        .expect("opens");
    let (answers, end) = collect(call.into_inner()).await;
    end.expect("ends OK");
    assert_eq!(ids(&answers[0]).map(|i| i.len()), Ok(3));
    let limited = answers[1].error.as_ref().expect("over the rate");
    assert_eq!(limited.code, Code::ResourceExhausted as i32);
    assert_eq!(limited.reason, "RATE_LIMITED");
    let delay = limited.retry_delay.expect("says when to retry");
    assert!(delay.seconds > 0 || delay.nanos > 0);
}

#[tokio::test]
async fn after_the_client_half_closes_every_request_is_answered_then_the_call_ends_ok() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (requests, sent) = mpsc::channel(8);
    let call = client
        .publish_stream(ReceiverStream::new(sent))
        .await
        .expect("opens");
    let mut answers = call.into_inner();
    // A first answer before the half-close: the call is live, not batched.
    requests
        .send(publish_request("h", vec![event("first")]))
        .await
        .unwrap();
    let first = within(answers.message()).await.unwrap().unwrap();
    assert_eq!(ids(&first), Ok(vec!["first".into()]));
    for i in 0..100 {
        requests
            .send(publish_request("h", vec![event(&format!("e{i}"))]))
            .await
            .unwrap();
    }
    drop(requests);
    let (rest, end) = collect(answers).await;
    end.expect("ends OK");
    assert_eq!(rest.len(), 100, "every request answered before the end");
    assert_eq!(ids(rest.last().unwrap()), Ok(vec!["e99".into()]));
}

/// PublishStream requests read and not answered, over all calls.
pub(crate) async fn in_flight(server: &TestServer) -> f64 {
    metric(
        &server.scrape().await,
        "riverlog_publish_stream_in_flight",
        &[],
    )
    .unwrap_or(0.0)
}

/// Waits until exactly `n` PublishStream requests are in flight.
pub(crate) async fn in_flight_reaches(server: &TestServer, n: usize) {
    eventually(&format!("{n} requests in flight"), async || {
        (in_flight(server).await == n as f64).then_some(())
    })
    .await;
}

/// A CloudEvents JSON line the CLI publishes as it is.
fn json_line(id: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"t"}}"#)
}

#[tokio::test]
async fn a_client_gone_mid_flight_leaves_only_whole_requests_appended() {
    use tokio::io::AsyncWriteExt;
    const REQUESTS: usize = 10;
    const PER_REQUEST: usize = 3;
    let server = TestServer::start().await;
    // The stream exists first, so the stalled batch only appends.
    publish(&mut server.client().await, "w", vec![event("seed")]).await;
    let lock = WriteLock::take(&server.db).await;

    // A real client process, whose connection goes when it is killed:
    // the CLI sends each batch of stdin as a request of one call.
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args([
            "publish",
            "w",
            "--data",
            "-",
            "--batch",
            &PER_REQUEST.to_string(),
        ])
        .env("RIVERLOG_SERVER", server.url())
        .env_remove("RIVERLOG_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI starts");
    let mut stdin = cli.stdin.take().unwrap();
    let lines: String = (0..REQUESTS * PER_REQUEST)
        .map(|i| json_line(&format!("r{}-{}", i / PER_REQUEST, i % PER_REQUEST)) + "\n")
        .collect();
    stdin.write_all(lines.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    // Every request read and queued; none can commit. Stdin stays open,
    // so the client never half-closes: then it is gone.
    in_flight_reaches(&server, REQUESTS).await;
    cli.kill().await.unwrap();
    // The server notices while the writer is still stalled: the call's
    // requests are no longer in flight, though their commits are pending.
    in_flight_reaches(&server, 0).await;

    lock.release().await;
    let expected: Vec<String> = std::iter::once("seed".to_owned())
        .chain(
            (0..REQUESTS * PER_REQUEST)
                .map(|i| format!("r{}-{}", i / PER_REQUEST, i % PER_REQUEST)),
        )
        .collect();
    // What the call had queued commits, whole requests in the order sent.
    let stored = async || -> Vec<String> {
        let mut client = server.client().await;
        read_all(&mut client, "w")
            .await
            .iter()
            .map(event_id)
            .collect()
    };
    eventually("the queued requests to commit", async || {
        (stored().await.len() == expected.len()).then_some(())
    })
    .await;
    assert_eq!(stored().await, expected);
    // A later publish commits after everything the gone call had queued.
    publish(&mut server.client().await, "w", vec![event("later")]).await;
    let mut after = expected.clone();
    after.push("later".into());
    assert_eq!(stored().await, after);
    drop(stdin);
}

#[tokio::test]
async fn a_batch_that_fails_in_storage_refuses_its_requests_and_the_call_goes_on() {
    let server = TestServer::start().await;
    crate::faults::install_faults(&server.db).await;
    let mut client = server.client().await;
    let (requests, sent) = mpsc::channel(8);
    let call = client
        .publish_stream(ReceiverStream::new(sent))
        .await
        .expect("opens");
    let mut answers = call.into_inner();
    let mut send_and_answer = async |id: &str| {
        requests
            .send(publish_request("f", vec![event(id)]))
            .await
            .unwrap();
        within(answers.message()).await.unwrap().expect("answered")
    };
    assert_eq!(
        ids(&send_and_answer("before").await),
        Ok(vec!["before".into()])
    );
    crate::faults::arm(&server.db, "insert").await;
    let failed = send_and_answer("lost").await;
    let error = failed.error.as_ref().expect("refused");
    // As in faults.rs: SQLite's RAISE is a constraint error, the
    // PostgreSQL trigger raises disk_full, an outage.
    if backend_is_postgres() {
        assert_eq!(
            (error.code, error.reason.as_str()),
            (Code::Unavailable as i32, "STORAGE_UNAVAILABLE")
        );
    } else {
        assert_eq!(
            (error.code, error.reason.as_str()),
            (Code::Internal as i32, "STORAGE_FAILURE")
        );
    }
    assert!(
        !error.message.contains("injected"),
        "storage details stay inside"
    );
    crate::faults::disarm(&server.db).await;
    assert_eq!(
        ids(&send_and_answer("after").await),
        Ok(vec!["after".into()])
    );
    drop(requests);
    let (rest, end) = collect(answers).await;
    assert!(rest.is_empty());
    end.expect("ends OK");
    let stored: Vec<String> = read_all(&mut client, "f")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, ["before", "after"]);
}

/// A request of one event carrying `bytes` of data.
fn big_request(stream: &str, id: &str, bytes: usize) -> v1::PublishRequest {
    let mut e = cloud_event(id, "t", None);
    e.data = Some(riverlog::proto::cloudevent::cloud_event::Data::BinaryData(
        vec![7u8; bytes],
    ));
    publish_request(stream, vec![e.into()])
}

/// Another connection's write lock on the test database, which stalls the
/// server's writer (it waits for the lock) until released. Held for well
/// under SQLite's busy timeout (10 s) and PostgreSQL's statement timeout.
pub(crate) enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    pub(crate) async fn take(db: &TestDb) -> Self {
        use sqlx::Connection;
        if backend_is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE log_head IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Sqlite(conn)
        }
    }

    pub(crate) async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
            }
            Self::Postgres(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_floods_a_stalled_server_is_held_back_by_the_window() {
    /// PublishStream's window (proto/riverlog/v1/event_log.proto).
    const WINDOW: usize = 256;
    const REQUEST_BYTES: usize = 4096;
    /// hyper's HTTP/2 client send buffer (`max_send_buf_size`: 1 MiB),
    /// which tonic does not let a channel set.
    const CLIENT_SEND_BUFFER: usize = 1 << 20;
    /// How much tonic encodes before handing a chunk to hyper (its
    /// `yield_threshold`, 32 KiB), plus one request being encoded.
    const ENCODER_CHUNK: usize = (32 << 10) + REQUEST_BYTES;
    /// What the transport may hold beyond the window: the server's HTTP/2
    /// receive window for the call, the client's send buffer and the
    /// encoder's chunk.
    const IN_TRANSIT: usize =
        (riverlog::server::HTTP2_STREAM_WINDOW as usize + CLIENT_SEND_BUFFER + ENCODER_CHUNK)
            / REQUEST_BYTES;
    const REQUESTS: usize = 4 * (WINDOW + IN_TRANSIT);

    let server = TestServer::start().await;
    // The stream exists first, so the stalled batch only appends.
    publish(&mut server.client().await, "bp", vec![event("seed")]).await;
    let lock = WriteLock::take(&server.db).await;

    // The client's windows pinned too (they bound what it receives: the
    // answers), and one connection for the call alone.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(riverlog::server::HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(riverlog::server::HTTP2_CONNECTION_WINDOW)
        .http2_adaptive_window(false)
        .connect()
        .await
        .unwrap();
    let mut client = v1::event_log_client::EventLogClient::new(channel);
    let taken = Arc::new(AtomicUsize::new(0));
    let counted = taken.clone();
    // Many requests at once; counts those the transport took.
    let requests = futures::stream::iter(0..REQUESTS).map(move |i| {
        counted.fetch_add(1, Ordering::SeqCst);
        big_request("bp", &format!("e{i}"), REQUEST_BYTES)
    });
    let call = client.publish_stream(requests).await.expect("opens");
    let mut answers = call.into_inner();

    // Nothing can commit: the server reads a window's worth, then stops,
    // and flow control stops the client.
    let in_flight = async || in_flight(&server).await;
    eventually("a full window", async || {
        (in_flight().await >= WINDOW as f64).then_some(())
    })
    .await;
    let mut last = 0;
    let mut steady = 0;
    let held_at = eventually("the client to be held back", async || {
        let now = taken.load(Ordering::SeqCst);
        steady = if now == last { steady + 1 } else { 0 };
        last = now;
        // 20 polls, 10 ms apart, without progress.
        (steady >= 20).then_some(now)
    })
    .await;
    assert!(
        held_at <= WINDOW + IN_TRANSIT,
        "{held_at} of {REQUESTS} requests taken while nothing could commit"
    );
    assert_eq!(
        in_flight().await,
        WINDOW as f64,
        "no more read than the window"
    );

    // Once commits resume every request is answered, in order.
    lock.release().await;
    for i in 0..REQUESTS {
        let answer = within(answers.message()).await.unwrap().unwrap();
        assert_eq!(ids(&answer), Ok(vec![format!("e{i}")]));
    }
    assert!(within(answers.message()).await.unwrap().is_none());
    assert_eq!(in_flight().await, 0.0);
}

#[tokio::test]
async fn a_message_over_the_size_limit_ends_the_call_after_the_answers_before_it() {
    let server = TestServer::start_with(|c| {
        c.max_batch_bytes = 4096;
        c.max_event_size = 1024;
    })
    .await;
    let requests = vec![
        publish_request("m", vec![event("ok")]),
        // Past max_batch_bytes + 1 MiB of framing allowance.
        big_request("m", "huge", 1_200_000),
        publish_request("m", vec![event("never-read")]),
    ];
    let (answers, end) = publish_all(&server, requests).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(ids(&answers[0]), Ok(vec!["ok".into()]));
    assert_error(
        &end.unwrap_err(),
        Code::ResourceExhausted,
        "MESSAGE_TOO_LARGE",
    );
    let mut client = server.client().await;
    let stored: Vec<String> = read_all(&mut client, "m")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(
        stored,
        ["ok"],
        "nothing after the oversized request was read"
    );
}

#[tokio::test]
async fn shutting_down_answers_what_was_read_then_ends_the_call_unavailable() {
    const IN_FLIGHT: usize = 5;
    let mut server = TestServer::start().await;
    publish(&mut server.client().await, "sd", vec![event("seed")]).await;
    let mut client = server.client().await;
    // Ends when the shutdown begins: tells the test it has.
    let mut watch = client
        .subscribe(v1::SubscribeRequest {
            streams: vec!["sd".into()],
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let (requests, sent) = mpsc::channel(8);
    let call = client
        .publish_stream(ReceiverStream::new(sent))
        .await
        .expect("opens");
    let mut answers = call.into_inner();
    // Requests read and queued that cannot commit yet.
    let lock = WriteLock::take(&server.db).await;
    for i in 0..IN_FLIGHT {
        requests
            .send(publish_request("sd", vec![event(&format!("e{i}"))]))
            .await
            .unwrap();
    }
    in_flight_reaches(&server, IN_FLIGHT).await;
    // The call stays open (the client never half-closes): shutdown ends
    // it, once what it read is answered.
    let stopping = tokio::spawn(async move {
        server.shutdown().await;
    });
    loop {
        match within(watch.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the subscription ended without a status"),
            Err(status) => {
                assert_error(&status, Code::Unavailable, "SHUTTING_DOWN");
                break;
            }
        }
    }
    // Sent after the shutdown began: never read.
    let _ = requests
        .send(publish_request("sd", vec![event("too-late")]))
        .await;
    lock.release().await;
    for i in 0..IN_FLIGHT {
        let answer = within(answers.message()).await.unwrap().expect("answered");
        assert_eq!(ids(&answer), Ok(vec![format!("e{i}")]));
    }
    let end = within(answers.message()).await.unwrap_err();
    assert_error(&end, Code::Unavailable, "SHUTTING_DOWN");
    within(stopping).await.unwrap();
    drop(requests);
}

#[tokio::test]
async fn publish_streams_past_the_server_limit_are_refused() {
    let server = TestServer::start_with(|c| c.max_publish_streams = 2).await;
    let mut client = server.client().await;
    let mut open = Vec::new();
    for i in 0..2 {
        let (requests, sent) = mpsc::channel(1);
        let mut answers = client
            .publish_stream(ReceiverStream::new(sent))
            .await
            .expect("opens")
            .into_inner();
        requests
            .send(publish_request("calls", vec![event(&format!("c{i}"))]))
            .await
            .unwrap();
        within(answers.message()).await.unwrap().expect("answered");
        open.push((requests, answers));
    }
    let third = client
        .publish_stream(futures::stream::iter(vec![publish_request(
            "calls",
            vec![event("c2")],
        )]))
        .await;
    let status = match third {
        Err(status) => status,
        Ok(call) => collect(call.into_inner()).await.1.expect_err("refused"),
    };
    assert_error(&status, Code::ResourceExhausted, "TOO_MANY_PUBLISH_STREAMS");
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["limit"],
        "2"
    );
    // A call that ends gives its place back.
    let (requests, answers) = open.pop().unwrap();
    drop(requests);
    collect(answers).await.1.expect("ends OK");
    let (answers, end) =
        publish_all(&server, vec![publish_request("calls", vec![event("c3")])]).await;
    end.expect("opens once a place is free");
    assert_eq!(ids(&answers[0]), Ok(vec!["c3".into()]));
}

#[tokio::test]
async fn all_publish_streams_share_one_buffer_of_queued_bytes() {
    const REQUEST_BYTES: usize = 4096;
    /// Three requests' events fit in the buffer, not four.
    const FITS: usize = 3;
    let server = TestServer::start_with(|c| {
        c.publish_stream_buffer_bytes = FITS * (REQUEST_BYTES + 200);
    })
    .await;
    publish(&mut server.client().await, "buf", vec![event("seed")]).await;
    let lock = WriteLock::take(&server.db).await;
    // Two calls, each with room in its own window for all its requests.
    let mut calls = Vec::new();
    for c in 0..2 {
        let mut client = server.client().await;
        let requests =
            (0..10).map(move |i| big_request("buf", &format!("c{c}-{i}"), REQUEST_BYTES));
        let answers = client
            .publish_stream(futures::stream::iter(requests))
            .await
            .expect("opens")
            .into_inner();
        calls.push(answers);
    }
    in_flight_reaches(&server, FITS).await;
    // A unary publish made meanwhile does not count against the buffer;
    // it commits once the writer resumes.
    let unary = {
        let mut client = server.client().await;
        tokio::spawn(async move { publish(&mut client, "unary", vec![event("u")]).await })
    };
    // Steady at what fits, however long nothing commits.
    for _ in 0..20 {
        assert_eq!(in_flight(&server).await, FITS as f64);
        tokio::task::yield_now().await;
    }
    lock.release().await;
    within(unary).await.unwrap();
    for (c, mut answers) in calls.into_iter().enumerate() {
        for i in 0..10 {
            let answer = within(answers.message()).await.unwrap().unwrap();
            assert_eq!(ids(&answer), Ok(vec![format!("c{c}-{i}")]));
        }
        assert!(within(answers.message()).await.unwrap().is_none());
    }
    assert_eq!(in_flight(&server).await, 0.0);
}
