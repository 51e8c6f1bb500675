//! `EventPayload`: a CloudEvent kept in its protobuf encoding.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{DecodeContext, WireType, decode_varint, encode_key, encode_varint};
use prost::{DecodeError, Message};

use super::CloudEvent;

/// A `riverlog.v1.CloudEvent` held as its protobuf encoding.
///
/// It has the same wire format as [`CloudEvent`]: decoding captures each
/// field's bytes instead of parsing it, encoding writes them back verbatim.
/// The log stores these bytes once and hands the same `Bytes` to every
/// reader, so delivering an event to N subscribers costs N reference-count
/// increments, not N decode/encode round trips.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EventPayload(Bytes);

impl EventPayload {
    /// Wraps bytes that are a protobuf-encoded CloudEvent.
    pub fn from_encoded(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// Encodes a decoded event.
    pub fn from_event(event: &CloudEvent) -> Self {
        Self(Bytes::from(event.encode_to_vec()))
    }

    /// The encoded event.
    pub fn encoded(&self) -> &Bytes {
        &self.0
    }

    /// Consumes the payload, returning the encoded event.
    pub fn into_encoded(self) -> Bytes {
        self.0
    }

    /// Decodes the event.
    pub fn decode(&self) -> Result<CloudEvent, DecodeError> {
        CloudEvent::decode(self.0.clone())
    }
}

/// Adds a string extension attribute to a protobuf-encoded CloudEvent
/// without decoding it: protobuf merges a map entry appended to a message
/// into the map, so appending the encoded entry is enough. The caller makes
/// sure the event does not already carry the attribute.
pub fn append_string_attribute(encoded: &Bytes, name: &str, value: &str) -> Bytes {
    use super::{AttributeValue, CloudEventAttributeValue};
    let entry = CloudEvent {
        attributes: [(
            name.to_owned(),
            CloudEventAttributeValue {
                attr: Some(AttributeValue::CeString(value.to_owned())),
            },
        )]
        .into(),
        ..CloudEvent::default()
    };
    let mut out = BytesMut::with_capacity(encoded.len() + entry.encoded_len());
    out.extend_from_slice(encoded);
    // Every other field has its default value, so only the map entry is
    // written.
    entry.encode_raw(&mut out);
    out.freeze()
}

/// The value of an extension attribute added by [`rewrite_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// A `ce_string`.
    String(String),
    /// A `ce_integer`.
    Integer(i32),
}

/// Re-encodes a protobuf-encoded CloudEvent under a new id with extension
/// attributes added (replacing any of the same name); everything else is
/// kept. Used for the rare events the log derives from stored ones (dead
/// letters), so the decode/encode cost does not matter.
pub fn rewrite_event(
    encoded: &Bytes,
    id: &str,
    extensions: &[(&str, Extension)],
) -> Result<Bytes, DecodeError> {
    use super::{AttributeValue, CloudEventAttributeValue};
    let mut event = CloudEvent::decode(encoded.clone())?;
    event.id = id.to_owned();
    for (name, value) in extensions {
        let attr = match value {
            Extension::String(s) => AttributeValue::CeString(s.clone()),
            Extension::Integer(i) => AttributeValue::CeInteger(*i),
        };
        event.attributes.insert(
            (*name).to_owned(),
            CloudEventAttributeValue { attr: Some(attr) },
        );
    }
    Ok(Bytes::from(event.encode_to_vec()))
}

impl std::fmt::Debug for EventPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decode() {
            Ok(event) => event.fmt(f),
            Err(_) => write!(f, "EventPayload(<{} undecodable bytes>)", self.0.len()),
        }
    }
}

impl From<CloudEvent> for EventPayload {
    fn from(event: CloudEvent) -> Self {
        Self::from_event(&event)
    }
}

