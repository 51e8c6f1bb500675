//! Validation of published CloudEvents.

use bytes::Bytes;

use crate::model::records::UnixMicros;

/// The CloudEvents specification version riverlog accepts.
pub const SPEC_VERSION: &str = "1.0";
/// Longest extension attribute name accepted. The spec recommends 20 and
/// requires only the alphabet; 64 leaves room while bounding index keys.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 64;
/// Attribute names that have dedicated fields and must not appear as
/// extension attributes.
const RESERVED: &[&str] = &["id", "source", "specversion", "type", "data", "data_base64"];

/// The value of an optional or extension attribute, by CloudEvents type.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Boolean.
    Boolean(bool),
    /// Integer.
    Integer(i32),
    /// String.
    String(String),
    /// Binary.
    Binary(Vec<u8>),
    /// URI.
    Uri(String),
    /// URI-reference.
    UriRef(String),
    /// Timestamp.
    Timestamp(UnixMicros),
    /// The value's oneof was left unset.
    Missing,
}

/// The context attributes of a CloudEvent as published, before validation.
#[derive(Debug, Clone, Default)]
pub struct EventAttributes {
    /// `id`.
    pub id: String,
    /// `source`.
    pub source: String,
    /// `specversion`.
    pub spec_version: String,
    /// `type`.
    pub event_type: String,
    /// Optional and extension attributes.
    pub extensions: Vec<(String, AttributeValue)>,
}

/// A validated event, ready to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// CloudEvent `id`: the idempotency key within the stream.
    pub id: String,
    /// CloudEvent `type`.
    pub event_type: String,
    /// CloudEvent `source`.
    pub source: String,
    /// CloudEvent `subject`.
    pub subject: Option<String>,
    /// The encoded CloudEvent, stored as is.
    pub payload: Bytes,
}

impl NewEvent {
    /// Checks a CloudEvent against the CloudEvents 1.0 rules riverlog relies
    /// on; `payload` is its protobuf encoding.
    pub fn validate(attrs: EventAttributes, payload: Bytes) -> Result<Self, String> {
        fn has_control(s: &str) -> bool {
            // U+0000-001F and U+007F-009F, the ranges CloudEvents excludes.
            s.chars().any(char::is_control)
        }
        if attrs.spec_version != SPEC_VERSION {
            return Err(format!(
                "spec_version must be {SPEC_VERSION:?}, got {:?}",
                attrs.spec_version
            ));
        }
        for (field, value) in [
            ("id", &attrs.id),
            ("source", &attrs.source),
            ("type", &attrs.event_type),
        ] {
            if value.is_empty() {
                return Err(format!("{field} is required"));
            }
        }
        // CloudEvents forbids control characters in strings, and they hurt
        // here too: SQLite compares text only up to a NUL, and a line break
        // in a type would break SSE framing.
        if let Some(field) = [
            ("id", &attrs.id),
            ("source", &attrs.source),
            ("type", &attrs.event_type),
        ]
        .iter()
        .find_map(|(f, v)| has_control(v).then_some(*f))
        {
            return Err(format!("{field} must not contain control characters"));
        }
        let mut subject = None;
        for (name, value) in attrs.extensions {
            check_attribute_name(&name)?;
            match (name.as_str(), value) {
                (_, AttributeValue::Missing) => {
                    return Err(format!("attribute {name:?} has no value"));
                }
                (_, AttributeValue::Timestamp(t)) if !RFC3339_RANGE.contains(&t.0) => {
                    return Err(format!(
                        "attribute {name:?} is a time RFC 3339 cannot write: years 0001 to 9999"
                    ));
                }
                ("subject", AttributeValue::String(s)) if has_control(&s) => {
                    return Err("subject must not contain control characters".into());
                }
                ("subject", AttributeValue::String(s)) => subject = Some(s),
                ("subject", _) => return Err("attribute \"subject\" must be a string".into()),
                ("time", AttributeValue::Timestamp(_)) => {}
                ("time", AttributeValue::String(s)) if is_rfc3339(&s) => {}
                ("time", _) => {
                    return Err("attribute \"time\" must be a timestamp (RFC 3339)".into());
                }
                ("datacontenttype", AttributeValue::String(_)) => {}
                ("datacontenttype", _) => {
                    return Err("attribute \"datacontenttype\" must be a string".into());
                }
                ("dataschema", AttributeValue::Uri(_) | AttributeValue::String(_)) => {}
                ("dataschema", _) => return Err("attribute \"dataschema\" must be a URI".into()),
                _ => {}
            }
        }
        Ok(Self {
            id: attrs.id,
            event_type: attrs.event_type,
            source: attrs.source,
            subject,
            payload,
        })
    }
}

