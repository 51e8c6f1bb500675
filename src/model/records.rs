//! Value types the domain and the storage trait share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::names::StreamName;

/// A stream's per-stream position (1, 2, 3, ...).
pub type Sequence = u64;
/// A global, commit-ordered log position.
pub type Position = u64;

/// Microseconds since the Unix epoch: the log's clock resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    /// Parses an RFC 3339 time with any UTC offset (`Z`, `+02:00`).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t: prost_types::Timestamp = s.parse().ok()?;
        Some(Self::from_parts(t.seconds, t.nanos))
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self(micros)
    }

    /// From seconds and nanoseconds, as in `google.protobuf.Timestamp`;
    /// saturates at the ends of the range.
    pub fn from_parts(seconds: i64, nanos: i32) -> Self {
        // The sum saturates, not the product: the last second before
        // `i64::MIN` microseconds still holds times `to_parts` splits.
        let micros = i128::from(seconds) * 1_000_000 + i128::from(nanos / 1_000);
        Self(i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX }))
    }

    /// Splits into seconds and nanoseconds.
    pub fn to_parts(self) -> (i64, i32) {
        let secs = self.0.div_euclid(1_000_000);
        let nanos = (self.0.rem_euclid(1_000_000) * 1_000) as i32;
        (secs, nanos)
    }

    /// This time minus `d`, saturating.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

/// Retention rules of a stream; `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many events.
    pub max_events: Option<u64>,
    /// Drop events older than this.
    pub max_age: Option<Duration>,
    /// Delete the stream after this long without appends.
    pub ttl: Option<Duration>,
    /// What else removes events: only the limits above, or the stream's
    /// consumer groups acking them. Fixed when the stream is created.
    pub policy: RetentionPolicy,
    /// How long after an event was recorded its id still answers a
    /// republish as `duplicate` once the event itself was removed (trim,
    /// retention, take); `None`: as long as the stream exists.
    pub dedup_window: Option<Duration>,
}

/// Which events a stream keeps besides its limits, after NATS JetStream's
/// retention policies (`LimitsPolicy`, `InterestPolicy`, `WorkQueuePolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RetentionPolicy {
    /// Only `max_events`, `max_age` and explicit trims remove events.
    #[default]
    Limits,
    /// An event is also removed once every consumer group of the stream
    /// has acked it (its ack floor passed it); with no group, nothing is
    /// of interest and events are removed at the next retention pass.
    Interest,
    /// As `Interest` with at most one group: an event is removed once that
    /// group acked it. A stream without a group keeps its events.
    WorkQueue,
}

impl RetentionPolicy {
    /// The name stored and shown in JSON (`limits`, `interest`,
    /// `work_queue`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limits => "limits",
            Self::Interest => "interest",
            Self::WorkQueue => "work_queue",
        }
    }
}

impl std::str::FromStr for RetentionPolicy {
    type Err = String;

    /// Parses `limits`, `interest` or `work_queue` (also with `-`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "limits" => Ok(Self::Limits),
            "interest" => Ok(Self::Interest),
            "work_queue" | "work-queue" => Ok(Self::WorkQueue),
            other => Err(format!(
                "unknown retention policy {other:?}: expected limits, interest or work_queue"
            )),
        }
    }
}

/// An event as stored: what reads filter and order by, plus the encoded
/// CloudEvent, shared by reference among every reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Stream the event belongs to.
    pub stream: StreamName,
    /// Sequence within the stream.
    pub sequence: Sequence,
    /// Global position.
    pub position: Position,
    /// When the log committed it.
    pub recorded_at: UnixMicros,
    /// CloudEvent `id`.
    pub id: String,
    /// CloudEvent `type`.
    pub event_type: String,
    /// CloudEvent `source`.
    pub source: String,
    /// CloudEvent `subject`, if any.
    pub subject: Option<String>,
    /// The protobuf-encoded CloudEvent.
    pub payload: Bytes,
}

/// What the log knows about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stream name.
    pub name: StreamName,
    /// Retained events.
    pub event_count: u64,
    /// Oldest retained sequence, 0 when empty.
    pub first_sequence: Sequence,
    /// Last sequence ever assigned, 0 when none.
    pub last_sequence: Sequence,
    /// Position of the stream's last appended event, 0 when none.
    pub last_position: Position,
    /// Creation time.
    pub created_at: UnixMicros,
    /// Time of the last append, if any.
    pub last_appended_at: Option<UnixMicros>,
    /// Retention rules.
    pub retention: Retention,
    /// Consumer groups on the stream.
    pub group_count: u32,
}

/// How many of `events` fit in `budget` payload bytes: at least one, so a
/// single large event always makes progress.
pub fn fitting(events: &[StoredEvent], budget: usize) -> usize {
    let mut total = 0usize;
    events
        .iter()
        .position(|e| {
            total = total.saturating_add(e.payload.len());
            total > budget
        })
        .map_or(events.len(), |over| over.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(n: usize) -> StoredEvent {
        StoredEvent {
            stream: StreamName::parse("s").unwrap(),
            sequence: 1,
            position: 1,
            recorded_at: UnixMicros(0),
            id: String::new(),
            event_type: String::new(),
            source: String::new(),
            subject: None,
            payload: vec![0; n].into(),
        }
    }

    #[test]
    fn fitting_stops_at_the_budget_but_keeps_one() {
        let events = [sized(40), sized(40), sized(40)];
        assert_eq!(fitting(&events, 100), 2);
        assert_eq!(fitting(&events, 120), 3);
        assert_eq!(fitting(&events, 10), 1);
        assert_eq!(fitting(&[], 10), 0);
    }

    #[test]
    fn micros_round_trip_through_timestamp_parts() {
        for t in [
            0,
            1,
            -1,
            1_700_000_000_123_456,
            -1_500_000,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
        ] {
            let (s, n) = UnixMicros(t).to_parts();
            assert!((0..1_000_000_000).contains(&n));
            assert_eq!(UnixMicros::from_parts(s, n), UnixMicros(t));
        }
        assert_eq!(UnixMicros::from_parts(i64::MAX, 0), UnixMicros(i64::MAX));
        assert_eq!(UnixMicros::from_parts(i64::MIN, 0), UnixMicros(i64::MIN));
        // Found by fuzzing (start_position): year -925157 parsed to a time
        // that did not survive the trip through the wire's Timestamp.
        let t = UnixMicros::parse_rfc3339("-925157-11-24T12:00:00.1249Z").unwrap();
        let (s, n) = t.to_parts();
        assert_eq!(UnixMicros::from_parts(s, n), t);
    }
}
