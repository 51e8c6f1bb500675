//! `/metrics`: every metric the operations guide lists moves under traffic.

use std::time::Duration;

use riverlog::proto::v1;
use tonic::Code;

use crate::common::*;

/// Scrapes until `check` holds (gauges are sampled in the background).
async fn scrape_until(server: &TestServer, what: &str, check: impl Fn(&str) -> bool) -> String {
    eventually(what, async || {
        let text = server.scrape().await;
        check(&text).then_some(())
    })
    .await;
    let text = server.scrape().await;
    assert!(check(&text), "{what}:\n{text}");
    text
}

#[tokio::test]
async fn metrics_move_under_traffic() {
    let server = TestServer::start_with(|c| {
        c.group_metrics_interval = Duration::from_millis(20);
    })
    .await;
    let mut client = server.client().await;
    let before = server.scrape().await;
    assert_eq!(
        metric(&before, "riverlog_events_appended_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric(&before, "riverlog_subscriptions_active", &[]),
        Some(0.0)
    );
    assert_eq!(metric(&before, "riverlog_storage_up", &[]), Some(1.0));

    publish(&mut client, "orders", events("e", 0..3)).await;
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let text = server.scrape().await;
    assert_eq!(
        metric(&text, "riverlog_events_appended_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "riverlog_append_batch_size_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "riverlog_append_batch_size_sum", &[]),
        Some(3.0)
    );
    assert!(metric(&text, "riverlog_commit_duration_seconds_count", &[]) >= Some(1.0));
    let publish_ok = [
        ("rpc_system", "grpc"),
        ("rpc_service", "riverlog.v1.EventLog"),
        ("rpc_method", "Publish"),
        ("rpc_grpc_status_code", "0"),
    ];
    assert_eq!(
        metric(&text, "rpc_server_call_duration_seconds_count", &publish_ok),
        Some(1.0),
        "{text}"
    );
    let not_found = [("rpc_method", "GetStream"), ("rpc_grpc_status_code", "5")];
    assert_eq!(
        metric(&text, "rpc_server_call_duration_seconds_count", &not_found),
        Some(1.0)
    );
    assert!(
        metric(
            &text,
            "rpc_server_call_duration_seconds_bucket",
            &[("rpc_method", "Publish"), ("le", "+Inf")]
        ) == Some(1.0)
    );

    // Subscriptions: active while open, their events counted.
    let mut sub = subscribe(&mut client, subscribe_request(&["orders"], None)).await;
    next_events(&mut sub, 3).await;
    let text = scrape_until(&server, "one subscription", |t| {
        metric(t, "riverlog_subscriptions_active", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_events_delivered_total",
            &[("via", "subscription")]
        ),
        Some(3.0)
    );
    // Read from storage: it subscribed from the earliest event.
    assert_eq!(
        metric(&text, "riverlog_subscription_storage_events_total", &[]),
        Some(3.0)
    );
    drop(sub);
    scrape_until(&server, "subscription closed", |t| {
        metric(t, "riverlog_subscriptions_active", &[]) == Some(0.0)
            && metric(
                t,
                "rpc_server_call_duration_seconds_count",
                &[("rpc_method", "Subscribe"), ("rpc_grpc_status_code", "1")],
            ) == Some(1.0)
    })
    .await;

    // Consumer groups: deliveries, a redelivery, a dead letter, lag and
    // pending per group, open Consume streams.
    let mut groups = server.groups().await;
    group("orders", "billing")
        .max_deliveries(2)
        .create(&mut groups)
        .await;
    let text = scrape_until(&server, "lag of a new group", |t| {
        metric(
            t,
            "riverlog_group_lag",
            &[("stream", "orders"), ("group", "billing")],
        ) == Some(3.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_group_pending",
            &[("stream", "orders"), ("group", "billing")]
        ),
        Some(0.0)
    );
    let first = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!(seq_of(&first[0]), 1);
    let nack = |seq| nack_request("orders", "billing", vec![seq]);
    groups.nack(nack(1)).await.expect("nack");
    let again = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!((seq_of(&again[0]), again[0].delivery_count), (1, 2));
    groups.nack(nack(1)).await.expect("nack");
    // Two deliveries used up: the next fetch dead-letters it and moves on.
    let next = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!(seq_of(&next[0]), 2);
    let text = scrape_until(&server, "group traffic", |t| {
        metric(t, "riverlog_group_pending", &[("group", "billing")]) == Some(1.0)
            && metric(t, "riverlog_group_lag", &[("group", "billing")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_events_delivered_total",
            &[("via", "group")]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "riverlog_events_redelivered_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "riverlog_events_dead_lettered_total", &[]),
        Some(1.0)
    );

    let consume = groups
        .consume(v1::ConsumeRequest {
            stream: "orders".into(),
            group: "billing".into(),
            consumer: "c2".into(),
            ..Default::default()
        })
        .await
        .expect("consume")
        .into_inner();
    scrape_until(&server, "one consumer", |t| {
        metric(t, "riverlog_consumers_active", &[]) == Some(1.0)
    })
    .await;
    drop(consume);
    scrape_until(&server, "consumer gone", |t| {
        metric(t, "riverlog_consumers_active", &[]) == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn calls_the_client_gives_up_on_count_as_cancelled() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("a")]).await;
    let mut groups = server.groups().await;
    group("s", "g").create(&mut groups).await;
    fetch(&mut groups, "s", "g", "c", 1, 0).await;
    // Nothing more to deliver: the fetch blocks until the client leaves.
    let blocked = groups.fetch(fetch_request("s", "g", "c", 1, 60_000));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), blocked)
            .await
            .is_err()
    );
    let cancelled = [("rpc_method", "Fetch"), ("rpc_grpc_status_code", "1")];
    scrape_until(&server, "a cancelled Fetch", |t| {
        metric(t, "rpc_server_call_duration_seconds_count", &cancelled) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn unknown_methods_share_one_label() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/riverlog.v1.EventLog/NoSuchMethod-123");
    let codec = tonic_prost::ProstCodec::<v1::GetStreamRequest, v1::GetStreamResponse>::default();
    let err = grpc
        .unary(
            tonic::Request::new(v1::GetStreamRequest::default()),
            path,
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let text = server.scrape().await;
    assert!(!text.contains("NoSuchMethod"), "{text}");
    assert_eq!(
        metric(
            &text,
            "rpc_server_call_duration_seconds_count",
            &[("rpc_method", "unknown"), ("rpc_grpc_status_code", "12")]
        ),
        Some(1.0)
    );
}
