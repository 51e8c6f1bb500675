//! Consumer groups: sharing, acks, redelivery, dead letters, claims,
//! pending lists, restarts, and their error paths.

use std::collections::HashSet;
use std::time::Duration;

use riverlog::proto::AttributeValue;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{self, consume_response::Message};
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use crate::common::*;

fn consume_request(
    stream: &str,
    group: &str,
    consumer: &str,
    max_in_flight: u32,
) -> v1::ConsumeRequest {
    v1::ConsumeRequest {
        stream: stream.into(),
        group: group.into(),
        consumer: consumer.into(),
        max_in_flight,
        heartbeat_interval: None,
    }
}

async fn consume(
    groups: &mut Groups,
    request: v1::ConsumeRequest,
) -> Streaming<v1::ConsumeResponse> {
    groups
        .consume(request)
        .await
        .expect("consume starts")
        .into_inner()
}

/// The next delivery of a Consume stream, skipping heartbeats.
async fn next_delivery(stream: &mut Streaming<v1::ConsumeResponse>) -> v1::Delivery {
    loop {
        let msg = within(stream.message())
            .await
            .expect("healthy")
            .expect("open");
        if let Some(Message::Delivery(d)) = msg.message {
            return d;
        }
    }
}

/// Each delivery's sequence and delivery count.
fn seqs_and_counts(deliveries: &[v1::Delivery]) -> Vec<(u64, u32)> {
    deliveries
        .iter()
        .map(|d| (seq_of(d), d.delivery_count))
        .collect()
}

/// The next `n` deliveries of a Consume stream.
async fn next_deliveries(
    stream: &mut Streaming<v1::ConsumeResponse>,
    n: usize,
) -> Vec<v1::Delivery> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_delivery(stream).await);
    }
    out
}

#[tokio::test]
async fn create_describes_the_group_with_defaults_and_counts_it_on_the_stream() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "orders", events("o", 0..3)).await;
    let info = group("orders", "billing").create(&mut groups).await;
    assert_eq!(info.ack_timeout.unwrap().seconds, 30);
    assert_eq!(info.max_deliveries, 5);
    assert_eq!(info.dead_letter_stream, "orders:dlq");
    assert_eq!(
        (info.lag, info.pending, info.last_delivered_sequence),
        (3, 0, 0)
    );

    let latest = group("orders", "audit")
        .start(v1::group_start::Start::Latest(()))
        .create(&mut groups)
        .await;
    assert_eq!((latest.lag, latest.last_delivered_sequence), (0, 3));

    let from_two = group("orders", "replay")
        .start(v1::group_start::Start::Sequence(2))
        .dead_letter_stream("failed:orders")
        .create(&mut groups)
        .await;
    assert_eq!(from_two.lag, 2);
    assert_eq!(from_two.dead_letter_stream, "failed:orders");
    let first = fetch(&mut groups, "orders", "replay", "r", 1, 0).await;
    assert_eq!(seq_of(&first[0]), 2);

    let listed = groups
        .list_groups(v1::ListGroupsRequest {
            stream: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .groups;
    let names: Vec<_> = listed.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["audit", "billing", "replay"]);
    let stream = client
        .get_stream(v1::GetStreamRequest {
            stream: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(stream.group_count, 3);
}

#[tokio::test]
async fn two_fetching_consumers_share_the_work_and_no_event_reaches_both() {
    let (_server, _client, mut groups) = group("jobs", "workers").on_new_server(100).await;
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let mut g = groups.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = fetch(&mut g, "jobs", "workers", name, 7, 0).await;
                    if got.is_empty() {
                        return mine;
                    }
                    let taken = seqs(&got);
                    ack(&mut g, "jobs", "workers", taken.clone()).await;
                    mine.extend(taken);
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let mine = w.await.unwrap();
        per_worker.push(mine.len());
        for s in mine {
            assert!(seen.insert(s), "sequence {s} delivered twice");
        }
    }
    assert_eq!(seen.len(), 100);
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!((info.pending, info.lag, info.ack_floor), (0, 0, 100));
}

#[tokio::test]
async fn an_unacked_event_of_a_vanished_consumer_goes_to_another_after_the_ack_timeout() {
    let (_server, _client, mut groups) = group("jobs", "workers")
        .ack_timeout_ms(300)
        .on_new_server(2)
        .await;

    let mut first = consume(
        &mut groups,
        consume_request("jobs", "workers", "doomed", 10),
    )
    .await;
    let got = next_deliveries(&mut first, 2).await;
    assert!(got.iter().all(|d| d.delivery_count == 1));
    drop(first); // the consumer dies without acking

    let mut second = consume(
        &mut groups,
        consume_request("jobs", "workers", "survivor", 10),
    )
    .await;
    let again = next_deliveries(&mut second, 2).await;
    let mut redelivered = seqs(&again);
    redelivered.sort_unstable();
    assert_eq!(redelivered, [1, 2]);
    assert!(again.iter().all(|d| d.delivery_count == 2));

    let pending = list_pending(&mut groups, "jobs", "workers").await;
    assert!(pending.entries.iter().all(|e| e.consumer == "survivor"));
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_after_max_deliveries_with_its_origin() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(
        &mut client,
        "jobs",
        vec![
            cloud_event("poison", "job.run", Some("s-1")).into(),
            event("fine"),
        ],
    )
    .await;
    group("jobs", "workers")
        .ack_timeout_ms(60_000)
        .max_deliveries(3)
        .create(&mut groups)
        .await;
    let first = fetch(&mut groups, "jobs", "workers", "w", 10, 0).await;
    assert_eq!(first.len(), 2);
    ack(&mut groups, "jobs", "workers", vec![2]).await;
    for attempt in 1..=3u32 {
        let got = if attempt == 1 {
            vec![first[0].clone()]
        } else {
            fetch(&mut groups, "jobs", "workers", "w", 10, 0).await
        };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].delivery_count, attempt);
        groups
            .nack(nack_request("jobs", "workers", vec![1]))
            .await
            .unwrap();
    }
    // The fourth delivery would exceed max_deliveries: the event leaves.
    assert!(
        fetch(&mut groups, "jobs", "workers", "w", 10, 0)
            .await
            .is_empty()
    );
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!((info.pending, info.ack_floor), (0, 2));

    let dead = read_all(&mut client, "jobs:dlq").await;
    assert_eq!(dead.len(), 1);
    let ce = dead[0].event.as_ref().unwrap().decode().unwrap();
    let attr = |name: &str| ce.attributes.get(name).and_then(|v| v.attr.clone());
    assert_eq!(
        attr("rlorigstream"),
        Some(AttributeValue::CeString("jobs".into()))
    );
    assert_eq!(
        attr("rlorigsequence"),
        Some(AttributeValue::CeString("1".into()))
    );
    assert_eq!(
        attr("rlorigid"),
        Some(AttributeValue::CeString("poison".into()))
    );
    assert_eq!(
        attr("rlgroup"),
        Some(AttributeValue::CeString("workers".into()))
    );
    assert_eq!(attr("rldeliveries"), Some(AttributeValue::CeInteger(3)));
    assert_eq!(
        attr("rlreason"),
        Some(AttributeValue::CeString("max_deliveries".into()))
    );
    assert_eq!(
        attr("subject"),
        Some(AttributeValue::CeString("s-1".into()))
    );
    assert_eq!(ce.r#type, "job.run");
}

