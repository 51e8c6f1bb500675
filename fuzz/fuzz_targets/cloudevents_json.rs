//! The CloudEvents JSON format (`src/proto/json.rs`), as HTTP structured and
//! batched publishes use it: the body parsed as JSON, each object read by
//! `from_json`, then admitted like every published event; and the encoder
//! `to_json`, which serves events back, on what was read.
//!
//! Input: a JSON body; an array is a batch, anything else one event.
//!
//! Checked, as `json.rs` documents it:
//! - what `to_json` writes, `from_json` reads back;
//! - `id`, `source`, `specversion`, `type`, string, URI, boolean and
//!   integer attributes, times within RFC 3339's years (to the
//!   nanosecond), and the data (binary, text or the JSON document) survive
//!   the round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riverlog::fuzzing::admit;
use riverlog::proto::json::{from_json, to_json};
use riverlog::proto::{AttributeValue, CloudEvent, EventPayload};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let items = match &body {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for item in items {
        let Ok(event) = from_json(item) else {
            continue;
        };
        round_trip(&event);
        let _ = admit(EventPayload::from_event(&event), None);
    }
});

fn round_trip(event: &CloudEvent) {
    let json = to_json(event, &[]);
    let _ = json.to_string();
    let back = match from_json(&json) {
        Ok(back) => back,
        Err(e) => panic!("to_json wrote what from_json refuses ({e}): {json}"),
    };
    assert_eq!(back.id, event.id);
    assert_eq!(back.source, event.source);
    assert_eq!(back.spec_version, event.spec_version);
    assert_eq!(back.r#type, event.r#type);
    for (name, value) in &event.attributes {
        let got = back.attributes.get(name).and_then(|v| v.attr.as_ref());
        match value.attr.as_ref() {
            Some(
                v @ (AttributeValue::CeString(_)
                | AttributeValue::CeUri(_)
                | AttributeValue::CeBoolean(_)
                | AttributeValue::CeInteger(_)),
            ) => assert_eq!(got, Some(v), "attribute {name:?}: {json}"),
            Some(AttributeValue::CeTimestamp(t)) => {
                let mut t = *t;
                t.normalize();
                // Years outside 0001-9999 are clamped (`timestamp`).
                if (-62_135_596_800..=253_402_300_799).contains(&t.seconds) {
                    let Some(AttributeValue::CeTimestamp(b)) = got else {
                        panic!("time {name:?} read back as {got:?}: {json}");
                    };
                    assert_eq!(*b, t, "{json}");
                }
            }
            // `from_json` makes no other kind of attribute.
            other => panic!("from_json made {name:?} = {other:?}"),
        }
    }
    assert_eq!(back.data, event.data, "{json}");
}
