//! Consumer-group and checkpoint records, as storage keeps them and the
//! domain reports them.

use std::time::Duration;

use super::names::{CheckpointName, ConsumerName, GroupName, StreamName};
use super::records::{Position, Sequence, StoredEvent, UnixMicros};

/// Where a new group starts, or where a seek moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupStart {
    /// The oldest retained event.
    #[default]
    Earliest,
    /// Only events appended after creation.
    Latest,
    /// The first event with at least this sequence.
    Sequence(Sequence),
    /// The first event recorded at or after this time.
    Time(UnixMicros),
}

impl std::str::FromStr for GroupStart {
    type Err = String;

    /// `earliest`, `latest`, a sequence number or an RFC 3339 time, as
    /// the CLI and the HTTP API take a start.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(Self::Sequence)
                .map_err(|_| format!("{s:?}: sequence out of range")),
            _ => UnixMicros::parse_rfc3339(s).map(Self::Time).ok_or_else(|| {
                format!("{s:?}: use earliest, latest, a sequence number or an RFC 3339 time")
            }),
        }
    }
}

/// Settings of a new group, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// Where it starts.
    pub start: GroupStart,
    /// Redelivery timeout.
    pub ack_timeout: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u32,
    /// Where dead letters go.
    pub dead_letter_stream: StreamName,
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Backend row id.
    pub id: i64,
    /// Row id of the stream.
    pub stream_id: i64,
    /// The stream.
    pub stream: StreamName,
    /// Group name.
    pub name: GroupName,
    /// Redelivery timeout.
    pub ack_timeout: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u32,
    /// Where dead letters go.
    pub dead_letter_stream: StreamName,
    /// Highest sequence handed out.
    pub cursor: Sequence,
    /// Creation time.
    pub created_at: UnixMicros,
}

/// One pending entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The event's sequence.
    pub sequence: Sequence,
    /// Consumer holding it.
    pub consumer: String,
    /// Deliveries so far.
    pub delivery_count: u32,
    /// Last delivery time.
    pub delivered_at: UnixMicros,
    /// When it may be delivered again.
    pub deliverable_at: UnixMicros,
}

/// A consumer as the group knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Consumer name.
    pub name: String,
    /// Its pending entries.
    pub pending: u64,
    /// Last fetch, consume or claim.
    pub last_seen_at: UnixMicros,
}

/// Everything GetGroup reports, as storage knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group.
    pub group: GroupRecord,
    /// Its consumers in name order.
    pub consumers: Vec<ConsumerRecord>,
    /// Pending entries in total.
    pub pending: u64,
    /// Lowest pending sequence, if any.
    pub lowest_pending: Option<Sequence>,
    /// Retained events past the cursor.
    pub lag: u64,
}

/// A filter of ListPending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingQuery {
    /// Only this consumer's entries.
    pub consumer: Option<String>,
    /// Only entries delivered at or before this time.
    pub delivered_before: Option<UnixMicros>,
    /// Only sequences above this.
    pub after_sequence: Sequence,
    /// Most entries.
    pub limit: u32,
}

/// The summary of a group's pending entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingSummary {
    /// Pending entries.
    pub count: u64,
    /// Lowest pending sequence.
    pub lowest: Option<Sequence>,
    /// Highest pending sequence.
    pub highest: Option<Sequence>,
    /// Counts per consumer, in name order (storage also counts entries held
    /// by no one under `""`; the domain leaves those out).
    pub consumers: Vec<(String, u64)>,
}

/// Whose checkpoints these are. Each token has its own, by its configured
/// name, so one tenant cannot read, list or move another's resume point;
/// with auth off every caller is the one shared owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CheckpointOwner(std::sync::Arc<str>);

/// A committed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Who may read and move it.
    pub owner: CheckpointOwner,
    /// Its name.
    pub name: CheckpointName,
    /// Its stream; `None` for a global checkpoint.
    pub stream: Option<StreamName>,
    /// The last processed sequence (0 for global checkpoints).
    pub sequence: Sequence,
    /// The last processed global position.
    pub position: Position,
    /// Commit time.
    pub committed_at: UnixMicros,
}

/// What a checkpoint commit names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointAt {
    /// A sequence of the checkpoint's stream.
    Sequence(Sequence),
    /// A global position.
    Position(Position),
    /// Everything recorded before this time.
    Time(UnixMicros),
}

impl GroupState {
    /// Every sequence up to this is acked or dead-lettered.
    pub fn ack_floor(&self) -> Sequence {
        match self.lowest_pending {
            Some(lowest) => lowest - 1,
            None => self.group.cursor,
        }
    }
}

impl CheckpointOwner {
    /// The owner every caller shares when auth is off (stored as `''`).
    pub fn shared() -> Self {
        Self::default()
    }

    /// The checkpoints of the token named `name`.
    pub fn token(name: &str) -> Self {
        Self(std::sync::Arc::from(name))
    }

    /// The stored owner: the token's name, or `""` when shared.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event.
    pub event: StoredEvent,
    /// 1 on first delivery.
    pub delivery_count: u32,
}

/// What a delivery command handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The deliveries, due redeliveries first, then new events.
    pub deliveries: Vec<Delivery>,
    /// When the next pending entry becomes due, if any: a waiting consumer
    /// should look again then. Only looked up when there are no
    /// deliveries: only a caller left empty-handed waits.
    pub next_due: Option<UnixMicros>,
}

/// Which pending entries a delivery command hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverRequest {
    /// The stream.
    pub stream: StreamName,
    /// The group.
    pub group: GroupName,
    /// The consumer receiving them.
    pub consumer: ConsumerName,
    /// Most deliveries.
    pub count: u32,
    /// For Consume: the consumer's credit; its unacked entries count against it.
    pub max_in_flight: Option<u32>,
    /// Re-read the consumer's own pending entries instead (Redis ID 0).
    pub pending_only: bool,
}

/// Which entries a claim takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTarget {
    /// These sequences (XCLAIM).
    Sequences(Vec<Sequence>),
    /// The oldest idle entries, at most this many (XAUTOCLAIM).
    Oldest(u32),
}

/// Which of a group's dead letters a redrive gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveSelection {
    /// All of them.
    All,
    /// Those at these sequences of the dead-letter stream (inclusive).
    DeadLetterSequences {
        /// The first.
        first: Sequence,
        /// The last.
        last: Sequence,
    },
    /// Those matching a filter on their type, source and subject (which
    /// are the original event's).
    Filter(crate::model::filter::EventFilter),
}

/// The outcome of a redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Dead letters given back to the group (removed from the dead-letter
    /// stream).
    pub redriven: u64,
    /// Dead-letter sequences whose original event is no longer in the
    /// stream (trimmed, taken, expired): not given back, and kept.
    pub origin_gone: Vec<Sequence>,
    /// More dead letters of the selection remain: call again.
    pub more: bool,
}

/// The outcome of Ack or Nack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Entries acked or nacked.
    pub settled: u64,
    /// Sequences that were not pending.
    pub not_pending: Vec<Sequence>,
}
