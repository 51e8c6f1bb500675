//! Consumer groups: a cursor over one stream plus a pending-entries list
//! (PEL), shared by the group's consumers with at-least-once delivery.
//!
//! Every change to a group (creating it, delivering, acking, nacking,
//! claiming, dead-lettering) is a command of the group-commit writer
//! (`writer::GroupCommand`), so it batches with everything else and sees a
//! consistent log. The operations here check the caller, check the rest of
//! the request, queue the command and wake whoever waits for it:
//! - `admin`: create, describe, list and delete groups; remove consumers.
//! - `delivery`: Fetch, and the asking, waiting and giving back it shares
//!   with `consume` (the Consume stream).
//! - `settlement`: Ack, Nack, Claim and ListPending.
//! - `signals`: the in-memory wake-ups and connected consumers per group.
//! - `sampling`: lag and pending counts for the metrics.
//! - `dead_letters`: the background pass that dead-letters entries whose
//!   last allowed delivery timed out.
//!
//! The records groups and checkpoints are stored and reported as live in
//! [`crate::model::groups`] and are re-exported here.

mod admin;
mod consume;
pub(crate) mod dead_letters;
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
    Checkpoint, CheckpointAt, CheckpointOwner, ClaimTarget, ConsumerRecord, DeliverRequest,
    Delivered, Delivery, GroupRecord, GroupSettings, GroupStart, GroupState, PendingEntry,
    PendingQuery, PendingSummary, Settled,
};

use std::time::Duration;

use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::Sequence;

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

/// A Fetch request (XREADGROUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The stream.
    pub stream: StreamName,
    /// The group.
    pub group: GroupName,
    /// The consumer receiving the deliveries.
    pub consumer: ConsumerName,
    /// Most deliveries; 0 = 1.
    pub count: u32,
    /// How long to wait for the first delivery.
    pub block: Duration,
    /// Re-read the consumer's own pending entries instead (Redis ID 0).
    pub pending_only: bool,
}

/// A ListPending request (XPENDING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPending {
    /// The stream.
    pub stream: StreamName,
    /// The group.
    pub group: GroupName,
    /// Only this consumer's entries; `None`: everyone's.
    pub consumer: Option<ConsumerName>,
    /// Only entries idle at least this long.
    pub min_idle: Option<Duration>,
    /// Most entries; 0 = default.
    pub limit: u32,
    /// Entries after this sequence (paging).
    pub after_sequence: Sequence,
}

/// A Claim request (XCLAIM / XAUTOCLAIM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The stream.
    pub stream: StreamName,
    /// The group.
    pub group: GroupName,
    /// The consumer taking the entries over.
    pub consumer: ConsumerName,
    /// Only entries idle at least this long.
    pub min_idle: Duration,
    /// These sequences; none: the oldest idle entries, at most `count`.
    pub sequences: Vec<Sequence>,
    /// Most entries when no sequence is named; 0 = 100.
    pub count: u32,
}
