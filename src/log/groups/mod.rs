//! Consumer groups: a cursor over one stream plus a pending-entries list
//! (PEL), shared by the group's consumers with at-least-once delivery.
//!
//! Every change to a group (creating it, delivering, acking, nacking,
//! claiming, dead-lettering) is a command of the group-commit writer
//! (`writer::GroupCommand`), so it batches with everything else and sees a
//! consistent log. The operations here parse the request, queue the
//! command and wake whoever waits for it:
//! - `admin`: create, describe, list and delete groups; remove consumers.
//! - `delivery`: Fetch, and the asking, waiting and giving back it shares
//!   with `consume` (the Consume stream).
//! - `settlement`: Ack, Nack, Claim and ListPending.
//! - `signals`: the in-memory wake-ups and connected consumers per group.
//! - `sampling`: lag and pending counts for the metrics.
//!
//! The records groups and checkpoints are stored and reported as live in
//! [`crate::model::groups`] and are re-exported here.

mod admin;
mod consume;
mod delivery;
mod sampling;
mod settlement;
mod signals;

pub use admin::CreateGroup;
pub use consume::ConsumeItem;
pub(crate) use sampling::sample_metrics;
pub use settlement::MAX_SEQUENCES_PER_CALL;
pub(crate) use signals::GroupSignals;

pub use crate::model::groups::{
    Checkpoint, CheckpointAt, CheckpointOwner, ConsumerRecord, GroupRecord, GroupSettings,
    GroupStart, GroupState, PendingEntry, PendingQuery, PendingSummary,
};

use std::time::Duration;

use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::{Sequence, StoredEvent, UnixMicros};

/// Default redelivery timeout.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deliveries before dead-lettering.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// Default credit of a Consume stream.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;
/// Largest credit or fetch count accepted.
pub const MAX_DELIVERY_BATCH: u32 = 1000;
/// Suffix of the default dead-letter stream.
pub const DEAD_LETTER_SUFFIX: &str = ":dlq";

/// Group state plus what only the running server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Stored state.
    pub state: GroupState,
    /// Consumers with an open Consume stream here.
    pub connected: Vec<String>,
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
    /// should look again then.
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

/// The outcome of Ack or Nack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Entries acked or nacked.
    pub settled: u64,
    /// Sequences that were not pending.
    pub not_pending: Vec<Sequence>,
}
