//! CloudEvents over HTTP, rule by rule: what is published in the JSON
//! Event Format (structured and batched mode), the Protobuf format or the
//! HTTP binding's binary mode reads back over HTTP (the JSON batch format)
//! identical in every attribute and in its data, and over gRPC as the
//! Protobuf format maps it. Specs: CloudEvents JSON Event Format v1.0.2
//! (json-format.md) and HTTP Protocol Binding v1.0.2
//! (http-protocol-binding.md); section numbers refer to them.

use prost::Message as _;
use reqwest::Method;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue};
use serde_json::{Value, json};

use crate::common::*;

const STREAM_URL: &str = "/streams/ce/events";

/// The attributes the log adds to every recorded event.
const LOG_ATTRIBUTES: [&str; 4] = ["rlstream", "rlsequence", "rlposition", "rlrecordedtime"];

/// A CloudEvent in the JSON format with `extra` members.
fn ce(id: &str, extra: Value) -> Value {
    let mut event = json!({"specversion": "1.0", "id": id, "source": "/spec", "type": "rule"});
    for (name, value) in extra.as_object().expect("an object") {
        event[name] = value.clone();
    }
    event
}

/// The stream read back in the JSON batch format, without the log's own
/// attributes (checked to be there).
async fn read_back(api: &Api) -> Vec<Value> {
    let response = api
        .request(Method::GET, &format!("{STREAM_URL}?limit=1000"))
        .header("accept", BATCHED)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], BATCHED);
    let events: Vec<Value> = response.json().await.unwrap();
    events
        .into_iter()
        .map(|mut e| {
            let object = e.as_object_mut().unwrap();
            for name in LOG_ATTRIBUTES {
                assert!(object.remove(name).is_some(), "{name} missing");
            }
            e
        })
        .collect()
}

/// The stream's events as gRPC readers see them.
async fn grpc_events(server: &TestServer) -> Vec<CloudEvent> {
    let mut client = server.client().await;
    read_all(&mut client, "ce")
        .await
        .iter()
        .map(|e| e.event.as_ref().unwrap().decode().unwrap())
        .collect()
}

/// Publishes one event in structured mode, expecting 201.
async fn publish(api: &Api, event: &Value) {
    let response = api.post_event(STREAM_URL, event).await;
    assert_eq!(response.status().as_u16(), 201, "{event}");
}

/// A binary-mode publish with the four required headers; `id` is `ce-id`.
fn binary(api: &Api, id: &str) -> reqwest::RequestBuilder {
    api.request(Method::POST, STREAM_URL)
        .header("ce-id", id)
        .header("ce-source", "/spec")
        .header("ce-specversion", "1.0")
        .header("ce-type", "rule")
}

async fn created(request: reqwest::RequestBuilder) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());
}

/// Asserts a problem+json answer; gives its body.
async fn problem(response: reqwest::Response, status: u16, reason: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], reason, "{body}");
    body
}

fn attr(event: &CloudEvent, name: &str) -> Option<AttributeValue> {
    event.attributes.get(name).and_then(|a| a.attr.clone())
}

fn text(event: &CloudEvent) -> &str {
    match &event.data {
        Some(Data::TextData(t)) => t,
        other => panic!("not text data: {other:?}"),
    }
}

/// JSON format §3.1: with a JSON `datacontenttype`, or none, `data` is a
/// JSON value and comes back as the same JSON value: a string stays a
/// string (`"123"` is not the number 123), `null` stays an explicit null.
/// gRPC readers get the JSON document as `text_data`; no
/// `datacontenttype` is added where there was none.
#[tokio::test]
async fn json_data_comes_back_as_the_same_json_value() {
    let server = TestServer::start().await;
    let api = server.api();
    let values = [
        json!("123"),
        json!(123),
        json!(""),
        json!(null),
        json!(true),
        json!(12.5),
        json!([1, "two", {"three": null}]),
        json!({"nested": {"s": "x\"y", "n": -1}}),
    ];
    let content_types = [
        None,
        Some("application/json"),
        Some("text/json"),
        Some("application/vnd.example+json; charset=utf-8"),
    ];
    let mut sent = Vec::new();
    for (i, ct) in content_types.iter().enumerate() {
        for (j, data) in values.iter().enumerate() {
            let mut event = ce(&format!("e{i}-{j}"), json!({"data": data}));
            if let Some(ct) = ct {
                event["datacontenttype"] = json!(ct);
            }
            sent.push(event);
        }
    }
    // Half one by one, half as one batch: the same rules apply.
    let (single, batch) = sent.split_at(sent.len() / 2);
    for event in single {
        publish(&api, event).await;
    }
    let response = api.post_batch(STREAM_URL, &json!(batch)).await;
    assert_eq!(response.status().as_u16(), 201);

    assert_eq!(read_back(&api).await, sent);
    for (event, grpc) in sent.iter().zip(grpc_events(&server).await) {
        assert_eq!(text(&grpc), event["data"].to_string(), "{event}");
        assert_eq!(
            attr(&grpc, "datacontenttype").is_some(),
            event.get("datacontenttype").is_some()
        );
    }
}

