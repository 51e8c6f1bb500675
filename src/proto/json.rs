//! The CloudEvents JSON format (structured mode) for CloudEvents held in
//! the Protobuf format: what the CLI prints and reads, and what the HTTP
//! side serves.
//!
//! Text data whose `datacontenttype` is JSON (or absent and the text parses
//! as JSON) appears as a JSON value under `data`; other text as a string;
//! binary data as `data_base64`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::cloudevent::cloud_event::Data;
use super::{AttributeValue, CloudEvent, CloudEventAttributeValue};
use crate::model::records::UnixMicros;

/// Whether a content type says JSON (`application/json`, `...+json`).
fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

fn string_attribute(event: &CloudEvent, name: &str) -> Option<String> {
    match event.attributes.get(name)?.attr.as_ref()? {
        AttributeValue::CeString(s) | AttributeValue::CeUri(s) | AttributeValue::CeUriRef(s) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// Last microsecond RFC 3339 can write: its years have four digits.
const MAX_RFC3339_MICROS: u64 = 253_402_300_800_000_000 - 1;

/// Formats microseconds since the epoch as RFC 3339 in UTC, within what it
/// can write: times before 1970 as 1970, times after 9999 as the end of
/// 9999 (event times come from publishers and can be anything).
pub fn rfc3339(t: UnixMicros) -> String {
    // humantime fails on years past 9999, which `to_string` would turn
    // into a panic.
    let micros = u64::try_from(t.0).unwrap_or(0).min(MAX_RFC3339_MICROS);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    humantime::format_rfc3339_micros(time).to_string()
}

/// The event as a CloudEvents JSON object, plus `extra` attributes (the
/// log's `rlstream`, `rlsequence`, ...).
pub fn to_json(event: &CloudEvent, extra: &[(&str, Value)]) -> Value {
    let mut out = Map::new();
    out.insert(
        "specversion".into(),
        Value::String(event.spec_version.clone()),
    );
    out.insert("id".into(), Value::String(event.id.clone()));
    out.insert("source".into(), Value::String(event.source.clone()));
    out.insert("type".into(), Value::String(event.r#type.clone()));
    let mut names: Vec<&String> = event.attributes.keys().collect();
    names.sort();
    for name in names {
        let value = match event.attributes[name].attr.as_ref() {
            None => continue,
            Some(AttributeValue::CeBoolean(b)) => Value::Bool(*b),
            Some(AttributeValue::CeInteger(i)) => Value::from(*i),
            Some(
                AttributeValue::CeString(s)
                | AttributeValue::CeUri(s)
                | AttributeValue::CeUriRef(s),
            ) => Value::String(s.clone()),
            Some(AttributeValue::CeBytes(b)) => Value::String(BASE64.encode(b)),
            Some(AttributeValue::CeTimestamp(t)) => {
                Value::String(rfc3339(UnixMicros::from_parts(t.seconds, t.nanos)))
            }
        };
        out.insert(name.clone(), value);
    }
    for (name, value) in extra {
        out.insert((*name).to_owned(), value.clone());
    }
    match &event.data {
        None => {}
        Some(Data::TextData(text)) => {
            let content_type = string_attribute(event, "datacontenttype");
            let json = match content_type.as_deref() {
                Some(t) if is_json_type(t) => serde_json::from_str(text).ok(),
                None => serde_json::from_str(text).ok(),
                Some(_) => None,
            };
            out.insert(
                "data".into(),
                json.unwrap_or_else(|| Value::String(text.clone())),
            );
        }
        Some(Data::BinaryData(bytes)) => {
            out.insert("data_base64".into(), Value::String(BASE64.encode(bytes)));
        }
        Some(Data::ProtoData(any)) => {
            out.insert(
                "data_base64".into(),
                Value::String(BASE64.encode(&any.value)),
            );
            out.insert("dataschema".into(), Value::String(any.type_url.clone()));
        }
    }
    Value::Object(out)
}

/// Why a JSON object is not a CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonEventError(pub String);

fn required(object: &Map<String, Value>, name: &str) -> Result<String, JsonEventError> {
    match object.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(JsonEventError(format!(
            "`{name}` must be a non-empty string"
        ))),
        None => Err(JsonEventError(format!("`{name}` is required"))),
    }
}

/// Reads a CloudEvents JSON object. `time` becomes a timestamp, numbers
/// integers, booleans booleans; other attributes are strings.
pub fn from_json(value: &Value) -> Result<CloudEvent, JsonEventError> {
    let Value::Object(object) = value else {
        return Err(JsonEventError("a CloudEvent must be a JSON object".into()));
    };
    let mut event = CloudEvent {
        id: required(object, "id")?,
        source: required(object, "source")?,
        spec_version: required(object, "specversion")?,
        r#type: required(object, "type")?,
        ..CloudEvent::default()
    };
    for (name, value) in object {
        let attr = match (name.as_str(), value) {
            ("id" | "source" | "specversion" | "type" | "data" | "data_base64", _) => continue,
            ("time", Value::String(s)) => {
                // prost's parser takes any offset and keeps nanoseconds.
                AttributeValue::CeTimestamp(s.parse().map_err(|_| {
                    JsonEventError(format!("`time`: {s:?} is not an RFC 3339 time"))
                })?)
            }
            (_, Value::String(s)) => AttributeValue::CeString(s.clone()),
            (_, Value::Bool(b)) => AttributeValue::CeBoolean(*b),
            (_, Value::Number(n)) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(i) => AttributeValue::CeInteger(i),
                None => {
                    return Err(JsonEventError(format!(
                        "`{name}`: integer attributes are 32-bit"
                    )));
                }
            },
            (_, Value::Null) => continue,
            (_, _) => {
                return Err(JsonEventError(format!(
                    "`{name}`: attributes are strings, numbers or booleans"
                )));
            }
        };
        event
            .attributes
            .insert(name.clone(), CloudEventAttributeValue { attr: Some(attr) });
    }
    match (object.get("data"), object.get("data_base64")) {
        (Some(_), Some(_)) => {
            return Err(JsonEventError(
                "set `data` or `data_base64`, not both".into(),
            ));
        }
        (Some(Value::String(s)), None) => event.data = Some(Data::TextData(s.clone())),
        (Some(Value::Null) | None, None) => {}
        (Some(other), None) => {
            event.data = Some(Data::TextData(other.to_string()));
            event
                .attributes
                .entry("datacontenttype".into())
                .or_insert_with(|| CloudEventAttributeValue {
                    attr: Some(AttributeValue::CeString("application/json".into())),
                });
        }
        (None, Some(Value::String(b))) => {
            let bytes = BASE64
                .decode(b)
                .map_err(|e| JsonEventError(format!("`data_base64`: {e}")))?;
            event.data = Some(Data::BinaryData(bytes));
        }
        (None, Some(_)) => {
            return Err(JsonEventError("`data_base64` must be a string".into()));
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trips_attributes_and_data() {
        let input = json!({
            "specversion": "1.0", "id": "e-1", "source": "/shop", "type": "order.created",
            "subject": "order-7", "time": "2026-11-24T10:00:00.123456Z", "priority": 3,
            "urgent": true, "data": {"total": 12.5}
        });
        let offset = from_json(&json!({
            "specversion": "1.0", "id": "o", "source": "/s", "type": "t",
            "time": "2026-11-24T12:00:00+02:00"
        }))
        .unwrap();
        assert_eq!(to_json(&offset, &[])["time"], "2026-11-24T10:00:00.000000Z");
        let event = from_json(&input).unwrap();
        assert_eq!(event.id, "e-1");
        assert!(matches!(event.data, Some(Data::TextData(ref t)) if t == "{\"total\":12.5}"));
        let back = to_json(&event, &[("rlsequence", json!(4))]);
        let mut expected = input.clone();
        expected["datacontenttype"] = json!("application/json");
        expected["rlsequence"] = json!(4);
        assert_eq!(back, expected);
    }

    #[test]
    fn times_outside_rfc3339_are_clamped_not_a_panic() {
        assert_eq!(rfc3339(UnixMicros(i64::MAX)), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339(UnixMicros(253_402_300_800_000_000)),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(rfc3339(UnixMicros(i64::MIN)), "1970-01-01T00:00:00.000000Z");
        // A time attribute of year 70700, as the JSON format reads it.
        let event = from_json(&json!({
            "specversion": "1.0", "id": "y", "source": "/s", "type": "t",
            "time": "+70700-06-01"
        }))
        .unwrap();
        assert_eq!(to_json(&event, &[])["time"], "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn binary_and_plain_text_data() {
        let event = from_json(&json!({
            "specversion": "1.0", "id": "b", "source": "/s", "type": "t", "data_base64": "AAEC"
        }))
        .unwrap();
        assert_eq!(event.data, Some(Data::BinaryData(vec![0, 1, 2])));
        assert_eq!(to_json(&event, &[])["data_base64"], "AAEC");

        let text = from_json(&json!({
            "specversion": "1.0", "id": "t", "source": "/s", "type": "t",
            "datacontenttype": "text/plain", "data": "{not json}"
        }))
        .unwrap();
        assert_eq!(to_json(&text, &[])["data"], "{not json}");
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let err = from_json(&json!({"id": "x", "source": "/s", "type": "t"})).unwrap_err();
        assert_eq!(err.0, "`specversion` is required");
        let err = from_json(&json!({
            "specversion": "1.0", "id": "x", "source": "/s", "type": "t", "big": 1u64 << 40
        }))
        .unwrap_err();
        assert!(err.0.contains("32-bit"));
        assert!(from_json(&json!([1, 2])).is_err());
    }
}
