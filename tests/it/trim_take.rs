//! Trim and Take.

use std::collections::HashSet;

use riverlog::proto::v1::{self, trim_request::Until};
use tonic::Code;

use crate::common::*;

fn trim(stream: &str, until: Option<Until>) -> v1::TrimRequest {
    v1::TrimRequest {
        stream: stream.into(),
        until,
    }
}

fn take(stream: &str, end: v1::TakeEnd, limit: u32) -> v1::TakeRequest {
    v1::TakeRequest {
        stream: stream.into(),
        end: end as i32,
        limit,
    }
}

#[tokio::test]
async fn trim_by_count_sequence_and_time() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("a", 0..10)).await;

    let removed = client
        .trim(trim("s", Some(Until::MaxEvents(7))))
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 3);
    let i = stream_info(&mut client, "s").await.unwrap();
    assert_eq!(
        (i.event_count, i.first_sequence, i.last_sequence),
        (7, 4, 10)
    );

    let removed = client
        .trim(trim("s", Some(Until::BeforeSequence(6))))
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 2);
    assert_eq!(
        read_all(&mut client, "s").await.first().unwrap().sequence,
        6
    );

    let later = publish(&mut client, "s", events("b", 0..2)).await;
    let removed = client
        .trim(trim(
            "s",
            Some(Until::BeforeTime(later[0].recorded_at.unwrap())),
        ))
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 5);
    let left: Vec<u64> = read_all(&mut client, "s")
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(left, [11, 12]);

    // Trimming more than exists is fine; sequences are never reused.
    let removed = client
        .trim(trim("s", Some(Until::MaxEvents(0))))
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert_eq!(removed, 2);
    let i = stream_info(&mut client, "s").await.unwrap();
    assert_eq!(
        (i.event_count, i.first_sequence, i.last_sequence),
        (0, 0, 12)
    );
    assert_eq!(
        publish(&mut client, "s", vec![event("c")]).await[0].sequence,
        13
    );
}

#[tokio::test]
async fn trim_errors() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .trim(trim("missing", Some(Until::MaxEvents(1))))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    publish(&mut client, "s", vec![event("1")]).await;
    let err = client.trim(trim("s", None)).await.unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let err = client
        .trim(trim("s s", Some(Until::MaxEvents(1))))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
}

#[tokio::test]
async fn take_works_as_a_queue_and_as_a_stack() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "q", events("e", 0..6)).await;

    let one = client
        .take(take("q", v1::TakeEnd::Unspecified, 0))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(one.iter().map(event_id).collect::<Vec<_>>(), ["e-0"]);
    let oldest = client
        .take(take("q", v1::TakeEnd::Oldest, 2))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        oldest.iter().map(event_id).collect::<Vec<_>>(),
        ["e-1", "e-2"]
    );
    let newest = client
        .take(take("q", v1::TakeEnd::Newest, 2))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        newest.iter().map(event_id).collect::<Vec<_>>(),
        ["e-5", "e-4"]
    );

    let left: Vec<_> = read_all(&mut client, "q")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(left, ["e-3"]);
    assert_eq!(stream_info(&mut client, "q").await.unwrap().event_count, 1);

    // Taken sequences are not handed out again.
    assert_eq!(
        publish(&mut client, "q", vec![event("e-6")]).await[0].sequence,
        7
    );
    let rest = client
        .take(take("q", v1::TakeEnd::Oldest, 100))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(rest.len(), 2);
    let none = client
        .take(take("q", v1::TakeEnd::Oldest, 100))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(none.is_empty());
}

#[tokio::test]
async fn concurrent_takers_never_receive_the_same_event() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "work", events("job", 0..200)).await;
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let mut c = client.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = c
                        .take(take("work", v1::TakeEnd::Oldest, 7))
                        .await
                        .unwrap()
                        .into_inner()
                        .events;
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.iter().map(event_id));
                }
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in takers {
        for id in t.await.unwrap() {
            assert!(all.insert(id.clone()), "{id} taken twice");
        }
    }
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn take_errors() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .take(take("missing", v1::TakeEnd::Oldest, 1))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    publish(&mut client, "s", vec![event("1")]).await;
    let mut bad = take("s", v1::TakeEnd::Oldest, 1);
    bad.end = 9;
    let err = client.take(bad).await.unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}
