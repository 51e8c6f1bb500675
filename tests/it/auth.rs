//! Bearer tokens: who may call what, on which streams.

use riverlog::auth::{TokenConfig, token_digest};
use riverlog::proto::v1::{
    self, checkpoints_client::CheckpointsClient, subscribe_response::Message,
};
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::common::*;

fn token(name: &str, publish: &[&str], subscribe: &[&str], admin: bool) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: token_digest(&format!("{name}-secret")),
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        admin,
        metrics: false,
    }
}

/// admin may do everything; ingest publishes and reads orders; reader only
/// reads orders; writer only publishes orders.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.tokens = vec![
            token("admin", &["*"], &["*"], true),
            token("ingest", &["orders:*"], &["orders:*"], false),
            token("reader", &[], &["orders:*"], false),
            token("writer", &["orders:*"], &[], false),
            token("orders-admin", &["orders:*"], &["orders:*"], true),
        ];
    })
    .await
}

fn as_token<T>(name: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {name}-secret").parse().expect("ascii");
    request.metadata_mut().insert("authorization", value);
    request
}

#[track_caller]
fn assert_denied(status: &tonic::Status, permission: &str) {
    assert_error(status, Code::PermissionDenied, "PERMISSION_DENIED");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(
        info.metadata.get("permission").map(String::as_str),
        Some(permission)
    );
}

