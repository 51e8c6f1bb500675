//! Limits: streams, events per stream, open subscriptions, publish rates,
//! message sizes. Each refusal is RESOURCE_EXHAUSTED with a stable reason
//! and leaves nothing written.

use riverlog::auth::{TokenConfig, token_digest};
use riverlog::proto::v1;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::common::*;

#[tokio::test]
async fn the_stream_limit_counts_explicit_and_automatic_creation() {
    let server = TestServer::start_with(|c| c.max_streams = 2).await;
    let mut client = server.client().await;
    client
        .create_stream(v1::CreateStreamRequest {
            stream: "a".into(),
            retention: None,
        })
        .await
        .expect("first stream");
    publish(&mut client, "b", vec![event("1")]).await;

    let err = client
        .publish(publish_request("c", vec![event("1")]))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "TOO_MANY_STREAMS");
    let err = client
        .create_stream(v1::CreateStreamRequest {
            stream: "c".into(),
            retention: None,
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "TOO_MANY_STREAMS");
    let err = client
        .get_stream(v1::GetStreamRequest { stream: "c".into() })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    // Appending to existing streams still works.
    publish(&mut client, "a", vec![event("2")]).await;

    client
        .delete_stream(v1::DeleteStreamRequest { stream: "a".into() })
        .await
        .expect("deleted");
    publish(&mut client, "c", vec![event("1")]).await;
}

#[tokio::test]
async fn a_full_stream_refuses_new_events_but_not_retries() {
    let server = TestServer::start_with(|c| c.max_stream_events = 3).await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..2)).await;

    let err = client
        .publish(publish_request("s", events("e", 2..4)))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "STREAM_FULL");
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.metadata["limit"], "3");
    assert_eq!(
        read_all(&mut client, "s").await.len(),
        2,
        "nothing half-written"
    );

    // Retrying what is stored, even mixed with one new event, fits.
    let positions = publish(&mut client, "s", events("e", 0..3)).await;
    let duplicates: Vec<bool> = positions.iter().map(|p| p.duplicate).collect();
    assert_eq!(duplicates, [true, true, false]);
    let err = client
        .publish(publish_request("s", vec![event("e-9")]))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "STREAM_FULL");

    client
        .trim(v1::TrimRequest {
            stream: "s".into(),
            until: Some(v1::trim_request::Until::MaxEvents(1)),
        })
        .await
        .expect("trimmed");
    publish(&mut client, "s", events("f", 0..2)).await;
}

#[tokio::test]
async fn open_subscriptions_are_limited_per_connection_and_in_total() {
    let server = TestServer::start_with(|c| {
        c.max_subscriptions = 3;
        c.max_subscriptions_per_connection = 2;
    })
    .await;
    let mut first = server.client().await;
    let a = subscribe(&mut first, subscribe_request(&["s"], None)).await;
    let _b = subscribe(&mut first, subscribe_request(&["s"], None)).await;
    let err = first
        .subscribe(subscribe_request(&["s"], None))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "TOO_MANY_SUBSCRIPTIONS");
    assert_eq!(
        err.get_details_error_info().unwrap().metadata["scope"],
        "connection"
    );

    // Consume streams count too.
    let mut groups = server.groups().await;
    publish(&mut first, "s", vec![event("1")]).await;
    group("s", "g").create(&mut groups).await;
    let _c = groups
        .consume(v1::ConsumeRequest {
            stream: "s".into(),
            group: "g".into(),
            consumer: "c".into(),
            ..Default::default()
        })
        .await
        .expect("a second connection has room")
        .into_inner();
    let mut third = server.client().await;
    let err = third
        .subscribe(subscribe_request(&["s"], None))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "TOO_MANY_SUBSCRIPTIONS");
    assert_eq!(
        err.get_details_error_info().unwrap().metadata["scope"],
        "server"
    );

    // Closing one frees its slot once the server sees the stream go.
    drop(a);
    eventually("the closed subscription's slot", async || {
        third.subscribe(subscribe_request(&["s"], None)).await.ok()
    })
    .await;
}

