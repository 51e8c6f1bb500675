//! Consumer-group and checkpoint commands, applied by the group-commit
//! writer inside its transaction.
//!
//! Running them in the writer serialises them with appends (a delivery sees
//! every event committed before it) and batches them: the acks and
//! deliveries of many consumers share one commit.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{error, warn};

use super::error::{Expectation, LogError};
use super::event::NewEvent;
use super::groups::{
    Checkpoint, ClaimTarget, DeliverRequest, Delivered, Delivery, GroupRecord, GroupSettings,
    GroupStart, PendingEntry, Settled,
};
use super::model::{Sequence, StoredEvent, UnixMicros};
use super::names::{Label, StreamName};
use super::writer::{Answer, AppendRequest, Reply, Transaction, settle, settle_reclaiming};
use crate::proto::{Extension, rewrite_event};
use crate::storage::{StorageError, StreamHead};

/// Why an event was dead-lettered, as the `rlreason` attribute says.
const REASON_MAX_DELIVERIES: &str = "max_deliveries";

/// Takes back deliveries whose caller went away before the answer reached
/// it (see `EventLog::give_back`).
pub(super) type GiveBack = Box<dyn FnOnce(Vec<Delivery>) + Send + Sync>;

/// A consumer-group or checkpoint command for the writer.
pub(super) enum GroupCommand {
    Create(StreamName, Label, GroupSettings, Reply<GroupRecord>),
    Delete(StreamName, Label, Reply<()>),
    DeleteConsumer(StreamName, Label, Label, Reply<u64>),
    Deliver(DeliverRequest, Reply<Delivered>, GiveBack),
    Ack(StreamName, Label, Vec<Sequence>, Reply<Settled>),
    Nack(
        StreamName,
        Label,
        Option<Label>,
        Vec<Sequence>,
        Duration,
        Reply<Settled>,
    ),
    Claim(
        StreamName,
        Label,
        Label,
        Duration,
        ClaimTarget,
        Reply<Vec<Delivery>>,
        GiveBack,
    ),
    /// Gives back entries handed to a consumer that is gone: (sequence,
    /// delivery count it was handed out with).
    Release(StreamName, Label, Label, Vec<(Sequence, u32)>, Reply<u64>),
    SaveCheckpoint(Checkpoint, Reply<Checkpoint>),
}

impl GroupCommand {
    pub(super) fn fail(self, error: &StorageError) {
        fn send<T>(reply: Reply<T>, error: &StorageError) {
            let _ = reply.send(Err(LogError::Storage(error.clone())));
        }
        match self {
            Self::Create(.., r) => send(r, error),
            Self::Delete(.., r) => send(r, error),
            Self::DeleteConsumer(.., r) => send(r, error),
            Self::Deliver(_, r, _) => send(r, error),
            Self::Ack(.., r) | Self::Nack(.., r) => send(r, error),
            Self::Claim(.., r, _) => send(r, error),
            Self::Release(.., r) => send(r, error),
            Self::SaveCheckpoint(_, r) => send(r, error),
        }
    }
}

/// A storage error aborts the batch; a domain error answers one caller.
type Outcome<T> = Result<Result<T, LogError>, StorageError>;