fn read(stream: &str) -> v1::ReadRequest {
    v1::ReadRequest {
        stream: stream.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn calls_without_a_known_token_are_unauthenticated_but_health_and_reflection_stay_open() {
    let server = server().await;
    let mut client = server.client().await;

    let missing = client
        .publish(publish_request("orders:1", vec![event("a")]))
        .await
        .unwrap_err();
    assert_error(&missing, Code::Unauthenticated, "UNAUTHENTICATED");

    let unknown = client
        .publish(as_token(
            "nobody",
            publish_request("orders:1", vec![event("a")]),
        ))
        .await
        .unwrap_err();
    assert_error(&unknown, Code::Unauthenticated, "UNAUTHENTICATED");

    let mut basic = Request::new(read("orders:1"));
    basic
        .metadata_mut()
        .insert("authorization", "Basic YWRtaW46YWRtaW4=".parse().unwrap());
    let basic = client.read(basic).await.unwrap_err();
    assert_error(&basic, Code::Unauthenticated, "UNAUTHENTICATED");

    let mut groups = server.groups().await;
    let err = groups
        .list_groups(v1::ListGroupsRequest {
            stream: "orders:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut checkpoints = CheckpointsClient::new(server.channel().await);
    let err = checkpoints
        .list_checkpoints(v1::ListCheckpointsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no token")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection needs no token")
        .into_inner();
    assert!(within(answers.message()).await.unwrap().is_some());
}

#[tokio::test]
async fn each_token_may_do_what_its_permissions_say_on_the_streams_they_name() {
    let server = server().await;
    let mut client = server.client().await;
    let publish =
        |who: &str, stream: &str, id: &str| as_token(who, publish_request(stream, vec![event(id)]));

    // Publishing.
    client
        .publish(publish("ingest", "orders:1", "o1"))
        .await
        .expect("ingest publishes orders");
    client
        .publish(publish("writer", "orders:1", "o2"))
        .await
        .expect("writer publishes orders");
    client
        .publish(publish("admin", "billing:1", "b1"))
        .await
        .expect("admin publishes anywhere");
    let err = client
        .publish(publish("ingest", "billing:1", "x"))
        .await
        .unwrap_err();
    assert_denied(&err, "publish");
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.metadata["token"], "ingest");
    assert_eq!(info.metadata["stream"], "billing:1");
    let err = client
        .publish(publish("reader", "orders:1", "x"))
        .await
        .unwrap_err();
    assert_denied(&err, "publish");

    // Reading.
    let page = client
        .read(as_token("reader", read("orders:1")))
        .await
        .expect("reader reads");
    assert_eq!(page.into_inner().events.len(), 2);
    let err = client
        .read(as_token("reader", read("billing:1")))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    let err = client
        .read(as_token("writer", read("orders:1")))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    let get = |who: &str, s: &str| as_token(who, v1::GetStreamRequest { stream: s.into() });
    client
        .get_stream(get("reader", "orders:1"))
        .await
        .expect("reader describes orders");
    assert_denied(
        &client
            .get_stream(get("reader", "billing:1"))
            .await
            .unwrap_err(),
        "subscribe",
    );

    // A bad name is INVALID_ARGUMENT for everyone, not a permission error.
    let err = client
        .read(as_token("reader", read("bad name")))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_STREAM_NAME");

    // Take needs both publish and subscribe.
    let take = |who: &str| {
        as_token(
            who,
            v1::TakeRequest {
                stream: "orders:1".into(),
                end: 0,
                limit: 1,
            },
        )
    };
    assert_denied(&client.take(take("reader")).await.unwrap_err(), "publish");
    assert_denied(&client.take(take("writer")).await.unwrap_err(), "subscribe");
    assert_eq!(
        client
            .take(take("ingest"))
            .await
            .expect("ingest takes")
            .into_inner()
            .events
            .len(),
        1
    );

    // Administration.
    let create = |who: &str| {
        as_token(
            who,
            v1::CreateStreamRequest {
                stream: "orders:new".into(),
                retention: None,
            },
        )
    };
    assert_denied(
        &client.create_stream(create("ingest")).await.unwrap_err(),
        "admin",
    );
    client
        .create_stream(create("admin"))
        .await
        .expect("admin creates");
    let trim = |who: &str| {
        as_token(
            who,
            v1::TrimRequest {
                stream: "orders:1".into(),
                until: Some(v1::trim_request::Until::MaxEvents(0)),
            },
        )
    };
    assert_denied(&client.trim(trim("ingest")).await.unwrap_err(), "admin");
    client.trim(trim("admin")).await.expect("admin trims");
    let delete = |who: &str| {
        as_token(
            who,
            v1::DeleteStreamRequest {
                stream: "orders:new".into(),
            },
        )
    };
    assert_denied(
        &client.delete_stream(delete("ingest")).await.unwrap_err(),
        "admin",
    );
    client
        .delete_stream(delete("admin"))
        .await
        .expect("admin deletes");
}

#[tokio::test]
async fn listings_and_pattern_subscriptions_only_show_readable_streams() {
    let server = server().await;
    let mut client = server.client().await;
    for (stream, id) in [("orders:1", "o1"), ("billing:1", "b1"), ("orders:2", "o2")] {
        client
            .publish(as_token("admin", publish_request(stream, vec![event(id)])))
            .await
            .expect("admin publishes");
    }

    let listed = client
        .list_streams(as_token("reader", v1::ListStreamsRequest::default()))
        .await
        .expect("anyone may list")
        .into_inner()
        .streams;
    let names: Vec<_> = listed.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(names, ["orders:1", "orders:2"]);
    // Page by page, neither the pages nor their tokens name other streams.
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = client
            .list_streams(as_token(
                "reader",
                v1::ListStreamsRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("paged")
            .into_inner();
        assert!(!page.next_page_token.starts_with("billing"), "{page:?}");
        paged.extend(page.streams.into_iter().map(|s| s.stream));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, ["orders:1", "orders:2"]);
    let err = client
        .list_streams(as_token("writer", v1::ListStreamsRequest::default()))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");

    // A subscription to everything gets only what the token may read, in
    // history and live alike.
    let mut sub = client
        .subscribe(as_token("reader", subscribe_request(&["*"], None)))
        .await
        .expect("a pattern subscription is allowed")
        .into_inner();
    let history = next_events(&mut sub, 2).await;
    assert_eq!(
        history.iter().map(event_id).collect::<Vec<_>>(),
        ["o1", "o2"]
    );
    assert!(matches!(next_message(&mut sub).await, Message::CaughtUp(_)));
    for (stream, id) in [("billing:1", "b2"), ("orders:3", "o3")] {
        client
            .publish(as_token("admin", publish_request(stream, vec![event(id)])))
            .await
            .expect("admin publishes");
    }
    let live = next_events(&mut sub, 1).await;
    assert_eq!(
        event_id(&live[0]),
        "o3",
        "billing:1 must never reach the reader"
    );
    assert_eq!(live[0].stream, "orders:3");

    // Naming an unreadable stream outright is refused.
    let err = client
        .subscribe(as_token(
            "reader",
            subscribe_request(&["orders:1", "billing:1"], None),
        ))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    // Nor is a pattern no readable stream can match.
    let err = client
        .subscribe(as_token("reader", subscribe_request(&["billing:*"], None)))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    // A token that may read nothing may not subscribe to patterns either.
    let err = client
        .subscribe(as_token("writer", subscribe_request(&["orders:*"], None)))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
}

#[tokio::test]
async fn consumer_groups_and_checkpoints_follow_the_same_rules() {
    let server = server().await;
    let mut client = server.client().await;
    client
        .publish(as_token(
            "admin",
            publish_request("orders:1", vec![event("o1")]),
        ))
        .await
        .unwrap();
    client
        .publish(as_token(
            "admin",
            publish_request("billing:1", vec![event("b1")]),
        ))
        .await
        .unwrap();
    let mut groups = server.groups().await;
    let create = |who: &str| {
        as_token(
            who,
            v1::CreateGroupRequest {
                stream: "orders:1".into(),
                group: "g".into(),
                ..Default::default()
            },
        )
    };
    assert_denied(
        &groups.create_group(create("ingest")).await.unwrap_err(),
        "admin",
    );
    // A group writes dead letters: its creator must be allowed to.
    let mut elsewhere = create("orders-admin");
    elsewhere.get_mut().dead_letter_stream = "billing:dlq".into();
    let err = groups.create_group(elsewhere).await.unwrap_err();
    assert_denied(&err, "publish");
    assert_eq!(
        err.get_details_error_info().unwrap().metadata["stream"],
        "billing:dlq"
    );
    let mut own = create("orders-admin");
    own.get_mut().group = "g0".into();
    groups
        .create_group(own)
        .await
        .expect("default dead letters go to orders:1:dlq");
    groups
        .create_group(create("admin"))
        .await
        .expect("admin creates groups");

    let fetched = groups
        .fetch(as_token(
            "reader",
            fetch_request("orders:1", "g", "c", 10, 0),
        ))
        .await
        .expect("reader consumes orders")
        .into_inner()
        .deliveries;
    assert_eq!(fetched.len(), 1);
    let err = groups
        .fetch(as_token(
            "writer",
            fetch_request("orders:1", "g", "c", 10, 0),
        ))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    let ack = |who: &str| {
        as_token(
            who,
            v1::AckRequest {
                stream: "orders:1".into(),
                group: "g".into(),
                sequences: vec![1],
            },
        )
    };
    assert_denied(&groups.ack(ack("writer")).await.unwrap_err(), "subscribe");
    assert_eq!(
        groups
            .ack(ack("reader"))
            .await
            .expect("reader acks")
            .into_inner()
            .acked,
        1
    );
    let err = groups
        .consume(as_token(
            "writer",
            v1::ConsumeRequest {
                stream: "orders:1".into(),
                group: "g".into(),
                consumer: "c".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    let delete = |who: &str| {
        as_token(
            who,
            v1::DeleteGroupRequest {
                stream: "orders:1".into(),
                group: "g".into(),
            },
        )
    };
    assert_denied(
        &groups.delete_group(delete("reader")).await.unwrap_err(),
        "admin",
    );

    let mut checkpoints = CheckpointsClient::new(server.channel().await);
    let commit = |who: &str, name: &str, stream: &str| {
        as_token(
            who,
            v1::CommitCheckpointRequest {
                name: name.into(),
                stream: stream.into(),
                at: Some(v1::commit_checkpoint_request::At::Sequence(1)),
            },
        )
    };
    let err = checkpoints
        .commit_checkpoint(commit("reader", "cp", "billing:1"))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    checkpoints
        .commit_checkpoint(commit("reader", "cp", "orders:1"))
        .await
        .expect("own stream");
    checkpoints
        .commit_checkpoint(commit("admin", "cp", "billing:1"))
        .await
        .expect("admin");
    let global = as_token(
        "reader",
        v1::CommitCheckpointRequest {
            name: "all".into(),
            stream: String::new(),
            at: Some(v1::commit_checkpoint_request::At::Position(1)),
        },
    );
    checkpoints
        .commit_checkpoint(global)
        .await
        .expect("reader keeps global checkpoints");
    let global = as_token(
        "writer",
        v1::CommitCheckpointRequest {
            name: "all".into(),
            stream: String::new(),
            at: Some(v1::commit_checkpoint_request::At::Position(1)),
        },
    );
    assert_denied(
        &checkpoints.commit_checkpoint(global).await.unwrap_err(),
        "subscribe",
    );

    let listed = checkpoints
        .list_checkpoints(as_token("reader", v1::ListCheckpointsRequest::default()))
        .await
        .expect("reader lists")
        .into_inner()
        .checkpoints;
    let seen: Vec<_> = listed
        .iter()
        .map(|c| (c.name.as_str(), c.stream.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("all", ""), ("cp", "orders:1")],
        "billing's checkpoint stays hidden"
    );
}

/// Tenants: `t1` and `t2` read and write orders; `leaker` is an admin that
/// may read and write only its own `secret2:*`; `scraper` only scrapes.
async fn tenants() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.tokens = vec![
            token("admin", &["*"], &["*"], true),
            token("t1", &["orders:*"], &["orders:*"], false),
            token("t2", &["orders:*"], &["orders:*"], false),
            token("leaker", &["secret2:*"], &["secret2:*"], true),
            TokenConfig {
                metrics: true,
                ..token("scraper", &[], &[], false)
            },
        ];
    })
    .await
}

#[tokio::test]
async fn a_token_cannot_send_a_stream_it_cannot_read_to_a_dead_letter_stream_it_can() {
    let server = tenants().await;
    let mut client = server.client().await;
    client
        .publish(as_token(
            "admin",
            publish_request("orders:eu", vec![event("order-1")]),
        ))
        .await
        .unwrap();
    let mut groups = server.groups().await;
    // The attack: take over the group with a dead-letter stream the
    // attacker reads, one delivery allowed, then let the delivery time out.
    let err = groups
        .create_group(as_token(
            "leaker",
            v1::CreateGroupRequest {
                stream: "orders:eu".into(),
                group: "billing".into(),
                dead_letter_stream: "secret2:leak".into(),
                max_deliveries: 1,
                ack_timeout: Some(millis(1000)),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    assert_eq!(
        err.get_details_error_info().unwrap().metadata["stream"],
        "orders:eu"
    );
    let err = client
        .read(as_token("leaker", read("secret2:leak")))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "STREAM_NOT_FOUND");

    // Its own streams: allowed, dead letters included.
    client
        .publish(as_token(
            "leaker",
            publish_request("secret2:jobs", vec![event("job-1")]),
        ))
        .await
        .unwrap();
    groups
        .create_group(as_token(
            "leaker",
            v1::CreateGroupRequest {
                stream: "secret2:jobs".into(),
                group: "workers".into(),
                dead_letter_stream: "secret2:leak".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("a group on a stream it reads, dead-lettering where it publishes");
}

#[tokio::test]
async fn checkpoints_belong_to_the_token_that_commits_them() {
    let server = tenants().await;
    let mut client = server.client().await;
    client
        .publish(as_token(
            "t1",
            publish_request("orders:1", events("o", 0..5)),
        ))
        .await
        .unwrap();
    let mut checkpoints = CheckpointsClient::new(server.channel().await);
    let commit = |who: &str, stream: &str, at: v1::commit_checkpoint_request::At| {
        as_token(
            who,
            v1::CommitCheckpointRequest {
                name: "resume".into(),
                stream: stream.into(),
                at: Some(at),
            },
        )
    };
    use v1::commit_checkpoint_request::At;
    checkpoints
        .commit_checkpoint(commit("t1", "", At::Position(4)))
        .await
        .unwrap();
    checkpoints
        .commit_checkpoint(commit("t1", "orders:1", At::Sequence(3)))
        .await
        .unwrap();

    // t2 reads the same streams, but neither sees nor moves t1's.
    let listed = checkpoints
        .list_checkpoints(as_token("t2", v1::ListCheckpointsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .checkpoints;
    assert!(listed.is_empty(), "{listed:?}");
    for stream in ["", "orders:1"] {
        let err = checkpoints
            .get_checkpoint(as_token(
                "t2",
                v1::GetCheckpointRequest {
                    name: "resume".into(),
                    stream: stream.into(),
                },
            ))
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "CHECKPOINT_NOT_FOUND");
    }
    checkpoints
        .commit_checkpoint(commit("t2", "", At::Position(1)))
        .await
        .expect("t2 commits its own checkpoint of that name");

    let own = checkpoints
        .get_checkpoint(as_token(
            "t1",
            v1::GetCheckpointRequest {
                name: "resume".into(),
                stream: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert_eq!(own.position, 4, "t2's commit did not move t1's checkpoint");
    let listed: Vec<_> = checkpoints
        .list_checkpoints(as_token("t1", v1::ListCheckpointsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .checkpoints
        .into_iter()
        .map(|c| (c.stream, c.position))
        .collect();
    assert_eq!(listed, [(String::new(), 4), ("orders:1".to_owned(), 3)]);

    // A subscription resuming from "resume" resumes from the caller's own.
    for (who, first) in [("t1", "o-4"), ("t2", "o-1")] {
        let mut sub = client
            .subscribe(as_token(
                who,
                v1::SubscribeRequest {
                    streams: vec!["orders:*".into()],
                    start: Some(v1::StartPosition {
                        start: Some(v1::start_position::Start::Checkpoint("resume".into())),
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let got = next_events(&mut sub, 1).await;
        assert_eq!(event_id(&got[0]), first, "{who}");
    }
}

async fn get_metrics(addr: std::net::SocketAddr, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(format!("{token}-secret"));
    }
    let response = within(request.send()).await.expect("HTTP answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn with_tokens_metrics_need_the_metrics_permission() {
    let server = tenants().await;
    let (status, _) = get_metrics(server.http_addr, None).await;
    assert_eq!(status, 401);
    let (status, body) = get_metrics(server.http_addr, Some("admin")).await;
    assert_eq!(status, 403, "admin alone does not scrape: {body}");
    assert!(body.contains("PERMISSION_DENIED"), "{body}");
    let (status, body) = get_metrics(server.http_addr, Some("scraper")).await;
    assert_eq!(status, 200);
    assert!(body.contains("riverlog_"), "{body}");
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_their_own_address_only() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![token("admin", &["*"], &["*"], true)];
        c.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let metrics_addr = server.metrics_addr.expect("metrics_listen bound");
    let (status, body) = get_metrics(metrics_addr, None).await;
    assert_eq!(status, 200, "no token on the metrics address");
    assert!(body.contains("riverlog_"), "{body}");
    let (status, _) = get_metrics(server.http_addr, Some("admin")).await;
    assert_eq!(status, 404, "not beside the API any more");
}

#[tokio::test]
async fn a_refused_publish_is_denied_before_its_events_are_looked_at_and_spends_no_allowance() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![token("ingest", &["orders:*"], &["orders:*"], false)];
        // A burst of 2, then one event per second: the test cannot outrun it.
        c.publish_rate_limit = 1;
        c.publish_burst = 2;
    })
    .await;
    let mut client = server.client().await;
    let refused = |events| as_token("ingest", publish_request("billing:1", events));
    for _ in 0..3 {
        let err = client.publish(refused(vec![event("b")])).await.unwrap_err();
        assert_denied(&err, "publish");
    }
    // Over the burst, or not a CloudEvent: still refused first.
    let err = client
        .publish(refused(events("b", 0..3)))
        .await
        .unwrap_err();
    assert_denied(&err, "publish");
    let err = client
        .publish(refused(vec![riverlog::proto::CloudEvent::default().into()]))
        .await
        .unwrap_err();
    assert_denied(&err, "publish");
    client
        .publish(as_token(
            "ingest",
            publish_request("orders:1", events("o", 0..2)),
        ))
        .await
        .expect("the refused publishes spent none of the burst");
}

#[tokio::test]
async fn a_malformed_name_of_any_kind_is_invalid_argument_whoever_asks() {
    let server = server().await;
    let mut groups = server.groups().await;
    let err = groups
        .create_group(as_token(
            "reader",
            v1::CreateGroupRequest {
                stream: "orders:1".into(),
                group: "bad group".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_GROUP_NAME");
    let err = groups
        .fetch(as_token(
            "writer",
            fetch_request("orders:1", "g", "bad consumer", 1, 0),
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_CONSUMER_NAME");
    let mut checkpoints = CheckpointsClient::new(server.channel().await);
    let err = checkpoints
        .get_checkpoint(as_token(
            "writer",
            v1::GetCheckpointRequest {
                name: "bad name".into(),
                stream: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_CHECKPOINT_NAME");
    let mut client = server.client().await;
    let err = client
        .subscribe(as_token(
            "writer",
            subscribe_request(&["bad pattern*"], None),
        ))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PATTERN");
}

/// Subscription slots are admission for callers who may subscribe: one
/// refused by its token gets PERMISSION_DENIED even when every slot is
/// taken, and never takes a slot from those who may.
#[tokio::test]
async fn a_refused_streaming_call_is_denied_even_when_every_slot_is_taken() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![
            token("reader", &[], &["orders:*"], false),
            token("writer", &["orders:*"], &[], false),
        ];
        c.max_subscriptions = 1;
    })
    .await;
    let mut client = server.client().await;
    let mut held = client
        .subscribe(as_token("reader", subscribe_request(&["orders:a"], None)))
        .await
        .expect("the reader takes the one slot")
        .into_inner();
    within(held.message())
        .await
        .expect("the subscription is live");

    let refused = client
        .subscribe(as_token("writer", subscribe_request(&["orders:a"], None)))
        .await
        .unwrap_err();
    assert_denied(&refused, "subscribe");
    let refused = server
        .groups()
        .await
        .consume(as_token(
            "writer",
            v1::ConsumeRequest {
                stream: "orders:a".into(),
                group: "g".into(),
                consumer: "c".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_denied(&refused, "subscribe");
    // Still one slot, still taken: a caller who may subscribe is refused
    // for the limit.
    let full = client
        .subscribe(as_token("reader", subscribe_request(&["orders:b"], None)))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted);
}

/// The group and checkpoint calls not covered above, each refused for the
/// token that lacks what it needs, on a group that exists.
#[tokio::test]
async fn every_group_and_checkpoint_call_checks_its_permission() {
    let server = server().await;
    let mut client = server.client().await;
    client
        .publish(as_token(
            "admin",
            publish_request("orders:1", vec![event("e")]),
        ))
        .await
        .unwrap();
    let mut groups = server.groups().await;
    groups
        .create_group(as_token(
            "admin",
            v1::CreateGroupRequest {
                stream: "orders:1".into(),
                group: "g".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let (stream, group) = (String::from("orders:1"), String::from("g"));
    let get = v1::GetGroupRequest {
        stream: stream.clone(),
        group: group.clone(),
    };
    assert_denied(
        &groups.get_group(as_token("writer", get)).await.unwrap_err(),
        "subscribe",
    );
    let list = v1::ListGroupsRequest {
        stream: stream.clone(),
    };
    assert_denied(
        &groups
            .list_groups(as_token("writer", list))
            .await
            .unwrap_err(),
        "subscribe",
    );
    let nack = v1::NackRequest {
        stream: stream.clone(),
        group: group.clone(),
        sequences: vec![1],
        ..Default::default()
    };
    assert_denied(
        &groups.nack(as_token("writer", nack)).await.unwrap_err(),
        "subscribe",
    );
    let pending = v1::ListPendingRequest {
        stream: stream.clone(),
        group: group.clone(),
        ..Default::default()
    };
    let err = groups
        .list_pending(as_token("writer", pending))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
    let claim = v1::ClaimRequest {
        stream: stream.clone(),
        group: group.clone(),
        consumer: "c".into(),
        sequences: vec![1],
        ..Default::default()
    };
    assert_denied(
        &groups.claim(as_token("writer", claim)).await.unwrap_err(),
        "subscribe",
    );
    let delete = v1::DeleteConsumerRequest {
        stream: stream.clone(),
        group: group.clone(),
        consumer: "c".into(),
    };
    let err = groups
        .delete_consumer(as_token("reader", delete))
        .await
        .unwrap_err();
    assert_denied(&err, "admin");
    // Seeking decides which events go out again: admin and subscribe.
    let seek = || v1::SeekGroupRequest {
        stream: stream.clone(),
        group: group.clone(),
        start: Some(v1::GroupStart {
            start: Some(v1::group_start::Start::Latest(())),
        }),
    };
    let err = groups
        .seek_group(as_token("reader", seek()))
        .await
        .unwrap_err();
    assert_denied(&err, "admin");
    let err = groups
        .seek_group(as_token("writer", seek()))
        .await
        .unwrap_err();
    assert_denied(&err, "admin");
    groups
        .seek_group(as_token("orders-admin", seek()))
        .await
        .expect("an admin who reads the stream seeks");
    // Redrive also takes the copies off the dead-letter stream.
    let redrive = |dead_letters_of: &str| v1::RedriveRequest {
        stream: dead_letters_of.into(),
        group: group.clone(),
        selection: Some(v1::redrive_request::Selection::All(())),
    };
    let err = groups
        .redrive(as_token("reader", redrive(&stream)))
        .await
        .unwrap_err();
    assert_denied(&err, "admin");
    groups
        .redrive(as_token("orders-admin", redrive(&stream)))
        .await
        .expect("its dead letters go to orders:1:dlq, which it may take from");

    let mut checkpoints = CheckpointsClient::new(server.channel().await);
    let get = v1::GetCheckpointRequest {
        name: "cp".into(),
        stream: stream.clone(),
    };
    let err = checkpoints
        .get_checkpoint(as_token("writer", get))
        .await
        .unwrap_err();
    assert_denied(&err, "subscribe");
}

/// The HTTP side asks the same domain: each endpoint refuses the token that
/// lacks what it needs with 403 problem+json `PERMISSION_DENIED`.
#[tokio::test]
async fn every_http_endpoint_checks_its_permission() {
    let server = server().await;
    let api = server.api();
    let as_token = |who: &str, method: reqwest::Method, path: &str| {
        api.request(method, path)
            .header("authorization", format!("Bearer {who}-secret"))
    };
    let created = as_token("admin", reqwest::Method::POST, "/streams/orders:1/events")
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"e","source":"/t","type":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    use reqwest::Method;
    for (who, method, path, body, permission) in [
        (
            "writer",
            Method::GET,
            "/streams/orders:1",
            None,
            "subscribe",
        ),
        (
            "writer",
            Method::GET,
            "/streams/orders:1/events",
            None,
            "subscribe",
        ),
        (
            "writer",
            Method::GET,
            "/streams/orders:1/groups",
            None,
            "subscribe",
        ),
        (
            "writer",
            Method::GET,
            "/streams/orders:1/groups/g/pending",
            None,
            "subscribe",
        ),
        (
            "writer",
            Method::POST,
            "/streams/orders:1/groups/g/ack",
            Some(r#"{"sequences":[1]}"#),
            "subscribe",
        ),
        (
            "writer",
            Method::GET,
            "/groups/g/consume?stream=orders:1&consumer=c",
            None,
            "subscribe",
        ),
        (
            "writer",
            Method::GET,
            "/subscribe?pattern=orders:*",
            None,
            "subscribe",
        ),
        (
            "reader",
            Method::POST,
            "/streams",
            Some(r#"{"stream":"orders:2"}"#),
            "admin",
        ),
        (
            "reader",
            Method::POST,
            "/streams/orders:1/trim",
            Some(r#"{"max_events":0}"#),
            "admin",
        ),
        ("reader", Method::DELETE, "/streams/orders:1", None, "admin"),
        (
            "reader",
            Method::POST,
            "/streams/orders:1/groups/g/seek",
            Some(r#"{"to":"latest"}"#),
            "admin",
        ),
        (
            "reader",
            Method::POST,
            "/streams/orders:1/groups/g/redrive",
            Some(r#"{"all":true}"#),
            "admin",
        ),
    ] {
        let mut request = as_token(who, method.clone(), path);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{who} {method} {path}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            problem["reason"], "PERMISSION_DENIED",
            "{who} {method} {path}"
        );
        assert_eq!(
            problem["metadata"]["permission"], permission,
            "{who} {method} {path}"
        );
    }
}
