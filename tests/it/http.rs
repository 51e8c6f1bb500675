//! The HTTP side: the JSON API, CloudEvents over HTTP in its three modes,
//! problem+json errors, and Server-Sent Events with Last-Event-ID resume.

use futures::StreamExt;
use reqwest::Method;
use riverlog::auth::{TokenConfig, token_digest};
use serde_json::{Value, json};

use crate::common::*;

/// Asserts a problem+json response with this status and reason.
async fn assert_problem(response: reqwest::Response, status: u16, reason: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["status"], status);
    body
}

fn ce(id: &str, kind: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/shop", "type": kind, "data": {"id": id}})
}

#[tokio::test]
async fn publish_in_all_three_modes_and_read_back() {
    let server = TestServer::start().await;
    let api = server.api();
    let url = "/streams/orders/events";
    let structured = api.post_event(url, &ce("o1", "order.created")).await;
    assert_eq!(structured.status().as_u16(), 201);
    let body: Value = structured.json().await.unwrap();
    assert_eq!(body["positions"][0]["sequence"], 1);

    let batch = api
        .post_batch(
            url,
            &json!([ce("o2", "order.created"), ce("o3", "order.paid")]),
        )
        .await;
    let body: Value = batch.json().await.unwrap();
    assert_eq!(body["positions"][1]["sequence"], 3);

    let binary = api
        .request(Method::POST, &format!("{url}?expected_last_sequence=3"))
        .header("ce-id", "o4")
        .header("ce-source", "/shop")
        .header("ce-specversion", "1.0")
        .header("ce-type", "order.shipped")
        .header("ce-subject", "order%2F4")
        .header("ce-time", "2026-11-24T12:00:00.5+02:00")
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status().as_u16(), 201);

    // Retrying is idempotent.
    let again = api.post_event(url, &ce("o1", "order.created")).await;
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["positions"][0]["duplicate"], true);

    let page = api.get_json(&format!("{url}?limit=10")).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["data"]["id"], "o1");
    assert_eq!(events[0]["rlstream"], "orders");
    assert_eq!(events[0]["rlsequence"], 1);
    assert_eq!(events[3]["data_base64"], "AAEC/w==");
    assert_eq!(events[3]["subject"], "order/4");
    assert_eq!(events[3]["time"], "2026-11-24T10:00:00.500Z");
    assert_eq!(page["end_of_stream"], true);

    // Filters, direction and paging.
    let paid = api
        .get_json(&format!(
            "{url}?type=order.paid&type=order.shipped&direction=backward"
        ))
        .await;
    let ids: Vec<_> = paid["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [json!("o4"), json!("o3")]);

    // The gRPC side sees the same log.
    let mut client = server.client().await;
    assert_eq!(read_all(&mut client, "orders").await.len(), 4);
}

