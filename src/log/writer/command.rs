//! What callers ask of the writer: one variant per operation, its inputs
//! named, and the channel its answer goes back on.

use std::time::Duration;

use super::answer::{Reply, refuse};
use crate::log::error::Expectation;
use crate::log::event::NewEvent;
use crate::model::StorageError;
use crate::model::groups::{
    Checkpoint, ClaimTarget, DeliverRequest, Delivered, Delivery, GroupRecord, GroupSettings,
    GroupStart, Redriven, Settled,
};
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::query::{TakeEnd, TrimUntil};
use crate::model::records::{Position, Retention, Sequence, StoredEvent, StreamInfo, UnixMicros};
use crate::storage::ExistingEvent;

/// An append of one publish request.
#[derive(Debug)]
pub struct AppendRequest {
    /// Target stream.
    pub stream: StreamName,
    /// Validated events, in order.
    pub events: Vec<NewEvent>,
    /// Optimistic-concurrency condition.
    pub expected: Expectation,
    /// Create the stream if it does not exist.
    pub auto_create: bool,
    /// Whether the remembered ids of removed events count as duplicates:
    /// yes for publishes (a producer's retry after a trim); no for dead
    /// letters, whose ids are derived from the origin, so the same event
    /// dead-lettered again after its copy was trimmed gets a new copy.
    pub dedup_removed: bool,
}

/// Where one published event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event id.
    pub id: String,
    /// Its sequence.
    pub sequence: Sequence,
    /// Its position.
    pub position: Position,
    /// When it was recorded.
    pub recorded_at: UnixMicros,
    /// Whether it was already in the stream.
    pub duplicate: bool,
}

/// A stored event found by id answers a republish as its duplicate.
impl From<ExistingEvent> for Appended {
    fn from(found: ExistingEvent) -> Self {
        Self {
            id: found.id,
            sequence: found.sequence,
            position: found.position,
            recorded_at: found.recorded_at,
            duplicate: true,
        }
    }
}

/// A stream command for the writer.
pub(super) enum Command {
    Append {
        request: AppendRequest,
        reply: Reply<Vec<Appended>>,
    },
    CreateStream {
        stream: StreamName,
        retention: Retention,
        reply: Reply<StreamInfo>,
    },
    DeleteStream {
        stream: StreamName,
        reply: Reply<u64>,
    },
    /// Deletes the stream if nothing was appended since `cutoff`.
    ExpireStream {
        stream: StreamName,
        cutoff: UnixMicros,
        reply: Reply<Option<u64>>,
    },
    Trim {
        stream: StreamName,
        until: TrimUntil,
        reply: Reply<u64>,
    },
    /// Trims what every group acked, by the stream's retention policy.
    TrimConsumed {
        stream: StreamName,
        reply: Reply<u64>,
    },
    /// Forgets the stream's removed ids of events recorded before `before`.
    ForgetRemovedIds {
        stream: StreamName,
        before: UnixMicros,
        reply: Reply<u64>,
    },
    Take {
        stream: StreamName,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
        reply: Reply<Vec<StoredEvent>>,
    },
    Group(GroupCommand),
    /// Replaces the probe's scratch row with `bytes` bytes, to learn
    /// whether a write of that size succeeds.
    Probe {
        bytes: usize,
        reply: Reply<()>,
    },
}

impl Command {
    pub(super) fn is_probe(&self) -> bool {
        matches!(self, Self::Probe { .. })
    }

    /// Payload bytes the command writes, for bounding a batch.
    pub(super) fn bytes(&self) -> usize {
        match self {
            Self::Append { request, .. } => request.events.iter().map(|e| e.payload.len()).sum(),
            _ => 0,
        }
    }