fn check_attribute_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME_LEN {
        return Err(format!(
            "attribute name {name:?} must be 1-{MAX_ATTRIBUTE_NAME_LEN} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "attribute name {name:?} may only contain lowercase a-z and 0-9"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "attribute {name:?} has its own field and must not be an extension"
        ));
    }
    Ok(())
}

/// Times RFC 3339 can express, in µs since the Unix epoch: years 0001 to
/// 9999 (four digits; CloudEvents' Timestamp type is RFC 3339). Anything
/// else could not be given back in the CloudEvents JSON format.
const RFC3339_RANGE: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000_000..=253_402_300_799_999_999;

fn is_rfc3339(s: &str) -> bool {
    UnixMicros::parse_rfc3339(s).is_some_and(|t| RFC3339_RANGE.contains(&t.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> EventAttributes {
        EventAttributes {
            id: "1".into(),
            source: "/s".into(),
            spec_version: "1.0".into(),
            event_type: "t".into(),
            extensions: vec![],
        }
    }

    fn with(name: &str, value: AttributeValue) -> EventAttributes {
        EventAttributes {
            extensions: vec![(name.into(), value)],
            ..attrs()
        }
    }

    #[test]
    fn minimal_event_is_valid_and_subject_is_extracted() {
        assert!(NewEvent::validate(attrs(), Bytes::new()).is_ok());
        let e = NewEvent::validate(
            with("subject", AttributeValue::String("x".into())),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(e.subject.as_deref(), Some("x"));
    }

    #[test]
    fn required_attributes_and_version_are_enforced() {
        for broken in [
            EventAttributes {
                id: "".into(),
                ..attrs()
            },
            EventAttributes {
                source: "".into(),
                ..attrs()
            },
            EventAttributes {
                event_type: "".into(),
                ..attrs()
            },
            EventAttributes {
                spec_version: "0.3".into(),
                ..attrs()
            },
        ] {
            assert!(NewEvent::validate(broken, Bytes::new()).is_err());
        }
    }

    #[test]
    fn attribute_names_and_types_are_checked() {
        let s = |v: &str| AttributeValue::String(v.into());
        assert!(NewEvent::validate(with("Upper", s("x")), Bytes::new()).is_err());
        assert!(NewEvent::validate(with("with_underscore", s("x")), Bytes::new()).is_err());
        assert!(NewEvent::validate(with("id", s("x")), Bytes::new()).is_err());
        assert!(
            NewEvent::validate(with("subject", AttributeValue::Integer(1)), Bytes::new()).is_err()
        );
        assert!(NewEvent::validate(with("time", s("yesterday")), Bytes::new()).is_err());
        assert!(NewEvent::validate(with("time", s("2026-11-24T09:00:00Z")), Bytes::new()).is_ok());
        // RFC 3339 has four-digit years.
        for t in [253_402_300_800_000_000, -62_135_596_800_000_001, i64::MAX] {
            let err = NewEvent::validate(
                with("time", AttributeValue::Timestamp(UnixMicros(t))),
                Bytes::new(),
            )
            .unwrap_err();
            assert!(err.contains("0001 to 9999"), "{err}");
        }
        for t in [253_402_300_799_999_999, -62_135_596_800_000_000] {
            assert!(
                NewEvent::validate(
                    with("time", AttributeValue::Timestamp(UnixMicros(t))),
                    Bytes::new()
                )
                .is_ok()
            );
        }
        assert!(
            NewEvent::validate(with("time", s("+70700-06-01T00:00:00Z")), Bytes::new()).is_err()
        );
        assert!(NewEvent::validate(with("ext1", AttributeValue::Missing), Bytes::new()).is_err());
        assert!(NewEvent::validate(with("traceparent", s("00-ab-cd-01")), Bytes::new()).is_ok());
        assert!(NewEvent::validate(with("subject", s("a\0b")), Bytes::new()).is_err());
        let nul_type = EventAttributes {
            event_type: "a\0b".into(),
            ..attrs()
        };
        assert!(NewEvent::validate(nul_type, Bytes::new()).is_err());
        let broken_type = EventAttributes {
            event_type: "a\nid: 9".into(),
            ..attrs()
        };
        assert!(NewEvent::validate(broken_type, Bytes::new()).is_err());
        assert!(NewEvent::validate(with("subject", s("a\tb")), Bytes::new()).is_err());
    }
}
