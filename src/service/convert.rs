//! Conversions between the wire types and the domain.

use std::time::Duration;

use bytes::Bytes;
use prost_types::Timestamp;

use crate::log::groups::{Checkpoint, Delivery, GroupInfo, PendingEntry};
use crate::log::{
    AttributeValue, EventAttributes, EventFilter, LogError, Retention, RetentionPolicy, Start,
    StoredEvent, StreamInfo, UnixMicros,
};
use crate::proto::cloudevent::cloud_event::cloud_event_attribute_value::Attr;
use crate::proto::{EventPayload, v1};

/// A log time as a protobuf timestamp.
pub fn timestamp(t: UnixMicros) -> Timestamp {
    let (seconds, nanos) = t.to_parts();
    Timestamp { seconds, nanos }
}

/// A protobuf timestamp as a log time; `field` names it in errors.
pub fn from_timestamp(t: &Timestamp, field: &'static str) -> Result<UnixMicros, LogError> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(LogError::invalid(field, "nanos must be within 0..1e9"));
    }
    Ok(UnixMicros::from_parts(t.seconds, t.nanos))
}

/// A protobuf duration as a non-negative duration.
pub fn from_duration(d: &prost_types::Duration, field: &'static str) -> Result<Duration, LogError> {
    Duration::try_from(*d).map_err(|_| LogError::invalid(field, "must be a non-negative duration"))
}

/// A duration for the wire.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}

/// Decodes a published event into the attributes the log validates and
/// the encoding it stores.
pub fn event_attributes(
    payload: EventPayload,
    index: usize,
) -> Result<(EventAttributes, Bytes), LogError> {
    let event = payload.decode().map_err(|e| LogError::InvalidEvent {
        index,
        reason: format!("not a valid CloudEvent encoding: {e}"),
    })?;
    let extensions = event
        .attributes
        .into_iter()
        .map(|(name, value)| {
            let value = match value.attr {
                None => AttributeValue::Missing,
                Some(Attr::CeBoolean(b)) => AttributeValue::Boolean(b),
                Some(Attr::CeInteger(i)) => AttributeValue::Integer(i),
                Some(Attr::CeString(s)) => AttributeValue::String(s),
                Some(Attr::CeBytes(b)) => AttributeValue::Binary(b),
                Some(Attr::CeUri(u)) => AttributeValue::Uri(u),
                Some(Attr::CeUriRef(u)) => AttributeValue::UriRef(u),
                Some(Attr::CeTimestamp(t)) => {
                    AttributeValue::Timestamp(UnixMicros::from_parts(t.seconds, t.nanos))
                }
            };
            (name, value)
        })
        .collect();
    let attrs = EventAttributes {
        id: event.id,
        source: event.source,
        spec_version: event.spec_version,
        event_type: event.r#type,
        extensions,
    };
    Ok((attrs, payload.into_encoded()))
}

/// A stored event for the wire; the CloudEvent bytes are shared, not copied.
pub fn recorded_event(e: &StoredEvent) -> v1::RecordedEvent {
    v1::RecordedEvent {
        stream: e.stream.to_string(),
        sequence: e.sequence,
        position: e.position,
        recorded_at: Some(timestamp(e.recorded_at)),
        event: Some(EventPayload::from_encoded(e.payload.clone())),
    }
}

/// Retention rules from the wire; unset or zero values mean no limit.
pub fn retention(r: Option<v1::Retention>) -> Result<Retention, LogError> {
    let Some(r) = r else {
        return Ok(Retention::default());
    };
    let positive =
        |d: Option<prost_types::Duration>, field| -> Result<Option<Duration>, LogError> {
            Ok(d.map(|d| from_duration(&d, field))
                .transpose()?
                .filter(|d| !d.is_zero()))
        };
    let policy = match v1::RetentionPolicy::try_from(r.policy) {
        Ok(v1::RetentionPolicy::Unspecified | v1::RetentionPolicy::Limits) => {
            RetentionPolicy::Limits
        }
        Ok(v1::RetentionPolicy::Interest) => RetentionPolicy::Interest,
        Ok(v1::RetentionPolicy::WorkQueue) => RetentionPolicy::WorkQueue,
        Err(_) => {
            return Err(LogError::invalid(
                "retention.policy",
                format!("unknown retention policy {}", r.policy),
            ));
        }
    };
    Ok(Retention {
        max_events: Some(r.max_events).filter(|&n| n > 0),
        max_age: positive(r.max_age, "retention.max_age")?,
        ttl: positive(r.ttl, "retention.ttl")?,
        policy,
        dedup_window: positive(r.dedup_window, "retention.dedup_window")?,
    })
}