    pub(super) fn fail(self, error: &StorageError) {
        match self {
            Self::Append { reply, .. } => refuse(reply, error),
            Self::CreateStream { reply, .. } => refuse(reply, error),
            Self::ExpireStream { reply, .. } => refuse(reply, error),
            Self::DeleteStream { reply, .. }
            | Self::Trim { reply, .. }
            | Self::TrimConsumed { reply, .. }
            | Self::ForgetRemovedIds { reply, .. } => refuse(reply, error),
            Self::Take { reply, .. } => refuse(reply, error),
            Self::Group(g) => g.fail(error),
            Self::Probe { reply, .. } => refuse(reply, error),
        }
    }
}

/// Takes back deliveries whose caller went away before the answer reached
/// it (see `EventLog::give_back`).
pub(crate) type GiveBack = Box<dyn FnOnce(Vec<Delivery>) + Send + Sync>;

/// A consumer-group or checkpoint command for the writer.
///
/// Running them in the writer serialises them with appends (a delivery sees
/// every event committed before it) and batches them: the acks and
/// deliveries of many consumers share one commit.
pub(crate) enum GroupCommand {
    Create {
        stream: StreamName,
        group: GroupName,
        settings: GroupSettings,
        reply: Reply<GroupRecord>,
    },
    Delete {
        stream: StreamName,
        group: GroupName,
        reply: Reply<()>,
    },
    DeleteConsumer {
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
        reply: Reply<u64>,
    },
    Deliver {
        request: DeliverRequest,
        reply: Reply<Delivered>,
        give_back: GiveBack,
    },
    Ack {
        stream: StreamName,
        group: GroupName,
        sequences: Vec<Sequence>,
        reply: Reply<Settled>,
    },
    /// Due again after `delay`; with a `holder`, only the entries it holds.
    Nack {
        stream: StreamName,
        group: GroupName,
        holder: Option<ConsumerName>,
        sequences: Vec<Sequence>,
        delay: Duration,
        reply: Reply<Settled>,
    },
    Claim {
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
        min_idle: Duration,
        target: ClaimTarget,
        reply: Reply<Vec<Delivery>>,
        give_back: GiveBack,
    },
    /// Gives back entries handed to a consumer that is gone: (sequence,
    /// delivery count it was handed out with).
    Release {
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
        handed: Vec<(Sequence, u32)>,
        reply: Reply<u64>,
    },
    /// Moves a group's cursor, removing its pending entries; answers the
    /// group and how many entries went.
    Seek {
        stream: StreamName,
        group: GroupName,
        start: GroupStart,
        reply: Reply<(GroupRecord, u64)>,
    },
    /// Gives dead letters a reader chose ((dead-letter sequence, original
    /// position) in `dead_letter_stream`) back to their group.
    Redrive {
        stream: StreamName,
        group: GroupName,
        dead_letter_stream: StreamName,
        chosen: Vec<(Sequence, Position)>,
        reply: Reply<Redriven>,
    },
    /// Dead-letters the group's entries that are due and have used up
    /// their deliveries; answers how many went to the dead-letter stream.
    DeadLetterExhausted {
        stream: StreamName,
        group: GroupName,
        reply: Reply<u64>,
    },
    SaveCheckpoint {
        checkpoint: Checkpoint,
        reply: Reply<Checkpoint>,
    },
}

impl GroupCommand {
    pub(super) fn fail(self, error: &StorageError) {
        match self {
            Self::Create { reply, .. } => refuse(reply, error),
            Self::Seek { reply, .. } => refuse(reply, error),
            Self::Redrive { reply, .. } => refuse(reply, error),
            Self::Delete { reply, .. } => refuse(reply, error),
            Self::DeleteConsumer { reply, .. }
            | Self::Release { reply, .. }
            | Self::DeadLetterExhausted { reply, .. } => {
                refuse(reply, error);
            }
            Self::Deliver { reply, .. } => refuse(reply, error),
            Self::Ack { reply, .. } | Self::Nack { reply, .. } => refuse(reply, error),
            Self::Claim { reply, .. } => refuse(reply, error),
            Self::SaveCheckpoint { reply, .. } => refuse(reply, error),
        }
    }
}
