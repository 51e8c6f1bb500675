//! Consumer-group administration inside the write transaction: creating a
//! group at its start, deleting a group or a consumer, and finding the
//! group a command names.

use super::answer::Outcome;
use super::transaction::Transaction;
use crate::log::error::LogError;
use crate::model::groups::{GroupRecord, GroupSettings, GroupStart};
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::{RetentionPolicy, Sequence};
use crate::storage::StreamHead;

impl Transaction {
    /// The stream and group a command names, or the domain error.
    pub(super) async fn group_of(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Outcome<(StreamHead, GroupRecord)> {
        let Some(head) = self.head(stream).await? else {
            return Ok(Err(LogError::StreamNotFound(stream.to_string())));
        };
        match self.find_group(&head, group).await? {
            Some(record) => Ok(Ok((head, record))),
            None => Ok(Err(LogError::GroupNotFound {
                stream: stream.to_string(),
                group: group.to_string(),
            })),
        }
    }

    pub(super) async fn create_group(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        settings: &GroupSettings,
    ) -> Outcome<GroupRecord> {
        let Some(head) = self.head(stream).await? else {
            return Ok(Err(LogError::StreamNotFound(stream.to_string())));
        };
        if self.find_group(&head, group).await?.is_some() {
            return Ok(Err(LogError::GroupAlreadyExists {
                stream: stream.to_string(),
                group: group.to_string(),
            }));
        }
        if head.policy == RetentionPolicy::WorkQueue
            && let Some(existing) = self.tx.stream_groups(&head).await?.first()
        {
            return Ok(Err(LogError::WorkQueueHasGroup {
                stream: stream.to_string(),
                existing: existing.name.to_string(),
            }));
        }
        let cursor = match self.cursor_at(&head, stream, settings.start).await? {
            Ok(cursor) => cursor,
            Err(e) => return Ok(Err(e)),
        };
        let record = self
            .tx
            .create_group(&head, group, settings, cursor, self.now)
            .await?;
        self.remember_group(&record);
        Ok(Ok(record))
    }

    /// The cursor (last sequence counted as delivered) that makes a group
    /// go on from `start`.
    async fn cursor_at(
        &mut self,
        head: &StreamHead,
        stream: &StreamName,
        start: GroupStart,
    ) -> Outcome<Sequence> {
        Ok(Ok(match start {
            GroupStart::Earliest => 0,
            GroupStart::Latest => head.last_sequence,
            // Past the next sequence, the group would skip the events
            // appended before its start (as a subscription would).
            GroupStart::Sequence(s) => {
                let next = head.last_sequence.saturating_add(1);
                let stream = Some(stream.as_str());
                if let Err(e) = LogError::refuse_beyond_head("sequence", s, next, stream, None) {
                    return Ok(Err(e));
                }
                s.saturating_sub(1)
            }
            // A time in the future is simply "from now on". Appends earlier
            // in this batch are recorded before it too: write them first.
            GroupStart::Time(time) => {
                self.flush().await?;
                self.tx.sequence_before_time(head.id, time).await?
            }
        }))
    }

    /// Moves a group's cursor to `start`, removing its pending entries:
    /// afterwards it is as if every event up to the cursor had been acked
    /// and none after it delivered. Returns the group and how many pending
    /// entries went.
    pub(super) async fn seek_group(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        start: GroupStart,
    ) -> Outcome<(GroupRecord, u64)> {
        let (head, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let cursor = match self.cursor_at(&head, stream, start).await? {
            Ok(cursor) => cursor,
            Err(e) => return Ok(Err(e)),
        };
        // Deliveries and acks held back came first; the seek replaces them.
        self.flush_group_writes().await?;
        let removed = self.tx.clear_pending(record.id).await?;
        self.tx.save_group_cursor(record.id, cursor).await?;
        let record = GroupRecord { cursor, ..record };
        self.remember_group(&record);
        Ok(Ok((record, removed)))
    }

    pub(super) async fn delete_group(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Outcome<()> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        // Acks and deliveries held back came first.
        self.flush_group_writes().await?;
        self.tx.delete_group(record.id).await?;
        self.forget_group(&record);
        Ok(Ok(()))
    }

    pub(super) async fn delete_consumer(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
    ) -> Outcome<u64> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        self.flush_group_writes().await?;
        let released = self
            .tx
            .release_consumer(record.id, consumer.as_str(), self.now)
            .await?;
        Ok(Ok(released))
    }
}
