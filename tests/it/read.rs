//! Read: paging in both directions, from sequence or time, filters.

use riverlog::proto::v1::{self, read_request::From};
use tonic::Code;

use crate::common::*;

fn read(
    stream: &str,
    from: Option<From>,
    direction: v1::ReadDirection,
    limit: u32,
) -> v1::ReadRequest {
    v1::ReadRequest {
        stream: stream.into(),
        from,
        direction: direction as i32,
        limit,
        filter: None,
    }
}

fn seqs(r: &v1::ReadResponse) -> Vec<u64> {
    r.events.iter().map(|e| e.sequence).collect()
}

#[tokio::test]
async fn forward_pages_follow_next_sequence_to_the_end() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..7)).await;
    let p1 = client
        .read(read("s", None, v1::ReadDirection::Forward, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&p1), [1, 2, 3]);
    assert!(!p1.end_of_stream);
    let p2 = client
        .read(read(
            "s",
            Some(From::FromSequence(p1.next_sequence)),
            v1::ReadDirection::Forward,
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&p2), [4, 5, 6]);
    let p3 = client
        .read(read(
            "s",
            Some(From::FromSequence(p2.next_sequence)),
            v1::ReadDirection::Forward,
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&p3), [7]);
    assert!(p3.end_of_stream);
    assert_eq!(
        p3.next_sequence, 8,
        "polling from next_sequence picks up new events"
    );

    let beyond = client
        .read(read(
            "s",
            Some(From::FromSequence(100)),
            v1::ReadDirection::Forward,
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(beyond.events.is_empty() && beyond.end_of_stream);
    assert_eq!(
        beyond.next_sequence, 8,
        "past the end, still the sequence the next event will get"
    );

    // The default limit is 100; anything above 1000 is served as 1000.
    publish(&mut client, "many", events("m", 0..1000)).await;
    publish(&mut client, "many", events("m", 1000..1001)).await;
    let default = client
        .read(read("many", None, v1::ReadDirection::Unspecified, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.events.len(), 100);
    let capped = client
        .read(read("many", None, v1::ReadDirection::Forward, 5000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.events.len(), 1000);
    assert!(!capped.end_of_stream);
}

#[tokio::test]
async fn backward_reads_from_the_end_or_a_sequence() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    let p1 = client
        .read(read("s", None, v1::ReadDirection::Backward, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&p1), [5, 4]);
    assert_eq!(p1.next_sequence, 3);
    let p2 = client
        .read(read(
            "s",
            Some(From::FromSequence(p1.next_sequence)),
            v1::ReadDirection::Backward,
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&p2), [3, 2, 1]);
    assert!(p2.end_of_stream);
}

#[tokio::test]
async fn a_read_past_the_end_answers_the_sequence_the_next_event_will_get() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    let past = |direction, filter| v1::ReadRequest {
        filter,
        ..read("s", Some(From::FromSequence(100)), direction, 10)
    };
    let forward = client
        .read(past(v1::ReadDirection::Forward, None))
        .await
        .unwrap()
        .into_inner();
    assert!(forward.events.is_empty() && forward.end_of_stream);
    assert_eq!(forward.next_sequence, 6);

    // Polling from there picks up the next event: nothing is skipped.
    publish(&mut client, "s", vec![event("sixth")]).await;
    let polled = client
        .read(read(
            "s",
            Some(From::FromSequence(forward.next_sequence)),
            v1::ReadDirection::Forward,
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&polled), [6]);
    assert_eq!(polled.next_sequence, 7);

    // Filtered: the same, whether or not anything matched.
    let only = |types: &[&str]| {
        Some(v1::EventFilter {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        })
    };
    let filtered = client
        .read(past(v1::ReadDirection::Forward, only(&["test.created"])))
        .await
        .unwrap()
        .into_inner();
    assert!(filtered.events.is_empty() && filtered.end_of_stream);
    assert_eq!(filtered.next_sequence, 7);
    let unmatched = client
        .read(v1::ReadRequest {
            filter: only(&["no.such.type"]),
            ..read(
                "s",
                Some(From::FromSequence(2)),
                v1::ReadDirection::Forward,
                10,
            )
        })
        .await
        .unwrap()
        .into_inner();
    assert!(unmatched.events.is_empty() && unmatched.end_of_stream);
    assert_eq!(unmatched.next_sequence, 7);

    // Backward from past the end: the newest events first, then 0.
    let backward = client
        .read(past(v1::ReadDirection::Backward, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&backward), [6, 5, 4, 3, 2, 1]);
    assert!(backward.end_of_stream);
    assert_eq!(backward.next_sequence, 0);
    let backward = client
        .read(past(v1::ReadDirection::Backward, only(&["test.created"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(backward.events.len(), 6);
    assert_eq!(backward.next_sequence, 0);
}

#[tokio::test]
async fn reads_start_at_a_recording_time() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("old", 0..3)).await;
    let newer = publish(&mut client, "s", events("new", 0..2)).await;
    let t = newer[0].recorded_at.unwrap();
    let fwd = client
        .read(read(
            "s",
            Some(From::FromTime(t)),
            v1::ReadDirection::Forward,
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&fwd), [4, 5]);
    let back = client
        .read(read(
            "s",
            Some(From::FromTime(t)),
            v1::ReadDirection::Backward,
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&back), [5, 4, 3, 2, 1]);

    let err = client
        .read(read(
            "s",
            Some(From::FromTime(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            })),
            v1::ReadDirection::Forward,
            1,
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn filters_select_by_type_source_and_subject() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut batch = vec![
        cloud_event("1", "order.created", Some("order-1")),
        cloud_event("2", "order.paid", Some("order-1")),
        cloud_event("3", "invoice.sent", Some("order-2")),
        cloud_event("4", "order.created", Some("order-2")),
        cloud_event("5", "order.created", None),
    ];
    batch[3].source = "/elsewhere".into();
    publish(
        &mut client,
        "s",
        batch.into_iter().map(Into::into).collect(),
    )
    .await;
    let filtered = |types: &[&str], sources: &[&str], subjects: &[&str], limit| v1::ReadRequest {
        stream: "s".into(),
        limit,
        filter: Some(v1::EventFilter {
            types: types.iter().map(|s| (*s).into()).collect(),
            sources: sources.iter().map(|s| (*s).into()).collect(),
            subjects: subjects.iter().map(|s| (*s).into()).collect(),
        }),
        ..Default::default()
    };
    let ids = |r: v1::ReadResponse| r.events.iter().map(event_id).collect::<Vec<_>>();

    let r = client
        .read(filtered(&["order.created"], &[], &[], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(r), ["1", "4", "5"]);
    let r = client
        .read(filtered(&["order.*"], &["/tests"], &[], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(r), ["1", "2", "5"]);
    let r = client
        .read(filtered(&[], &[], &["order-2"], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(r), ["3", "4"]);
    let r = client
        .read(filtered(
            &["invoice.sent", "order.paid"],
            &[],
            &["order-*"],
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(r), ["2", "3"]);

    // The limit counts matching events; the next page starts after them.
    let page = client
        .read(filtered(&["order.created"], &[], &[], 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.next_sequence, 4);
    assert!(!page.end_of_stream);

    // Wildcard characters of other glob dialects are literal.
    let r = client
        .read(filtered(&["order.?aid"], &[], &[], 10))
        .await
        .unwrap()
        .into_inner();
    assert!(r.events.is_empty());

    let err = client
        .read(filtered(&[""], &[], &[], 10))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn read_errors_are_precise() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .read(read("missing", None, v1::ReadDirection::Forward, 1))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    let err = client
        .read(read("bad name", None, v1::ReadDirection::Forward, 1))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
    publish(&mut client, "s", vec![event("1")]).await;
    let mut bad_direction = read("s", None, v1::ReadDirection::Forward, 1);
    bad_direction.direction = 7;
    let err = client.read(bad_direction).await.unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn pages_stop_at_the_byte_limit_but_always_hold_one_event() {
    let server = TestServer::start_with(|c| c.max_batch_bytes = 4096).await;
    let mut client = server.client().await;
    for i in 0..3 {
        let mut e = cloud_event(&format!("big-{i}"), "t", None);
        e.data = Some(riverlog::proto::cloudevent::cloud_event::Data::BinaryData(
            vec![0; 1800],
        ));
        publish(&mut client, "s", vec![e.into()]).await;
    }
    let page = client
        .read(read("s", None, v1::ReadDirection::Forward, 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seqs(&page), [1, 2]);
    assert!(!page.end_of_stream);
    assert_eq!(page.next_sequence, 3);

    let taken = client
        .take(v1::TakeRequest {
            stream: "s".into(),
            end: v1::TakeEnd::Oldest as i32,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(taken.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    let left: Vec<u64> = read_all(&mut client, "s")
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(left, [3], "exactly what was returned was removed");
}
