//! Checkpoints and subscriptions that resume from them.

use riverlog::proto::v1::start_position::Start;
use riverlog::proto::v1::{
    self, checkpoints_client::CheckpointsClient, commit_checkpoint_request::At,
};
use tonic::Code;
use tonic::transport::Channel;

use tonic_types::StatusExt;

use crate::common::*;

fn commit(name: &str, stream: &str, at: Option<At>) -> v1::CommitCheckpointRequest {
    v1::CommitCheckpointRequest {
        name: name.into(),
        stream: stream.into(),
        at,
    }
}

async fn checkpoints(server: &TestServer) -> CheckpointsClient<Channel> {
    CheckpointsClient::new(server.channel().await)
}

#[tokio::test]
async fn commit_get_and_list() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cps = checkpoints(&server).await;
    let positions = publish(&mut client, "orders", events("o", 0..3)).await;
    let stored = cps
        .commit_checkpoint(commit("billing", "orders", Some(At::Sequence(2))))
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert_eq!(
        (stored.sequence, stored.position),
        (2, positions[1].position)
    );
    cps.commit_checkpoint(commit("billing", "", Some(At::Position(3))))
        .await
        .unwrap();
    cps.commit_checkpoint(commit("audit", "", Some(At::Position(1))))
        .await
        .unwrap();
    // Committing again replaces.
    cps.commit_checkpoint(commit("billing", "orders", Some(At::Sequence(3))))
        .await
        .unwrap();

    let got = cps
        .get_checkpoint(v1::GetCheckpointRequest {
            name: "billing".into(),
            stream: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert_eq!((got.stream.as_str(), got.sequence), ("orders", 3));
    assert!(got.committed_at.is_some());

    let listed = cps
        .list_checkpoints(v1::ListCheckpointsRequest {
            prefix: "bil".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkpoints;
    let keys: Vec<_> = listed
        .iter()
        .map(|c| (c.name.as_str(), c.stream.as_str()))
        .collect();
    assert_eq!(keys, [("billing", ""), ("billing", "orders")]);
    let all = cps
        .list_checkpoints(v1::ListCheckpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.checkpoints.len(), 3);
}

#[tokio::test]
async fn checkpoint_errors_are_precise() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cps = checkpoints(&server).await;
    let err = cps
        .get_checkpoint(v1::GetCheckpointRequest {
            name: "never".into(),
            stream: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "CHECKPOINT_NOT_FOUND");
    let err = cps
        .commit_checkpoint(commit("cp", "missing", Some(At::Sequence(1))))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    publish(&mut client, "s", vec![event("1")]).await;
    let err = cps
        .commit_checkpoint(commit("cp", "s", None))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = cps
        .commit_checkpoint(commit("cp", "", Some(At::Sequence(1))))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = cps
        .commit_checkpoint(commit("bad name", "s", Some(At::Sequence(1))))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_CHECKPOINT_NAME");
}

#[tokio::test]
async fn a_checkpoint_past_the_head_is_refused_when_committed_not_when_resumed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    let mut cps = checkpoints(&server).await;
    // The last event is processable; one past it cannot have been.
    for (stream, at) in [("s", At::Sequence(5)), ("", At::Position(5))] {
        cps.commit_checkpoint(commit("cp", stream, Some(at)))
            .await
            .expect("the head itself");
    }
    for (stream, at, unit, next) in [
        ("s", At::Sequence(6), "sequence", "6"),
        ("", At::Position(100), "position", "6"),
    ] {
        let err = cps
            .commit_checkpoint(commit("cp", stream, Some(at)))
            .await
            .unwrap_err();
        assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
        let info = err.get_details_error_info().unwrap();
        assert_eq!(info.metadata[&format!("next_{unit}")], next);
        assert_eq!(info.metadata["checkpoint"], "cp");
    }
    let kept = cps
        .get_checkpoint(v1::GetCheckpointRequest {
            name: "cp".into(),
            stream: "s".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert_eq!(kept.sequence, 5, "the refused commit moved nothing");
}

/// Reads `n` events from a subscription starting at checkpoint `name`,
/// commits the last one, and returns their sequences.
async fn process(
    server: &TestServer,
    streams: &[&str],
    name: &str,
    n: usize,
) -> Vec<(String, u64)> {
    let mut client = server.client().await;
    let mut cps = checkpoints(server).await;
    let mut sub = subscribe(
        &mut client,
        subscribe_request(streams, Some(Start::Checkpoint(name.into()))),
    )
    .await;
    let got = next_events(&mut sub, n).await;
    let last = got.last().unwrap();
    let (stream, at) = match streams {
        [single] if !single.contains('*') => (single.to_string(), At::Sequence(last.sequence)),
        _ => (String::new(), At::Position(last.position)),
    };
    cps.commit_checkpoint(commit(name, &stream, Some(at)))
        .await
        .unwrap();
    got.iter().map(|e| (e.stream.clone(), e.sequence)).collect()
}

#[tokio::test]
async fn subscriptions_resume_right_after_their_checkpoint() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "orders:eu", events("eu", 0..6)).await;
    publish(&mut client, "orders:us", events("us", 0..4)).await;

    // Per stream: three readers' sessions, no gap, no repeat.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(process(&server, &["orders:eu"], "eu-reader", 2).await);
    }
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);

    // By pattern, with global positions.
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(process(&server, &["orders:*"], "all-orders", 5).await);
    }
    assert_eq!(seen.len(), 10);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 10);

    // Events published after the last commit are where the next session starts.
    publish(&mut client, "orders:eu", vec![event("eu-late")]).await;
    let next = process(&server, &["orders:eu"], "eu-reader", 1).await;
    assert_eq!(next, [("orders:eu".to_string(), 7)]);
}

