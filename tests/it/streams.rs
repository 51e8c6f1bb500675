//! CreateStream, GetStream, ListStreams, DeleteStream.

use riverlog::proto::v1;
use tonic::Code;

use crate::common::*;

fn create(stream: &str) -> v1::CreateStreamRequest {
    v1::CreateStreamRequest {
        stream: stream.to_owned(),
        retention: None,
    }
}

#[tokio::test]
async fn create_then_get_describes_an_empty_stream_with_its_retention() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let created = client
        .create_stream(v1::CreateStreamRequest {
            stream: "orders:eu".into(),
            retention: Some(v1::Retention {
                max_events: 10,
                max_age: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ttl: None,
                policy: v1::RetentionPolicy::Interest.into(),
                dedup_window: Some(prost_types::Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(created.stream, "orders:eu");
    assert_eq!(created.event_count, 0);
    assert_eq!(created.last_sequence, 0);

    let info = client
        .get_stream(v1::GetStreamRequest {
            stream: "orders:eu".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.stream, "orders:eu");
    assert_eq!(
        (info.event_count, info.first_sequence, info.last_sequence),
        (0, 0, 0)
    );
    let retention = info.retention.unwrap();
    assert_eq!(retention.max_events, 10);
    assert_eq!(retention.max_age.unwrap().seconds, 60);
    assert!(retention.ttl.is_none());
    assert_eq!(retention.policy(), v1::RetentionPolicy::Interest);
    assert_eq!(retention.dedup_window.unwrap().seconds, 3600);
    assert!(info.created_at.is_some());
    assert!(info.last_appended_at.is_none());
}

#[tokio::test]
async fn get_stream_counts_events_and_sequences() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    let info = client
        .get_stream(v1::GetStreamRequest { stream: "s".into() })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.event_count, 5);
    assert_eq!(info.first_sequence, 1);
    assert_eq!(info.last_sequence, 5);
    assert_eq!(info.last_position, 5);
    assert!(info.last_appended_at.is_some());
}

#[tokio::test]
async fn creating_an_existing_stream_is_already_exists() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.create_stream(create("s")).await.unwrap();
    let err = client.create_stream(create("s")).await.unwrap_err();
    assert_error(&err, Code::AlreadyExists, "STREAM_ALREADY_EXISTS");
}

#[tokio::test]
async fn unknown_streams_are_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
    let err = client
        .delete_stream(v1::DeleteStreamRequest {
            stream: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");
}

#[tokio::test]
async fn invalid_names_are_rejected_everywhere() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for bad in ["", "has space", "star*", &"x".repeat(257), "ümlaut"] {
        let err = client.create_stream(create(bad)).await.unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
        let err = client
            .get_stream(v1::GetStreamRequest { stream: bad.into() })
            .await
            .unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
        let err = client
            .publish(publish_request(bad, vec![event("1")]))
            .await
            .unwrap_err();
        assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");
    }
    // 256 characters of the whole alphabet are fine.
    let longest: String = "aZ09_-.:/".chars().cycle().take(256).collect();
    client.create_stream(create(&longest)).await.unwrap();
}

#[tokio::test]
async fn negative_retention_durations_are_invalid() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client
        .create_stream(v1::CreateStreamRequest {
            stream: "s".into(),
            retention: Some(v1::Retention {
                max_events: 0,
                max_age: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn list_streams_filters_by_pattern_and_pages_in_name_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for name in [
        "orders:eu:1",
        "orders:us:2",
        "orders:eu:3",
        "billing:1",
        "orders",
    ] {
        client.create_stream(create(name)).await.unwrap();
    }
    let list = |pattern: &str, page_size: u32, page_token: String| v1::ListStreamsRequest {
        pattern: pattern.into(),
        page_size,
        page_token,
    };

    let all = client
        .list_streams(list("", 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = all.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing:1",
            "orders",
            "orders:eu:1",
            "orders:eu:3",
            "orders:us:2"
        ]
    );
    assert!(all.next_page_token.is_empty());

    let eu = client
        .list_streams(list("orders:eu:*", 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = eu.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(names, ["orders:eu:1", "orders:eu:3"]);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_streams(list("orders*", 2, token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.streams.len() <= 2);
        seen.extend(page.streams.into_iter().map(|s| s.stream));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        ["orders", "orders:eu:1", "orders:eu:3", "orders:us:2"]
    );

    let err = client
        .list_streams(list("bad pattern", 0, String::new()))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PATTERN");
    let err = client
        .list_streams(list("", 0, "not a token!".into()))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn delete_removes_the_stream_and_its_events_and_the_name_can_be_reused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "gone", events("e", 0..3)).await;
    let deleted = client
        .delete_stream(v1::DeleteStreamRequest {
            stream: "gone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.events_deleted, 3);
    let err = client
        .read(v1::ReadRequest {
            stream: "gone".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");

    // A new stream of the same name starts over at sequence 1, and ids of
    // the deleted stream are not duplicates any more.
    let positions = publish(&mut client, "gone", vec![event("e-0")]).await;
    assert_eq!(positions[0].sequence, 1);
    assert!(!positions[0].duplicate);
    assert!(positions[0].position > 3, "positions are never reused");
}