#[tokio::test]
async fn every_error_is_problem_json_with_the_grpc_reason() {
    let server = TestServer::start_with(|c| {
        c.max_event_size = 512;
        // Requests may then be about 1 MiB.
        c.max_batch_bytes = 4096;
    })
    .await;
    let api = server.api();
    let url = "/streams/orders/events";
    // One bad event: nothing of the batch is written.
    let bad = api
        .post_batch(
            url,
            &json!([ce("a", "t"), {"specversion": "1.0", "id": "b", "type": "t"}]),
        )
        .await;
    let body = assert_problem(bad, 400, "INVALID_EVENT").await;
    assert!(
        body["detail"].as_str().unwrap().contains("event 1"),
        "{body}"
    );
    let missing = api.get("/streams/orders").await;
    assert_problem(missing, 404, "STREAM_NOT_FOUND").await;

    let big = json!([{"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "data": "y".repeat(600)}]);
    assert_problem(api.post_batch(url, &big).await, 413, "EVENT_TOO_LARGE").await;

    api.post_batch(url, &json!([ce("a", "t")])).await;
    let conflict = api
        .post_event(&format!("{url}?expected_last_sequence=7"), &ce("b", "t"))
        .await;
    let body = assert_problem(conflict, 412, "WRONG_EXPECTED_SEQUENCE").await;
    assert_eq!(body["metadata"]["actual_last_sequence"], "1");
    let by_header = api
        .event_request(url, &ce("b", "t"))
        .header("riverlog-expected-last-sequence", "0")
        .send()
        .await
        .unwrap();
    assert_problem(by_header, 412, "WRONG_EXPECTED_SEQUENCE").await;

    let exists = api
        .post_json("/streams", &json!({"stream": "orders"}))
        .await;
    assert_problem(exists, 409, "STREAM_ALREADY_EXISTS").await;
    let bad_name = api.get("/streams/bad%20name").await;
    assert_problem(bad_name, 400, "INVALID_STREAM_NAME").await;
    let no_headers = api
        .request(Method::POST, url)
        .body("data")
        .send()
        .await
        .unwrap();
    let body = assert_problem(no_headers, 400, "INVALID_ARGUMENT").await;
    assert!(body["detail"].as_str().unwrap().contains("ce-id"), "{body}");
    let bad_query = api.get(&format!("{url}?direction=sideways")).await;
    assert_problem(bad_query, 400, "INVALID_ARGUMENT").await;
    let nowhere = api.get("/nowhere").await;
    assert_problem(nowhere, 404, "NOT_FOUND").await;
    // A header that does not percent-decode to UTF-8 is refused, not kept raw.
    let bad_header = api
        .request(Method::POST, url)
        .header("ce-id", "x")
        .header("ce-source", "/s")
        .header("ce-specversion", "1.0")
        .header("ce-type", "t")
        .header("ce-subject", "%FF")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_problem(bad_header, 400, "INVALID_ARGUMENT").await;
    // JSON bodies over the request limit get 413 like a publish does.
    let huge = format!("{{\"sequences\": [{}1]}}", "1,".repeat(600_000));
    let too_big = api
        .request(Method::POST, "/streams/orders/groups/g/ack")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(too_big, 413, "MESSAGE_TOO_LARGE").await;
}

#[tokio::test]
async fn streams_groups_pending_and_ack_over_rest() {
    let server = TestServer::start().await;
    let api = server.api();
    let created = api
        .post_json(
            "/streams",
            &json!({"stream": "jobs", "retention": {"max_events": 10, "ttl": "1h"}}),
        )
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let info: Value = created.json().await.unwrap();
    assert_eq!(info["retention"]["ttl_seconds"], 3600.0);

    let mut client = server.client().await;
    publish(&mut client, "jobs", events("j", 0..3)).await;
    let mut groups = server.groups().await;
    group("jobs", "workers").create(&mut groups).await;
    fetch(&mut groups, "jobs", "workers", "w1", 2, 0).await;

    let listed = api.get_json("/streams/jobs/groups").await;
    assert_eq!(listed["groups"][0]["pending"], 2);
    assert_eq!(listed["groups"][0]["lag"], 1);
    let pending = api.get_json("/streams/jobs/groups/workers/pending").await;
    assert_eq!(pending["count"], 2);
    assert_eq!(pending["entries"][0]["consumer"], "w1");
    let ack = json!({"sequences": [1, 2, 3]});
    let acked: Value = api
        .post_json("/streams/jobs/groups/workers/ack", &ack)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acked["acked"], 2);
    assert_eq!(acked["not_pending"], json!([3]));

    let trim = json!({"max_events": 1});
    let trimmed: Value = api
        .post_json("/streams/jobs/trim", &trim)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trimmed["removed"], 2);
    let deleted = api.delete("/streams/jobs").await;
    assert_eq!(deleted.status().as_u16(), 200);
    let listed = api.get_json("/streams").await;
    assert_eq!(listed["streams"], json!([]));
}

#[tokio::test]
async fn a_group_is_sought_over_rest() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("j", 0..3)).await;
    let mut groups = server.groups().await;
    group("jobs", "workers").create(&mut groups).await;
    fetch(&mut groups, "jobs", "workers", "w1", 2, 0).await;

    let sought = api
        .post_json(
            "/streams/jobs/groups/workers/seek",
            &json!({"to": "latest"}),
        )
        .await;
    assert_eq!(sought.status().as_u16(), 200);
    let sought: Value = sought.json().await.unwrap();
    assert_eq!(sought["pending_removed"], 2);
    assert_eq!(sought["group"]["lag"], 0);
    assert_eq!(sought["group"]["last_delivered_sequence"], 3);
    for to in ["earliest", "2", "2026-01-01T00:00:00Z"] {
        let sought: Value = api
            .post_json("/streams/jobs/groups/workers/seek", &json!({"to": to}))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            sought["group"]["last_delivered_sequence"].as_u64().unwrap() <= 1,
            "{to}: {sought}"
        );
    }

    let bad = api
        .post_json(
            "/streams/jobs/groups/workers/seek",
            &json!({"to": "yesterday"}),
        )
        .await;
    let problem = assert_problem(bad, 400, "INVALID_ARGUMENT").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("to"),
        "{problem}"
    );
    let typo = api
        .post_json(
            "/streams/jobs/groups/workers/seek",
            &json!({"too": "latest"}),
        )
        .await;
    assert_eq!(typo.status().as_u16(), 400);
    let beyond = api
        .post_json("/streams/jobs/groups/workers/seek", &json!({"to": "9"}))
        .await;
    assert_problem(beyond, 400, "START_BEYOND_HEAD").await;
    let missing = api
        .post_json("/streams/jobs/groups/nope/seek", &json!({"to": "latest"}))
        .await;
    assert_problem(missing, 404, "GROUP_NOT_FOUND").await;
}

