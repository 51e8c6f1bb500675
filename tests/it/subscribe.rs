//! Subscribe: starts, catch-up to live, patterns, filters, heartbeats,
//! many subscribers, slow subscribers, shutdown.

use riverlog::proto::EventPayload;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{self, start_position::Start, subscribe_response::Message};
use tonic::Code;
use tonic::transport::Endpoint;

use crate::common::*;

#[tokio::test]
async fn earliest_delivers_history_then_caught_up_then_live_events() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("old", 0..3)).await;
    let mut sub = subscribe(&mut client, subscribe_request(&["s"], None)).await;
    let history = next_events(&mut sub, 3).await;
    assert_eq!(
        history.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    match next_message(&mut sub).await {
        Message::CaughtUp(c) => assert_eq!(c.position, 3),
        other => panic!("expected caught_up, got {other:?}"),
    }
    publish(&mut client, "s", events("new", 0..2)).await;
    let live = next_events(&mut sub, 2).await;
    assert_eq!(
        live.iter().map(event_id).collect::<Vec<_>>(),
        ["new-0", "new-1"]
    );
    assert_eq!(live[0].stream, "s");
    assert_eq!(live[1].sequence, 5);
}

#[tokio::test]
async fn latest_skips_history() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("old", 0..3)).await;
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["s"], Some(Start::Latest(()))),
    )
    .await;
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    publish(&mut client, "s", vec![event("new")]).await;
    let live = next_events(&mut sub, 1).await;
    assert_eq!(event_id(&live[0]), "new");
}

#[tokio::test]
async fn sequence_position_and_time_starts_are_inclusive() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "a", events("a", 0..3)).await; // positions 1-3
    let b = publish(&mut client, "b", events("b", 0..3)).await; // positions 4-6
    publish(&mut client, "a", events("a", 3..5)).await; // positions 7-8

    let mut by_seq = subscribe(
        &mut client,
        subscribe_request(&["a"], Some(Start::Sequence(4))),
    )
    .await;
    let got = next_events(&mut by_seq, 2).await;
    assert_eq!(got.iter().map(|e| e.sequence).collect::<Vec<_>>(), [4, 5]);
    assert!(matches!(
        next_message(&mut by_seq).await,
        Message::CaughtUp(_)
    ));

    let mut by_pos = subscribe(
        &mut client,
        subscribe_request(&["a", "b"], Some(Start::Position(5))),
    )
    .await;
    let got = next_events(&mut by_pos, 4).await;
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        [5, 6, 7, 8]
    );

    let t = b[0].recorded_at.unwrap();
    let mut by_time = subscribe(&mut client, subscribe_request(&["*"], Some(Start::Time(t)))).await;
    let got = next_events(&mut by_time, 5).await;
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8]
    );

    // The next sequence waits for it (further ones are refused: see
    // a_start_beyond_the_head_is_refused_and_the_next_one_waits_for_it).
    let mut ahead = subscribe(
        &mut client,
        subscribe_request(&["a"], Some(Start::Sequence(6))),
    )
    .await;
    assert!(matches!(
        next_message(&mut ahead).await,
        Message::CaughtUp(_)
    ));
    publish(&mut client, "a", events("a", 5..7)).await; // sequences 6, 7
    let got = next_events(&mut ahead, 2).await;
    assert_eq!(got.iter().map(|e| e.sequence).collect::<Vec<_>>(), [6, 7]);
}