impl Transaction {
    pub(super) async fn apply_group(
        &mut self,
        cmd: GroupCommand,
        answers: &mut Vec<Box<dyn Answer>>,
    ) -> Result<(), StorageError> {
        // Group commands read events and pending rows: earlier commands of
        // this batch must be visible to them.
        if let Err(e) = self.flush().await {
            cmd.fail(&e);
            return Err(e);
        }
        match cmd {
            GroupCommand::Create(stream, group, settings, reply) => {
                let outcome = self.create_group(&stream, &group, &settings).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Delete(stream, group, reply) => {
                let outcome = self.delete_group(&stream, &group).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::DeleteConsumer(stream, group, consumer, reply) => {
                let outcome = self.delete_consumer(&stream, &group, &consumer).await;
                settle(reply, outcome, answers)
            }
            // A caller gone before its delivery was decided gets nothing:
            // whatever it was handed would wait out an ack timeout.
            GroupCommand::Deliver(_, reply, _) if reply.is_closed() => Ok(()),
            GroupCommand::Claim(.., reply, _) if reply.is_closed() => Ok(()),
            // Re-reading one's own pending entries hands nothing out.
            GroupCommand::Deliver(req, reply, _) if req.pending_only => {
                let outcome = self.deliver(&req).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Deliver(req, reply, give_back) => {
                let outcome = self.deliver(&req).await;
                settle_reclaiming(reply, outcome, answers, |d: Delivered| {
                    give_back(d.deliveries);
                })
            }
            GroupCommand::Ack(stream, group, sequences, reply) => {
                let outcome = self.settle_pending(&stream, &group, &sequences, None).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Nack(stream, group, holder, sequences, delay, reply) => {
                let nack = Some((holder, delay));
                let outcome = self.settle_pending(&stream, &group, &sequences, nack).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Claim(stream, group, consumer, min_idle, target, reply, give_back) => {
                let outcome = self
                    .claim(&stream, &group, &consumer, min_idle, target)
                    .await;
                settle_reclaiming(reply, outcome, answers, give_back)
            }
            GroupCommand::Release(stream, group, consumer, handed, reply) => {
                let outcome = self.release(&stream, &group, &consumer, &handed).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::SaveCheckpoint(checkpoint, reply) => {
                let outcome = self.save_checkpoint(checkpoint).await;
                settle(reply, outcome, answers)
            }
        }
    }

    /// The stream and group a command names, or the domain error.
    async fn group_of(
        &mut self,
        stream: &StreamName,
        group: &Label,
    ) -> Outcome<(StreamHead, GroupRecord)> {
        let Some(head) = self.head(stream).await? else {
            return Ok(Err(LogError::StreamNotFound(stream.to_string())));
        };
        match self.tx.group(&head, group).await? {
            Some(record) => Ok(Ok((head, record))),
            None => Ok(Err(LogError::GroupNotFound {
                stream: stream.to_string(),
                group: group.to_string(),
            })),
        }
    }

    fn deadline(&self, after: Duration) -> UnixMicros {
        UnixMicros(
            self.now
                .0
                .saturating_add(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    async fn create_group(
        &mut self,
        stream: &StreamName,
        group: &Label,
        settings: &GroupSettings,
    ) -> Outcome<GroupRecord> {
        let Some(head) = self.head(stream).await? else {
            return Ok(Err(LogError::StreamNotFound(stream.to_string())));
        };
        if self.tx.group(&head, group).await?.is_some() {
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
        Ok(Ok(record))
    }

    async fn delete_group(&mut self, stream: &StreamName, group: &Label) -> Outcome<()> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        self.tx.delete_group(record.id).await?;
        Ok(Ok(()))
    }

    async fn delete_consumer(
        &mut self,
        stream: &StreamName,
        group: &Label,
        consumer: &Label,
    ) -> Outcome<u64> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let released = self
            .tx
            .release_consumer(record.id, consumer.as_str(), self.now)
            .await?;
        Ok(Ok(released))
    }

    /// Hands out due entries (redeliveries), then new events, up to the
    /// request's count and the consumer's credit.
    async fn deliver(&mut self, req: &DeliverRequest) -> Outcome<Delivered> {
        let (head, group) = match self.group_of(&req.stream, &req.group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let consumer = req.consumer.as_str();
        self.tx.touch_consumer(group.id, consumer, self.now).await?;
        let mut out = Delivered::default();

        if req.pending_only {
            let entries = self
                .tx
                .pending_of_consumer(group.id, consumer, req.count)
                .await?;
            let mut events = self.events_of(&head, &entries).await?;
            out.deliveries = entries
                .into_iter()
                .filter_map(|entry| {
                    let event = events.remove(&entry.sequence)?;
                    Some(Delivery {
                        event,
                        delivery_count: entry.delivery_count,
                    })
                })
                .collect();
            return Ok(Ok(out));
        }

        let mut budget = req.count;
        if let Some(credit) = req.max_in_flight {
            let held = self
                .tx
                .consumer_in_flight(group.id, consumer, self.now)
                .await?;
            let held = u32::try_from(held).unwrap_or(u32::MAX);
            budget = budget.min(credit.saturating_sub(held));
        }
        // Due entries first. Some of a page may be dead-lettered or gone
        // rather than delivered; keep paging while pages come back full, so
        // due work behind them is not left waiting.
        while budget > 0 {
            let due = self.tx.due_pending(group.id, self.now, budget).await?;
            let full_page = due.len() == budget as usize;
            let handed = self
                .hand_out(&head, &group, due, consumer, &mut out.deliveries)
                .await?;
            budget = budget.saturating_sub(handed);
            if !full_page {
                break;
            }
        }
        if budget > 0 {
            let fresh = self.tx.events_after(head.id, group.cursor, budget).await?;
            if let Some(last) = fresh.last() {
                let until = self.deadline(group.ack_timeout);
                let entries: Vec<PendingEntry> = fresh
                    .iter()
                    .map(|e| PendingEntry {
                        sequence: e.sequence,
                        consumer: consumer.to_owned(),
                        delivery_count: 1,
                        delivered_at: self.now,
                        deliverable_at: until,
                    })
                    .collect();
                let cursor = last.sequence;
                self.tx.save_pending(group.id, &entries).await?;
                self.tx.save_group_cursor(group.id, cursor).await?;
                out.deliveries
                    .extend(fresh.into_iter().map(|event| Delivery {
                        event,
                        delivery_count: 1,
                    }));
            }
        }
        out.next_due = self.tx.next_due(group.id, self.now).await?;
        Ok(Ok(out))
    }

    /// The retained events of `entries`, by sequence.
    async fn events_of(
        &mut self,
        head: &StreamHead,
        entries: &[PendingEntry],
    ) -> Result<HashMap<Sequence, StoredEvent>, StorageError> {
        let sequences: Vec<Sequence> = entries.iter().map(|e| e.sequence).collect();
        Ok(self
            .tx
            .events_by_sequence(head.id, &sequences)
            .await?
            .into_iter()
            .map(|e| (e.sequence, e))
            .collect())
    }

    /// Gives pending entries to `consumer` as new deliveries. Entries that
    /// used up their deliveries go to the dead-letter stream instead, and
    /// entries whose event is gone (trimmed, taken) are dropped. Returns
    /// how many were delivered.
    async fn hand_out(
        &mut self,
        head: &StreamHead,
        group: &GroupRecord,
        entries: Vec<PendingEntry>,
        consumer: &str,
        out: &mut Vec<Delivery>,
    ) -> Result<u32, StorageError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut events = self.events_of(head, &entries).await?;
        let until = self.deadline(group.ack_timeout);
        let mut reassigned = Vec::new();
        let mut deferred = Vec::new();
        let mut finished = Vec::new();
        for entry in entries {
            match events.remove(&entry.sequence) {
                None => finished.push(entry.sequence),
                Some(event) if entry.delivery_count >= group.max_deliveries => {
                    if self.dead_letter(group, &entry, &event).await? {
                        finished.push(entry.sequence);
                    } else {
                        // Keep it pending rather than lose it; try again
                        // after an ack timeout.
                        deferred.push(PendingEntry {
                            deliverable_at: until,
                            ..entry
                        });
                    }
                }
                Some(event) => {
                    let next = PendingEntry {
                        consumer: consumer.to_owned(),
                        delivery_count: entry.delivery_count.saturating_add(1),
                        delivered_at: self.now,
                        deliverable_at: until,
                        ..entry
                    };
                    out.push(Delivery {
                        event,
                        delivery_count: next.delivery_count,
                    });
                    reassigned.push(next);
                }
            }
        }
        self.tx.save_pending(group.id, &reassigned).await?;
        if !deferred.is_empty() {
            self.tx.save_pending(group.id, &deferred).await?;
        }
        if !finished.is_empty() {
            self.tx.remove_pending(group.id, &finished).await?;
        }
        Ok(u32::try_from(reassigned.len()).unwrap_or(u32::MAX))
    }

    /// Appends a copy of `event` to the group's dead-letter stream, with
    /// extension attributes saying where it came from and why. Returns
    /// whether the dead-letter stream has it (it may refuse: full, or no
    /// room for a new stream).
    async fn dead_letter(
        &mut self,
        group: &GroupRecord,
        entry: &PendingEntry,
        event: &StoredEvent,
    ) -> Result<bool, StorageError> {
        // Positions are never reused and a group's creation time tells apart
        // groups of the same name over time, so the id is unique per (event,
        // group): groups sharing a dead-letter stream never collide, and a
        // repeat of this very dead-lettering is recognised as a duplicate.
        let id = format!(
            "dlq-{}-{}-{}",
            event.position, group.created_at.0, group.name
        );
        let extensions = [
            ("rlorigstream", Extension::String(group.stream.to_string())),
            (
                "rlorigsequence",
                Extension::String(event.sequence.to_string()),
            ),
            ("rlorigid", Extension::String(event.id.clone())),
            ("rlgroup", Extension::String(group.name.to_string())),
            (
                "rldeliveries",
                Extension::Integer(i32::try_from(entry.delivery_count).unwrap_or(i32::MAX)),
            ),
            (
                "rlreason",
                Extension::String(REASON_MAX_DELIVERIES.to_owned()),
            ),
        ];
        let payload = match rewrite_event(&event.payload, &id, &extensions) {
            Ok(p) => p,
            Err(e) => {
                // Only a corrupted row gets here. Keep the event, as stored,
                // rather than failing every write batch this group is in.
                error!(position = event.position, error = %e, "stored event is not decodable; dead-lettering it unchanged");
                event.payload.clone()
            }
        };
        let request = AppendRequest {
            stream: group.dead_letter_stream.clone(),
            events: vec![NewEvent {
                id,
                event_type: event.event_type.clone(),
                source: event.source.clone(),
                subject: event.subject.clone(),
                payload,
            }],
            expected: Expectation::Any,
            auto_create: true,
        };
        match self.append(&request).await? {
            Err(e) => {
                error!(error = %e, stream = %group.stream, sequence = event.sequence, "dead-lettering failed; the event stays pending");
                return Ok(false);
            }
            Ok(appended) if appended.iter().any(|a| a.duplicate) => {
                warn!(stream = %group.stream, group = %group.name, sequence = event.sequence, "event was already dead-lettered");
            }
            Ok(_) => {
                self.dead_lettered += 1;
                warn!(stream = %group.stream, group = %group.name, sequence = event.sequence, deliveries = entry.delivery_count, "event dead-lettered");
            }
        }
        Ok(true)
    }

    /// Acks (`nack` is `None`) or nacks pending entries; a nack may be
    /// limited to the entries one consumer holds.
    async fn settle_pending(
        &mut self,
        stream: &StreamName,
        group: &Label,
        sequences: &[Sequence],
        nack: Option<(Option<Label>, Duration)>,
    ) -> Outcome<Settled> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let mut wanted = sequences.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let done = match nack {
            None => self.tx.remove_pending(record.id, &wanted).await?,
            Some((holder, delay)) => {
                if let Some(consumer) = &holder {
                    self.tx
                        .touch_consumer(record.id, consumer.as_str(), self.now)
                        .await?;
                }
                let at = self.deadline(delay);
                let holder = holder.as_ref().map(Label::as_str);
                self.tx
                    .defer_pending(record.id, &wanted, holder, at)
                    .await?
            }
        };
        let done_set: std::collections::HashSet<Sequence> = done.iter().copied().collect();
        let not_pending = wanted
            .into_iter()
            .filter(|s| !done_set.contains(s))
            .collect();
        Ok(Ok(Settled {
            settled: done.len() as u64,
            not_pending,
        }))
    }

    async fn claim(
        &mut self,
        stream: &StreamName,
        group: &Label,
        consumer: &Label,
        min_idle: Duration,
        target: ClaimTarget,
    ) -> Outcome<Vec<Delivery>> {
        let (head, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        self.tx
            .touch_consumer(record.id, consumer.as_str(), self.now)
            .await?;
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
    async fn release(
        &mut self,
        stream: &StreamName,
        group: &Label,
        consumer: &Label,
        handed: &[(Sequence, u32)],
    ) -> Outcome<u64> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
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

    async fn save_checkpoint(&mut self, checkpoint: Checkpoint) -> Outcome<Checkpoint> {
        if let Some(stream) = &checkpoint.stream {
            if self.head(stream).await?.is_none() {
                return Ok(Err(LogError::StreamNotFound(stream.to_string())));
            }
        }
        let checkpoint = Checkpoint {
            committed_at: self.now,
            ..checkpoint
        };
        self.tx.save_checkpoint(&checkpoint).await?;
        Ok(Ok(checkpoint))
    }
}
