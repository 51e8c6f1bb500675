//! A published event's bytes (`riverlog.v1.CloudEvent` in protobuf) through
//! the path gRPC `Publish` takes: decoded as the `EventPayload` of a
//! `PublishRequest`, decoded as a CloudEvent, the call's trace context
//! attached, size-checked and validated (`src/proto/payload.rs`,
//! `src/api/convert.rs`, `src/api/trace_context.rs`, `src/log/event.rs`);
//! then what readers do with an accepted event: render it as CloudEvents
//! JSON (HTTP reads, SSE, the CLI).
//!
//! Input: one flag byte (bit 0: the call carries a `traceparent`), then the
//! event's protobuf encoding.
//!
//! Checked, as the code documents it:
//! - `EventPayload` has the wire format of `CloudEvent`: whatever decodes as
//!   a `CloudEvent` decodes as a payload, the payload's bytes decode to the
//!   same event, and they re-encode verbatim;
//! - a `PublishRequest` carrying the bytes decodes to the same payload;
//! - an accepted event has `specversion` 1.0, non-empty `id`, `source` and
//!   `type` without control characters, and its subject is its `subject`;
//! - a trace context attached to an event shows up in its decoding.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use riverlog::fuzzing::publish_event;
use riverlog::proto::cloudevent::cloud_event::cloud_event_attribute_value::Attr;
use riverlog::proto::v1::RecordedEvent;
use riverlog::proto::views::event_json;
use riverlog::proto::{CloudEvent, EventPayload};
use riverlog::service::trace_context::TraceContext;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let trace = (flags & 1 == 1).then(|| {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static(TRACEPARENT));
        TraceContext::from_headers(&headers).expect("a valid traceparent")
    });

    // The same bytes decoded alone: as a CloudEvent and as a payload.
    let decoded = CloudEvent::decode(wire);
    let alone = <EventPayload as Message>::decode(wire);
    if let Ok(event) = &decoded {
        let alone = alone.as_ref().expect("a CloudEvent decodes as a payload");
        assert_eq!(
            alone.decode().as_ref(),
            Ok(event),
            "the payload keeps the event"
        );
    }
    if let Ok(p) = &alone {
        let reencoded = p.encode_to_vec();
        assert_eq!(reencoded.as_slice(), p.encoded().as_ref());
        let again =
            <EventPayload as Message>::decode(reencoded.as_slice()).expect("re-encoding decodes");
        assert_eq!(&again, p, "re-encoding is a fixed point");
    }

    // As the one event of a PublishRequest, as Publish receives it.
    let (payload, validated) = match publish_event(wire, trace.as_ref()) {
        Ok(result) => result,
        // Nested one level deeper than `alone`: only that may differ.
        Err(_) => return,
    };
    assert_eq!(
        alone.as_ref(),
        Ok(&payload),
        "same payload alone and in a request"
    );

    let Ok(event) = validated else {
        return;
    };
    let decoded = decoded.expect("an accepted event decodes");
    assert_eq!(event.id, decoded.id);
    assert_eq!(event.source, decoded.source);
    assert_eq!(event.event_type, decoded.r#type);
    assert_eq!(decoded.spec_version, "1.0");
    for s in [&event.id, &event.source, &event.event_type] {
        assert!(!s.is_empty() && !s.chars().any(char::is_control), "{s:?}");
    }
    let subject = decoded
        .attributes
        .get("subject")
        .and_then(|v| match &v.attr {
            Some(Attr::CeString(s)) => Some(s.as_str()),
            _ => None,
        });
    assert_eq!(event.subject.as_deref(), subject);

    // What is stored: the event, plus the trace context where it had none.
    let stored = CloudEvent::decode(event.payload.clone()).expect("stored payload decodes");
    let attached = event.payload != payload.encoded();
    if trace.is_some() && !decoded.attributes.contains_key("traceparent") {
        assert!(attached || wire.len() > 1 << 19, "trace context attached");
    }
    if attached {
        let tp = stored.attributes.get("traceparent").map(|v| &v.attr);
        assert_eq!(tp, Some(&Some(Attr::CeString(TRACEPARENT.into()))));
    } else {
        assert_eq!(stored, decoded);
    }

    // What every reader of the stream gets.
    let recorded = RecordedEvent {
        stream: "s".into(),
        sequence: 1,
        position: 1,
        recorded_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        event: Some(EventPayload::from_encoded(Bytes::clone(&event.payload))),
    };
    let json = event_json(&recorded);
    assert_eq!(json["id"], event.id.as_str());
    let _ = json.to_string();
});