#[tokio::test]
async fn a_start_beyond_the_head_is_refused_and_the_next_one_waits_for_it() {
    use riverlog::proto::v1::commit_checkpoint_request::At;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "a", events("a", 0..3)).await; // positions 1-3
    publish(&mut client, "b", events("b", 0..2)).await; // positions 4-5

    // Positions up to the next one (6) may start a subscription; past it
    // the subscription would skip what is appended in between.
    for (streams, start, metadata) in [
        (&["a", "b"][..], Start::Position(7), ("position", "7")),
        (&["*"][..], Start::Position(1000), ("position", "1000")),
        (&["a"][..], Start::Sequence(5), ("sequence", "5")),
        (&["new"][..], Start::Sequence(2), ("sequence", "2")),
    ] {
        let err = client
            .subscribe(subscribe_request(streams, Some(start.clone())))
            .await
            .expect_err("refused");
        assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
        let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
        assert_eq!(
            info.metadata.get(metadata.0).map(String::as_str),
            Some(metadata.1),
            "{start:?}: {info:?}"
        );
    }
    // A checkpoint that names a position the log never reached: CommitCheckpoint
    // refuses it, so plant it the way a database restored from an older
    // backup than its readers' checkpoints would hold it.
    let mut checkpoints =
        riverlog::proto::v1::checkpoints_client::CheckpointsClient::new(server.channel().await);
    let err = checkpoints
        .commit_checkpoint(v1::CommitCheckpointRequest {
            name: "stale".into(),
            stream: String::new(),
            at: Some(At::Position(1000)),
        })
        .await
        .expect_err("refused when committed");
    assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
    run_sql(
        &server.db,
        &[
            "INSERT INTO checkpoints (owner, name, stream, sequence, position, committed_at) \
           VALUES ('', 'stale', '', 0, 1000, 0)"
                .to_owned(),
        ],
    )
    .await;
    let err = client
        .subscribe(subscribe_request(
            &["a"],
            Some(Start::Checkpoint("stale".into())),
        ))
        .await
        .expect_err("refused");
    assert_error(&err, Code::OutOfRange, "START_BEYOND_HEAD");
    let info = tonic_types::StatusExt::get_details_error_info(&err).unwrap();
    assert_eq!(info.metadata["checkpoint"], "stale");

    // The next position and the next sequence wait for the next event.
    let mut by_pos = subscribe(
        &mut client,
        subscribe_request(&["a", "b"], Some(Start::Position(6))),
    )
    .await;
    let mut by_seq = subscribe(
        &mut client,
        subscribe_request(&["a"], Some(Start::Sequence(4))),
    )
    .await;
    let mut new_stream = subscribe(
        &mut client,
        subscribe_request(&["new"], Some(Start::Sequence(1))),
    )
    .await;
    for sub in [&mut by_pos, &mut by_seq, &mut new_stream] {
        assert!(matches!(next_message(sub).await, Message::CaughtUp(_)));
    }
    publish(&mut client, "a", vec![event("a-3")]).await; // position 6
    publish(&mut client, "new", vec![event("n-0")]).await; // position 7
    let got = next_events(&mut by_pos, 1).await;
    assert_eq!((got[0].position, event_id(&got[0])), (6, "a-3".to_owned()));
    let got = next_events(&mut by_seq, 1).await;
    assert_eq!((got[0].sequence, event_id(&got[0])), (4, "a-3".to_owned()));
    let got = next_events(&mut new_stream, 1).await;
    assert_eq!(event_id(&got[0]), "n-0");
}

#[tokio::test]
async fn subscribing_to_a_stream_that_does_not_exist_yet_waits_for_it() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut sub = subscribe(&mut client, subscribe_request(&["later"], None)).await;
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    publish(&mut client, "later", vec![event("1")]).await;
    assert_eq!(event_id(&next_events(&mut sub, 1).await[0]), "1");
}

#[tokio::test]
async fn a_pattern_subscription_picks_up_streams_created_after_it_started() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "store-sync:append:a", vec![event("a1")]).await;
    publish(&mut client, "unrelated", vec![event("u1")]).await;
    let mut sub = subscribe(
        &mut client,
        subscribe_request(&["store-sync:append:*"], None),
    )
    .await;
    assert_eq!(event_id(&next_events(&mut sub, 1).await[0]), "a1");
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));

    publish(&mut client, "unrelated", vec![event("u2")]).await;
    publish(
        &mut client,
        "store-sync:append:nq:flow:abc-123",
        vec![event("new-stream")],
    )
    .await;
    let got = next_events(&mut sub, 1).await;
    assert_eq!(got[0].stream, "store-sync:append:nq:flow:abc-123");
    assert_eq!(event_id(&got[0]), "new-stream");
}

