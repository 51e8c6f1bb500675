//! In-memory fan-out of committed batches to live subscriptions.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::model::StoredEvent;

/// One committed append transaction's events, in position order, shared by
/// every subscriber.
pub type CommittedBatch = Arc<Vec<Arc<StoredEvent>>>;

/// Fans committed batches out to live subscriptions.
///
/// A fixed ring of recent batches is shared by all subscribers; one that
/// falls more than the ring behind is told it lagged and re-reads from
/// storage. Publishing never waits for a subscriber.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<CommittedBatch>,
}

impl Hub {
    /// A hub that keeps the last `capacity` batches for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Hands a committed batch to every live subscription.
    pub fn publish(&self, batch: CommittedBatch) {
        // An error only means nobody is listening right now.
        let _ = self.sender.send(batch);
    }

    /// Registers a subscription: it receives every batch published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CommittedBatch> {
        self.sender.subscribe()
    }
}
