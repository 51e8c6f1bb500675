//! In-memory fan-out of committed batches to live subscriptions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::model::records::StoredEvent;

/// One committed transaction's events, in position order, shared by every
/// subscriber.
pub type CommittedBatch = Arc<Vec<Arc<StoredEvent>>>;

/// A receiver fell behind the hub's ring: batches it had not read are gone
/// and it must read them from storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

/// Fans committed batches out to live subscriptions.
///
/// The hub keeps recent batches in a ring bounded by bytes (and count), not
/// per subscriber: however many subscribers stall, the hub holds at most its
/// budget. A subscriber that falls behind the ring learns it lagged and
/// re-reads from storage. Publishing never waits for a subscriber.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    ring: Mutex<Ring>,
    /// Carries the sequence number of the newest batch, to wake receivers.
    newest: watch::Sender<u64>,
    max_bytes: usize,
    max_batches: usize,
}

struct Ring {
    /// Batches with their hub sequence numbers (consecutive) and sizes.
    batches: VecDeque<(u64, CommittedBatch, usize)>,
    /// Sequence number the next batch gets.
    next: u64,
    /// Payload bytes of the batches held.
    bytes: usize,
}

/// About how much memory an event holds: what the hub's and the
/// subscriptions' byte budgets count.
pub(crate) fn event_bytes(e: &StoredEvent) -> usize {
    e.payload.len() + e.id.len() + e.event_type.len() + e.source.len() + 64
}

fn batch_bytes(batch: &CommittedBatch) -> usize {
    batch.iter().map(|e| event_bytes(e)).sum()
}

impl Hub {
    /// A hub holding recent batches up to `max_bytes` and `max_batches`.
    pub fn new(max_bytes: usize, max_batches: usize) -> Self {
        let (newest, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    batches: VecDeque::new(),
                    next: 1,
                    bytes: 0,
                }),
                newest,
                max_bytes,
                max_batches: max_batches.max(1),
            }),
        }
    }

    /// Hands a committed batch to every live subscription.
    pub fn publish(&self, batch: CommittedBatch) {
        let size = batch_bytes(&batch);
        let seq = {
            let mut ring = self.shared.lock();
            let seq = ring.next;
            ring.next += 1;
            ring.bytes += size;
            ring.batches.push_back((seq, batch, size));
            // Evict the oldest, always keeping the newest batch.
            while ring.batches.len() > 1
                && (ring.bytes > self.shared.max_bytes
                    || ring.batches.len() > self.shared.max_batches)
            {
                if let Some((_, _, evicted)) = ring.batches.pop_front() {
                    ring.bytes -= evicted;
                }
            }
            seq
        };
        self.shared.newest.send_replace(seq);
    }

    /// Registers a subscription: it receives every batch published from now on.
    pub fn subscribe(&self) -> HubReceiver {
        let next = self.shared.lock().next;
        HubReceiver {
            shared: self.shared.clone(),
            next,
            newest: self.shared.newest.subscribe(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ring> {
        // The ring is consistent after every statement that touches it, so a
        // panic elsewhere while holding the lock cannot leave it broken.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One subscription's read position in the hub.
pub struct HubReceiver {
    shared: Arc<Shared>,
    /// Hub sequence number of the next batch to hand out.
    next: u64,
    newest: watch::Receiver<u64>,
}

impl HubReceiver {
    /// The next batch, waiting for one to be published. `Err(Lagged)` when
    /// batches were evicted before this receiver read them; the receiver
    /// then continues with the oldest batch still held.
    pub async fn recv(&mut self) -> Result<CommittedBatch, Lagged> {
        loop {
            // Mark the current value seen before looking, so a publish after
            // the look always wakes the wait below.
            self.newest.borrow_and_update();
            {
                let ring = self.shared.lock();
                if let Some(&(oldest, _, _)) = ring.batches.front() {
                    if self.next < oldest {
                        self.next = oldest;
                        return Err(Lagged);
                    }
                    let index = (self.next - oldest) as usize;
                    if let Some((_, batch, _)) = ring.batches.get(index) {
                        self.next += 1;
                        return Ok(batch.clone());
                    }
                }
            }
            // The sender lives as long as the hub's shared state, which this
            // receiver keeps alive: the wait cannot fail.
            let _ = self.newest.changed().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::StreamName;
    use crate::model::records::UnixMicros;

    fn batch(position: u64, payload_bytes: usize) -> CommittedBatch {
        Arc::new(vec![Arc::new(StoredEvent {
            stream: StreamName::parse("s").unwrap(),
            sequence: position,
            position,
            recorded_at: UnixMicros(0),
            id: String::new(),
            event_type: String::new(),
            source: String::new(),
            subject: None,
            payload: vec![0; payload_bytes].into(),
        })])
    }

    #[tokio::test]
    async fn receivers_get_every_batch_published_after_they_subscribed() {
        let hub = Hub::new(1 << 20, 16);
        hub.publish(batch(1, 10));
        let mut rx = hub.subscribe();
        hub.publish(batch(2, 10));
        hub.publish(batch(3, 10));
        assert_eq!(rx.recv().await.unwrap()[0].position, 2);
        assert_eq!(rx.recv().await.unwrap()[0].position, 3);
        let waiting = tokio::spawn(async move { rx.recv().await.map(|b| b[0].position) });
        tokio::task::yield_now().await;
        hub.publish(batch(4, 10));
        assert_eq!(waiting.await.unwrap(), Ok(4));
    }

    #[tokio::test]
    async fn the_ring_is_bounded_by_bytes_and_a_slow_receiver_lags() {
        let hub = Hub::new(1000, 1000);
        let mut slow = hub.subscribe();
        for p in 1..=10 {
            hub.publish(batch(p, 400));
        }
        assert!(hub.shared.lock().bytes <= 1000 + 464);
        assert_eq!(slow.recv().await, Err(Lagged));
        // It resumes with the oldest batch still held.
        let resumed = slow.recv().await.unwrap()[0].position;
        assert!(resumed > 1 && resumed <= 10);
    }

    #[tokio::test]
    async fn one_oversized_batch_is_still_delivered() {
        let hub = Hub::new(100, 10);
        let mut rx = hub.subscribe();
        hub.publish(batch(1, 10_000));
        assert_eq!(rx.recv().await.unwrap()[0].position, 1);
    }
}