/// JSON format §3.1.1/§3.1.2: with a content type that does not declare
/// JSON, `data` is the encoded content as a string, even one that looks
/// like JSON; data that is not a string is refused.
#[tokio::test]
async fn string_data_of_other_content_types_stays_a_string() {
    let server = TestServer::start().await;
    let api = server.api();
    let sent = vec![
        ce(
            "t1",
            json!({"datacontenttype": "text/plain", "data": "123"}),
        ),
        ce(
            "t2",
            json!({"datacontenttype": "text/plain", "data": "{\"a\":1}"}),
        ),
        ce(
            "t3",
            json!({"datacontenttype": "application/xml", "data": "<much wow=\"xml\"/>"}),
        ),
        ce("t4", json!({"datacontenttype": "text/csv", "data": ""})),
    ];
    for event in &sent {
        publish(&api, event).await;
    }
    assert_eq!(read_back(&api).await, sent);
    let grpc = grpc_events(&server).await;
    assert_eq!(text(&grpc[0]), "123");
    assert_eq!(text(&grpc[2]), "<much wow=\"xml\"/>");

    let number = ce("t5", json!({"datacontenttype": "text/plain", "data": 123}));
    let body = problem(
        api.post_event(STREAM_URL, &number).await,
        400,
        "INVALID_EVENT",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("must be a string"),
        "{body}"
    );
}

/// JSON format §3.1.1: binary data is `data_base64`, with or without a
/// `datacontenttype`; `data` and `data_base64` together are refused.
/// Binary mode with a non-text Content-Type, or none, is binary data too.
#[tokio::test]
async fn binary_data_comes_back_as_data_base64() {
    let server = TestServer::start().await;
    let api = server.api();
    let sent = vec![
        ce("b1", json!({"data_base64": "AAEC/w=="})),
        ce(
            "b2",
            json!({"datacontenttype": "image/png", "data_base64": "iVBORw=="}),
        ),
        ce(
            "b3",
            json!({"datacontenttype": "application/json", "data_base64": "e30="}),
        ),
    ];
    for event in &sent {
        publish(&api, event).await;
    }
    created(
        binary(&api, "b4")
            .header("content-type", "application/octet-stream")
            .body(vec![0u8, 1, 2, 255]),
    )
    .await;
    created(binary(&api, "b5").body(vec![9u8, 8])).await;
    // Text in another charset is kept as the bytes sent.
    created(
        binary(&api, "b6")
            .header("content-type", "text/plain; charset=latin1")
            .body(vec![0xe9u8]),
    )
    .await;

    let mut expected = sent.clone();
    expected.push(ce(
        "b4",
        json!({"datacontenttype": "application/octet-stream", "data_base64": "AAEC/w=="}),
    ));
    expected.push(ce("b5", json!({"data_base64": "CQg="})));
    expected.push(ce(
        "b6",
        json!({"datacontenttype": "text/plain; charset=latin1", "data_base64": "6Q=="}),
    ));
    assert_eq!(read_back(&api).await, expected);
    let grpc = grpc_events(&server).await;
    assert_eq!(grpc[0].data, Some(Data::BinaryData(vec![0, 1, 2, 255])));
    assert_eq!(grpc[3].data, Some(Data::BinaryData(vec![0, 1, 2, 255])));

    let both = ce("b7", json!({"data": "x", "data_base64": "AA=="}));
    problem(
        api.post_event(STREAM_URL, &both).await,
        400,
        "INVALID_EVENT",
    )
    .await;
    let not_base64 = ce("b8", json!({"data_base64": "!!"}));
    problem(
        api.post_event(STREAM_URL, &not_base64).await,
        400,
        "INVALID_EVENT",
    )
    .await;
}

