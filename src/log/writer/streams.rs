//! Stream commands inside the write transaction: create, delete, expire,
//! trim and take, and the `max_streams` check every stream creation makes.

use super::answer::Outcome;
use super::transaction::Transaction;
use crate::log::error::LogError;
use crate::model::names::StreamName;
use crate::model::query::{TakeEnd, TrimUntil};
use crate::model::records::{
    Retention, RetentionPolicy, Sequence, StoredEvent, StreamInfo, UnixMicros,
};

impl Transaction {
    /// Counts a stream about to be created against `max_streams`.
    pub(super) async fn make_room_for_stream(&mut self) -> Outcome<()> {
        let limit = self.limits.max_streams;
        if limit == 0 {
            return Ok(Ok(()));
        }
        let count = match self.stream_count {
            Some(n) => n,
            // Every write transaction holds the log-head lock on PostgreSQL,
            // so no other replica creates streams between count and insert.
            None => self.tx.count_streams().await?,
        };
        if count >= limit {
            self.stream_count = Some(count);
            return Ok(Err(LogError::TooManyStreams { limit }));
        }
        self.stream_count = Some(count + 1);
        Ok(Ok(()))
    }

    pub(super) async fn create(
        &mut self,
        name: &StreamName,
        retention: &Retention,
    ) -> Outcome<StreamInfo> {
        if self.head(name).await?.is_some() {
            return Ok(Err(LogError::StreamAlreadyExists(name.to_string())));
        }
        if let Err(e) = self.make_room_for_stream().await? {
            return Ok(Err(e));
        }
        let head = self.tx.create_stream(name, retention, self.now).await?;
        self.prefetched.insert(head.id);
        self.heads.insert(name.clone(), Some(head));
        Ok(Ok(StreamInfo {
            name: name.clone(),
            event_count: 0,
            first_sequence: 0,
            last_sequence: 0,
            last_position: 0,
            created_at: self.now,
            last_appended_at: None,
            retention: retention.clone(),
            group_count: 0,
        }))
    }

    pub(super) async fn expire(
        &mut self,
        name: &StreamName,
        cutoff: UnixMicros,
    ) -> Outcome<Option<u64>> {
        // Read in the transaction: an append earlier in this very batch
        // counts as activity.
        let idle = match self.head(name).await? {
            None => false,
            Some(head) => head.last_appended_at.unwrap_or(head.created_at) < cutoff,
        };
        if !idle {
            return Ok(Ok(None));
        }
        Ok(self.delete(name).await?.map(Some))
    }

    pub(super) async fn delete(&mut self, name: &StreamName) -> Outcome<u64> {
        let Some(head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let removed = self.tx.delete_stream(head.id).await?;
        self.heads.insert(name.clone(), None);
        if let Some(n) = self.stream_count.as_mut() {
            *n = n.saturating_sub(1);
        }
        Ok(Ok(removed))
    }

    /// Trims from the front. Events still pending in a group are first
    /// dead-lettered with reason `trimmed`: no group is left holding an
    /// entry whose event cannot be read.
    pub(super) async fn trim(&mut self, name: &StreamName, until: TrimUntil) -> Outcome<u64> {
        let Some(mut head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let Some(cutoff) = self.tx.trim_cutoff(head.id, until).await? else {
            return Ok(Ok(0));
        };
        self.dead_letter_pending_through(&head, cutoff).await?;
        let removed = self.tx.trim_through(head.id, cutoff).await?;
        if removed > 0 {
            head.event_count = head.event_count.saturating_sub(removed);
            self.set_head(head);
        }
        Ok(Ok(removed))
    }

    /// Trims, under the `interest` and `work_queue` policies, the events
    /// below every group's ack floor: acked or dead-lettered by all of
    /// them. Read inside the transaction, so a seek or a new group in the
    /// same batch counts. An event acked out of order waits until the
    /// floor passes it.
    pub(super) async fn trim_consumed(&mut self, name: &StreamName) -> Outcome<u64> {
        let Some(head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        if head.policy == RetentionPolicy::Limits {
            return Ok(Ok(0));
        }
        self.flush().await?;
        let mut floor: Option<Sequence> = None;
        for group in self.tx.stream_groups(&head).await? {
            let acked = match self.tx.lowest_pending(group.id).await? {
                Some(lowest) => lowest.saturating_sub(1),
                None => group.cursor,
            };
            floor = Some(floor.map_or(acked, |f| f.min(acked)));
        }
        let floor = match (floor, head.policy) {
            (Some(floor), _) => floor,
            // No group: nothing is of interest; a work queue waits for one.
            (None, RetentionPolicy::Interest) => head.last_sequence,
            (None, _) => return Ok(Ok(0)),
        };
        // Nothing is pending at or below the floor, so the trim has
        // nothing to dead-letter.
        self.trim(name, TrimUntil::BeforeSequence(floor.saturating_add(1)))
            .await
    }

    pub(super) async fn forget_removed_ids(
        &mut self,
        name: &StreamName,
        before: UnixMicros,
    ) -> Outcome<u64> {
        let Some(head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        Ok(Ok(self.tx.forget_removed_ids(head.id, before).await?))
    }

    pub(super) async fn take(
        &mut self,
        name: &StreamName,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Outcome<Vec<StoredEvent>> {
        let Some(mut head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let taken = self.tx.take(&head, end, limit, max_bytes).await?;
        if !taken.is_empty() {
            // Taken means handled: entries of them in groups are settled.
            let sequences: Vec<_> = taken.iter().map(|e| e.sequence).collect();
            self.flush_group_writes().await?;
            for group in self.tx.stream_groups(&head).await? {
                self.hold_finished(group.id, &sequences);
            }
            head.event_count = head.event_count.saturating_sub(taken.len() as u64);
            self.set_head(head);
        }
        Ok(Ok(taken))
    }
}