#[tokio::test]
async fn acking_unknown_or_acked_sequences_is_harmless_and_reported() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(3).await;
    fetch(&mut groups, "s", "g", "c", 2, 0).await;
    let first = ack(&mut groups, "s", "g", vec![1, 2, 3, 99]).await;
    assert_eq!(first.acked, 2);
    assert_eq!(first.not_pending, [3, 99]);
    let again = ack(&mut groups, "s", "g", vec![1, 1]).await;
    assert_eq!(again.acked, 0);
    assert_eq!(again.not_pending, [1]);
}

#[tokio::test]
async fn a_nack_delay_holds_the_event_back_then_redelivers_it() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(1).await;
    fetch(&mut groups, "s", "g", "c", 1, 0).await;
    let nacked = groups
        .nack(v1::NackRequest {
            delay: Some(millis(300)),
            ..nack_request("s", "g", vec![1, 5])
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (nacked.nacked, nacked.not_pending.as_slice()),
        (1, &[5u64][..])
    );
    assert!(
        fetch(&mut groups, "s", "g", "c", 1, 0).await.is_empty(),
        "held back by the delay"
    );
    // A blocking fetch is woken when the delay runs out.
    let got = fetch(&mut groups, "s", "g", "c", 1, 10_000).await;
    assert_eq!((seq_of(&got[0]), got[0].delivery_count), (1, 2));
}

#[tokio::test]
async fn a_blocking_fetch_wakes_up_for_a_new_event() {
    let (_server, mut client, mut groups) = group("s", "g").on_new_server(0).await;
    let mut g = groups.clone();
    let waiting = tokio::spawn(async move { fetch(&mut g, "s", "g", "c", 10, 20_000).await });
    tokio::task::yield_now().await;
    publish(&mut client, "other", vec![event("not-mine")]).await;
    publish(&mut client, "s", vec![event("mine")]).await;
    let got = within(waiting).await.unwrap();
    assert_eq!(event_id(got[0].event.as_ref().unwrap()), "mine");
    // With nothing there and no wait, fetch answers at once, empty.
    assert!(fetch(&mut groups, "s", "g", "c", 10, 0).await.is_empty());
}

#[tokio::test]
async fn pending_only_rereads_the_consumers_own_entries() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(4).await;
    fetch(&mut groups, "s", "g", "a", 2, 0).await;
    fetch(&mut groups, "s", "g", "b", 1, 0).await;
    let own = fetch_own_pending(&mut groups, "s", "g", "a").await;
    assert_eq!(seqs(&own), [1, 2]);
    assert!(
        own.iter().all(|d| d.delivery_count == 1),
        "re-reading is not a redelivery"
    );
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!(
        info.last_delivered_sequence, 3,
        "re-reading does not move the cursor"
    );
}

#[tokio::test]
async fn claims_take_over_idle_entries_explicitly_or_oldest_first() {
    let (_server, _client, mut groups) = group("s", "g")
        .ack_timeout_ms(60_000)
        .on_new_server(5)
        .await;
    fetch(&mut groups, "s", "g", "slow", 5, 0).await;
    let claim = |sequences: Vec<u64>, count: u32, min_idle_ms: u64| v1::ClaimRequest {
        stream: "s".into(),
        group: "g".into(),
        consumer: "rescuer".into(),
        min_idle: Some(millis(min_idle_ms)),
        sequences,
        count,
    };
    // Not idle long enough yet: nothing moves.
    let none = groups
        .claim(claim(vec![1, 2], 0, 60_000))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert!(none.is_empty());
    // XCLAIM: named entries, counted as a new delivery.
    let named = groups
        .claim(claim(vec![2, 4, 42], 0, 0))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(seqs(&named), [2, 4]);
    assert!(named.iter().all(|d| d.delivery_count == 2));
    // XAUTOCLAIM: the oldest idle ones.
    let oldest = groups
        .claim(claim(vec![], 2, 0))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(seqs(&oldest), [1, 2]);

    let summary = list_pending(&mut groups, "s", "g").await.summary.unwrap();
    assert_eq!(
        (
            summary.count,
            summary.lowest_sequence,
            summary.highest_sequence
        ),
        (5, 1, 5)
    );
    let counts: Vec<_> = summary
        .consumers
        .iter()
        .map(|c| (c.consumer.as_str(), c.count))
        .collect();
    assert_eq!(counts, [("rescuer", 3), ("slow", 2)]);
}

