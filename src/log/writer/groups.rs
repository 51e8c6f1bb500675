//! Consumer-group administration inside the write transaction: creating a
//! group at its start, deleting a group or a consumer, and finding the
//! group a command names.

use super::answer::Outcome;
use super::transaction::Transaction;
use crate::log::error::LogError;
use crate::model::groups::{GroupRecord, GroupSettings, GroupStart};
use crate::model::names::{ConsumerName, GroupName, StreamName};
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
        let cursor = match settings.start {
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
        };
        let record = self
            .tx
            .create_group(&head, group, settings, cursor, self.now)
            .await?;
        self.remember_group(&record);
        Ok(Ok(record))
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
