//! Settling pending entries: Ack, Nack, Claim (XCLAIM / XAUTOCLAIM) and
//! the ListPending view (XPENDING) of what is still unsettled.

use std::time::Duration;

use super::delivery::batch_size;
use super::{
    Claim, ClaimTarget, Delivery, ListPending, PendingEntry, PendingQuery, PendingSummary, Settled,
};
use crate::auth::Principal;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::writer::GroupCommand;
use crate::log::{DEFAULT_PAGE_SIZE, EventLog, page_size};
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::{Sequence, UnixMicros};

/// Most sequences one Ack, Nack or Claim may name.
pub const MAX_SEQUENCES_PER_CALL: usize = 10_000;

fn check_sequences(sequences: &[Sequence]) -> Result<(), LogError> {
    if sequences.is_empty() {
        return Err(LogError::invalid("sequences", "name at least one sequence"));
    }
    if sequences.len() > MAX_SEQUENCES_PER_CALL {
        return Err(LogError::invalid(
            "sequences",
            format!("at most {MAX_SEQUENCES_PER_CALL} per call"),
        ));
    }
    Ok(())
}

impl EventLog {
    /// Acknowledges deliveries.
    pub async fn ack(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        sequences: Vec<Sequence>,
    ) -> Result<Settled, LogError> {
        authorize(caller, Operation::Consume(&stream))?;
        check_sequences(&sequences)?;
        let settled = self
            .writer
            .group(|reply| GroupCommand::Ack {
                stream: stream.clone(),
                group: group.clone(),
                sequences,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(settled)
    }

    /// Rejects deliveries: they are due again after `delay`. With a
    /// `holder`, only the entries that consumer still holds.
    pub async fn nack(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        holder: Option<ConsumerName>,
        sequences: Vec<Sequence>,
        delay: Duration,
    ) -> Result<Settled, LogError> {
        authorize(caller, Operation::Consume(&stream))?;
        check_sequences(&sequences)?;
        let settled = self
            .writer
            .group(|reply| GroupCommand::Nack {
                stream: stream.clone(),
                group: group.clone(),
                holder,
                sequences,
                delay,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(settled)
    }

    /// The group's pending summary and a page of its entries.
    pub async fn list_pending(
        &self,
        caller: &Principal,
        request: ListPending,
    ) -> Result<(PendingSummary, Vec<PendingEntry>), LogError> {
        authorize(caller, Operation::Consume(&request.stream))?;
        let ListPending {
            stream,
            group,
            consumer,
            min_idle,
            limit,
            after_sequence,
        } = request;
        let info = self.group_info(&stream, &group).await?;
        let id = info.state.group.id;
        let mut summary = self.storage.pending_summary(id).await?;
        // Entries given back by a caller that went away are held by no one
        // (consumer ""): counted, but not listed as a consumer.
        summary
            .consumers
            .retain(|(consumer, _)| !consumer.is_empty());
        let query = PendingQuery {
            consumer: consumer.map(|c| c.to_string()),
            delivered_before: min_idle.map(|d| UnixMicros::now().saturating_sub(d)),
            after_sequence,
            limit: page_size(limit, DEFAULT_PAGE_SIZE),
        };
        let entries = self.storage.list_pending(id, &query).await?;
        Ok((summary, entries))
    }

    /// Takes over idle pending entries: `sequences` (XCLAIM), or the oldest
    /// `count` when none are named (XAUTOCLAIM).
    pub async fn claim(&self, caller: &Principal, claim: Claim) -> Result<Vec<Delivery>, LogError> {
        authorize(caller, Operation::Consume(&claim.stream))?;
        let Claim {
            stream,
            group,
            consumer,
            min_idle,
            sequences,
            count,
        } = claim;
        let target = if sequences.is_empty() {
            ClaimTarget::Oldest(batch_size(count, 100))
        } else {
            check_sequences(&sequences)?;
            ClaimTarget::Sequences(sequences)
        };
        let give_back = self.give_back_to(stream.clone(), group.clone(), consumer.clone());
        let claimed = self
            .writer
            .group(|reply| GroupCommand::Claim {
                stream: stream.clone(),
                group: group.clone(),
                consumer,
                min_idle,
                target,
                reply,
                give_back,
            })
            .await?;
        // The previous holders have credit again.
        self.groups.wake(&stream, &group);
        self.count_deliveries(&claimed);
        Ok(claimed)
    }
}
