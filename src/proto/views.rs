//! JSON views of the wire messages, shared by the CLI's `--json` output and
//! the HTTP API: events in the CloudEvents JSON format with the log's
//! extensions (`rlstream`, `rlsequence`, `rlposition`, `rlrecordedtime`),
//! streams, groups and pending entries as plain objects.

use serde_json::{Value, json};

use super::json::{rfc3339, to_json};
use super::v1;
use crate::model::records::UnixMicros;

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

/// Retention rules; absent values mean no limit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RetentionView {
    /// Most events kept.
    pub max_events: Option<u64>,
    /// Oldest event age kept, in seconds.
    pub max_age_seconds: Option<f64>,
    /// Idle time after which the stream is deleted, in seconds.
    pub ttl_seconds: Option<f64>,
    /// `limits`, `interest` or `work_queue`.
    pub policy: &'static str,
    /// How long a removed event's id is remembered, in seconds (absent:
    /// the server's default; absent there too, as long as the stream
    /// exists).
    pub dedup_window_seconds: Option<f64>,
}

/// A stream's description.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StreamView {
    /// Stream name.
    pub stream: String,
    /// Retained events.
    pub event_count: u64,
    /// Oldest retained sequence (0 when empty).
    pub first_sequence: u64,
    /// Last sequence ever assigned.
    pub last_sequence: u64,
    /// Global position of the stream's last event.
    pub last_position: u64,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    /// Time of the last append, RFC 3339.
    pub last_appended_at: Option<String>,
    /// Consumer groups on the stream.
    pub group_count: u32,
    /// Retention rules.
    pub retention: RetentionView,
}

impl From<&v1::StreamInfo> for StreamView {
    fn from(s: &v1::StreamInfo) -> Self {
        let retention = s.retention.as_ref();
        Self {
            stream: s.stream.clone(),
            event_count: s.event_count,
            first_sequence: s.first_sequence,
            last_sequence: s.last_sequence,
            last_position: s.last_position,
            created_at: time(s.created_at.as_ref()),
            last_appended_at: time(s.last_appended_at.as_ref()),
            group_count: s.group_count,
            retention: RetentionView {
                max_events: retention.map(|r| r.max_events).filter(|&n| n > 0),
                max_age_seconds: seconds(retention.and_then(|r| r.max_age.as_ref())),
                ttl_seconds: seconds(retention.and_then(|r| r.ttl.as_ref())),
                policy: match retention.map(|r| r.policy()) {
                    Some(v1::RetentionPolicy::Interest) => "interest",
                    Some(v1::RetentionPolicy::WorkQueue) => "work_queue",
                    _ => "limits",
                },
                dedup_window_seconds: seconds(retention.and_then(|r| r.dedup_window.as_ref())),
            },
        }
    }
}

/// A stream's description as JSON.
pub fn stream_json(s: &v1::StreamInfo) -> Value {
    serde_json::to_value(StreamView::from(s)).unwrap_or_default()
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ConsumerView {
    /// Consumer name.
    pub consumer: String,
    /// Deliveries it holds unacked.
    pub pending: u64,
    /// Seconds since it was last seen.
    pub idle_seconds: Option<f64>,
    /// Whether it has a Consume stream open.
    pub connected: bool,
}

/// A consumer group's description.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct GroupView {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// Delivered, not acked.
    pub pending: u64,
    /// Retained events not delivered yet.
    pub lag: u64,
    /// Highest sequence delivered.
    pub last_delivered_sequence: u64,
    /// Everything at or below it is acked.
    pub ack_floor: u64,
    /// Redelivery timeout, seconds.
    pub ack_timeout_seconds: Option<f64>,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u32,
    /// Where dead letters go.
    pub dead_letter_stream: String,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    /// Its consumers.
    pub consumers: Vec<ConsumerView>,
}

impl From<&v1::GroupInfo> for GroupView {
    fn from(g: &v1::GroupInfo) -> Self {
        Self {
            stream: g.stream.clone(),
            group: g.group.clone(),
            pending: g.pending,
            lag: g.lag,
            last_delivered_sequence: g.last_delivered_sequence,
            ack_floor: g.ack_floor,
            ack_timeout_seconds: seconds(g.ack_timeout.as_ref()),
            max_deliveries: g.max_deliveries,
            dead_letter_stream: g.dead_letter_stream.clone(),
            created_at: time(g.created_at.as_ref()),
            consumers: g
                .consumers
                .iter()
                .map(|c| ConsumerView {
                    consumer: c.consumer.clone(),
                    pending: c.pending,
                    idle_seconds: seconds(c.idle.as_ref()),
                    connected: c.connected,
                })
                .collect(),
        }
    }
}

/// A consumer group's description as JSON.
pub fn group_json(g: &v1::GroupInfo) -> Value {
    serde_json::to_value(GroupView::from(g)).unwrap_or_default()
}

/// A pending entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PendingView {
    /// The event's sequence.
    pub sequence: u64,
    /// Who holds it.
    pub consumer: String,
    /// Deliveries so far.
    pub delivery_count: u32,
    /// Seconds since its last delivery.
    pub idle_seconds: Option<f64>,
}

impl From<&v1::PendingEntry> for PendingView {
    fn from(p: &v1::PendingEntry) -> Self {
        Self {
            sequence: p.sequence,
            consumer: p.consumer.clone(),
            delivery_count: p.delivery_count,
            idle_seconds: seconds(p.idle.as_ref()),
        }
    }
}

/// A pending entry as JSON.
pub fn pending_json(p: &v1::PendingEntry) -> Value {
    serde_json::to_value(PendingView::from(p)).unwrap_or_default()
}
