//! Publish: ordering, atomicity, idempotency, optimistic concurrency,
//! validation.

use std::collections::HashSet;

use bytes::Bytes;
use riverlog::proto::v1::{self, publish_request::Expected};
use riverlog::proto::{AttributeValue, CloudEventAttributeValue, EventPayload};
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::*;

fn expecting(stream: &str, events: Vec<EventPayload>, expected: Expected) -> v1::PublishRequest {
    v1::PublishRequest {
        stream: stream.into(),
        events,
        expected: Some(expected),
    }
}

#[tokio::test]
async fn publish_assigns_consecutive_sequences_and_increasing_positions() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let first = publish(&mut client, "a", events("a", 0..3)).await;
    let second = publish(&mut client, "b", events("b", 0..2)).await;
    let third = publish(&mut client, "a", events("a", 3..4)).await;
    let seqs: Vec<_> = first.iter().chain(&third).map(|p| p.sequence).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        second.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    let positions: Vec<_> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|p| p.position)
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(
        first
            .iter()
            .all(|p| !p.duplicate && p.recorded_at.is_some())
    );
    assert_eq!(first[1].id, "a-1");

    let stored = read_all(&mut client, "a").await;
    assert_eq!(
        stored.iter().map(event_id).collect::<Vec<_>>(),
        ["a-0", "a-1", "a-2", "a-3"]
    );
}

#[tokio::test]
async fn events_come_back_byte_for_byte_as_published() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut ce = cloud_event("x", "com.example.thing", Some("subject-1"));
    ce.attributes.insert(
        "traceparent".into(),
        CloudEventAttributeValue {
            attr: Some(AttributeValue::CeString(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            )),
        },
    );
    ce.attributes.insert(
        "time".into(),
        CloudEventAttributeValue {
            attr: Some(AttributeValue::CeTimestamp(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            })),
        },
    );
    publish(&mut client, "s", vec![ce.clone().into()]).await;
    let stored = read_all(&mut client, "s").await;
    assert_eq!(stored[0].event.as_ref().unwrap().decode().unwrap(), ce);
}

#[tokio::test]
async fn a_batch_with_one_bad_event_writes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut batch = events("ok", 0..3);
    let mut bad = cloud_event("bad", "t", None);
    bad.source.clear();
    batch.insert(2, bad.into());
    let err = client
        .publish(publish_request("atomic", batch))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_EVENT");
    assert_eq!(err.get_details_error_info().unwrap().metadata["index"], "2");
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "atomic".into(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
}

