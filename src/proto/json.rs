//! The CloudEvents JSON Event Format (v1.0.2) for CloudEvents held in the
//! Protobuf format: what the CLI prints and reads, and what the HTTP side
//! serves and takes in structured and batched mode.
//!
//! How `data` maps (JSON format §3.1), so that an event comes back as it
//! went in:
//! - `data_base64` is binary data, kept as `binary_data`.
//! - `data` with a `datacontenttype` that declares JSON (`*/json`,
//!   `*/*+json`), or with none (the format then implies
//!   `application/json`), is a JSON value, kept in `text_data` as the JSON
//!   document: the string `"123"` is kept as `"123"` with its quotes, the
//!   number `123` as `123`, `null` as `null` (an explicit null payload,
//!   unlike an absent `data`). Numbers keep every digit (serde_json's
//!   `arbitrary_precision`: no f64 in between).
//! - `data` with any other `datacontenttype` must be a string, kept as is.
//!
//! Attributes (JSON format §2.2): booleans, integers (32-bit, no fraction)
//! and strings; `time` is a Timestamp, `dataschema` a URI; a `null`
//! attribute is an absent one. No attribute is added on the way in: an
//! event without `datacontenttype` stays without it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::cloudevent::cloud_event::Data;
use super::{AttributeValue, CloudEvent, CloudEventAttributeValue};
use crate::model::records::UnixMicros;

/// Whether a `datacontenttype` declares JSON-formatted data: its media
/// type without parameters has the form `*/json` or `*/*+json` (JSON
/// format §3.1.1; case-insensitive, as media types are).
pub fn declares_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((kind, subtype)) => {
            !kind.is_empty() && (subtype == "json" || subtype.ends_with("+json"))
        }
        None => false,
    }
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
/// 9999. For the times the log records (`recorded_at`); event times go
/// through [`timestamp`].
pub fn rfc3339(t: UnixMicros) -> String {
    // humantime fails on years past 9999, which `to_string` would turn
    // into a panic.
    let micros = u64::try_from(t.0).unwrap_or(0).min(MAX_RFC3339_MICROS);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    humantime::format_rfc3339_micros(time).to_string()
}

/// First and last second RFC 3339 can write (years 0001 to 9999).
const RFC3339_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A Timestamp attribute as RFC 3339 in UTC with its fractional seconds
/// kept to the nanosecond (none, 3, 6 or 9 digits, whichever is exact),
/// so `2026-11-24T10:00:00.5+02:00` reads back as
/// `2026-11-24T08:00:00.500Z`. Years outside 0001-9999, which RFC 3339
/// cannot write (the log refuses them on publish), are clamped.
pub fn timestamp(t: &prost_types::Timestamp) -> String {
    let mut t = *t;
    t.normalize();
    if !RFC3339_SECONDS.contains(&t.seconds) {
        t.seconds = t
            .seconds
            .clamp(*RFC3339_SECONDS.start(), *RFC3339_SECONDS.end());
        t.nanos = if t.seconds < 0 { 0 } else { 999_999_999 };
    }
    t.to_string()
}

/// The value of an attribute in the JSON format (§2.2).
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::CeBoolean(b) => Value::Bool(*b),
        AttributeValue::CeInteger(i) => Value::from(*i),
        AttributeValue::CeString(s) | AttributeValue::CeUri(s) | AttributeValue::CeUriRef(s) => {
            Value::String(s.clone())
        }
        AttributeValue::CeBytes(b) => Value::String(BASE64.encode(b)),
        AttributeValue::CeTimestamp(t) => Value::String(timestamp(t)),
    }
}

/// The event as a CloudEvents JSON object, plus `extra` attributes (the
/// log's `rlstream`, `rlsequence`, ...). Text data that a JSON
/// `datacontenttype` (or none) declares JSON but that does not parse (only
/// a gRPC publisher can store such) is given as a string.
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
        if let Some(value) = event.attributes[name].attr.as_ref() {
            out.insert(name.clone(), attribute_json(value));
        }
    }
    for (name, value) in extra {
        out.insert((*name).to_owned(), value.clone());
    }
    match &event.data {
        None => {}
        Some(Data::TextData(text)) => {
            let json = string_attribute(event, "datacontenttype")
                .is_none_or(|t| declares_json(&t))
                .then(|| serde_json::from_str(text).ok())
                .flatten();
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
            out.entry("dataschema")
                .or_insert_with(|| Value::String(any.type_url.clone()));
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
        Some(Value::Null) | None => Err(JsonEventError(format!("`{name}` is required"))),
        Some(_) => Err(JsonEventError(format!(
            "`{name}` must be a non-empty string"
        ))),
    }
}