/// JSON format §2.2: a `null` attribute is unset, so it reads back absent;
/// an absent attribute stays absent; `"data": null` is an explicit null
/// payload (§3.1.1), an absent `data` no data at all; a required attribute
/// given as `null` is missing.
#[tokio::test]
async fn null_attributes_are_absent_and_null_data_is_not() {
    let server = TestServer::start().await;
    let api = server.api();
    publish(
        &api,
        &ce(
            "n1",
            json!({"subject": null, "time": null, "comexample": null}),
        ),
    )
    .await;
    publish(&api, &ce("n2", json!({"data": null}))).await;
    assert_eq!(
        read_back(&api).await,
        [ce("n1", json!({})), ce("n2", json!({"data": null}))]
    );
    let grpc = grpc_events(&server).await;
    assert!(grpc[0].attributes.is_empty(), "{:?}", grpc[0]);
    assert_eq!(grpc[0].data, None);
    assert_eq!(text(&grpc[1]), "null");

    let null_id = ce("n3", json!({"id": null}));
    let body = problem(
        api.post_event(STREAM_URL, &null_id).await,
        400,
        "INVALID_EVENT",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("`id` is required"),
        "{body}"
    );
}

/// JSON format §2.2: Boolean, Integer and String extensions keep their
/// JSON types; Binary, URI, URI-reference and Timestamp ones (set over
/// gRPC, where the type is explicit) read back as their canonical strings.
/// An Integer must be 32-bit without fraction; objects and arrays are not
/// attribute values.
#[tokio::test]
async fn extension_attributes_keep_their_types() {
    let server = TestServer::start().await;
    let api = server.api();
    let sent = ce(
        "x1",
        json!({"flag": true, "off": false, "count": -2147483648, "big": 2147483647,
               "name": "text", "dataschema": "https://example.com/schema"}),
    );
    publish(&api, &sent).await;
    let mut event = CloudEvent {
        id: "x2".into(),
        source: "/spec".into(),
        spec_version: "1.0".into(),
        r#type: "rule".into(),
        ..Default::default()
    };
    for (name, value) in [
        ("bin", AttributeValue::CeBytes(vec![0, 1, 254, 255])),
        (
            "link",
            AttributeValue::CeUri("https://example.com/a?b=c".into()),
        ),
        ("ref", AttributeValue::CeUriRef("../a#b".into())),
        (
            "when",
            AttributeValue::CeTimestamp(prost_types::Timestamp {
                seconds: 1,
                nanos: 5,
            }),
        ),
    ] {
        event
            .attributes
            .insert(name.into(), CloudEventAttributeValue { attr: Some(value) });
    }
    let mut client = server.client().await;
    publish_events(&mut client, event).await;

    let back = read_back(&api).await;
    assert_eq!(back[0], sent);
    assert_eq!(
        back[1],
        ce(
            "x2",
            json!({"bin": "AAH+/w==", "link": "https://example.com/a?b=c", "ref": "../a#b",
                        "when": "1970-01-01T00:00:01.000000005Z"})
        )
    );
    let grpc = grpc_events(&server).await;
    assert_eq!(
        attr(&grpc[0], "flag"),
        Some(AttributeValue::CeBoolean(true))
    );
    assert_eq!(
        attr(&grpc[0], "count"),
        Some(AttributeValue::CeInteger(i32::MIN))
    );
    assert_eq!(
        attr(&grpc[0], "name"),
        Some(AttributeValue::CeString("text".into()))
    );
    assert_eq!(
        attr(&grpc[0], "dataschema"),
        Some(AttributeValue::CeUri("https://example.com/schema".into()))
    );

    for (value, why) in [
        (json!(2147483648u64), "outside the Integer range"),
        (json!(-2147483649i64), "outside the Integer range"),
        (json!(1.5), "not an Integer"),
        (json!(2.0), "not an Integer"),
        (json!(["a"]), "not objects or arrays"),
        (json!({"a": 1}), "not objects or arrays"),
    ] {
        let bad = ce("x3", json!({"ext": value}));
        let body = problem(api.post_event(STREAM_URL, &bad).await, 400, "INVALID_EVENT").await;
        assert!(
            body["detail"].as_str().unwrap().contains(why),
            "{value}: {body}"
        );
    }
}

