//! Dedup that outlives removal: a producer's retry after Trim, retention or
//! Take answers `duplicate` with the original sequence and position, for
//! the stream's (or the server's) dedup window.

use std::time::Duration;

use riverlog::proto::v1::{self, trim_request::Until};
use tonic::Code;

use crate::common::*;

type EventLogClient = v1::event_log_client::EventLogClient<tonic::transport::Channel>;

async fn trim_before(client: &mut EventLogClient, stream: &str, sequence: u64) -> u64 {
    client
        .trim(v1::TrimRequest {
            stream: stream.into(),
            until: Some(Until::BeforeSequence(sequence)),
        })
        .await
        .expect("trimmed")
        .into_inner()
        .removed
}

async fn take(client: &mut EventLogClient, stream: &str, end: v1::TakeEnd, limit: u32) -> usize {
    client
        .take(v1::TakeRequest {
            stream: stream.into(),
            end: end as i32,
            limit,
        })
        .await
        .expect("taken")
        .into_inner()
        .events
        .len()
}

/// (sequence, position, duplicate) of each published position.
fn landed(positions: &[v1::PublishedPosition]) -> Vec<(u64, u64, bool)> {
    positions
        .iter()
        .map(|p| (p.sequence, p.position, p.duplicate))
        .collect()
}

fn as_duplicates(original: &[(u64, u64, bool)]) -> Vec<(u64, u64, bool)> {
    original.iter().map(|&(s, p, _)| (s, p, true)).collect()
}

#[tokio::test]
async fn a_retry_after_trim_or_take_answers_duplicate_with_the_original_position() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let original = landed(&publish(&mut client, "s", events("a", 0..6)).await);

    assert_eq!(trim_before(&mut client, "s", 3).await, 2);
    assert_eq!(take(&mut client, "s", v1::TakeEnd::Oldest, 1).await, 1);
    assert_eq!(take(&mut client, "s", v1::TakeEnd::Newest, 1).await, 1);
    assert_eq!(stream_info(&mut client, "s").await.unwrap().event_count, 2);

    // The whole batch again: removed (1, 2 trimmed; 3 taken from the front,
    // 6 from the back) and retained (4, 5) alike are its duplicates.
    let retried = landed(&publish(&mut client, "s", events("a", 0..6)).await);
    assert_eq!(retried, as_duplicates(&original));
    let i = stream_info(&mut client, "s").await.unwrap();
    assert_eq!((i.event_count, i.last_sequence), (2, 6), "nothing appended");

    // A request mixing a removed id and a new one appends only the new one.
    let mixed = landed(&publish(&mut client, "s", vec![event("a-0"), event("b-0")]).await);
    assert_eq!(mixed[0], (original[0].0, original[0].1, true));
    assert_eq!((mixed[1].0, mixed[1].2), (7, false));
}

#[tokio::test]
async fn a_retry_after_retention_answers_duplicate() {
    let server = TestServer::start_with(|c| c.retention_interval = Duration::from_millis(25)).await;
    let mut client = server.client().await;
    create_stream(
        &mut client,
        "kept",
        v1::Retention {
            max_events: 1,
            ..Default::default()
        },
    )
    .await;
    let original = landed(&publish(&mut client, "kept", events("k", 0..3)).await);
    eventually("retention trims to one event", async || {
        (stream_info(&mut client, "kept").await.unwrap().event_count == 1).then_some(())
    })
    .await;
    let retried = landed(&publish(&mut client, "kept", events("k", 0..3)).await);
    assert_eq!(retried, as_duplicates(&original));
}

#[tokio::test]
async fn the_dedup_window_forgets_removed_ids_and_a_streams_own_window_wins() {
    // The server forgets removed ids 1 ms after their events were recorded;
    // "long" keeps them an hour by its own window.
    let server = TestServer::start_with(|c| c.dedup_window = Some(Duration::from_millis(1))).await;
    let mut client = server.client().await;
    create_stream(
        &mut client,
        "long",
        v1::Retention {
            dedup_window: Some(millis(3_600_000)),
            ..Default::default()
        },
    )
    .await;
    let short = landed(&publish(&mut client, "short", events("x", 0..2)).await);
    let long = landed(&publish(&mut client, "long", events("x", 0..2)).await);
    assert_eq!(trim_before(&mut client, "short", 3).await, 2);
    assert_eq!(trim_before(&mut client, "long", 3).await, 2);
    // Past the server's window (the clock only moves on).
    tokio::time::sleep(Duration::from_millis(20)).await;

    let again = landed(&publish(&mut client, "short", events("x", 0..2)).await);
    assert_eq!(
        again.iter().map(|&(s, _, d)| (s, d)).collect::<Vec<_>>(),
        vec![(3, false), (4, false)],
        "forgotten: appended again (original {short:?})"
    );
    let retried = landed(&publish(&mut client, "long", events("x", 0..2)).await);
    assert_eq!(retried, as_duplicates(&long));

    // Retained events answer duplicate whatever the window.
    let retained = landed(&publish(&mut client, "short", events("x", 0..2)).await);
    assert_eq!(retained, as_duplicates(&again));
}

#[tokio::test]
async fn a_deleted_stream_forgets_its_ids() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("a", 0..2)).await;
    trim_before(&mut client, "s", 3).await;
    client
        .delete_stream(v1::DeleteStreamRequest { stream: "s".into() })
        .await
        .expect("deleted");
    let fresh = landed(&publish(&mut client, "s", events("a", 0..2)).await);
    assert_eq!(
        fresh.iter().map(|&(s, _, d)| (s, d)).collect::<Vec<_>>(),
        vec![(1, false), (2, false)]
    );
}

#[tokio::test]
async fn a_dedup_window_that_is_not_a_duration_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: Some(v1::Retention {
                dedup_window: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: Some(v1::Retention {
                policy: 42,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(err.message().contains("retention.policy"), "{err:?}");
    // Nothing was half-created.
    let err = client
        .get_stream(v1::GetStreamRequest { stream: "s".into() })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
}