/// An attribute's value from JSON (§2.2): `time` a Timestamp, `dataschema`
/// a URI, `datacontenttype` and `subject` strings; any other string a
/// String (the JSON format cannot tell a URI or a Binary from a String).
fn attribute(name: &str, value: &Value) -> Result<AttributeValue, JsonEventError> {
    let typed = |kind: &str| JsonEventError(format!("`{name}` must be a string ({kind})"));
    Ok(match (name, value) {
        // prost's parser takes any offset and keeps nanoseconds.
        ("time", Value::String(s)) => AttributeValue::CeTimestamp(
            s.parse()
                .map_err(|_| JsonEventError(format!("`time`: {s:?} is not an RFC 3339 time")))?,
        ),
        ("time", _) => return Err(typed("an RFC 3339 time")),
        ("dataschema", Value::String(s)) => AttributeValue::CeUri(s.clone()),
        ("dataschema", _) => return Err(typed("a URI")),
        ("datacontenttype" | "subject", Value::String(s)) => AttributeValue::CeString(s.clone()),
        ("datacontenttype" | "subject", _) => return Err(typed("String")),
        (_, Value::String(s)) => AttributeValue::CeString(s.clone()),
        (_, Value::Bool(b)) => AttributeValue::CeBoolean(*b),
        (_, Value::Number(n)) => match n.as_i64() {
            Some(i) => AttributeValue::CeInteger(i32::try_from(i).map_err(|_| {
                JsonEventError(format!(
                    "`{name}`: {i} is outside the Integer range (32-bit signed)"
                ))
            })?),
            None if n.is_f64() => {
                return Err(JsonEventError(format!(
                    "`{name}`: {n} is not an Integer (no fraction or exponent)"
                )));
            }
            None => {
                return Err(JsonEventError(format!(
                    "`{name}`: {n} is outside the Integer range (32-bit signed)"
                )));
            }
        },
        (_, _) => {
            return Err(JsonEventError(format!(
                "`{name}`: attributes are strings, integers or booleans, not objects or arrays"
            )));
        }
    })
}