fn as_token<T>(name: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {name}-secret").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn each_token_has_its_own_publish_rate() {
    let tokens = ["fast", "slow"].map(|name| TokenConfig {
        name: name.into(),
        sha256: token_digest(&format!("{name}-secret")),
        publish: vec!["*".into()],
        subscribe: vec!["*".into()],
        admin: false,
        metrics: false,
    });
    let server = TestServer::start_with(|c| {
        c.auth.tokens = tokens.to_vec();
        // One event per second after a burst of 5: the test cannot outrun it.
        c.publish_rate_limit = 1;
        c.publish_burst = 5;
    })
    .await;
    let mut client = server.client().await;
    client
        .publish(as_token("slow", publish_request("s", events("a", 0..5))))
        .await
        .expect("the burst fits");
    let err = client
        .publish(as_token("slow", publish_request("s", vec![event("b")])))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "RATE_LIMITED");
    let retry = err
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo says when");
    assert!(!retry.is_zero() && retry <= std::time::Duration::from_secs(1));
    let stored = client
        .read(as_token(
            "fast",
            v1::ReadRequest {
                stream: "s".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("read")
        .into_inner()
        .events;
    assert_eq!(stored.len(), 5, "the refused publish wrote nothing");

    // Another token is not held back; a batch over the burst never fits.
    client
        .publish(as_token("fast", publish_request("t", vec![event("c")])))
        .await
        .expect("own allowance");
    let err = client
        .publish(as_token("fast", publish_request("t", events("d", 0..6))))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "BATCH_TOO_LARGE");
}

#[tokio::test]
async fn messages_over_the_size_limit_are_refused_before_decoding() {
    let server = TestServer::start_with(|c| {
        c.max_batch_bytes = 4096;
        c.max_event_size = 1024;
    })
    .await;
    let mut client = server.client().await;
    // Past max_batch_bytes + 1 MiB of framing allowance.
    let huge = cloud_event_with_data("big", 1_200_000);
    let err = client
        .publish(publish_request("s", vec![huge]))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    let err = client
        .publish(publish_request(
            "s",
            vec![cloud_event_with_data("mid", 2000)],
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "EVENT_TOO_LARGE");
}

fn cloud_event_with_data(id: &str, bytes: usize) -> riverlog::proto::EventPayload {
    let mut e = cloud_event(id, "test.created", None);
    e.data = Some(riverlog::proto::cloudevent::cloud_event::Data::BinaryData(
        vec![7u8; bytes],
    ));
    e.into()
}

#[tokio::test]
async fn a_dead_letter_stream_that_is_full_keeps_the_event_pending_instead_of_losing_it() {
    let server = TestServer::start_with(|c| c.max_stream_events = 2).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..2)).await;
    publish(&mut client, "s:dlq", events("old", 0..2)).await;
    group("s", "g")
        .ack_timeout_ms(200)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    let first = fetch(&mut groups, "s", "g", "c", 1, 0).await;
    assert_eq!(seq_of(&first[0]), 1);
    groups
        .nack(nack_request("s", "g", vec![1]))
        .await
        .expect("nack");
    // Its one delivery is used up, but the dead-letter stream is full.
    let next = fetch(&mut groups, "s", "g", "c", 1, 0).await;
    assert_eq!(seq_of(&next[0]), 2);
    let pending = list_pending(&mut groups, "s", "g").await;
    let held: Vec<u64> = pending.entries.iter().map(|e| e.sequence).collect();
    assert_eq!(held, [1, 2], "the undead-letterable event stays pending");

    // Once there is room it moves on the next attempt.
    client
        .trim(v1::TrimRequest {
            stream: "s:dlq".into(),
            until: Some(v1::trim_request::Until::MaxEvents(0)),
        })
        .await
        .expect("trimmed");
    eventually("the event in the dead-letter stream", async || {
        fetch(&mut groups, "s", "g", "c", 1, 0).await;
        let dead = read_all(&mut client, "s:dlq").await;
        (!dead.is_empty()).then_some(())
    })
    .await;
    // Sequence 2, never acked, may have followed it by now.
    let moved = read_all(&mut client, "s:dlq").await;
    assert!(
        event_id(&moved[0]).starts_with("dlq-1-"),
        "{}",
        event_id(&moved[0])
    );
}
