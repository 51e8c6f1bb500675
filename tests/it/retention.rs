//! Retention in the background: max events, max age and idle TTL, per
//! stream or from the server defaults.

use std::time::Duration;

use riverlog::proto::v1;
use tonic::Code;

use crate::common::*;

const TICK: Duration = Duration::from_millis(25);

type EventLogClient = v1::event_log_client::EventLogClient<tonic::transport::Channel>;

/// Polls `stream` until `done` says the background work happened.
async fn until(
    client: &mut EventLogClient,
    stream: &str,
    done: impl Fn(&Result<v1::StreamInfo, tonic::Status>) -> bool,
) -> Result<v1::StreamInfo, tonic::Status> {
    eventually(&format!("retention on {stream}"), async || {
        let got = stream_info(client, stream).await;
        done(&got).then_some(got)
    })
    .await
}

/// Waits until a retention pass that began after the call has finished,
/// so it has looked at every stream there was. Each pass empties a marker
/// stream of events older than 1 ms: the pass that empties the first
/// marker began after the call, and it has finished once a later pass
/// empties the second, created after the first was emptied.
async fn a_whole_retention_pass(client: &mut EventLogClient) {
    for marker in ["pass-marker-1", "pass-marker-2"] {
        let too_old = v1::Retention {
            max_age: Some(millis(1)),
            ..Default::default()
        };
        create_stream(client, marker, too_old).await;
        publish(client, marker, vec![event("marker")]).await;
        until(client, marker, |i| i.as_ref().unwrap().event_count == 0)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn max_events_trims_the_oldest_per_stream_and_by_default() {
    let server = TestServer::start_with(|c| {
        c.retention_interval = TICK;
        c.retention_max_events = Some(10);
    })
    .await;
    let mut client = server.client().await;
    create_stream(
        &mut client,
        "own",
        v1::Retention {
            max_events: 3,
            ..Default::default()
        },
    )
    .await;
    publish(&mut client, "own", events("e", 0..5)).await;
    publish(&mut client, "defaulted", events("e", 0..12)).await;
    publish(&mut client, "small", events("e", 0..5)).await;

    let own = until(&mut client, "own", |i| i.as_ref().unwrap().event_count == 3)
        .await
        .unwrap();
    assert_eq!((own.first_sequence, own.last_sequence), (3, 5));
    let defaulted = until(&mut client, "defaulted", |i| {
        i.as_ref().unwrap().event_count == 10
    })
    .await
    .unwrap();
    assert_eq!(defaulted.first_sequence, 3);
    // A whole pass later the small stream is still whole.
    a_whole_retention_pass(&mut client).await;
    assert_eq!(
        stream_info(&mut client, "small").await.unwrap().event_count,
        5
    );
    let metrics = server.scrape().await;
    assert_eq!(
        metric(
            &metrics,
            "riverlog_retention_removed_total",
            &[("rule", "max_events")]
        ),
        Some(4.0)
    );
}

#[tokio::test]
async fn max_age_removes_events_once_they_are_old_enough() {
    let server = TestServer::start_with(|c| c.retention_interval = TICK).await;
    let mut client = server.client().await;
    create_stream(
        &mut client,
        "aging",
        v1::Retention {
            max_age: Some(millis(1000)),
            ..Default::default()
        },
    )
    .await;
    publish(&mut client, "aging", events("old", 0..3)).await;
    publish(&mut client, "kept", events("e", 0..3)).await;
    // Young events stay a while... (Not a wait: this is how much older
    // the old events are than the young one published next, so that a
    // pass removes them first.)
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        stream_info(&mut client, "aging").await.unwrap().event_count,
        3
    );
    publish(&mut client, "aging", vec![event("young")]).await;
    // ...then go, oldest first, the stream itself staying.
    let aging = until(&mut client, "aging", |i| {
        i.as_ref().unwrap().event_count == 1
    })
    .await
    .unwrap();
    assert_eq!(aging.first_sequence, 4);
    until(&mut client, "aging", |i| {
        i.as_ref().unwrap().event_count == 0
    })
    .await
    .unwrap();
    assert_eq!(
        stream_info(&mut client, "kept").await.unwrap().event_count,
        3
    );
}

#[tokio::test]
async fn an_idle_stream_expires_with_its_groups_while_an_active_one_lives() {
    let server = TestServer::start_with(|c| {
        c.retention_interval = TICK;
        c.retention_ttl = Some(Duration::from_millis(400));
    })
    .await;
    let mut client = server.client().await;
    publish(&mut client, "idle", vec![event("a")]).await;
    let mut groups = server.groups().await;
    group("idle", "g").create(&mut groups).await;
    create_stream(
        &mut client,
        "own-ttl",
        v1::Retention {
            ttl: Some(millis(3_600_000)),
            ..Default::default()
        },
    )
    .await;

    // Appending keeps a stream alive past its TTL. (Not a wait: the
    // sleeps are the time the stream lives on, twice its TTL.)
    for i in 0..8 {
        publish(&mut client, "active", vec![event(&format!("e{i}"))]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stream_info(&mut client, "active").await.is_ok(),
        "still in use"
    );

    let gone = until(&mut client, "idle", |i| i.is_err())
        .await
        .unwrap_err();
    assert_error(&gone, Code::NotFound, "STREAM_NOT_FOUND");
    let err = groups
        .get_group(v1::GetGroupRequest {
            stream: "idle".into(),
            group: "g".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    until(&mut client, "active", |i| i.is_err())
        .await
        .unwrap_err();
    // Its own, longer TTL protects the empty stream created above.
    assert!(stream_info(&mut client, "own-ttl").await.is_ok());
    // A name that expired can be used again from scratch.
    let positions = publish(&mut client, "idle", vec![event("a")]).await;
    assert_eq!((positions[0].sequence, positions[0].duplicate), (1, false));
}

/// A stream with `policy`, and its id in `retention.policy`.
fn policy(policy: v1::RetentionPolicy) -> v1::Retention {
    v1::Retention {
        policy: policy.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn interest_removes_what_every_group_acked_and_remembers_the_ids() {
    let server = TestServer::start_with(|c| c.retention_interval = TICK).await;
    let mut client = server.client().await;
    create_stream(&mut client, "orders", policy(v1::RetentionPolicy::Interest)).await;
    let retention = stream_info(&mut client, "orders")
        .await
        .unwrap()
        .retention
        .unwrap();
    assert_eq!(retention.policy(), v1::RetentionPolicy::Interest);
    let mut groups = server.groups().await;
    group("orders", "billing").create(&mut groups).await;
    group("orders", "shipping").create(&mut groups).await;
    let original = publish(&mut client, "orders", events("o", 0..5)).await;

    // One group done is not enough.
    let all = fetch(&mut groups, "orders", "billing", "b", 5, 0).await;
    ack(&mut groups, "orders", "billing", seqs(&all)).await;
    a_whole_retention_pass(&mut client).await;
    assert_eq!(
        stream_info(&mut client, "orders")
            .await
            .unwrap()
            .event_count,
        5
    );

    // The other acks 1, 2 and 4: its ack floor is 2, so 4 waits for 3.
    fetch(&mut groups, "orders", "shipping", "s", 5, 0).await;
    ack(&mut groups, "orders", "shipping", vec![1, 2, 4]).await;
    let i = until(&mut client, "orders", |i| {
        i.as_ref().unwrap().event_count == 3
    })
    .await
    .unwrap();
    assert_eq!((i.first_sequence, i.last_sequence), (3, 5));
    ack(&mut groups, "orders", "shipping", vec![3, 5]).await;
    until(&mut client, "orders", |i| {
        i.as_ref().unwrap().event_count == 0
    })
    .await
    .unwrap();

    // A producer's retry finds its originals.
    let retried = publish(&mut client, "orders", events("o", 0..5)).await;
    for (r, o) in retried.iter().zip(&original) {
        assert_eq!(
            (r.sequence, r.position, r.duplicate),
            (o.sequence, o.position, true)
        );
    }
}

#[tokio::test]
async fn interest_without_a_group_keeps_nothing_and_limits_keeps_everything() {
    let server = TestServer::start_with(|c| c.retention_interval = TICK).await;
    let mut client = server.client().await;
    create_stream(&mut client, "nobody", policy(v1::RetentionPolicy::Interest)).await;
    create_stream(&mut client, "plain", policy(v1::RetentionPolicy::Limits)).await;
    publish(&mut client, "nobody", events("n", 0..3)).await;
    publish(&mut client, "plain", events("p", 0..3)).await;
    let mut groups = server.groups().await;
    group("plain", "g").create(&mut groups).await;
    let all = fetch(&mut groups, "plain", "g", "c", 3, 0).await;
    ack(&mut groups, "plain", "g", seqs(&all)).await;
    until(&mut client, "nobody", |i| {
        i.as_ref().unwrap().event_count == 0
    })
    .await
    .unwrap();
    a_whole_retention_pass(&mut client).await;
    assert_eq!(
        stream_info(&mut client, "plain").await.unwrap().event_count,
        3
    );
}

#[tokio::test]
async fn a_work_queue_has_one_group_and_loses_what_it_acked() {
    let server = TestServer::start_with(|c| c.retention_interval = TICK).await;
    let mut client = server.client().await;
    create_stream(&mut client, "jobs", policy(v1::RetentionPolicy::WorkQueue)).await;
    publish(&mut client, "jobs", events("j", 0..3)).await;
    // Without a group the queue keeps its work.
    a_whole_retention_pass(&mut client).await;
    assert_eq!(
        stream_info(&mut client, "jobs").await.unwrap().event_count,
        3
    );

    let mut groups = server.groups().await;
    group("jobs", "workers").create(&mut groups).await;
    let err = groups
        .create_group(group("jobs", "auditors").request())
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "WORK_QUEUE_HAS_GROUP");
    assert!(err.message().contains("workers"), "{err:?}");
    let listed = groups
        .list_groups(v1::ListGroupsRequest {
            stream: "jobs".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(listed.len(), 1, "the refused group was not created");

    let all = fetch(&mut groups, "jobs", "workers", "w", 3, 0).await;
    assert_eq!(seqs(&all), vec![1, 2, 3]);
    ack(&mut groups, "jobs", "workers", vec![1]).await;
    let i = until(&mut client, "jobs", |i| {
        i.as_ref().unwrap().event_count == 2
    })
    .await
    .unwrap();
    assert_eq!(i.first_sequence, 2);
    ack(&mut groups, "jobs", "workers", vec![2, 3]).await;
    until(&mut client, "jobs", |i| {
        i.as_ref().unwrap().event_count == 0
    })
    .await
    .unwrap();
    // Deleting the group frees the queue for another.
    groups
        .delete_group(v1::DeleteGroupRequest {
            stream: "jobs".into(),
            group: "workers".into(),
        })
        .await
        .unwrap();
    group("jobs", "auditors").create(&mut groups).await;
}
