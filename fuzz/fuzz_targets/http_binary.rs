//! The CloudEvents HTTP binary mode of `POST /api/v1/streams/{s}/events`
//! (`src/http/publish.rs`): `ce-*` headers and the body to a CloudEvent,
//! then admitted like every published event (with the request's trace
//! context) and rendered as CloudEvents JSON, as readers get it.
//!
//! Input: an HTTP/1-style header block, then a blank line, then the body:
//! `name: value` lines (names are case-insensitive; a line that is not a
//! valid header is left out, as a server would refuse it).
//!
//! Checked, as `publish.rs` documents it: an event is made only with
//! non-empty `ce-id`, `ce-source`, `ce-specversion` and `ce-type`, each
//! sent once; values are unquoted and percent-decoded; `Content-Type`
//! becomes `datacontenttype` and `ce-datacontenttype` is refused; the body
//! is the data, exactly as sent (text or bytes), and JSON when its type
//! says JSON.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use riverlog::fuzzing::{admit, http_binary_event};
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::RecordedEvent;
use riverlog::proto::views::event_json;
use riverlog::proto::{AttributeValue, EventPayload};
use riverlog::service::trace_context::TraceContext;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }

    let event = match http_binary_event(&headers, Bytes::copy_from_slice(body)) {
        Ok(event) => event,
        Err(_) => return,
    };

    for (header, value) in [
        ("ce-id", &event.id),
        ("ce-source", &event.source),
        ("ce-specversion", &event.spec_version),
        ("ce-type", &event.r#type),
    ] {
        assert!(!value.is_empty(), "{header} is required");
        assert_eq!(headers.get_all(header).iter().count(), 1, "{header} repeated");
        let sent = last(&headers, header).expect("a required header");
        if !sent.contains(['%', '"']) {
            assert_eq!(value, sent, "{header}");
        }
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let attr = event
        .attributes
        .get("datacontenttype")
        .and_then(|v| v.attr.as_ref());
    assert!(last(&headers, "ce-datacontenttype").is_none(), "ce-datacontenttype taken");
    match content_type {
        Some(t) => assert_eq!(attr, Some(&AttributeValue::CeString(t.to_owned()))),
        None => assert_eq!(attr, None),
    }
    let json = content_type.is_some_and(riverlog::proto::json::declares_json);
    match &event.data {
        None => assert!(body.is_empty()),
        Some(Data::TextData(text)) => {
            assert_eq!(text.as_bytes(), body);
            if json {
                serde_json::from_str::<serde_json::Value>(text).expect("JSON data is JSON");
            }
        }
        Some(Data::BinaryData(_)) if json => panic!("JSON data kept as bytes"),
        Some(Data::BinaryData(bytes)) => assert_eq!(bytes.as_slice(), body),
        Some(Data::ProtoData(_)) => panic!("binary mode made proto data"),
    }
    if let Some(time) = event.attributes.get("time") {
        let Some(AttributeValue::CeTimestamp(t)) = &time.attr else {
            panic!("ce-time made {time:?}");
        };
        assert!((0..1_000_000_000).contains(&t.nanos), "{t:?}");
    }

    let payload = EventPayload::from_event(&event);
    let trace = TraceContext::from_headers(&headers);
    if let Ok(accepted) = admit(payload, trace.as_ref()) {
        let recorded = RecordedEvent {
            stream: "s".into(),
            sequence: 1,
            position: 1,
            recorded_at: None,
            event: Some(EventPayload::from_encoded(accepted.payload)),
        };
        let json = event_json(&recorded);
        assert_eq!(json["id"], event.id.as_str());
        let _ = json.to_string();
    }
});

/// The last value of a header: the one binary mode keeps.
fn last<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