#[tokio::test]
async fn a_single_stream_subscription_falls_back_to_the_global_checkpoint() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cps = checkpoints(&server).await;
    let positions = publish(&mut client, "s", events("e", 0..3)).await;
    cps.commit_checkpoint(commit(
        "reader",
        "",
        Some(At::Position(positions[1].position)),
    ))
    .await
    .unwrap();
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["s"], Some(Start::Checkpoint("reader".into()))),
    )
    .await;
    let got = next_events(&mut sub, 1).await;
    assert_eq!(
        got[0].sequence, 3,
        "resumed after the global checkpoint, not from the start"
    );
}

#[tokio::test]
async fn a_pattern_subscription_naming_a_per_stream_checkpoint_is_refused_not_replayed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cps = checkpoints(&server).await;
    publish(&mut client, "orders:eu", events("eu", 0..3)).await;
    publish(&mut client, "orders:us", events("us", 0..3)).await;
    for stream in ["orders:us", "orders:eu"] {
        cps.commit_checkpoint(commit("reader", stream, Some(At::Sequence(2))))
            .await
            .unwrap();
    }
    for streams in [&["orders:*"][..], &["orders:eu", "orders:us"][..]] {
        let err = client
            .subscribe(subscribe_request(
                streams,
                Some(Start::Checkpoint("reader".into())),
            ))
            .await
            .expect_err("refused, not replayed from the earliest event");
        assert_error(&err, Code::FailedPrecondition, "CHECKPOINT_PER_STREAM");
        let info = err.get_details_error_info().unwrap();
        assert_eq!(info.metadata["checkpoint"], "reader");
        assert_eq!(info.metadata["streams"], "orders:eu,orders:us");
        assert!(
            err.message().contains("global checkpoint"),
            "{}",
            err.message()
        );
    }
    // One stream still resumes from its own checkpoint.
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["orders:eu"], Some(Start::Checkpoint("reader".into()))),
    )
    .await;
    assert_eq!(next_events(&mut sub, 1).await[0].sequence, 3);
    // A name never committed still starts a pattern from the earliest event.
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["orders:*"], Some(Start::Checkpoint("fresh".into()))),
    )
    .await;
    assert_eq!(next_events(&mut sub, 6).await.len(), 6);
    // Once a global checkpoint of that name exists, the pattern resumes there.
    let first = publish(&mut client, "orders:eu", vec![event("late")]).await;
    cps.commit_checkpoint(commit(
        "reader",
        "",
        Some(At::Position(first[0].position - 1)),
    ))
    .await
    .unwrap();
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["orders:*"], Some(Start::Checkpoint("reader".into()))),
    )
    .await;
    assert_eq!(next_events(&mut sub, 1).await[0].sequence, 4);
}

#[tokio::test]
async fn a_checkpoint_committed_at_a_time_resumes_at_the_first_event_recorded_since() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cps = checkpoints(&server).await;
    publish(&mut client, "s", events("old", 0..3)).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    publish(&mut client, "s", events("new", 0..2)).await;

    for (name, stream, streams) in [("one", "s", &["s"][..]), ("all", "", &["s*"][..])] {
        let committed = cps
            .commit_checkpoint(commit(name, stream, Some(At::Time(since))))
            .await
            .expect("commit at a time")
            .into_inner()
            .checkpoint
            .unwrap();
        assert_eq!(committed.sequence, 0, "held as a position");
        let mut sub = subscribe(
            &mut client,
            subscribe_request(streams, Some(Start::Checkpoint(name.into()))),
        )
        .await;
        let got = next_events(&mut sub, 2).await;
        assert_eq!(
            got.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [4, 5],
            "{name}"
        );
    }
    let err = cps
        .commit_checkpoint(commit(
            "bad",
            "s",
            Some(At::Time(prost_types::Timestamp {
                seconds: 0,
                nanos: 2_000_000_000,
            })),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