async fn publish_events(
    client: &mut riverlog::proto::v1::event_log_client::EventLogClient<tonic::transport::Channel>,
    event: CloudEvent,
) {
    crate::common::publish(client, "ce", vec![event.into()]).await;
}

/// A Timestamp keeps its fractional seconds to the nanosecond in both
/// modes; it reads back in UTC (`Z`), the same instant as sent.
#[tokio::test]
async fn times_keep_their_fractional_seconds() {
    let server = TestServer::start().await;
    let api = server.api();
    for (i, time) in [
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00.5Z",
        "2026-11-24T10:00:00.123456Z",
        "2026-11-24T10:00:00.123456789Z",
        "1969-07-20T20:17:40.000000001Z",
    ]
    .iter()
    .enumerate()
    {
        publish(&api, &ce(&format!("s{i}"), json!({"time": time}))).await;
        created(binary(&api, &format!("b{i}")).header("ce-time", *time)).await;
    }
    publish(
        &api,
        &ce("offset", json!({"time": "2026-11-24T12:00:00.25+02:00"})),
    )
    .await;
    let times: Vec<Value> = read_back(&api)
        .await
        .iter()
        .map(|e| e["time"].clone())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00.500Z",
            "2026-11-24T10:00:00.500Z",
            "2026-11-24T10:00:00.123456Z",
            "2026-11-24T10:00:00.123456Z",
            "2026-11-24T10:00:00.123456789Z",
            "2026-11-24T10:00:00.123456789Z",
            "1969-07-20T20:17:40.000000001Z",
            "1969-07-20T20:17:40.000000001Z",
            "2026-11-24T10:00:00.250Z",
        ]
    );
    let grpc = grpc_events(&server).await;
    let Some(AttributeValue::CeTimestamp(t)) = attr(&grpc[7], "time") else {
        panic!("time is not a timestamp: {:?}", grpc[7]);
    };
    assert_eq!(t.nanos, 123_456_789);
    let bad = binary(&api, "bad")
        .header("ce-time", "yesterday")
        .send()
        .await
        .unwrap();
    problem(bad, 400, "INVALID_ARGUMENT").await;
}

