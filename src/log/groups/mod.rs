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
    Checkpoint, CheckpointAt, CheckpointOwner, ClaimTarget, ConsumerRecord, DeliverRequest,
    Delivered, Delivery, GroupRecord, GroupSettings, GroupStart, GroupState, PendingEntry,
    PendingQuery, PendingSummary, Settled,
};

use std::time::Duration;

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