#[tokio::test]
async fn dead_letters_are_redriven_over_rest() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("j", 0..3)).await;
    let mut groups = server.groups().await;
    group("jobs", "workers")
        .ack_timeout_ms(60_000)
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    fetch(&mut groups, "jobs", "workers", "w", 3, 0).await;
    groups
        .nack(riverlog::proto::v1::NackRequest {
            consumer: "w".into(),
            ..nack_request("jobs", "workers", vec![1, 2, 3])
        })
        .await
        .unwrap();
    let path = "/streams/jobs/groups/workers/redrive";

    let range: Value = api
        .post_json(
            path,
            &json!({"dead_letter_sequences": {"first": 2, "last": 2}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        range,
        json!({"redriven": 1, "origin_gone": [], "more": false})
    );
    let filtered: Value = api
        .post_json(
            path,
            &json!({"filter": {"types": ["nothing.of.this.type"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["redriven"], 0);
    let all: Value = api
        .post_json(path, &json!({"all": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["redriven"], 2);
    assert_eq!(group_info(&mut groups, "jobs", "workers").await.pending, 3);

    for body in [
        json!({}),
        json!({"all": true, "filter": {}}),
        json!({"all": false}),
        json!({"dead_letter_sequences": {"first": 0, "last": 2}}),
    ] {
        let refused = api.post_json(path, &body).await;
        assert_problem(refused, 400, "INVALID_ARGUMENT").await;
    }
    let typo = api.post_json(path, &json!({"everything": true})).await;
    assert_eq!(typo.status().as_u16(), 400);
    let missing = api
        .post_json("/streams/jobs/groups/nope/redrive", &json!({"all": true}))
        .await;
    assert_problem(missing, 404, "GROUP_NOT_FOUND").await;
}

/// One parsed SSE message.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<String>,
}

/// Reads SSE messages from a streaming response.
struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Sse::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        message.comment = Some(c.trim().to_owned());
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                        match field {
                            "id" => message.id = Some(value),
                            "event" => message.event = Some(value),
                            "data" => message.data = Some(value),
                            _ => {}
                        }
                    }
                }
                return message;
            }
            let chunk = within(self.body.next())
                .await
                .expect("stream open")
                .expect("chunk");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next message with data, as JSON.
    async fn next_event(&mut self) -> (u64, String, Value) {
        loop {
            let m = self.next().await;
            if let Some(data) = m.data {
                let id = m.id.expect("events carry an id").parse().unwrap();
                return (
                    id,
                    m.event.unwrap_or_default(),
                    serde_json::from_str(&data).unwrap(),
                );
            }
        }
    }
}

/// Opens an SSE stream at `path`, resuming after `last_event_id`.
async fn sse(api: &Api, path: &str, last_event_id: Option<u64>) -> SseReader {
    let mut request = api.request(Method::GET, path);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(response)
}

#[tokio::test]
async fn sse_delivers_in_order_with_ids_types_heartbeats_and_filters() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let kinds = |prefix: &str, n: usize| -> Vec<riverlog::proto::EventPayload> {
        (0..n)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    "order.created"
                } else {
                    "order.paid"
                };
                cloud_event(&format!("{prefix}{i}"), kind, None).into()
            })
            .collect()
    };
    publish(&mut client, "orders:eu", kinds("a", 4)).await;
    publish(&mut client, "billing", kinds("b", 2)).await;
    let url = "/subscribe?pattern=orders:*&type=order.created&from=earliest&heartbeat=200ms";
    let mut sub = sse(&server.api(), url, None).await;
    let first = sub.next().await;
    assert_eq!(first.comment.as_deref(), Some("riverlog"));
    let (id, kind, data) = sub.next_event().await;
    assert_eq!(
        (id, kind.as_str(), data["id"].as_str()),
        (1, "order.created", Some("a0"))
    );
    let (id, _, data) = sub.next_event().await;
    assert_eq!((id, data["id"].as_str()), (3, Some("a2")));
    // Caught up, then heartbeats while idle.
    let mut heartbeat = None;
    for _ in 0..5 {
        let m = sub.next().await;
        if m.comment.as_deref() == Some("heartbeat") {
            heartbeat = Some(m);
            break;
        }
    }
    assert!(
        heartbeat.expect("a heartbeat").id.is_some(),
        "heartbeats advance Last-Event-ID"
    );
    publish(&mut client, "orders:us", kinds("c", 2)).await;
    let (id, _, data) = sub.next_event().await;
    assert_eq!(
        (id, data["id"].as_str(), data["rlstream"].as_str()),
        (7, Some("c0"), Some("orders:us"))
    );
}

