//! JSON views of the wire messages, shared by the CLI's `--json` output and
//! the HTTP API: events in the CloudEvents JSON format with the log's
//! extensions (`rlstream`, `rlsequence`, `rlposition`, `rlrecordedtime`),
//! streams, groups and pending entries as plain objects.

use serde_json::{Value, json};

use super::json::{rfc3339, to_json};
use super::v1;
use crate::log::UnixMicros;

/// RFC 3339 of a protobuf timestamp.
pub fn time(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.map(|t| rfc3339(UnixMicros::from_parts(t.seconds, t.nanos)))
}

/// Seconds of a protobuf duration.
pub fn seconds(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

/// A recorded event as CloudEvents JSON with the log's extensions
/// (`rlstream`, `rlsequence`, `rlposition`, `rlrecordedtime`).
pub fn event_json(e: &v1::RecordedEvent) -> Value {
    let extra = [
        ("rlstream", json!(e.stream)),
        ("rlsequence", json!(e.sequence)),
        ("rlposition", json!(e.position)),
        (
            "rlrecordedtime",
            json!(time(e.recorded_at.as_ref()).unwrap_or_default()),
        ),
    ];
    match e.event.as_ref().map(|p| p.decode()) {
        Some(Ok(event)) => to_json(&event, &extra),
        _ => {
            let mut object = serde_json::Map::new();
            for (k, v) in extra {
                object.insert(k.to_owned(), v);
            }
            object.insert("error".into(), json!("undecodable event"));
            Value::Object(object)
        }
    }
}

/// A stream's description.
pub fn stream_json(s: &v1::StreamInfo) -> Value {
    let retention = s.retention.as_ref();
    json!({
        "stream": s.stream,
        "event_count": s.event_count,
        "first_sequence": s.first_sequence,
        "last_sequence": s.last_sequence,
        "last_position": s.last_position,
        "created_at": time(s.created_at.as_ref()),
        "last_appended_at": time(s.last_appended_at.as_ref()),
        "group_count": s.group_count,
        "retention": {
            "max_events": retention.map(|r| r.max_events).filter(|&n| n > 0),
            "max_age_seconds": seconds(retention.and_then(|r| r.max_age.as_ref())),
            "ttl_seconds": seconds(retention.and_then(|r| r.ttl.as_ref())),
        },
    })
}

/// A consumer group's description.
pub fn group_json(g: &v1::GroupInfo) -> Value {
    json!({
        "stream": g.stream,
        "group": g.group,
        "pending": g.pending,
        "lag": g.lag,
        "last_delivered_sequence": g.last_delivered_sequence,
        "ack_floor": g.ack_floor,
        "ack_timeout_seconds": seconds(g.ack_timeout.as_ref()),
        "max_deliveries": g.max_deliveries,
        "dead_letter_stream": g.dead_letter_stream,
        "created_at": time(g.created_at.as_ref()),
        "consumers": g.consumers.iter().map(|c| json!({
            "consumer": c.consumer,
            "pending": c.pending,
            "idle_seconds": seconds(c.idle.as_ref()),
            "connected": c.connected,
        })).collect::<Vec<_>>(),
    })
}

/// A pending entry.
pub fn pending_json(p: &v1::PendingEntry) -> Value {
    json!({
        "sequence": p.sequence,
        "consumer": p.consumer,
        "delivery_count": p.delivery_count,
        "idle_seconds": seconds(p.idle.as_ref()),
    })
}