#[tokio::test]
async fn invalid_cloudevents_are_rejected_with_invalid_event() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let base = cloud_event("1", "t", None);
    let string_attr = |v: &str| CloudEventAttributeValue {
        attr: Some(AttributeValue::CeString(v.into())),
    };
    let mut cases = Vec::new();
    let mut e = base.clone();
    e.id.clear();
    cases.push(("missing id", EventPayload::from(e)));
    let mut e = base.clone();
    e.r#type.clear();
    cases.push(("missing type", e.into()));
    let mut e = base.clone();
    e.spec_version = "0.3".into();
    cases.push(("wrong specversion", e.into()));
    let mut e = base.clone();
    e.attributes.insert("Bad_Name".into(), string_attr("x"));
    cases.push(("bad attribute name", e.into()));
    let mut e = base.clone();
    e.attributes.insert("id".into(), string_attr("x"));
    cases.push(("reserved attribute", e.into()));
    let mut e = base.clone();
    e.attributes.insert("time".into(), string_attr("yesterday"));
    cases.push(("bad time", e.into()));
    let mut e = base.clone();
    e.attributes.insert(
        "deadline".into(),
        CloudEventAttributeValue {
            attr: Some(AttributeValue::CeTimestamp(prost_types::Timestamp {
                seconds: 253_402_300_800, // 10000-01-01: RFC 3339 has 4-digit years
                nanos: 0,
            })),
        },
    );
    cases.push(("timestamp past year 9999", e.into()));
    let mut e = base.clone();
    e.attributes.insert(
        "subject".into(),
        CloudEventAttributeValue {
            attr: Some(AttributeValue::CeInteger(3)),
        },
    );
    cases.push(("non-string subject", e.into()));
    let mut e = base.clone();
    e.attributes
        .insert("ext".into(), CloudEventAttributeValue { attr: None });
    cases.push(("attribute without value", e.into()));
    let mut e = base.clone();
    e.r#type = "order.created\nid: 999".into();
    cases.push(("line break in type", e.into()));
    let mut e = base.clone();
    e.attributes
        .insert("subject".into(), string_attr("a\u{7}b"));
    cases.push(("control character in subject", e.into()));
    // Well-framed bytes that are not a CloudEvent: an id that is not UTF-8,
    // and an id sent as a number.
    cases.push((
        "id not UTF-8",
        EventPayload::from_encoded(Bytes::from_static(&[0x0a, 0x02, 0xff, 0xfe])),
    ));
    cases.push((
        "id with the wrong wire type",
        EventPayload::from_encoded(Bytes::from_static(&[0x08, 0x01])),
    ));
    for (what, payload) in cases {
        let err = client
            .publish(publish_request("s", vec![payload]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert_error(&err, Code::InvalidArgument, "INVALID_EVENT");
    }
    let err = client
        .publish(publish_request("s", vec![]))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn size_and_count_limits_are_enforced() {
    let server = TestServer::start_with(|c| {
        c.max_event_size = 2048;
        c.max_batch_events = 3;
        c.max_batch_bytes = 4096;
    })
    .await;
    let mut client = server.client().await;
    let mut big = cloud_event("big", "t", None);
    big.data = Some(riverlog::proto::cloudevent::cloud_event::Data::BinaryData(
        vec![7; 3000],
    ));
    let err = client
        .publish(publish_request("s", vec![big.into()]))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "EVENT_TOO_LARGE");

    let err = client
        .publish(publish_request("s", events("e", 0..4)))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "BATCH_TOO_LARGE");

    let medium = |id: &str| {
        let mut e = cloud_event(id, "t", None);
        e.data = Some(riverlog::proto::cloudevent::cloud_event::Data::BinaryData(
            vec![1; 1800],
        ));
        EventPayload::from(e)
    };
    let err = client
        .publish(publish_request(
            "s",
            vec![medium("1"), medium("2"), medium("3")],
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "BATCH_TOO_LARGE");

    publish(&mut client, "s", events("e", 0..3)).await;
}

#[tokio::test]
async fn republishing_an_id_returns_the_original_position_flagged_duplicate() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let original = publish(&mut client, "s", vec![event("a"), event("b")]).await;
    publish(&mut client, "other", vec![event("a")]).await;

    let again = publish(&mut client, "s", vec![event("b"), event("c")]).await;
    assert!(again[0].duplicate);
    assert_eq!(
        (again[0].sequence, again[0].position),
        (original[1].sequence, original[1].position)
    );
    assert_eq!(again[0].recorded_at, original[1].recorded_at);
    assert!(!again[1].duplicate);
    assert_eq!(again[1].sequence, 3);

    // The same id twice in one request: the second is a duplicate of the first.
    let twice = publish(&mut client, "s", vec![event("d"), event("d")]).await;
    assert!(!twice[0].duplicate);
    assert!(twice[1].duplicate);
    assert_eq!(twice[0].sequence, twice[1].sequence);

    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn expected_last_sequence_guards_appends() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 0 means "never written", which a missing stream is.
    client
        .publish(expecting(
            "s",
            vec![event("1")],
            Expected::ExpectedLastSequence(0),
        ))
        .await
        .unwrap();
    client
        .publish(expecting(
            "s",
            vec![event("2")],
            Expected::ExpectedLastSequence(1),
        ))
        .await
        .unwrap();
    let err = client
        .publish(expecting(
            "s",
            vec![event("3")],
            Expected::ExpectedLastSequence(1),
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "WRONG_EXPECTED_SEQUENCE");
    let meta = err.get_details_error_info().unwrap().metadata;
    assert_eq!(meta["actual_last_sequence"], "2");
    assert_eq!(
        read_all(&mut client, "s").await.len(),
        2,
        "the rejected event was not written"
    );
}

#[tokio::test]
async fn expected_state_distinguishes_missing_and_existing_streams() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let no_stream = Expected::ExpectedState(v1::StreamState::NoStream as i32);
    let exists = Expected::ExpectedState(v1::StreamState::Exists as i32);

    let err = client
        .publish(expecting("s", vec![event("1")], exists))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "WRONG_EXPECTED_SEQUENCE");
    assert_eq!(
        err.get_details_error_info().unwrap().metadata["actual_last_sequence"],
        "none"
    );

    client
        .publish(expecting("s", vec![event("1")], no_stream))
        .await
        .unwrap();
    let err = client
        .publish(expecting("s", vec![event("2")], no_stream))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "WRONG_EXPECTED_SEQUENCE");
    client
        .publish(expecting("s", vec![event("2")], exists))
        .await
        .unwrap();

    let err = client
        .publish(expecting(
            "s",
            vec![event("3")],
            Expected::ExpectedState(99),
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_retried_conditional_publish_answers_its_duplicates() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let request = expecting(
        "s",
        vec![event("1"), event("2")],
        Expected::ExpectedLastSequence(0),
    );
    let first = client
        .publish(request.clone())
        .await
        .unwrap()
        .into_inner()
        .positions;
    // The client did not see the answer and retries: the stream has moved
    // on, but the retry is recognised by its ids.
    let retry = client
        .publish(request)
        .await
        .unwrap()
        .into_inner()
        .positions;
    assert!(retry.iter().all(|p| p.duplicate));
    assert_eq!(
        retry.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        first.iter().map(|p| p.sequence).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn of_concurrent_writers_expecting_the_same_sequence_exactly_one_wins() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "contended", events("seed", 0..3)).await;
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.publish(expecting(
                "contended",
                vec![event(&format!("w{writer}"))],
                Expected::ExpectedLastSequence(3),
            ))
            .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                wins += 1;
                assert_eq!(r.into_inner().positions[0].sequence, 4);
            }
            Err(e) => assert_error(&e, Code::FailedPrecondition, "WRONG_EXPECTED_SEQUENCE"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(read_all(&mut client, "contended").await.len(), 4);
}

#[tokio::test]
async fn concurrent_publishers_get_gap_free_unique_sequences() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut tasks = Vec::new();
    for writer in 0..20 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..25 {
                out.extend(publish(&mut c, "busy", vec![event(&format!("w{writer}-{i}"))]).await);
            }
            out
        }));
    }
    let mut sequences = HashSet::new();
    let mut positions = HashSet::new();
    for t in tasks {
        for p in t.await.unwrap() {
            assert!(sequences.insert(p.sequence));
            assert!(positions.insert(p.position));
        }
    }
    assert_eq!(sequences, (1..=500).collect());
    let mut client = client;
    let stored = read_all(&mut client, "busy").await;
    assert_eq!(stored.len(), 500);
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].sequence + 1 == w[1].sequence && w[0].position < w[1].position)
    );
}

#[tokio::test]
async fn without_auto_create_publishing_to_a_missing_stream_is_not_found() {
    let server = TestServer::start_with(|c| c.auto_create_streams = false).await;
    let mut client = server.client().await;
    let err = client
        .publish(publish_request("s", vec![event("1")]))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: None,
        })
        .await
        .unwrap();
    publish(&mut client, "s", vec![event("1")]).await;
}