#[tokio::test]
async fn list_pending_filters_by_consumer_idle_time_and_pages() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(6).await;
    fetch(&mut groups, "s", "g", "a", 4, 0).await;
    fetch(&mut groups, "s", "g", "b", 2, 0).await;
    let list =
        |consumer: &str, min_idle_ms: Option<u64>, limit: u32, after: u64| v1::ListPendingRequest {
            stream: "s".into(),
            group: "g".into(),
            consumer: consumer.into(),
            min_idle: min_idle_ms.map(millis),
            limit,
            after_sequence: after,
        };
    let of_a = groups
        .list_pending(list("a", None, 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        of_a.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        of_a.summary.unwrap().count,
        6,
        "the summary covers the whole group"
    );
    let page = groups
        .list_pending(list("", None, 2, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [3, 4]
    );
    let idle = groups
        .list_pending(list("", Some(3_600_000), 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(idle.entries.is_empty());
    let b = &groups
        .list_pending(list("b", None, 0, 0))
        .await
        .unwrap()
        .into_inner()
        .entries[0];
    assert_eq!(
        (b.sequence, b.consumer.as_str(), b.delivery_count),
        (5, "b", 1)
    );
}

#[tokio::test]
async fn delete_consumer_releases_its_entries_at_once() {
    let (_server, _client, mut groups) = group("s", "g")
        .ack_timeout_ms(3_600_000)
        .on_new_server(3)
        .await;
    fetch(&mut groups, "s", "g", "gone", 3, 0).await;
    let released = groups
        .delete_consumer(v1::DeleteConsumerRequest {
            stream: "s".into(),
            group: "g".into(),
            consumer: "gone".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pending_released;
    assert_eq!(released, 3);
    let got = fetch(&mut groups, "s", "g", "heir", 10, 0).await;
    assert_eq!(seqs(&got), [1, 2, 3]);
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!(
        info.consumers
            .iter()
            .map(|c| c.consumer.as_str())
            .collect::<Vec<_>>(),
        ["heir"]
    );
}

#[tokio::test]
async fn consume_respects_its_credit_and_acks_free_it() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(10).await;
    let mut request = consume_request("s", "g", "c", 3);
    request.heartbeat_interval = Some(millis(100));
    let mut stream = consume(&mut groups, request).await;
    let first = seqs(&next_deliveries(&mut stream, 3).await);
    assert_eq!(first, [1, 2, 3]);
    // Out of credit: only heartbeats until an ack.
    for _ in 0..2 {
        let msg = within(stream.message())
            .await
            .unwrap()
            .unwrap()
            .message
            .unwrap();
        assert!(matches!(msg, Message::Heartbeat(_)), "{msg:?}");
    }
    let info = group_info(&mut groups, "s", "g").await;
    assert!(info.consumers[0].connected);
    assert_eq!(info.consumers[0].pending, 3);
    ack(&mut groups, "s", "g", vec![1, 2]).await;
    let next = seqs(&next_deliveries(&mut stream, 2).await);
    assert_eq!(next, [4, 5]);
    drop(stream);
}

#[tokio::test]
async fn ten_thousand_events_through_eight_consumers_are_all_processed_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    const TOTAL: usize = 10_000;
    for i in 0..TOTAL / 1000 {
        publish(&mut client, "load", events(&format!("b{i}"), 0..1000)).await;
    }
    group("load", "workers").create(&mut groups).await;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    // Consumers ack in batches of 50; once everything was seen they are
    // told to ack what they still hold.
    let (flush_tx, flush_rx) = tokio::sync::watch::channel(false);
    let consumers: Vec<_> = (0..8)
        .map(|c| {
            let mut g = groups.clone();
            let done = done_tx.clone();
            let mut flush = flush_rx.clone();
            tokio::spawn(async move {
                let mut stream = consume(
                    &mut g,
                    consume_request("load", "workers", &format!("c{c}"), 200),
                )
                .await;
                let mut batch = Vec::new();
                loop {
                    tokio::select! {
                        d = next_delivery(&mut stream) => {
                            batch.push(seq_of(&d));
                            let _ = done.send(seq_of(&d));
                            if batch.len() == 50 {
                                ack(&mut g, "load", "workers", std::mem::take(&mut batch)).await;
                            }
                        }
                        _ = flush.changed() => {
                            if !batch.is_empty() {
                                ack(&mut g, "load", "workers", batch).await;
                            }
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    drop(done_tx);
    let mut seen = HashSet::new();
    while seen.len() < TOTAL {
        let s = within(done_rx.recv()).await.expect("consumers running");
        assert!(seen.insert(s), "sequence {s} processed twice");
    }
    flush_tx.send(true).unwrap();
    for c in consumers {
        within(c).await.unwrap();
    }
    let info = group_info(&mut groups, "load", "workers").await;
    assert_eq!(
        (info.pending, info.lag, info.ack_floor),
        (0, 0, TOTAL as u64)
    );
    assert!(done_rx.try_recv().is_err(), "nothing was delivered twice");
}

#[tokio::test]
async fn pending_entries_and_the_cursor_survive_a_restart() {
    let (server, _client, mut groups) = group("s", "g")
        .ack_timeout_ms(3_600_000)
        .on_new_server(5)
        .await;
    fetch(&mut groups, "s", "g", "c", 3, 0).await;
    ack(&mut groups, "s", "g", vec![2]).await;
    let db = server.stop().await;

    let server = TestServer::start_in(db, |_| {}).await;
    let mut groups = server.groups().await;
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!(
        (
            info.last_delivered_sequence,
            info.pending,
            info.lag,
            info.ack_floor
        ),
        (3, 2, 2, 0)
    );
    let own = fetch_own_pending(&mut groups, "s", "g", "c").await;
    assert_eq!(seqs(&own), [1, 3]);
    let next = fetch(&mut groups, "s", "g", "c", 10, 0).await;
    assert_eq!(seqs(&next), [4, 5]);
}

#[tokio::test]
async fn deleting_groups_and_streams_removes_group_state() {
    let (_server, mut client, mut groups) = group("s", "a").on_new_server(2).await;
    group("s", "b").create(&mut groups).await;
    fetch(&mut groups, "s", "a", "c", 2, 0).await;
    groups
        .delete_group(v1::DeleteGroupRequest {
            stream: "s".into(),
            group: "a".into(),
        })
        .await
        .unwrap();
    let err = groups
        .get_group(v1::GetGroupRequest {
            stream: "s".into(),
            group: "a".into(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    // A new group of the old name starts fresh.
    let again = group("s", "a").create(&mut groups).await;
    assert_eq!((again.pending, again.lag), (0, 2));

    client
        .delete_stream(v1::DeleteStreamRequest { stream: "s".into() })
        .await
        .unwrap();
    publish(&mut client, "s", vec![event("new")]).await;
    let listed = groups
        .list_groups(v1::ListGroupsRequest { stream: "s".into() })
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert!(listed.is_empty(), "groups went with the deleted stream");
}

#[tokio::test]
async fn group_errors_are_precise() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    let err = groups
        .create_group(group("missing", "g").request())
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    publish(&mut client, "s", vec![event("1")]).await;
    group("s", "g").create(&mut groups).await;
    let err = groups
        .create_group(group("s", "g").request())
        .await
        .unwrap_err();
    assert_error(&err, Code::AlreadyExists, "GROUP_ALREADY_EXISTS");
    let err = groups
        .create_group(group("s", "bad name").request())
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_GROUP_NAME");
    for (ack_timeout, max, dlq) in [
        (Some(millis(0)), 0, ""),
        (
            Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            0,
            "",
        ),
        (None, 0, "s"),
        (None, 0, "bad dlq"),
    ] {
        let err = groups
            .create_group(v1::CreateGroupRequest {
                ack_timeout,
                max_deliveries: max,
                dead_letter_stream: dlq.into(),
                ..group("s", "other").request()
            })
            .await
            .unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    }

    let err = groups
        .fetch(fetch_request("s", "nope", "c", 1, 0))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    let err = groups
        .fetch(fetch_request("s", "g", "bad consumer", 1, 0))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_CONSUMER_NAME");
    let err = groups
        .ack(v1::AckRequest {
            stream: "s".into(),
            group: "nope".into(),
            sequences: vec![1],
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    let err = groups
        .ack(v1::AckRequest {
            stream: "s".into(),
            group: "g".into(),
            sequences: vec![],
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = groups
        .nack(v1::NackRequest {
            delay: Some(prost_types::Duration {
                seconds: -3,
                nanos: 0,
            }),
            ..nack_request("s", "g", vec![1])
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = groups
        .consume(consume_request("s", "nope", "c", 1))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    let err = groups
        .consume(consume_request("missing", "g", "c", 1))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    let err = groups
        .list_groups(v1::ListGroupsRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    let err = groups
        .claim(v1::ClaimRequest {
            stream: "s".into(),
            group: "g".into(),
            consumer: "c".into(),
            min_idle: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_consumer_reconnecting_under_its_name_gets_its_expired_entries_back() {
    let (_server, _client, mut groups) = group("s", "g").ack_timeout_ms(200).on_new_server(2).await;
    let mut first = consume(&mut groups, consume_request("s", "g", "w1", 2)).await;
    next_delivery(&mut first).await;
    next_delivery(&mut first).await;
    drop(first); // crashed with its credit used up
    // Its expired entries no longer count against its credit.
    let mut again = consume(&mut groups, consume_request("s", "g", "w1", 2)).await;
    let got = next_deliveries(&mut again, 2).await;
    assert!(got.iter().all(|d| d.delivery_count == 2));
}

#[tokio::test]
async fn a_late_nack_from_a_former_holder_does_not_touch_the_new_holders_entry() {
    // Long enough that b's redelivery cannot time out too before c asks
    // (at 100 ms it did, once, on a loaded machine).
    let (_server, _client, mut groups) =
        group("s", "g").ack_timeout_ms(1_000).on_new_server(1).await;
    fetch(&mut groups, "s", "g", "a", 1, 0).await;
    let redelivered = fetch(&mut groups, "s", "g", "b", 1, 5_000).await;
    assert_eq!(redelivered[0].delivery_count, 2);
    let nack = |consumer: &str| v1::NackRequest {
        consumer: consumer.into(),
        ..nack_request("s", "g", vec![1])
    };
    let late = groups.nack(nack("a")).await.unwrap().into_inner();
    assert_eq!((late.nacked, late.not_pending.as_slice()), (0, &[1u64][..]));
    assert!(
        fetch(&mut groups, "s", "g", "c", 1, 0).await.is_empty(),
        "b still holds it"
    );
    let own = groups.nack(nack("b")).await.unwrap().into_inner();
    assert_eq!(own.nacked, 1);
    assert_eq!(fetch(&mut groups, "s", "g", "c", 1, 0).await.len(), 1);
}

#[tokio::test]
async fn claiming_a_sequence_twice_in_one_call_hands_it_out_once() {
    let (_server, _client, mut groups) = group("s", "g").on_new_server(2).await;
    fetch(&mut groups, "s", "g", "a", 2, 0).await;
    let claimed = groups
        .claim(v1::ClaimRequest {
            stream: "s".into(),
            group: "g".into(),
            consumer: "b".into(),
            min_idle: None,
            sequences: vec![1, 1],
            count: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(claimed.len(), 1);
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!(info.pending, 2, "the claimed entry is still pending");
}

#[tokio::test]
async fn groups_sharing_a_dead_letter_stream_each_dead_letter_their_copy() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", vec![event("poison")]).await;
    for name in ["a", "b"] {
        group("s", name)
            .ack_timeout_ms(60_000)
            .max_deliveries(1)
            .create(&mut groups)
            .await;
        fetch(&mut groups, "s", name, "c", 1, 0).await;
        groups.nack(nack_request("s", name, vec![1])).await.unwrap();
        assert!(fetch(&mut groups, "s", name, "c", 1, 0).await.is_empty());
    }
    let dead = read_all(&mut client, "s:dlq").await;
    assert_eq!(dead.len(), 2);
}

#[tokio::test]
async fn a_group_cannot_start_beyond_the_next_sequence() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..3)).await;
    let create = |name: &str, sequence: u64| {
        group("s", name)
            .start(v1::group_start::Start::Sequence(sequence))
            .request()
    };
    let err = groups.create_group(create("ahead", 5)).await.unwrap_err();
    assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
    let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
    assert_eq!(info.metadata["next_sequence"], "4");
    // The next sequence is fine: the group gets the next event.
    groups.create_group(create("next", 4)).await.unwrap();
    assert!(fetch(&mut groups, "s", "next", "c", 10, 0).await.is_empty());
    publish(&mut client, "s", vec![event("fourth")]).await;
    let got = fetch(&mut groups, "s", "next", "c", 10, 0).await;
    assert_eq!(seqs(&got), [4]);
}

#[tokio::test]
async fn a_blocking_fetch_answers_before_the_callers_deadline() {
    let (_server, mut client, mut groups) = group("s", "g")
        .ack_timeout_ms(3_600_000)
        .on_new_server(0)
        .await;
    // 10 s of blocking asked for, 300 ms allowed by the caller: the
    // server answers within the deadline (empty: nothing came), rather
    // than letting it pass.
    let mut request = tonic::Request::new(fetch_request("s", "g", "c", 10, 10_000));
    request.set_timeout(std::time::Duration::from_millis(300));
    let answer = within(groups.fetch(request)).await;
    let deliveries = answer
        .expect("answered, not cut off")
        .into_inner()
        .deliveries;
    assert!(deliveries.is_empty());
    // Nothing is held for the caller, and the next event goes to whoever
    // asks first.
    publish(&mut client, "s", vec![event("later")]).await;
    let got = fetch(&mut groups, "s", "g", "other", 10, 0).await;
    assert_eq!(seqs_and_counts(&got), [(1, 1)]);
}

#[tokio::test]
async fn a_fetch_whose_caller_is_gone_leaves_nothing_pending_to_it() {
    let server = TestServer::start().await;
    // One connection: the cancelled call's reset goes out before the
    // publish.
    let channel = server.channel().await;
    let mut client = riverlog::proto::v1::event_log_client::EventLogClient::new(channel.clone());
    let mut groups = Groups::new(channel);
    client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: None,
        })
        .await
        .unwrap();
    // An event handed to the vanished caller would wait an hour.
    group("s", "g")
        .ack_timeout_ms(3_600_000)
        .create(&mut groups)
        .await;
    let mut g = groups.clone();
    let gone = tokio::spawn(async move { fetch(&mut g, "s", "g", "gone", 10, 20_000).await });
    // The server is serving the call once it has seen the consumer.
    eventually("the blocked fetch to reach the server", async || {
        let info = group_info(&mut groups, "s", "g").await;
        (!info.consumers.is_empty()).then_some(())
    })
    .await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    publish(&mut client, "s", vec![event("e")]).await;
    // Whether the server dropped the call before or after the event woke
    // it, the event is the next consumer's, as a first delivery.
    let got = fetch(&mut groups, "s", "g", "next", 10, 20_000).await;
    assert_eq!(seqs_and_counts(&got), [(1, 1)]);
    let pending = list_pending(&mut groups, "s", "g").await;
    assert_eq!(
        pending
            .entries
            .iter()
            .map(|e| (e.sequence, e.consumer.as_str()))
            .collect::<Vec<_>>(),
        [(1, "next")]
    );
    let info = group_info(&mut groups, "s", "g").await;
    let held_by_gone = info
        .consumers
        .iter()
        .find(|c| c.consumer == "gone")
        .map_or(0, |c| c.pending);
    assert_eq!(held_by_gone, 0);
}

/// The events of a dead-letter stream; none while it does not exist.
async fn dead_letters(
    client: &mut EventLogClient<Channel>,
    stream: &str,
) -> Vec<v1::RecordedEvent> {
    let exists = client
        .get_stream(v1::GetStreamRequest {
            stream: stream.into(),
        })
        .await
        .is_ok();
    if exists {
        read_all(client, stream).await
    } else {
        Vec::new()
    }
}

/// An attribute of a dead-lettered event.
fn dead_letter_attr(dead: &v1::RecordedEvent, name: &str) -> Option<AttributeValue> {
    let ce = dead.event.as_ref().unwrap().decode().unwrap();
    ce.attributes.get(name).and_then(|v| v.attr.clone())
}

#[tokio::test]
async fn an_entry_whose_last_delivery_times_out_is_dead_lettered_with_no_consumer_asking() {
    let server =
        TestServer::start_with(|c| c.dead_letter_interval = Duration::from_millis(50)).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "jobs", vec![event("stuck"), event("fine")]).await;
    group("jobs", "workers")
        .ack_timeout_ms(300)
        .max_deliveries(2)
        .create(&mut groups)
        .await;
    let first = fetch(&mut groups, "jobs", "workers", "w", 2, 0).await;
    assert_eq!(seqs_and_counts(&first), [(1, 1), (2, 1)]);
    ack(&mut groups, "jobs", "workers", vec![2]).await;
    // The second and last delivery, after the first timed out.
    let second = fetch(&mut groups, "jobs", "workers", "w", 1, 5_000).await;
    assert_eq!(seqs_and_counts(&second), [(1, 2)]);

    // Nobody asks for work again; the pass moves it once it times out.
    let dead = eventually("the event in the dead-letter stream", async || {
        let dead = dead_letters(&mut client, "jobs:dlq").await;
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead_letter_attr(&dead[0], "rlorigid"),
        Some(AttributeValue::CeString("stuck".into()))
    );
    assert_eq!(
        dead_letter_attr(&dead[0], "rldeliveries"),
        Some(AttributeValue::CeInteger(2))
    );
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!((info.pending, info.ack_floor), (0, 2));
    assert!(
        list_pending(&mut groups, "jobs", "workers")
            .await
            .entries
            .is_empty()
    );
    // Moved once: later passes find nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(read_all(&mut client, "jobs:dlq").await.len(), 1);
}

#[tokio::test]
async fn an_entry_whose_last_delivery_timed_out_while_the_server_was_down_is_dead_lettered_after_a_restart()
 {
    let slow =
        |c: &mut riverlog::config::Config| c.dead_letter_interval = Duration::from_secs(3600);
    let server = TestServer::start_with(slow).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "jobs", vec![event("stuck")]).await;
    group("jobs", "workers")
        .ack_timeout_ms(200)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    assert_eq!(
        fetch(&mut groups, "jobs", "workers", "w", 1, 0).await.len(),
        1
    );
    let db = server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The pass runs when the server starts, before its first interval.
    let server = TestServer::start_in(db, slow).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    let dead = eventually("the event in the dead-letter stream", async || {
        let dead = dead_letters(&mut client, "jobs:dlq").await;
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(
        dead_letter_attr(&dead[0], "rlorigid"),
        Some(AttributeValue::CeString("stuck".into()))
    );
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!((info.pending, info.ack_floor), (0, 1));
}

#[tokio::test]
async fn a_nack_with_a_delay_on_the_last_allowed_delivery_dead_letters_at_once() {
    let server =
        TestServer::start_with(|c| c.dead_letter_interval = Duration::from_secs(3600)).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "jobs", vec![event("poison"), event("retry")]).await;
    group("jobs", "workers")
        .ack_timeout_ms(60_000)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    fetch(&mut groups, "jobs", "workers", "w", 2, 0).await;
    let settled = groups
        .nack(v1::NackRequest {
            delay: Some(millis(3_600_000)),
            consumer: "w".into(),
            ..nack_request("jobs", "workers", vec![1, 2, 7])
        })
        .await
        .expect("nack")
        .into_inner();
    assert_eq!(settled.nacked, 2);
    assert_eq!(settled.not_pending, [7]);
    // No pass and no fetch needed: both are in the dead-letter stream now.
    let dead = read_all(&mut client, "jobs:dlq").await;
    let origins: Vec<_> = dead
        .iter()
        .map(|d| dead_letter_attr(d, "rlorigsequence"))
        .collect();
    assert_eq!(
        origins,
        [
            Some(AttributeValue::CeString("1".into())),
            Some(AttributeValue::CeString("2".into()))
        ]
    );
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!((info.pending, info.ack_floor), (0, 2));
}

#[tokio::test]
async fn a_late_nack_without_a_consumer_never_dead_letters_anothers_last_delivery() {
    let server =
        TestServer::start_with(|c| c.dead_letter_interval = Duration::from_secs(3600)).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "jobs", vec![event("slow")]).await;
    group("jobs", "workers")
        .ack_timeout_ms(200)
        .max_deliveries(2)
        .create(&mut groups)
        .await;
    fetch(&mut groups, "jobs", "workers", "a", 1, 0).await;
    // A's delivery times out; B gets the last allowed one.
    let redelivered = fetch(&mut groups, "jobs", "workers", "b", 1, 5_000).await;
    assert_eq!(seqs_and_counts(&redelivered), [(1, 2)]);
    // A's late nack names no consumer: it may only make the entry due.
    groups
        .nack(nack_request("jobs", "workers", vec![1]))
        .await
        .expect("nack");
    let dlq = client
        .get_stream(v1::GetStreamRequest {
            stream: "jobs:dlq".into(),
        })
        .await;
    assert_eq!(dlq.unwrap_err().code(), Code::NotFound, "not dead-lettered");
    // B's ack still settles it.
    let acked = groups
        .ack(v1::AckRequest {
            stream: "jobs".into(),
            group: "workers".into(),
            sequences: vec![1],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acked.acked, 1);
}

#[tokio::test]
async fn a_nack_before_the_last_allowed_delivery_still_waits_out_its_delay() {
    let server =
        TestServer::start_with(|c| c.dead_letter_interval = Duration::from_millis(50)).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "jobs", vec![event("retry")]).await;
    group("jobs", "workers")
        .ack_timeout_ms(60_000)
        .max_deliveries(2)
        .create(&mut groups)
        .await;
    fetch(&mut groups, "jobs", "workers", "w", 1, 0).await;
    groups
        .nack(v1::NackRequest {
            delay: Some(millis(300)),
            ..nack_request("jobs", "workers", vec![1])
        })
        .await
        .expect("nack");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(group_info(&mut groups, "jobs", "workers").await.pending, 1);
    let again = fetch(&mut groups, "jobs", "workers", "w", 1, 5_000).await;
    assert_eq!(seqs_and_counts(&again), [(1, 2)]);
    let dlq = client
        .get_stream(v1::GetStreamRequest {
            stream: "jobs:dlq".into(),
        })
        .await
        .expect_err("nothing was dead-lettered");
    assert_eq!(dlq.code(), Code::NotFound);
}

fn seek_request(stream: &str, group: &str, start: v1::group_start::Start) -> v1::SeekGroupRequest {
    v1::SeekGroupRequest {
        stream: stream.into(),
        group: group.into(),
        start: Some(v1::GroupStart { start: Some(start) }),
    }
}

#[tokio::test]
async fn seeking_a_group_to_the_earliest_event_delivers_acked_events_again() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..3)).await;
    group("s", "g").create(&mut groups).await;
    let first = fetch(&mut groups, "s", "g", "c", 10, 0).await;
    ack(&mut groups, "s", "g", seqs(&first)).await;
    let sought = groups
        .seek_group(seek_request("s", "g", v1::group_start::Start::Earliest(())))
        .await
        .expect("seek")
        .into_inner();
    assert_eq!(sought.pending_removed, 0);
    let info = sought.info.unwrap();
    assert_eq!((info.last_delivered_sequence, info.lag), (0, 3));
    let again = fetch(&mut groups, "s", "g", "c", 10, 0).await;
    assert_eq!(seqs_and_counts(&again), [(1, 1), (2, 1), (3, 1)]);
}

#[tokio::test]
async fn an_event_dead_lettered_again_after_its_copy_was_trimmed_gets_a_new_copy() {
    let (_server, mut client, mut groups) =
        group("s", "g").max_deliveries(1).on_new_server(1).await;
    let dead_letter_now = async |groups: &mut Groups| {
        let got = fetch(groups, "s", "g", "c", 1, 0).await;
        assert_eq!(seqs(&got), [1]);
        let nack = v1::NackRequest {
            consumer: "c".into(),
            ..nack_request("s", "g", vec![1])
        };
        groups.nack(nack).await.expect("nacked");
    };
    let dlq = async |client: &mut EventLogClient<Channel>| {
        let info = client
            .get_stream(v1::GetStreamRequest {
                stream: "s:dlq".into(),
            })
            .await
            .expect("dead-letter stream")
            .into_inner()
            .info
            .expect("info");
        (info.event_count, info.last_sequence)
    };
    dead_letter_now(&mut groups).await;
    assert_eq!(dlq(&mut client).await, (1, 1));
    client
        .trim(v1::TrimRequest {
            stream: "s:dlq".into(),
            until: Some(v1::trim_request::Until::BeforeSequence(2)),
        })
        .await
        .expect("trimmed");
    groups
        .seek_group(seek_request("s", "g", v1::group_start::Start::Earliest(())))
        .await
        .expect("seek");
    // The copy's id is remembered by the dead-letter stream, but a dead
    // letter is not a producer's retry: the second failure is recorded too.
    dead_letter_now(&mut groups).await;
    assert_eq!(dlq(&mut client).await, (1, 2));
}

#[tokio::test]
async fn seeking_to_latest_skips_the_backlog_and_removes_pending_entries() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    group("s", "g").create(&mut groups).await;
    assert_eq!(fetch(&mut groups, "s", "g", "c", 2, 0).await.len(), 2);
    let sought = groups
        .seek_group(seek_request("s", "g", v1::group_start::Start::Latest(())))
        .await
        .expect("seek")
        .into_inner();
    assert_eq!(sought.pending_removed, 2);
    let info = sought.info.unwrap();
    assert_eq!(
        (
            info.pending,
            info.lag,
            info.ack_floor,
            info.last_delivered_sequence
        ),
        (0, 0, 5, 5)
    );
    // The consumer still working on entry 1 finds it settled.
    let settled = groups
        .ack(v1::AckRequest {
            stream: "s".into(),
            group: "g".into(),
            sequences: vec![1],
        })
        .await
        .expect("ack")
        .into_inner();
    assert_eq!((settled.acked, settled.not_pending), (0, vec![1]));
    assert!(fetch(&mut groups, "s", "g", "c", 10, 0).await.is_empty());
    publish(&mut client, "s", vec![event("new")]).await;
    assert_eq!(seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await), [6]);
}

#[tokio::test]
async fn seeking_to_a_time_or_a_sequence_goes_on_from_there() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("old", 0..3)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = prost_types::Timestamp::from(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Another stream's events in between: only this stream's count.
    publish(&mut client, "other", events("x", 0..2)).await;
    publish(&mut client, "s", events("new", 0..3)).await;
    group("s", "g").create(&mut groups).await;

    let sought = groups
        .seek_group(seek_request("s", "g", v1::group_start::Start::Time(since)))
        .await
        .expect("seek to a time")
        .into_inner();
    assert_eq!(sought.info.unwrap().last_delivered_sequence, 3);
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [4, 5, 6]
    );

    groups
        .seek_group(seek_request("s", "g", v1::group_start::Start::Sequence(2)))
        .await
        .expect("seek to a sequence");
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [2, 3, 4, 5, 6]
    );

    // A time before every event is the earliest; one after them, the end.
    let long_ago = prost_types::Timestamp {
        seconds: 1,
        nanos: 0,
    };
    let sought = groups
        .seek_group(seek_request(
            "s",
            "g",
            v1::group_start::Start::Time(long_ago),
        ))
        .await
        .expect("seek to long ago")
        .into_inner();
    assert_eq!(sought.pending_removed, 5);
    assert_eq!(sought.info.unwrap().lag, 6);
    let tomorrow = prost_types::Timestamp {
        seconds: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 86_400,
        nanos: 0,
    };
    let sought = groups
        .seek_group(seek_request(
            "s",
            "g",
            v1::group_start::Start::Time(tomorrow),
        ))
        .await
        .expect("seek to tomorrow")
        .into_inner();
    assert_eq!(sought.info.unwrap().last_delivered_sequence, 6);
}

#[tokio::test]
async fn seek_errors() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..3)).await;
    group("s", "g").create(&mut groups).await;
    fetch(&mut groups, "s", "g", "c", 1, 0).await;
    use v1::group_start::Start;

    let err = groups
        .seek_group(seek_request("s", "g", Start::Sequence(5)))
        .await
        .unwrap_err();
    assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
    let err = groups
        .seek_group(v1::SeekGroupRequest {
            start: None,
            ..seek_request("s", "g", Start::Earliest(()))
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = groups
        .seek_group(seek_request(
            "s",
            "g",
            Start::Time(prost_types::Timestamp {
                seconds: 0,
                nanos: 2_000_000_000,
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = groups
        .seek_group(seek_request("s", "nope", Start::Earliest(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    let err = groups
        .seek_group(seek_request("nope", "g", Start::Earliest(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    let err = groups
        .seek_group(seek_request("bad name!", "g", Start::Earliest(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
    // Nothing changed: the entry delivered before is still pending.
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!((info.pending, info.last_delivered_sequence), (1, 1));
}

#[tokio::test]
async fn lag_stays_exact_through_takes_trims_and_seeks() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("a", 0..20)).await;
    group("s", "g").create(&mut groups).await;
    let take = |end: v1::TakeEnd, limit: u32| v1::TakeRequest {
        stream: "s".into(),
        end: end as i32,
        limit,
    };
    let trim = |keep: u64| v1::TrimRequest {
        stream: "s".into(),
        until: Some(v1::trim_request::Until::MaxEvents(keep)),
    };
    // Each step changes the stream; after each, the lag at several cursors
    // must equal the retained events past them, counted by reading.
    let mut step = 0;
    loop {
        match step {
            0 => {}
            1 => {
                client.take(take(v1::TakeEnd::Newest, 3)).await.unwrap();
            }
            2 => {
                publish(&mut client, "s", events("b", 0..5)).await;
            }
            3 => {
                // Merges with the gap below it once the events between go.
                client.take(take(v1::TakeEnd::Newest, 5)).await.unwrap();
            }
            4 => {
                client.take(take(v1::TakeEnd::Newest, 2)).await.unwrap();
                publish(&mut client, "s", events("c", 0..4)).await;
                client.take(take(v1::TakeEnd::Newest, 1)).await.unwrap();
                publish(&mut client, "s", events("d", 0..3)).await;
            }
            5 => {
                client.take(take(v1::TakeEnd::Oldest, 4)).await.unwrap();
            }
            6 => {
                client.trim(trim(6)).await.unwrap();
            }
            7 => {
                client.take(take(v1::TakeEnd::Newest, 10)).await.unwrap();
            }
            8 => {
                // Appends after the stream was emptied.
                publish(&mut client, "s", events("g", 0..3)).await;
            }
            9 => {
                client.take(take(v1::TakeEnd::Newest, 1)).await.unwrap();
                client.take(take(v1::TakeEnd::Oldest, 1)).await.unwrap();
            }
            _ => break,
        }
        assert_lag_exact(&mut client, &mut groups, "s", "g", &format!("step {step}")).await;
        step += 1;
    }
}

fn redrive_request(
    stream: &str,
    group: &str,
    selection: v1::redrive_request::Selection,
) -> v1::RedriveRequest {
    v1::RedriveRequest {
        stream: stream.into(),
        group: group.into(),
        selection: Some(selection),
    }
}

/// Dead-letters every event of `stream` for `group` (one delivery allowed,
/// nacked at once).
async fn dead_letter_all(groups: &mut Groups, stream: &str, group: &str, n: u64) {
    let got = fetch(groups, stream, group, "c", n as u32, 0).await;
    assert_eq!(got.len() as u64, n);
    groups
        .nack(v1::NackRequest {
            consumer: "c".into(),
            ..nack_request(stream, group, seqs(&got))
        })
        .await
        .expect("nack");
}

#[tokio::test]
async fn redrive_gives_dead_letters_back_with_a_fresh_count_and_takes_their_copies() {
    use v1::redrive_request::Selection;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..4)).await;
    group("s", "g")
        .ack_timeout_ms(60_000)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    dead_letter_all(&mut groups, "s", "g", 4).await;
    // Another group on the dead-letter stream: its lag must stay exact as
    // copies leave from the middle.
    group("s:dlq", "audit").create(&mut groups).await;
    assert_eq!(read_all(&mut client, "s:dlq").await.len(), 4);
    assert_eq!(group_info(&mut groups, "s", "g").await.pending, 0);

    let one = groups
        .redrive(redrive_request(
            "s",
            "g",
            Selection::DeadLetterSequences(v1::SequenceRange { first: 2, last: 3 }),
        ))
        .await
        .expect("redrive a range")
        .into_inner();
    assert_eq!((one.redriven, one.more), (2, false));
    assert!(one.origin_gone.is_empty());
    let left: Vec<u64> = read_all(&mut client, "s:dlq")
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        left,
        [1, 4],
        "the redriven copies left the dead-letter stream"
    );
    assert_eq!(group_info(&mut groups, "s:dlq", "audit").await.lag, 2);
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!((info.pending, info.ack_floor), (2, 1));
    // Back with a fresh count: one more delivery allowed.
    let again = fetch(&mut groups, "s", "g", "c", 10, 0).await;
    assert_eq!(seqs_and_counts(&again), [(2, 1), (3, 1)]);
    ack(&mut groups, "s", "g", vec![2, 3]).await;

    let rest = groups
        .redrive(redrive_request("s", "g", Selection::All(())))
        .await
        .expect("redrive all")
        .into_inner();
    assert_eq!(rest.redriven, 2);
    assert_eq!(group_info(&mut groups, "s:dlq", "audit").await.lag, 0);
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [1, 4]
    );
    // Nothing was appended to the stream itself.
    assert_eq!(read_all(&mut client, "s").await.len(), 4);
    // Nothing left: a redrive is a no-op.
    let none = groups
        .redrive(redrive_request("s", "g", Selection::All(())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.redriven, 0);
}

#[tokio::test]
async fn redrive_by_filter_touches_only_its_groups_matching_copies_and_keeps_orphans() {
    use v1::redrive_request::Selection;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(
        &mut client,
        "s",
        vec![
            cloud_event("a1", "job.a", None).into(),
            cloud_event("b1", "job.b", None).into(),
            cloud_event("a2", "job.a", None).into(),
        ],
    )
    .await;
    for name in ["g", "other"] {
        group("s", name)
            .ack_timeout_ms(60_000)
            .max_deliveries(1)
            .create(&mut groups)
            .await;
        dead_letter_all(&mut groups, "s", name, 3).await;
    }
    assert_eq!(read_all(&mut client, "s:dlq").await.len(), 6);
    let by_type = groups
        .redrive(redrive_request(
            "s",
            "g",
            Selection::Filter(v1::EventFilter {
                types: vec!["job.a".into()],
                ..Default::default()
            }),
        ))
        .await
        .expect("redrive by type")
        .into_inner();
    assert_eq!(by_type.redriven, 2);
    assert_eq!(read_all(&mut client, "s:dlq").await.len(), 4);
    // Copies left the dead-letter stream here and there: lags on it stay
    // exact at every cursor.
    group("s:dlq", "audit").create(&mut groups).await;
    assert_lag_exact(
        &mut client,
        &mut groups,
        "s:dlq",
        "audit",
        "after the redrive",
    )
    .await;
    assert_eq!(group_info(&mut groups, "s", "other").await.pending, 0);
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [1, 3]
    );
    ack(&mut groups, "s", "g", vec![1, 3]).await;

    // The original of the remaining copy of "g" is trimmed away.
    client
        .trim(v1::TrimRequest {
            stream: "s".into(),
            until: Some(v1::trim_request::Until::MaxEvents(0)),
        })
        .await
        .unwrap();
    let orphans = groups
        .redrive(redrive_request("s", "g", Selection::All(())))
        .await
        .expect("redrive")
        .into_inner();
    assert_eq!(orphans.redriven, 0);
    assert_eq!(orphans.origin_gone.len(), 1);
    let kept: Vec<u64> = read_all(&mut client, "s:dlq")
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert!(kept.contains(&orphans.origin_gone[0]), "reported and kept");
    assert_eq!(kept.len(), 4);
}

/// Seeks `group` of `stream` to every cursor from 0 to the last sequence
/// and checks its lag against the retained events past it, counted
/// (`when` names the moment in failures).
async fn assert_lag_exact(
    client: &mut EventLogClient<Channel>,
    groups: &mut Groups,
    stream: &str,
    group: &str,
    when: &str,
) {
    let retained: Vec<u64> = read_all(client, stream)
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    let last = client
        .get_stream(v1::GetStreamRequest {
            stream: stream.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap()
        .last_sequence;
    for cursor in 0..=last {
        let start = if cursor == last {
            v1::group_start::Start::Latest(())
        } else {
            v1::group_start::Start::Sequence(cursor + 1)
        };
        let info = groups
            .seek_group(seek_request(stream, group, start))
            .await
            .unwrap()
            .into_inner()
            .info
            .unwrap();
        assert_eq!(info.last_delivered_sequence, cursor);
        let expected = retained.iter().filter(|&&s| s > cursor).count() as u64;
        assert_eq!(
            info.lag, expected,
            "{when}, cursor {cursor}, retained {retained:?}"
        );
    }
}

#[tokio::test]
async fn redrive_errors() {
    use v1::redrive_request::Selection;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..1)).await;
    group("s", "g").create(&mut groups).await;
    let err = groups
        .redrive(v1::RedriveRequest {
            stream: "s".into(),
            group: "g".into(),
            selection: None,
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    for (first, last) in [(0, 3), (5, 4)] {
        let err = groups
            .redrive(redrive_request(
                "s",
                "g",
                Selection::DeadLetterSequences(v1::SequenceRange { first, last }),
            ))
            .await
            .unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    }
    let err = groups
        .redrive(redrive_request("s", "nope", Selection::All(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "GROUP_NOT_FOUND");
    let err = groups
        .redrive(redrive_request("nope", "g", Selection::All(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    // No dead-letter stream yet: nothing to give back.
    let none = groups
        .redrive(redrive_request("s", "g", Selection::All(())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.redriven, 0);
}

#[tokio::test]
async fn an_event_trimmed_while_pending_is_dead_lettered_as_trimmed_and_leaves_no_entry() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    group("s", "g")
        .ack_timeout_ms(60_000)
        .create(&mut groups)
        .await;
    group("s", "idle").create(&mut groups).await;
    // 1 and 2 are pending in "g"; "idle" never fetched.
    assert_eq!(seqs(&fetch(&mut groups, "s", "g", "c", 2, 0).await), [1, 2]);
    ack(&mut groups, "s", "g", vec![1]).await;
    let removed = client
        .trim(v1::TrimRequest {
            stream: "s".into(),
            until: Some(v1::trim_request::Until::MaxEvents(2)),
        })
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 3);

    let pending = list_pending(&mut groups, "s", "g").await;
    assert!(pending.entries.is_empty(), "{pending:?}");
    let info = group_info(&mut groups, "s", "g").await;
    assert_eq!((info.pending, info.ack_floor, info.lag), (0, 2, 2));
    let dead = read_all(&mut client, "s:dlq").await;
    assert_eq!(dead.len(), 1, "only the pending one, once");
    assert_eq!(
        dead_letter_attr(&dead[0], "rlreason"),
        Some(AttributeValue::CeString("trimmed".into()))
    );
    assert_eq!(
        dead_letter_attr(&dead[0], "rlorigsequence"),
        Some(AttributeValue::CeString("2".into()))
    );
    // The group goes on with what is left.
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [4, 5]
    );
}

#[tokio::test]
async fn retention_dead_letters_what_it_trims_from_under_a_group() {
    let server = TestServer::start_with(|c| c.retention_interval = Duration::from_millis(50)).await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: Some(v1::Retention {
                max_events: 2,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    publish(&mut client, "s", events("e", 0..2)).await;
    group("s", "g")
        .ack_timeout_ms(60_000)
        .create(&mut groups)
        .await;
    assert_eq!(fetch(&mut groups, "s", "g", "c", 2, 0).await.len(), 2);
    publish(&mut client, "s", events("f", 0..2)).await;
    let dead = eventually("both pending events dead-lettered", async || {
        let dead = dead_letters(&mut client, "s:dlq").await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert!(dead.iter().all(
        |d| dead_letter_attr(d, "rlreason") == Some(AttributeValue::CeString("trimmed".into()))
    ));
    assert!(list_pending(&mut groups, "s", "g").await.entries.is_empty());
}

#[tokio::test]
async fn an_event_taken_while_pending_leaves_no_entry_and_no_dead_letter() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    publish(&mut client, "s", events("e", 0..3)).await;
    group("s", "g")
        .ack_timeout_ms(60_000)
        .create(&mut groups)
        .await;
    assert_eq!(fetch(&mut groups, "s", "g", "c", 3, 0).await.len(), 3);
    let taken = client
        .take(v1::TakeRequest {
            stream: "s".into(),
            end: v1::TakeEnd::Newest as i32,
            limit: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(taken.len(), 2);
    let pending: Vec<u64> = list_pending(&mut groups, "s", "g")
        .await
        .entries
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(pending, [1]);
    assert!(dead_letters(&mut client, "s:dlq").await.is_empty());
}

#[tokio::test]
async fn a_redrive_is_not_stalled_by_more_orphans_than_its_cap() {
    use v1::redrive_request::Selection;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut groups = server.groups().await;
    const EVENTS: u64 = 10_002;
    for chunk in 0..(EVENTS / 1000 + 1) {
        let to = ((chunk + 1) * 1000).min(EVENTS);
        if chunk * 1000 < to {
            publish(
                &mut client,
                "s",
                events(&format!("c{chunk}-"), 0..(to - chunk * 1000) as usize),
            )
            .await;
        }
    }
    group("s", "g")
        .ack_timeout_ms(3_600_000)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    let mut dead = 0;
    while dead < EVENTS {
        let got = fetch(&mut groups, "s", "g", "c", 1000, 0).await;
        dead += got.len() as u64;
        groups
            .nack(v1::NackRequest {
                consumer: "c".into(),
                ..nack_request("s", "g", seqs(&got))
            })
            .await
            .unwrap();
    }
    // Every original but the newest is trimmed away: 10,001 orphans come
    // first in the dead-letter stream.
    client
        .trim(v1::TrimRequest {
            stream: "s".into(),
            until: Some(v1::trim_request::Until::MaxEvents(1)),
        })
        .await
        .unwrap();
    let redriven = groups
        .redrive(redrive_request("s", "g", Selection::All(())))
        .await
        .expect("redrive")
        .into_inner();
    assert_eq!((redriven.redriven, redriven.more), (1, false));
    assert_eq!(redriven.origin_gone.len(), 1_000, "listed up to its limit");
    assert_eq!(
        seqs(&fetch(&mut groups, "s", "g", "c", 10, 0).await),
        [EVENTS]
    );
}