impl Message for EventPayload {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Fields are re-emitted exactly as read: key, then the value in its
        // own wire format. Whatever prost would reject, this rejects too.
        let mut out = BytesMut::from(std::mem::take(&mut self.0));
        let result = match wire_type {
            WireType::Varint => decode_varint(buf).map(|value| {
                encode_key(tag, wire_type, &mut out);
                encode_varint(value, &mut out);
            }),
            WireType::LengthDelimited => {
                let mut value = Bytes::new();
                prost::encoding::bytes::merge(wire_type, &mut value, buf, ctx).map(|()| {
                    encode_key(tag, wire_type, &mut out);
                    encode_varint(value.len() as u64, &mut out);
                    out.put(value);
                })
            }
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let len = if wire_type == WireType::SixtyFourBit {
                    8
                } else {
                    4
                };
                if buf.remaining() < len {
                    // Nothing consumed yet: prost reports the underflow.
                    prost::encoding::skip_field(wire_type, tag, buf, ctx)
                } else {
                    encode_key(tag, wire_type, &mut out);
                    out.put(buf.take(len));
                    Ok(())
                }
            }
            // Groups are not part of proto3 and never appear in a CloudEvent:
            // dropped, as prost skips an unknown field, but refused in place
            // of a CloudEvent field (wrong wire type), as prost refuses it.
            // `CloudEvent`'s own decoder does exactly that.
            WireType::StartGroup | WireType::EndGroup => {
                CloudEvent::default().merge_field(tag, wire_type, buf, ctx)
            }
        };
        self.0 = out.freeze();
        result
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AttributeValue, CloudEventAttributeValue, cloudevent::cloud_event::Data};

    fn sample() -> CloudEvent {
        CloudEvent {
            id: "e-1".into(),
            source: "/tests".into(),
            spec_version: "1.0".into(),
            r#type: "com.example.created".into(),
            attributes: [(
                "subject".to_string(),
                CloudEventAttributeValue {
                    attr: Some(AttributeValue::CeString("order-7".into())),
                },
            )]
            .into(),
            data: Some(Data::TextData("{\"n\":1}".into())),
        }
    }

    #[test]
    fn an_appended_attribute_decodes_as_part_of_the_event() {
        let event = sample();
        let encoded = Bytes::from(event.encode_to_vec());
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let extended = append_string_attribute(&encoded, "traceparent", tp);
        let decoded = CloudEvent::decode(extended).unwrap();
        let mut expected = event;
        expected.attributes.insert(
            "traceparent".into(),
            CloudEventAttributeValue {
                attr: Some(AttributeValue::CeString(tp.into())),
            },
        );
        assert_eq!(decoded, expected);
    }

    /// A message embedding a payload, shaped like `RecordedEvent`.
    #[derive(Clone, PartialEq, Message)]
    struct Wrapper {
        #[prost(uint64, tag = "2")]
        sequence: u64,
        #[prost(message, optional, tag = "5")]
        event: Option<EventPayload>,
    }

    /// The same message with the event decoded.
    #[derive(Clone, PartialEq, Message)]
    struct DecodedWrapper {
        #[prost(uint64, tag = "2")]
        sequence: u64,
        #[prost(message, optional, tag = "5")]
        event: Option<CloudEvent>,
    }

    #[test]
    fn payload_round_trips_through_an_embedding_message() {
        let decoded = DecodedWrapper {
            sequence: 9,
            event: Some(sample()),
        };
        let wire = decoded.encode_to_vec();
        let raw = Wrapper::decode(wire.as_slice()).expect("decodes as payload");
        assert_eq!(raw.event.as_ref().unwrap().decode().unwrap(), sample());
        assert_eq!(raw.encode_to_vec(), wire, "re-encoding is byte-identical");
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let wire = EventPayload::from_event(&sample()).into_encoded();
        for cut in 0..wire.len() {
            let _ = <EventPayload as Message>::decode(&wire[..cut]);
        }
        let full = DecodedWrapper {
            sequence: 1,
            event: Some(sample()),
        }
        .encode_to_vec();
        assert!(Wrapper::decode(&full[..full.len() - 3]).is_err());
    }

    #[test]
    fn a_group_is_rejected_where_prost_rejects_it_and_skipped_elsewhere() {
        let wire = EventPayload::from_event(&sample()).into_encoded().to_vec();
        // A group (start and end tags) in place of field 7, `text_data`:
        // not a CloudEvent encoding.
        let mut bad = wire.clone();
        bad.extend_from_slice(&[0x3b, 0x3c]);
        assert!(CloudEvent::decode(bad.as_slice()).is_err());
        assert!(<EventPayload as Message>::decode(bad.as_slice()).is_err());
        // The same group as unknown field 20: skipped by both.
        let mut unknown = wire.clone();
        unknown.extend_from_slice(&[0xa3, 0x01, 0x08, 0x01, 0xa4, 0x01]);
        assert_eq!(CloudEvent::decode(unknown.as_slice()).unwrap(), sample());
        let payload = <EventPayload as Message>::decode(unknown.as_slice()).unwrap();
        assert_eq!(payload.into_encoded(), wire);
    }

    #[test]
    fn an_overlong_length_is_rejected_like_prost_rejects_it() {
        let mut wire = EventPayload::from_event(&sample()).into_encoded().to_vec();
        // Field 1, length 16, but only one byte follows.
        wire.extend_from_slice(&[0x0a, 0x10, 0x00]);
        assert!(CloudEvent::decode(wire.as_slice()).is_err());
        assert!(<EventPayload as Message>::decode(wire.as_slice()).is_err());
    }
}
