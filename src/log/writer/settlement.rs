//! Settling pending entries inside the write transaction: ack, nack, claim
//! (XCLAIM / XAUTOCLAIM) and the release of deliveries whose caller is gone.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::answer::Outcome;
use super::transaction::Transaction;
use crate::model::groups::{ClaimTarget, Delivery, PendingEntry, Settled};
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::{Sequence, UnixMicros};

impl Transaction {
    /// Nacks pending entries: due again after `delay` (only those `holder`
    /// holds, when given); with a `holder`, an entry on its last allowed
    /// delivery goes to the dead-letter stream at once instead, as no
    /// redelivery would come. Acks are held back instead (see `held`).
    pub(super) async fn nack(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        holder: Option<ConsumerName>,
        sequences: &[Sequence],
        delay: Duration,
    ) -> Outcome<Settled> {
        let (head, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        // It may make entries due now: storage must hold everything before.
        self.flush_group_writes().await?;
        let mut wanted = sequences.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if let Some(consumer) = &holder {
            self.touch(record.id, consumer.as_str());
        }
        let holder = holder.as_ref().map(ConsumerName::as_str);
        // Only a nack naming its consumer dead-letters at once: without one,
        // a late nack of a delivery that timed out could dead-letter the
        // redelivery another consumer is working on.
        let exhausted: Vec<PendingEntry> = match holder {
            None => Vec::new(),
            Some(h) => self
                .tx
                .pending_entries(record.id, &wanted)
                .await?
                .into_iter()
                .filter(|e| e.delivery_count >= record.max_deliveries && e.consumer == h)
                .collect(),
        };
        let mut done: HashSet<Sequence> = exhausted.iter().map(|e| e.sequence).collect();
        let rest: Vec<Sequence> = wanted
            .iter()
            .copied()
            .filter(|s| !done.contains(s))
            .collect();
        let at = self.deadline(delay);
        done.extend(self.tx.defer_pending(record.id, &rest, holder, at).await?);
        self.retire_entries(&head, &record, exhausted).await?;
        let not_pending = wanted.into_iter().filter(|s| !done.contains(s)).collect();
        Ok(Ok(Settled {
            settled: done.len() as u64,
            not_pending,
        }))
    }

    pub(super) async fn claim(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle: Duration,
        target: ClaimTarget,
    ) -> Outcome<Vec<Delivery>> {
        let (head, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        // It reads stored entries by idle time or sequence.
        self.flush_group_writes().await?;
        self.touch(record.id, consumer.as_str());
        let idle_since = UnixMicros(
            self.now
                .0
                .saturating_sub(i64::try_from(min_idle.as_micros()).unwrap_or(i64::MAX)),
        );
        let entries = match target {
            ClaimTarget::Sequences(mut sequences) => {
                // A repeated sequence must not be handed out twice.
                sequences.sort_unstable();
                sequences.dedup();
                self.tx
                    .pending_entries(record.id, &sequences)
                    .await?
                    .into_iter()
                    .filter(|e| e.delivered_at <= idle_since)
                    .collect()
            }
            ClaimTarget::Oldest(count) => {
                self.tx.idle_pending(record.id, idle_since, count).await?
            }
        };
        let mut out = Vec::new();
        self.hand_out(&head, &record, entries, consumer.as_str(), &mut out)
            .await?;
        Ok(Ok(out))
    }

    /// Makes entries handed to `consumer` due now and held by no one, as
    /// if that delivery never happened (its count is taken back). Entries
    /// acked, nacked, claimed or redelivered since are left alone.
    pub(super) async fn release(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        handed: &[(Sequence, u32)],
    ) -> Outcome<u64> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        // It reads stored entries and makes them due now.
        self.flush_group_writes().await?;
        let counts: HashMap<Sequence, u32> = handed.iter().copied().collect();
        let mut sequences: Vec<Sequence> = counts.keys().copied().collect();
        sequences.sort_unstable();
        let released: Vec<PendingEntry> = self
            .tx
            .pending_entries(record.id, &sequences)
            .await?
            .into_iter()
            .filter(|e| {
                e.consumer == consumer.as_str()
                    && counts.get(&e.sequence) == Some(&e.delivery_count)
            })
            .map(|e| PendingEntry {
                consumer: String::new(),
                delivery_count: e.delivery_count.saturating_sub(1),
                deliverable_at: self.now,
                ..e
            })
            .collect();
        self.tx.save_pending(record.id, &released).await?;
        Ok(Ok(released.len() as u64))
    }
}