/// Reads a CloudEvents JSON object (see the module doc for how `data` and
/// attributes map). Errors name the member at fault.
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
        match (name.as_str(), value) {
            ("id" | "source" | "specversion" | "type" | "data" | "data_base64", _) => continue,
            // JSON format §2.2: null is unset.
            (_, Value::Null) => continue,
            _ => {}
        }
        event.attributes.insert(
            name.clone(),
            CloudEventAttributeValue {
                attr: Some(attribute(name, value)?),
            },
        );
    }
    let data_base64 = object.get("data_base64").filter(|v| !v.is_null());
    match (object.get("data"), data_base64) {
        (Some(_), Some(_)) => {
            return Err(JsonEventError(
                "set `data` or `data_base64`, not both".into(),
            ));
        }
        (None, None) => {}
        (Some(data), None) => {
            event.data = Some(Data::TextData(
                match string_attribute(&event, "datacontenttype") {
                    Some(t) if !declares_json(&t) => match data {
                        Value::String(s) => s.clone(),
                        _ => {
                            return Err(JsonEventError(format!(
                                "`data`: datacontenttype {t:?} does not declare JSON, so \
                                 data must be a string (or use data_base64)"
                            )));
                        }
                    },
                    // The JSON document itself: a string keeps its quotes.
                    _ => data.to_string(),
                },
            ));
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

    fn event(extra: Value) -> Value {
        let mut e = json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    }

    fn text(event: &CloudEvent) -> &str {
        match &event.data {
            Some(Data::TextData(t)) => t,
            other => panic!("not text data: {other:?}"),
        }
    }

    #[test]
    fn json_round_trips_attributes_and_data() {
        let input = event(json!({
            "subject": "order-7", "time": "2026-11-24T10:00:00.123456Z", "priority": 3,
            "urgent": true, "data": {"total": 12.5}
        }));
        let event = from_json(&input).unwrap();
        assert_eq!(text(&event), "{\"total\":12.5}");
        assert!(
            !event.attributes.contains_key("datacontenttype"),
            "nothing is added"
        );
        let back = to_json(&event, &[("rlsequence", json!(4))]);
        let mut expected = input.clone();
        expected["rlsequence"] = json!(4);
        assert_eq!(back, expected);
    }

    #[test]
    fn a_json_string_stays_a_string_and_a_number_a_number() {
        for ct in [
            None,
            Some("application/json"),
            Some("text/json; charset=utf-8"),
            Some("application/vnd.x+json"),
        ] {
            for data in [
                json!("123"),
                json!(123),
                json!(null),
                json!([1, "a"]),
                json!(true),
            ] {
                let mut input = event(json!({"data": data}));
                if let Some(ct) = ct {
                    input["datacontenttype"] = json!(ct);
                }
                let stored = from_json(&input).unwrap();
                assert_eq!(text(&stored), data.to_string(), "{ct:?} {data}");
                assert_eq!(to_json(&stored, &[]), input, "{ct:?} {data}");
            }
        }
        // Absent data is not null data.
        assert_eq!(from_json(&event(json!({}))).unwrap().data, None);
    }

    #[test]
    fn json_numbers_keep_their_digits() {
        // serde_json's arbitrary_precision keeps a number's text: no f64
        // or u64 in between to round it.
        let body = r#"{"specversion":"1.0","id":"e","source":"/s","type":"t",
            "data":[123456789012345678901234567890,0.1000000000000000055511151231257827,-0]}"#;
        let input: Value = serde_json::from_str(body).unwrap();
        let stored = from_json(&input).unwrap();
        assert_eq!(
            text(&stored),
            "[123456789012345678901234567890,0.1000000000000000055511151231257827,-0]"
        );
        assert_eq!(to_json(&stored, &[]).to_string(), input.to_string());
    }

    #[test]
    fn non_json_content_types_take_string_data_only() {
        let input = event(json!({"datacontenttype": "text/plain", "data": "{not json}"}));
        let stored = from_json(&input).unwrap();
        assert_eq!(text(&stored), "{not json}");
        assert_eq!(to_json(&stored, &[]), input);
        let xml = event(json!({"datacontenttype": "application/xml", "data": "123"}));
        assert_eq!(to_json(&from_json(&xml).unwrap(), &[]), xml);
        let err = from_json(&event(json!({"datacontenttype": "text/plain", "data": 5})));
        assert!(err.unwrap_err().0.contains("must be a string"));
        assert!(!declares_json("application/jsonx"));
        assert!(!declares_json("json"));
        assert!(declares_json("Application/JSON"));
    }

    #[test]
    fn nulls_are_absent_attributes() {
        let stored = from_json(&event(json!({"subject": null, "time": null, "x": null}))).unwrap();
        assert!(stored.attributes.is_empty());
        assert_eq!(
            from_json(&event(json!({"data_base64": null})))
                .unwrap()
                .data,
            None
        );
        let err =
            from_json(&json!({"specversion": "1.0", "id": null, "source": "/s", "type": "t"}));
        assert_eq!(err.unwrap_err().0, "`id` is required");
    }

    #[test]
    fn times_keep_their_fraction_in_utc() {
        for (input, output) in [
            ("2026-11-24T12:00:00+02:00", "2026-11-24T10:00:00Z"),
            ("2026-11-24T10:00:00.5Z", "2026-11-24T10:00:00.500Z"),
            (
                "2026-11-24T10:00:00.123456789Z",
                "2026-11-24T10:00:00.123456789Z",
            ),
            ("1960-01-01T00:00:00.000001Z", "1960-01-01T00:00:00.000001Z"),
        ] {
            let stored = from_json(&event(json!({"time": input}))).unwrap();
            assert_eq!(to_json(&stored, &[])["time"], output, "{input}");
        }
        let beyond = prost_types::Timestamp {
            seconds: i64::MAX / 2,
            nanos: 0,
        };
        assert_eq!(timestamp(&beyond), "9999-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(UnixMicros(i64::MAX)), "9999-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(UnixMicros(i64::MIN)), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn extension_types_map_as_the_format_says() {
        let stored = from_json(&event(json!({
            "flag": false, "count": -2147483648, "name": "x", "dataschema": "https://s/x"
        })))
        .unwrap();
        let attr = |n: &str| stored.attributes[n].attr.clone().unwrap();
        assert_eq!(attr("flag"), AttributeValue::CeBoolean(false));
        assert_eq!(attr("count"), AttributeValue::CeInteger(i32::MIN));
        assert_eq!(attr("name"), AttributeValue::CeString("x".into()));
        assert_eq!(
            attr("dataschema"),
            AttributeValue::CeUri("https://s/x".into())
        );
        let bytes = CloudEvent {
            attributes: [(
                "b".to_string(),
                CloudEventAttributeValue {
                    attr: Some(AttributeValue::CeBytes(vec![0, 255])),
                },
            )]
            .into(),
            ..stored
        };
        assert_eq!(to_json(&bytes, &[])["b"], "AP8=");
        for (value, why) in [
            (json!(2147483648u64), "outside the Integer range"),
            (json!(1.5), "not an Integer"),
            (json!(1.0), "not an Integer"),
            (json!({"a": 1}), "not objects or arrays"),
        ] {
            let err = from_json(&event(json!({"x": value}))).unwrap_err();
            assert!(err.0.contains(why), "{value}: {}", err.0);
        }
        let err = from_json(&event(json!({"time": 5}))).unwrap_err();
        assert!(err.0.contains("`time` must be a string"), "{}", err.0);
    }

    #[test]
    fn binary_data_is_data_base64() {
        let input = event(json!({"data_base64": "AAEC"}));
        let stored = from_json(&input).unwrap();
        assert_eq!(stored.data, Some(Data::BinaryData(vec![0, 1, 2])));
        assert_eq!(to_json(&stored, &[]), input);
        let err = from_json(&event(json!({"data": 1, "data_base64": "AA=="}))).unwrap_err();
        assert!(err.0.contains("not both"));
        assert!(from_json(&event(json!({"data_base64": "!!"}))).is_err());
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let err = from_json(&json!({"id": "x", "source": "/s", "type": "t"})).unwrap_err();
        assert_eq!(err.0, "`specversion` is required");
        assert!(from_json(&json!([1, 2])).is_err());
    }
}