/// HTTP binding §3.1.3: `ce-` header names are case-insensitive; values
/// are unquoted (a double-quoted string, with backslash escapes), then
/// percent-decoded once (either hex case, unnecessary escapes accepted);
/// what does not decode to UTF-8 (overlong forms too), a `%` that starts
/// no escape and a value that is not ASCII are refused.
#[tokio::test]
async fn binary_mode_headers_decode_as_the_binding_says() {
    let server = TestServer::start().await;
    let api = server.api();
    created(
        api.request(Method::POST, STREAM_URL)
            .header("CE-ID", "h1")
            .header("Ce-Source", "/spec")
            .header("ce-SpecVersion", "1.0")
            .header("cE-tYpE", "rule")
            .header("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")
            .header("ce-lower", "%e2%82%ac%41")
            .header("ce-quoted", "\"say \\\"hi\\\" 100%25\"")
            .header("ce-plain", "a b"),
    )
    .await;
    assert_eq!(
        read_back(&api).await,
        [ce(
            "h1",
            json!({"subject": "Euro € 😀", "lower": "€A", "quoted": "say \"hi\" 100%",
                         "plain": "a b"})
        )]
    );

    for (value, why) in [
        ("%C0%A0", "not UTF-8"),
        ("%FF", "not UTF-8"),
        ("100%", "%XX"),
        ("%zz", "%XX"),
        ("\"open", "unterminated"),
        ("\"a\"b", "after the closing"),
    ] {
        let response = binary(&api, "bad")
            .header("ce-subject", value)
            .send()
            .await
            .unwrap();
        let body = problem(response, 400, "INVALID_ARGUMENT").await;
        assert!(
            body["detail"].as_str().unwrap().contains(why),
            "{value}: {body}"
        );
    }
    let raw = binary(&api, "bad")
        .header(
            "ce-subject",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    problem(raw, 400, "INVALID_ARGUMENT").await;
    assert_eq!(read_back(&api).await.len(), 1, "nothing refused was stored");
}

/// HTTP binding §3.1.1/§3.1.2: in binary mode Content-Type is the
/// `datacontenttype` (as sent, parameters included) and the body is the
/// data: JSON when it says JSON (so `"123"` is a string, `123` a number),
/// text as text, none as no data. `ce-datacontenttype` must not appear; an
/// attribute header must not repeat; a JSON type over a body that is not
/// JSON is refused.
#[tokio::test]
async fn binary_mode_content_type_is_the_datacontenttype() {
    let server = TestServer::start().await;
    let api = server.api();
    let json_type = "application/json; charset=utf-8";
    for (id, ct, body) in [
        ("c1", json_type, "\"123\""),
        ("c2", json_type, "123"),
        ("c3", json_type, "{ \"a\" : [1, 2] }\n"),
        ("c4", "text/plain", "123"),
        ("c5", "application/xml", "<a/>"),
    ] {
        created(binary(&api, id).header("content-type", ct).body(body)).await;
    }
    created(binary(&api, "c6")).await;
    assert_eq!(
        read_back(&api).await,
        [
            ce("c1", json!({"datacontenttype": json_type, "data": "123"})),
            ce("c2", json!({"datacontenttype": json_type, "data": 123})),
            ce(
                "c3",
                json!({"datacontenttype": json_type, "data": {"a": [1, 2]}})
            ),
            ce(
                "c4",
                json!({"datacontenttype": "text/plain", "data": "123"})
            ),
            ce(
                "c5",
                json!({"datacontenttype": "application/xml", "data": "<a/>"})
            ),
            ce("c6", json!({})),
        ]
    );
    // gRPC sees the body exactly as sent.
    assert_eq!(text(&grpc_events(&server).await[2]), "{ \"a\" : [1, 2] }\n");

    let both = binary(&api, "d1")
        .header("content-type", "text/plain")
        .header("ce-datacontenttype", "text/plain")
        .body("x");
    let body = problem(both.send().await.unwrap(), 400, "INVALID_ARGUMENT").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("ce-datacontenttype"),
        "{body}"
    );
    let twice = binary(&api, "d2")
        .header("ce-subject", "a")
        .header("ce-subject", "b");
    let body = problem(twice.send().await.unwrap(), 400, "INVALID_ARGUMENT").await;
    assert!(
        body["detail"].as_str().unwrap().contains("more than once"),
        "{body}"
    );
    let not_json = binary(&api, "d3")
        .header("content-type", "application/json")
        .body("hello");
    let body = problem(not_json.send().await.unwrap(), 400, "INVALID_ARGUMENT").await;
    assert!(
        body["detail"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    // serde_json skips the inside of strings unchecked: UTF-8 is checked too.
    let not_utf8 = binary(&api, "d4")
        .header("content-type", "application/json")
        .body(b"\"\xff\"".to_vec());
    let body = problem(not_utf8.send().await.unwrap(), 400, "INVALID_ARGUMENT").await;
    assert!(
        body["detail"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    // An empty Content-Type is none.
    created(
        binary(&api, "c7")
            .header("content-type", "")
            .body(vec![7u8]),
    )
    .await;
    let back = read_back(&api).await;
    assert_eq!(back.len(), 7);
    assert_eq!(back[6], ce("c7", json!({"data_base64": "Bw=="})));
}

/// Structured mode in the Protobuf format (`application/cloudevents+protobuf`,
/// and its batch) reads like the JSON format; another CloudEvents format is
/// 415, a body that does not decode 400.
#[tokio::test]
async fn structured_mode_takes_the_protobuf_format() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut event = CloudEvent {
        id: "p1".into(),
        source: "/spec".into(),
        spec_version: "1.0".into(),
        r#type: "rule".into(),
        data: Some(Data::TextData("\"123\"".into())),
        ..Default::default()
    };
    for (name, value) in [
        (
            "datacontenttype",
            AttributeValue::CeString("application/json".into()),
        ),
        ("flag", AttributeValue::CeBoolean(true)),
        (
            "time",
            AttributeValue::CeTimestamp(prost_types::Timestamp {
                seconds: 1,
                nanos: 10,
            }),
        ),
    ] {
        event
            .attributes
            .insert(name.into(), CloudEventAttributeValue { attr: Some(value) });
    }
    let response = api
        .post_as(
            STREAM_URL,
            "application/cloudevents+protobuf",
            event.encode_to_vec(),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let second = CloudEvent {
        id: "p2".into(),
        data: Some(Data::BinaryData(vec![1, 2])),
        attributes: Default::default(),
        ..event.clone()
    };
    let third = CloudEvent {
        id: "p3".into(),
        ..second.clone()
    };
    // CloudEventBatch { repeated CloudEvent events = 1 }: field 1, length-delimited.
    let mut batch = Vec::new();
    for e in [&second, &third] {
        prost::encoding::message::encode(1, e, &mut batch);
    }
    let response = api
        .post_as(
            STREAM_URL,
            "application/cloudevents-batch+protobuf; charset=binary",
            batch,
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);

    assert_eq!(
        read_back(&api).await,
        [
            ce(
                "p1",
                json!({"datacontenttype": "application/json", "data": "123", "flag": true,
                            "time": "1970-01-01T00:00:01.000000010Z"})
            ),
            ce("p2", json!({"data_base64": "AQI="})),
            ce("p3", json!({"data_base64": "AQI="})),
        ]
    );
    assert_eq!(grpc_events(&server).await, [event, second, third]);

    let garbage = api
        .post_as(
            STREAM_URL,
            "application/cloudevents+protobuf",
            vec![0x0a, 0x10, 0x00],
        )
        .await;
    problem(garbage, 400, "MALFORMED_REQUEST").await;
    let avro = api
        .post_as(STREAM_URL, "application/cloudevents+avro", "x")
        .await;
    let body = problem(avro, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cloudevents+avro"),
        "{body}"
    );
}

/// History reads answer the JSON batch format when `Accept` asks for it
/// (paging in headers), the usual page otherwise, and 406 problem+json
/// when `Accept` allows neither.
#[tokio::test]
async fn history_answers_a_json_batch_when_accept_asks_for_it() {
    let server = TestServer::start().await;
    let api = server.api();
    for i in 0..3 {
        publish(&api, &ce(&format!("a{i}"), json!({"data": i}))).await;
    }
    let get = |accept: Option<&'static str>| {
        let request = api.request(Method::GET, &format!("{STREAM_URL}?limit=2"));
        let request = match accept {
            Some(a) => request.header("accept", a),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    let batch = get(Some("application/cloudevents-batch+json")).await;
    assert_eq!(batch.headers()["content-type"], BATCHED);
    assert_eq!(batch.headers()["riverlog-next-sequence"], "3");
    assert_eq!(batch.headers()["riverlog-end-of-stream"], "false");
    assert_eq!(batch.headers()["vary"], "accept");
    let events: Vec<Value> = batch.json().await.unwrap();
    assert_eq!(
        events.iter().map(|e| e["data"].clone()).collect::<Vec<_>>(),
        [0, 1]
    );

    let preferred = get(Some(
        "application/json;q=0.5, application/cloudevents-batch+json",
    ))
    .await;
    assert_eq!(preferred.headers()["content-type"], BATCHED);
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("application/*"),
    ] {
        let page = get(accept).await;
        assert_eq!(
            page.headers()["content-type"],
            "application/json",
            "{accept:?}"
        );
        let page: Value = page.json().await.unwrap();
        assert_eq!(page["next_sequence"], 3, "{accept:?}");
        assert_eq!(page["events"].as_array().unwrap().len(), 2);
    }
    let refused = get(Some("text/html")).await;
    let body = problem(refused, 406, "NOT_ACCEPTABLE").await;
    assert!(body["detail"].as_str().unwrap().contains(BATCHED), "{body}");
    problem(
        get(Some(
            "application/json;q=0, application/cloudevents-batch+json;q=0",
        ))
        .await,
        406,
        "NOT_ACCEPTABLE",
    )
    .await;
}

/// A query parameter an endpoint does not take is refused with 400
/// `UNKNOWN_QUERY_PARAMETER` naming it, on every endpoint of the OpenAPI
/// document, before anything else happens; `access_token` is taken
/// everywhere.
#[tokio::test]
async fn unknown_query_parameters_are_refused_naming_them() {
    let server = TestServer::start().await;
    let api = server.api();
    publish(&api, &ce("q1", json!({}))).await;
    // The typo of the issue: `form` for `from` used to replay from the
    // earliest event.
    let typo = api.get("/subscribe?stream=ce&form=latest").await;
    let body = problem(typo, 400, "UNKNOWN_QUERY_PARAMETER").await;
    assert_eq!(body["metadata"]["parameter"], "form");
    assert!(
        body["detail"].as_str().unwrap().contains("`from`"),
        "{body}"
    );

    let doc = api.get_json("/openapi.json").await;
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let url = path
            .trim_start_matches("/api/v1")
            .replace("{stream}", "ce")
            .replace("{group}", "g");
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let response = api
                .request(method.clone(), &format!("{url}{sep}stream=ce&bogus=1"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 400, "{method} {path}: {body}");
            assert_eq!(body["reason"], "UNKNOWN_QUERY_PARAMETER", "{method} {path}");
            // `stream` is a parameter of some endpoints, unknown to others:
            // either way the first unknown one is named.
            let named = body["metadata"]["parameter"].as_str().unwrap();
            assert!(
                ["stream", "bogus"].contains(&named),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} operations checked");

    // Known parameters, and the token parameter, still work.
    let page = api
        .get_json(&format!("{STREAM_URL}?limit=1&access_token=x"))
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    let streams = api.get_json("/streams?page_size=1&pattern=c*").await;
    assert_eq!(streams["streams"][0]["stream"], "ce");
    let stream = api.get("/streams/ce?access_token=x").await;
    assert_eq!(stream.status().as_u16(), 200);
}

/// The OpenAPI document describes the media types and refusals above.
#[tokio::test]
async fn the_openapi_document_describes_the_formats_and_refusals() {
    let server = TestServer::start().await;
    let doc = server.api().get_json("/openapi.json").await;
    let events = &doc["paths"]["/api/v1/streams/{stream}/events"];
    for media in [
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/cloudevents+protobuf",
        "application/cloudevents-batch+protobuf",
    ] {
        assert!(
            events["post"]["requestBody"]["content"][media].is_object(),
            "{media}"
        );
    }
    for status in ["400", "415"] {
        assert!(
            events["post"]["responses"][status].is_object(),
            "publish {status}"
        );
    }
    let read = &events["get"]["responses"];
    for media in ["application/json", BATCHED] {
        assert!(read["200"]["content"][media].is_object(), "read {media}");
    }
    assert!(read["200"]["headers"]["Riverlog-Next-Sequence"].is_object());
    for status in ["400", "406"] {
        assert!(read[status].is_object(), "read {status}");
    }
    assert!(doc["paths"]["/api/v1/subscribe"]["get"]["responses"]["400"].is_object());
}

/// JSON numbers in `data` keep every digit, in both modes: no 64-bit
/// integer or float in between rounds them.
#[tokio::test]
async fn json_numbers_keep_every_digit() {
    let server = TestServer::start().await;
    let api = server.api();
    let numbers = "[123456789012345678901234567890,0.1000000000000000055511151231257827,-0]";
    let structured = format!(
        r#"{{"specversion":"1.0","id":"d1","source":"/spec","type":"rule","data":{numbers}}}"#
    );
    let response = api.post_as(STREAM_URL, STRUCTURED, structured).await;
    assert_eq!(response.status().as_u16(), 201);
    created(
        binary(&api, "d2")
            .header("content-type", "application/json")
            .body(numbers),
    )
    .await;
    let raw = api
        .request(Method::GET, STREAM_URL)
        .header("accept", BATCHED)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        raw.matches(&format!("\"data\":{numbers}")).count(),
        2,
        "{raw}"
    );
    for event in grpc_events(&server).await {
        assert_eq!(text(&event), numbers);
    }
}