#[tokio::test]
async fn filters_apply_to_history_and_live_events_alike() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batch = |prefix: &str| -> Vec<EventPayload> {
        vec![
            cloud_event(&format!("{prefix}1"), "order.created", Some("o-1")).into(),
            cloud_event(&format!("{prefix}2"), "order.paid", Some("o-1")).into(),
            cloud_event(&format!("{prefix}3"), "order.created", Some("o-2")).into(),
        ]
    };
    publish(&mut client, "orders", batch("h")).await;
    let mut request = subscribe_request(&["orders"], None);
    request.filter = Some(v1::EventFilter {
        types: vec!["order.created".into()],
        sources: vec![],
        subjects: vec!["o-*".into()],
    });
    let mut sub = subscribe(&mut client, request).await;
    let history = next_events(&mut sub, 2).await;
    assert_eq!(
        history.iter().map(event_id).collect::<Vec<_>>(),
        ["h1", "h3"]
    );
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    publish(&mut client, "orders", batch("l")).await;
    let live = next_events(&mut sub, 2).await;
    assert_eq!(live.iter().map(event_id).collect::<Vec<_>>(), ["l1", "l3"]);
}

#[tokio::test]
async fn heartbeats_report_the_examined_position_while_idle() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut request = subscribe_request(&["quiet"], None);
    request.heartbeat_interval = Some(prost_types::Duration {
        seconds: 0,
        nanos: 100_000_000,
    });
    request.filter = Some(v1::EventFilter {
        types: vec!["never".into()],
        ..Default::default()
    });
    let mut sub = subscribe(&mut client, request).await;
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    // Events that the filter drops still move the heartbeat's position.
    let published = publish(&mut client, "quiet", events("e", 0..3)).await;
    loop {
        let msg = within(sub.message())
            .await
            .unwrap()
            .unwrap()
            .message
            .unwrap();
        match msg {
            Message::Heartbeat(h) => {
                assert!(h.time.is_some());
                if h.position == published[2].position {
                    break;
                }
            }
            other => panic!("nothing but heartbeats expected, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_seam_between_catch_up_and_live_has_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let client = server.client().await;
    const TOTAL: usize = 2000;
    // Publishers run while subscriptions start at different moments, so
    // some catch up across events committed during their catch-up.
    let publishers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = client.clone();
            tokio::spawn(async move {
                for i in 0..TOTAL / 4 / 10 {
                    publish(&mut c, "seam", events(&format!("w{w}-{i}"), 0..10)).await;
                }
            })
        })
        .collect();
    let mut subscribers = Vec::new();
    for _ in 0..5 {
        let mut c = client.clone();
        subscribers.push(tokio::spawn(async move {
            let mut sub = subscribe(&mut c, subscribe_request(&["seam"], None)).await;
            next_events(&mut sub, TOTAL).await
        }));
        tokio::task::yield_now().await;
    }
    for p in publishers {
        p.await.unwrap();
    }
    for s in subscribers {
        let got = s.await.unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, (1..=TOTAL as u64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_hundred_subscribers_each_receive_every_event_in_order() {
    let server = TestServer::start().await;
    let client = server.client().await;
    const EVENTS: usize = 200;
    let mut subscribers = Vec::new();
    for i in 0..100 {
        let mut c = client.clone();
        // Half by name, half by pattern.
        let selector = if i % 2 == 0 { "fan:out" } else { "fan:*" };
        let mut sub = subscribe(&mut c, subscribe_request(&[selector], None)).await;
        assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
        subscribers.push(tokio::spawn(
            async move { next_events(&mut sub, EVENTS).await },
        ));
    }
    let mut c = client.clone();
    for i in 0..EVENTS / 20 {
        publish(&mut c, "fan:out", events(&format!("b{i}"), 0..20)).await;
    }
    for s in subscribers {
        let got = s.await.unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, (1..=EVENTS as u64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_stalled_subscriber_falls_back_to_storage_and_misses_nothing() {
    // A live buffer far smaller than what is published while the subscriber
    // reads nothing, so it must fall back to storage.
    let server = TestServer::start_with(|c| c.live_buffer_bytes = 256 * 1024).await;
    let mut client = server.client().await;
    let mut stalled = subscribe(&mut client, subscribe_request(&["flood"], None)).await;
    assert!(matches!(
        next_message(&mut stalled).await,
        Message::CaughtUp(_)
    ));
    // Far more bytes than the live buffer and the HTTP/2 windows hold.
    const BATCHES: usize = 600;
    for i in 0..BATCHES {
        let mut e = cloud_event(&format!("f{i}"), "t", None);
        e.data = Some(Data::BinaryData(vec![b'x'; 8 * 1024]));
        publish(&mut client, "flood", vec![e.into()]).await;
    }
    let got = next_events(&mut stalled, BATCHES).await;
    let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=BATCHES as u64).collect::<Vec<_>>());
    // And it is live again afterwards.
    publish(&mut client, "flood", vec![event("after")]).await;
    assert_eq!(event_id(&next_events(&mut stalled, 1).await[0]), "after");
}

#[tokio::test]
async fn stalled_subscribers_read_no_further_than_their_clients_take_and_hold_up_no_one() {
    const HISTORY: usize = 600;
    const LIVE: usize = 200;
    const STALLED: usize = 20;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let event = |id: String| {
        let mut e = cloud_event(&id, "t", None);
        e.data = Some(Data::BinaryData(vec![b'x'; 8 * 1024]));
        EventPayload::from(e)
    };
    for b in 0..HISTORY / 50 {
        let batch = (0..50).map(|i| event(format!("h{b}-{i}"))).collect();
        publish(&mut client, "busy", batch).await;
    }
    // Clients that never read, each on its own connection whose 64 KiB
    // window soon leaves the server nothing it may send.
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let channel = Endpoint::from_shared(server.url())
            .expect("valid url")
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
            .connect()
            .await
            .expect("connects");
        let call = EventLogClient::new(channel.clone())
            .subscribe(subscribe_request(&["busy"], None))
            .await
            .expect("subscribes");
        stalled.push((channel, call));
    }

    // A reading subscriber gets the history and what is published now,
    // every event once and in order, and every publish succeeds.
    let mut healthy = subscribe(&mut client, subscribe_request(&["busy"], None)).await;
    let reader = tokio::spawn(async move { next_events(&mut healthy, HISTORY + LIVE).await });
    for b in 0..LIVE / 20 {
        let batch = (0..20).map(|i| event(format!("l{b}-{i}"))).collect();
        publish(&mut client, "busy", batch).await;
    }
    let got = within(reader).await.expect("reader");
    let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=(HISTORY + LIVE) as u64).collect::<Vec<_>>());

    // The reading subscriber read each event from storage at most once. A
    // stalled one read no further than its window and the transport's
    // buffers took (a few of these events) plus one page no larger than
    // that, not a page of 512 events; counted generously here, and the
    // bound holds whenever it is looked at.
    let text = server.scrape().await;
    let read = metric(&text, "riverlog_subscription_storage_events_total", &[])
        .expect("the storage-read counter is exported");
    let bound = (HISTORY + LIVE + STALLED * 128) as f64;
    assert!(read >= HISTORY as f64, "{read} events read");
    assert!(read <= bound, "{read} events read, more than {bound}");
    drop(stalled);
}

#[tokio::test]
async fn bad_subscriptions_are_rejected_precisely() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let cases: Vec<(v1::SubscribeRequest, Code, &str)> = vec![
        (
            subscribe_request(&[], None),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            subscribe_request(&["bad name"], None),
            Code::InvalidArgument,
            "INVALID_STREAM_NAME",
        ),
        (
            subscribe_request(&["bad?*"], None),
            Code::InvalidArgument,
            "INVALID_PATTERN",
        ),
        (
            subscribe_request(&["a:*"], Some(Start::Sequence(3))),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            subscribe_request(&["a", "b"], Some(Start::Sequence(3))),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            subscribe_request(&["a"], Some(Start::Checkpoint("bad name".into()))),
            Code::InvalidArgument,
            "INVALID_CHECKPOINT_NAME",
        ),
        (
            v1::SubscribeRequest {
                heartbeat_interval: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1_000,
                }),
                ..subscribe_request(&["a"], None)
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            v1::SubscribeRequest {
                heartbeat_interval: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..subscribe_request(&["a"], None)
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
    ];
    for (request, code, reason) in cases {
        let err = client
            .subscribe(request.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted: {request:?}"));
        assert_error(&err, code, reason);
    }
    let too_many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let err = client
        .subscribe(subscribe_request(&names, None))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn shutdown_ends_subscriptions_with_unavailable() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let mut sub = subscribe(&mut client, subscribe_request(&["s"], None)).await;
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    let stopping = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    let err = loop {
        match within(sub.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_error(&err, Code::Unavailable, "SHUTTING_DOWN");
    within(stopping).await.unwrap();
}