/// A retention policy for the wire.
pub fn retention_policy(p: RetentionPolicy) -> v1::RetentionPolicy {
    match p {
        RetentionPolicy::Limits => v1::RetentionPolicy::Limits,
        RetentionPolicy::Interest => v1::RetentionPolicy::Interest,
        RetentionPolicy::WorkQueue => v1::RetentionPolicy::WorkQueue,
    }
}

/// Stream info for the wire.
pub fn stream_info(s: &StreamInfo) -> v1::StreamInfo {
    v1::StreamInfo {
        stream: s.name.to_string(),
        event_count: s.event_count,
        first_sequence: s.first_sequence,
        last_sequence: s.last_sequence,
        last_position: s.last_position,
        created_at: Some(timestamp(s.created_at)),
        last_appended_at: s.last_appended_at.map(timestamp),
        retention: Some(v1::Retention {
            max_events: s.retention.max_events.unwrap_or(0),
            max_age: s.retention.max_age.map(duration),
            ttl: s.retention.ttl.map(duration),
            policy: retention_policy(s.retention.policy).into(),
            dedup_window: s.retention.dedup_window.map(duration),
        }),
        group_count: s.group_count,
    }
}

/// An event filter from the wire.
pub fn filter(f: Option<v1::EventFilter>) -> Result<EventFilter, LogError> {
    match f {
        None => Ok(EventFilter::default()),
        Some(f) => Ok(EventFilter::new(f.types, f.sources, f.subjects)?),
    }
}

/// A subscription start from the wire; unset means earliest.
pub fn start(s: Option<v1::StartPosition>) -> Result<Start, LogError> {
    use v1::start_position::Start as S;
    Ok(match s.and_then(|s| s.start) {
        None | Some(S::Earliest(_)) => Start::Earliest,
        Some(S::Latest(_)) => Start::Latest,
        Some(S::Sequence(n)) => Start::Sequence(n),
        Some(S::Position(p)) => Start::Position(p),
        Some(S::Time(t)) => Start::Time(from_timestamp(&t, "start.time")?),
        Some(S::Checkpoint(name)) => Start::Checkpoint(name),
    })
}

/// A domain start as the wire's `StartPosition.start`.
pub fn start_position(s: &Start) -> v1::start_position::Start {
    use v1::start_position::Start as S;
    match s {
        Start::Earliest => S::Earliest(()),
        Start::Latest => S::Latest(()),
        Start::Sequence(n) => S::Sequence(*n),
        Start::Position(p) => S::Position(*p),
        Start::Time(t) => S::Time(timestamp(*t)),
        Start::Checkpoint(name) => S::Checkpoint(name.clone()),
    }
}

/// Time since `t`, never negative.
pub fn idle_since(t: UnixMicros, now: UnixMicros) -> prost_types::Duration {
    duration(Duration::from_micros(
        u64::try_from(now.0.saturating_sub(t.0)).unwrap_or(0),
    ))
}

/// A group for the wire.
pub fn group_info(info: &GroupInfo) -> v1::GroupInfo {
    let now = UnixMicros::now();
    let g = &info.state.group;
    v1::GroupInfo {
        stream: g.stream.to_string(),
        group: g.name.to_string(),
        ack_timeout: Some(duration(g.ack_timeout)),
        max_deliveries: g.max_deliveries,
        dead_letter_stream: g.dead_letter_stream.to_string(),
        last_delivered_sequence: g.cursor,
        ack_floor: info.state.ack_floor(),
        pending: info.state.pending,
        lag: info.state.lag,
        consumers: info
            .state
            .consumers
            .iter()
            .map(|c| v1::ConsumerInfo {
                consumer: c.name.clone(),
                pending: c.pending,
                idle: Some(idle_since(c.last_seen_at, now)),
                connected: info.connected.contains(&c.name),
            })
            .collect(),
        created_at: Some(timestamp(g.created_at)),
    }
}

/// A delivery for the wire.
pub fn delivery(d: &Delivery) -> v1::Delivery {
    v1::Delivery {
        event: Some(recorded_event(&d.event)),
        delivery_count: d.delivery_count,
    }
}

/// A pending entry for the wire.
pub fn pending_entry(e: &PendingEntry, now: UnixMicros) -> v1::PendingEntry {
    v1::PendingEntry {
        sequence: e.sequence,
        consumer: e.consumer.clone(),
        idle: Some(idle_since(e.delivered_at, now)),
        delivery_count: e.delivery_count,
    }
}

/// A checkpoint for the wire.
pub fn checkpoint(c: &Checkpoint) -> v1::Checkpoint {
    v1::Checkpoint {
        name: c.name.to_string(),
        stream: c
            .stream
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        sequence: c.sequence,
        position: c.position,
        committed_at: Some(timestamp(c.committed_at)),
    }
}