#[tokio::test]
async fn last_event_id_resumes_without_gap_or_duplicate_under_concurrent_publishing() {
    let server = TestServer::start().await;
    let api = server.api();
    let url = "/subscribe?stream=load&heartbeat=100ms";
    let client = server.client().await;
    let total = 300usize;
    // The publisher keeps at most 60 events ahead of the reader, so it is
    // still publishing while the reader drops and resumes.
    let (progress, mut read_so_far) = tokio::sync::watch::channel(0);
    let publisher = tokio::spawn(async move {
        let mut client = client;
        for i in 0..total {
            within(read_so_far.wait_for(|&read| i < read + 60))
                .await
                .expect("the reader is running");
            publish(&mut client, "load", vec![event(&format!("e{i}"))]).await;
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut last = None;
    // Drop the connection every 40 events and reconnect the way a browser
    // does: with the last id it saw.
    while seen.len() < total {
        let mut sub = sse(&api, url, last).await;
        for _ in 0..40 {
            if seen.len() == total {
                break;
            }
            let (id, _, data) = sub.next_event().await;
            last = Some(id);
            seen.push(data["id"].as_str().unwrap().to_owned());
            progress.send_replace(seen.len());
        }
    }
    within(publisher).await.unwrap();
    let expected: Vec<String> = (0..total).map(|i| format!("e{i}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn tokens_apply_over_http_too() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![TokenConfig {
            name: "reader".into(),
            sha256: token_digest("reader-secret"),
            publish: vec!["orders:*".into()],
            subscribe: vec!["orders:*".into()],
            admin: false,
            metrics: false,
        }];
    })
    .await;
    let api = server.api();
    let anonymous = api.get("/streams").await;
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_problem(anonymous, 401, "UNAUTHENTICATED").await;
    let denied = api
        .event_request("/streams/billing/events", &ce("x", "t"))
        .bearer_auth("reader-secret")
        .send()
        .await
        .unwrap();
    let body = assert_problem(denied, 403, "PERMISSION_DENIED").await;
    assert_eq!(body["metadata"]["permission"], "publish");
    let sse_denied = api
        .get("/subscribe?stream=billing&access_token=reader-secret")
        .await;
    assert_problem(sse_denied, 403, "PERMISSION_DENIED").await;
    // EventSource cannot set headers: the token may come as a parameter.
    let ok = api
        .event_request("/streams/orders:eu/events", &ce("o", "t"))
        .bearer_auth("reader-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 201);
    let mut sub = sse(
        &api,
        "/subscribe?pattern=*&access_token=reader-secret",
        None,
    )
    .await;
    let (_, _, data) = sub.next_event().await;
    assert_eq!(data["rlstream"], "orders:eu");
}

#[tokio::test]
async fn a_consumer_group_member_over_sse_acks_over_rest() {
    let (server, _client, _groups) = group("jobs", "workers").on_new_server(3).await;
    let api = server.api();
    let mut member = sse(
        &api,
        "/groups/workers/consume?stream=jobs&consumer=web-1&max_in_flight=2",
        None,
    )
    .await;
    let (seq1, _, first) = member.next_event().await;
    let (seq2, _, _) = member.next_event().await;
    assert_eq!((seq1, seq2), (1, 2));
    assert_eq!(first["rldeliverycount"], 1);
    // Credit is 2: the third comes only after an ack.
    api.post_json(
        "/streams/jobs/groups/workers/ack",
        &json!({"sequences": [seq1]}),
    )
    .await;
    let (seq3, _, _) = member.next_event().await;
    assert_eq!(seq3, 3);
}

#[tokio::test]
async fn a_thousand_concurrent_sse_clients_each_receive_every_event() {
    let server = TestServer::start().await;
    let url = "/subscribe?stream=fanout&from=earliest&heartbeat=1h";
    const CLIENTS: usize = 1000;
    const EVENTS: usize = 5;
    let connected = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let mut readers = Vec::with_capacity(CLIENTS);
    let api = server.api();
    for _ in 0..CLIENTS {
        let (api, connected) = (api.clone(), connected.clone());
        readers.push(tokio::spawn(async move {
            let mut sub = SseReader::new(api.get(url).await);
            let mut ids = Vec::with_capacity(EVENTS);
            loop {
                let m = sub.next().await;
                if m.comment.as_deref() == Some("caught-up") {
                    connected.add_permits(1);
                }
                if let Some(data) = m.data {
                    let v: Value = serde_json::from_str(&data).unwrap();
                    ids.push(v["id"].as_str().unwrap().to_owned());
                    if ids.len() == EVENTS {
                        return ids;
                    }
                }
            }
        }));
    }
    // Every client is live before the first event, so all must see all.
    let _all = within(connected.acquire_many(CLIENTS as u32))
        .await
        .unwrap();
    let mut grpc = server.client().await;
    for i in 0..EVENTS {
        publish(&mut grpc, "fanout", vec![event(&format!("f{i}"))]).await;
    }
    let expected: Vec<String> = (0..EVENTS).map(|i| format!("f{i}")).collect();
    for reader in readers {
        assert_eq!(within(reader).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let server = TestServer::start().await;
    let doc = server.api().get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/streams",
        "/api/v1/streams/{stream}",
        "/api/v1/streams/{stream}/trim",
        "/api/v1/streams/{stream}/events",
        "/api/v1/streams/{stream}/groups",
        "/api/v1/streams/{stream}/groups/{group}/pending",
        "/api/v1/streams/{stream}/groups/{group}/ack",
        "/api/v1/streams/{stream}/history",
        "/api/v1/streams/{stream}/groups/{group}/history",
        "/api/v1/subscribe",
        "/api/v1/groups/{group}/consume",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    let publish =
        &doc["paths"]["/api/v1/streams/{stream}/events"]["post"]["requestBody"]["content"];
    for mode in [
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/octet-stream",
    ] {
        assert!(publish[mode].is_object(), "{mode}");
    }
    assert!(doc["components"]["schemas"]["ProblemJson"].is_object());
}

#[tokio::test]
async fn history_past_the_end_answers_the_sequence_the_next_event_will_get() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("e", 0..5)).await;
    let api = server.api();
    let page = |query: &str| {
        let url = format!("/streams/s/events?{query}");
        let api = &api;
        async move {
            let response = api.get(&url).await;
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let forward = page("from=100").await;
    assert_eq!(forward["events"].as_array().unwrap().len(), 0);
    assert_eq!(forward["end_of_stream"], true);
    assert_eq!(forward["next_sequence"], 6);
    let filtered = page("from=100&type=test.created").await;
    assert_eq!(filtered["next_sequence"], 6);
    let backward = page("from=100&direction=backward").await;
    assert_eq!(backward["events"].as_array().unwrap().len(), 5);
    assert_eq!(backward["events"][0]["rlsequence"], 5);
    assert_eq!(backward["next_sequence"], 0);
    // Polling from the answer picks up the next event.
    publish(&mut client, "s", vec![event("sixth")]).await;
    let polled = page(&format!("from={}", forward["next_sequence"])).await;
    assert_eq!(polled["events"][0]["rlsequence"], 6);
}

#[tokio::test]
async fn an_sse_start_or_resume_beyond_the_head_is_refused_and_the_head_itself_resumes() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", events("old", 0..3)).await; // positions 1-3
    let api = server.api();
    let url = "/subscribe?stream=s&heartbeat=1h";

    // An id this log never sent (the database was reset since, say).
    let refused = api
        .request(Method::GET, url)
        .header("last-event-id", "1000")
        .send()
        .await
        .unwrap();
    let body = assert_problem(refused, 400, "START_BEYOND_HEAD").await;
    assert_eq!(body["metadata"]["last_event_id"], "1000");
    assert_eq!(body["metadata"]["next_position"], "4");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID 1000"),
        "{body}"
    );
    for from in ["pos:5", "pos:1000", "seq:5"] {
        let refused = api.get(&format!("{url}&from={from}")).await;
        assert_problem(refused, 400, "START_BEYOND_HEAD").await;
    }

    // The head itself is a valid resume point: after the last event.
    let mut resumed = sse(&api, url, Some(3)).await;
    let mut from_next = sse(&api, &format!("{url}&from=pos:4"), None).await;
    let mut from_next_seq = sse(&api, &format!("{url}&from=seq:4"), None).await;
    for sub in [&mut resumed, &mut from_next, &mut from_next_seq] {
        while sub.next().await.comment.as_deref() != Some("caught-up") {}
    }
    publish(&mut client, "s", events("new", 0..3)).await; // positions 4-6
    for sub in [&mut resumed, &mut from_next, &mut from_next_seq] {
        let mut got = Vec::new();
        for _ in 0..3 {
            let (id, _, data) = sub.next_event().await;
            got.push((id, data["id"].as_str().unwrap().to_owned()));
        }
        assert_eq!(
            got,
            [
                (4, "new-0".to_owned()),
                (5, "new-1".to_owned()),
                (6, "new-2".to_owned())
            ]
        );
    }
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_malformed_request() {
    let server = TestServer::start().await;
    let api = server.api();
    let url = "/streams/s/events";
    let not_json = api.post_as(url, STRUCTURED, "{\"specversion\": ").await;
    assert_problem(not_json, 400, "MALFORMED_REQUEST").await;
    let batch = api.post_as(url, BATCHED, "[{").await;
    assert_problem(batch, 400, "MALFORMED_REQUEST").await;
    for body in ["{\"stream\": ", "{\"stream\": 7}", "[]"] {
        let create = api.post_as("/streams", "application/json", body).await;
        assert_problem(create, 400, "MALFORMED_REQUEST").await;
    }
    // Well-formed JSON with a bad value is still that field's error.
    let bad_name = api
        .post_json("/streams", &json!({"stream": "bad name"}))
        .await;
    assert_problem(bad_name, 400, "INVALID_STREAM_NAME").await;
}

#[tokio::test]
async fn a_stream_is_created_with_a_retention_policy_and_dedup_window_over_rest() {
    let server = TestServer::start().await;
    let api = server.api();
    let created = api
        .post_json(
            "/streams",
            &json!({"stream": "jobs", "retention": {"policy": "work_queue", "dedup_window": "24h"}}),
        )
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let info: Value = created.json().await.unwrap();
    assert_eq!(info["retention"]["policy"], "work_queue");
    assert_eq!(info["retention"]["dedup_window_seconds"], 86400.0);
    let info = api.get_json("/streams/jobs").await;
    assert_eq!(info["retention"]["policy"], "work_queue");
    let plain = api
        .post_json(
            "/streams",
            &json!({"stream": "plain", "retention": {"dedup_window": "0s"}}),
        )
        .await;
    let plain: Value = plain.json().await.unwrap();
    assert_eq!(plain["retention"]["policy"], "limits");
    // Zero is unset, as over gRPC: the server's window applies.
    assert_eq!(plain["retention"]["dedup_window_seconds"], Value::Null);

    let bad = api
        .post_json(
            "/streams",
            &json!({"stream": "bad", "retention": {"policy": "fifo"}}),
        )
        .await;
    let body = assert_problem(bad, 400, "INVALID_ARGUMENT").await;
    assert!(body["detail"].as_str().unwrap().contains("fifo"), "{body}");
    let bad = api
        .post_json(
            "/streams",
            &json!({"stream": "bad", "retention": {"dedup_window": "soon"}}),
        )
        .await;
    assert_problem(bad, 400, "INVALID_ARGUMENT").await;
    assert_eq!(api.get("/streams/bad").await.status().as_u16(), 404);
}

/// Seconds since the Unix epoch of an RFC 3339 time.
fn epoch_seconds(time: &Value) -> f64 {
    let t: prost_types::Timestamp = time.as_str().expect("a time").parse().expect("RFC 3339");
    t.seconds as f64 + f64::from(t.nanos) / 1e9
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn total_events(history: &Value) -> u64 {
    history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_stream_history_is_an_hour_of_buckets_counting_what_was_appended() {
    let server = TestServer::start().await;
    let api = server.api();
    let url = "/streams/orders:eu/events";
    let batch = json!([ce("o1", "t"), ce("o2", "t"), ce("o3", "t")]);
    assert_eq!(api.post_batch(url, &batch).await.status().as_u16(), 201);
    let mut client = server.client().await;
    publish(&mut client, "orders:eu", events("g", 0..2)).await;
    publish(&mut client, "other", events("x", 0..1)).await;
    // A duplicate appends nothing.
    api.post_event(url, &ce("o1", "t")).await;

    let before = now_seconds();
    let history = api.get_json("/streams/orders:eu/history").await;
    assert_eq!(history["stream"], "orders:eu");
    assert_eq!(history["interval_seconds"], 10);
    assert_eq!(history["tracked"], true);
    let points = history["points"].as_array().unwrap();
    assert_eq!(points.len(), 360, "an hour of 10 s buckets");
    let times: Vec<f64> = points.iter().map(|p| epoch_seconds(&p["time"])).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 10.0), "{times:?}");
    let last = times[359];
    assert!(
        last <= before + 1.0 && before - last < 11.0,
        "{last} vs {before}"
    );
    assert_eq!(total_events(&history), 5, "{history}");
    for p in points {
        let (events, rate) = (
            p["events"].as_u64().unwrap(),
            p["events_per_second"].as_f64().unwrap(),
        );
        assert_eq!(events > 0, rate > 0.0, "{p}");
        assert!(rate <= events as f64, "{p}");
    }
    let other = api.get_json("/streams/other/history").await;
    assert_eq!(total_events(&other), 1);

    // An empty stream has an hour of zeros.
    api.post_json("/streams", &json!({"stream": "quiet"})).await;
    let quiet = api.get_json("/streams/quiet/history").await;
    assert_eq!(quiet["points"].as_array().unwrap().len(), 360);
    assert_eq!(total_events(&quiet), 0);
}

#[tokio::test]
async fn a_stream_history_refuses_unknown_streams_bad_names_and_unknown_parameters() {
    let server = TestServer::start().await;
    let api = server.api();
    let missing = api.get("/streams/nope/history").await;
    assert_problem(missing, 404, "STREAM_NOT_FOUND").await;
    let bad = api.get("/streams/bad%20name/history").await;
    assert_problem(bad, 400, "INVALID_STREAM_NAME").await;
    api.post_event("/streams/s/events", &ce("1", "t")).await;
    let typo = api.get("/streams/s/history?window=1h").await;
    let body = assert_problem(typo, 400, "UNKNOWN_QUERY_PARAMETER").await;
    assert_eq!(body["metadata"]["parameter"], "window");
    // A deleted stream's history goes with it.
    assert_eq!(api.delete("/streams/s").await.status().as_u16(), 200);
    let gone = api.get("/streams/s/history").await;
    assert_problem(gone, 404, "STREAM_NOT_FOUND").await;
    api.post_event("/streams/s/events", &ce("2", "t")).await;
    assert_eq!(total_events(&api.get_json("/streams/s/history").await), 1);
}

#[tokio::test]
async fn a_group_history_keeps_the_sampled_backlog_and_ends_with_the_current_one() {
    let server = TestServer::start_with(|c| {
        c.group_metrics_interval = std::time::Duration::from_millis(20);
    })
    .await;
    let api = server.api();
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("j", 0..3)).await;
    let mut groups = server.groups().await;
    group("jobs", "workers").create(&mut groups).await;
    fetch(&mut groups, "jobs", "workers", "w1", 2, 0).await;

    let url = "/streams/jobs/groups/workers/history";
    let history = api.get_json(url).await;
    assert_eq!(history["stream"], "jobs");
    assert_eq!(history["group"], "workers");
    assert_eq!(history["interval_seconds"], 10);
    let points = history["points"].as_array().unwrap();
    let current = points.last().unwrap();
    assert_eq!(
        (current["lag"].as_u64(), current["pending"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        (now_seconds() - epoch_seconds(&current["time"])).abs() < 5.0,
        "{current}"
    );

    // The sampler's points stay after the backlog changed.
    let sampled = eventually("a sampled point with the backlog", async || {
        let h = api.get_json(url).await;
        let points = h["points"].as_array().unwrap().clone();
        let (last, earlier) = points.split_last().unwrap();
        earlier
            .iter()
            .any(|p| p["lag"] == 1 && p["pending"] == 2)
            .then(|| last.clone())
    })
    .await;
    assert_eq!(sampled["lag"], 1);
    ack(&mut groups, "jobs", "workers", vec![1, 2]).await;
    let h = api.get_json(url).await;
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.last().unwrap()["pending"], 0);
    // A bucket keeps its latest sample (see the history's unit tests for
    // samples kept across buckets): once the sampler ran again, the sampled
    // point shows the acks too.
    eventually("a sampled point after the acks", async || {
        let h = api.get_json(url).await;
        let points = h["points"].as_array().unwrap().clone();
        let (_, earlier) = points.split_last().unwrap();
        earlier
            .last()
            .is_some_and(|p| p["lag"] == 1 && p["pending"] == 0)
            .then_some(())
    })
    .await;
    let times: Vec<f64> = points.iter().map(|p| epoch_seconds(&p["time"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let missing = api.get("/streams/jobs/groups/nobody/history").await;
    assert_problem(missing, 404, "GROUP_NOT_FOUND").await;
    let no_stream = api.get("/streams/nope/groups/workers/history").await;
    assert_problem(no_stream, 404, "STREAM_NOT_FOUND").await;
    let typo = api.get(&format!("{url}?since=1h")).await;
    let body = assert_problem(typo, 400, "UNKNOWN_QUERY_PARAMETER").await;
    assert_eq!(body["metadata"]["parameter"], "since");
}

#[tokio::test]
async fn history_is_shown_only_to_tokens_that_may_read_the_stream() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![
            TokenConfig {
                name: "reader".into(),
                sha256: token_digest("reader-secret"),
                publish: vec!["orders:*".into()],
                subscribe: vec!["orders:*".into()],
                admin: false,
                metrics: false,
            },
            TokenConfig {
                name: "admin".into(),
                sha256: token_digest("admin-secret"),
                publish: vec!["*".into()],
                subscribe: vec!["*".into()],
                admin: true,
                metrics: false,
            },
        ];
    })
    .await;
    let api = server.api();
    for stream in ["orders:eu", "billing"] {
        let published = api
            .event_request(&format!("/streams/{stream}/events"), &ce("1", "t"))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(published.status().as_u16(), 201);
    }
    let as_reader = |path: &str| {
        api.request(Method::GET, path)
            .bearer_auth("reader-secret")
            .send()
    };
    let anonymous = api.get("/streams/orders:eu/history").await;
    assert_problem(anonymous, 401, "UNAUTHENTICATED").await;
    let denied = as_reader("/streams/billing/history").await.unwrap();
    let body = assert_problem(denied, 403, "PERMISSION_DENIED").await;
    assert_eq!(body["metadata"]["permission"], "subscribe");
    let group_denied = as_reader("/streams/billing/groups/g/history")
        .await
        .unwrap();
    assert_problem(group_denied, 403, "PERMISSION_DENIED").await;
    let allowed = as_reader("/streams/orders:eu/history").await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    let body: Value = allowed.json().await.unwrap();
    assert_eq!(total_events(&body), 1);
    // A reader learns a group is missing only where it may read.
    let missing = as_reader("/streams/orders:eu/groups/g/history")
        .await
        .unwrap();
    assert_problem(missing, 404, "GROUP_NOT_FOUND").await;
}
