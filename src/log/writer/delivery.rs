//! Handing out work inside the write transaction: due redeliveries first,
//! then new events past the group's cursor, within the consumer's credit;
//! entries out of deliveries go to the dead-letter stream instead.

use std::collections::HashMap;

use tracing::{error, warn};

use super::answer::Outcome;
use super::command::AppendRequest;
use super::transaction::Transaction;
use crate::log::error::Expectation;
use crate::log::event::NewEvent;
use crate::model::StorageError;
use crate::model::groups::{DeliverRequest, Delivered, Delivery, GroupRecord, PendingEntry};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::{Position, Sequence, StoredEvent};
use crate::proto::{Extension, rewrite_event};
use crate::storage::StreamHead;

/// Why an event was dead-lettered, as the `rlreason` attribute says: it
/// used up its deliveries.
const REASON_MAX_DELIVERIES: &str = "max_deliveries";
/// Why an event was dead-lettered: it was trimmed (by Trim or retention)
/// while pending in the group.
const REASON_TRIMMED: &str = "trimmed";

/// Entries the dead-letter pass reads at a time.
const EXHAUSTED_PAGE: u32 = 500;
/// Pages one dead-letter command handles at most: a backlog larger than
/// that is left to the next pass rather than holding one commit open.
const EXHAUSTED_PAGES: usize = 20;

/// The id of `group`'s dead-letter copy of the event at `position`.
/// Positions are never reused and a group's creation time tells apart
/// groups of the same name over time, so the id is unique per (event,
/// group).
pub(super) fn dead_letter_id(position: Position, group: &GroupRecord) -> String {
    format!("dlq-{position}-{}-{}", group.created_at.0, group.name)
}

/// The original position of a dead-letter copy `group` made, from its id;
/// `None` for any other event.
pub(crate) fn dead_letter_origin(id: &str, group: &GroupRecord) -> Option<Position> {
    let rest = id.strip_prefix("dlq-")?;
    let (position, rest) = rest.split_once('-')?;
    let (created_at, name) = rest.split_once('-')?;
    (created_at == group.created_at.0.to_string() && name == group.name.as_str())
        .then(|| position.parse().ok())
        .flatten()
}

impl Transaction {
    /// Hands out due entries (redeliveries), then new events, up to the
    /// request's count and the consumer's credit.
    pub(super) async fn deliver(&mut self, req: &DeliverRequest) -> Outcome<Delivered> {
        let (head, group) = match self.group_of(&req.stream, &req.group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let consumer = req.consumer.as_str();
        self.touch(group.id, consumer);
        let mut out = Delivered::default();

        if req.pending_only {
            // Reads the consumer's stored entries.
            self.flush_group_writes().await?;
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
            // Counts the consumer's stored entries.
            self.flush_group_writes().await?;
            let held = self
                .tx
                .consumer_in_flight(group.id, consumer, self.now)
                .await?;
            let held = u32::try_from(held).unwrap_or(u32::MAX);
            budget = budget.min(credit.saturating_sub(held));
        }
        // Due entries first. Some of a page may be dead-lettered or gone
        // rather than delivered; keep paging while more may be due, so due
        // work behind them is not left waiting.
        while budget > 0 {
            let (due, more) = self.due_entries(group.id, budget).await?;
            let handed = self
                .hand_out(&head, &group, due, consumer, &mut out.deliveries)
                .await?;
            budget = budget.saturating_sub(handed);
            if !more {
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
                self.hold_cursor(&group, last.sequence);
                self.hold_saves(group.id, entries).await?;
                out.deliveries
                    .extend(fresh.into_iter().map(|event| Delivery {
                        event,
                        delivery_count: 1,
                    }));
            }
        }
        // Only a caller left empty-handed waits, until then at the latest.
        if out.deliveries.is_empty() {
            out.next_due = self.next_due_at(group.id).await?;
        }
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
    pub(super) async fn hand_out(
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
        let mut exhausted = Vec::new();
        let mut finished = Vec::new();
        for entry in entries {
            match events.remove(&entry.sequence) {
                None => finished.push(entry.sequence),
                Some(event) if entry.delivery_count >= group.max_deliveries => {
                    exhausted.push((entry, event));
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
        let handed = u32::try_from(reassigned.len()).unwrap_or(u32::MAX);
        self.hold_saves(group.id, reassigned).await?;
        self.hold_finished(group.id, &finished);
        self.retire(group, exhausted).await?;
        Ok(handed)
    }

    /// The dead-letter pass of one group: moves its entries that are due
    /// and have used up their deliveries to the dead-letter stream, whether
    /// or not any consumer asks for work. Returns how many were moved.
    pub(super) async fn dead_letter_exhausted(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Outcome<u64> {
        let (head, group) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let mut moved = 0;
        for _ in 0..EXHAUSTED_PAGES {
            // Reads stored entries: what this batch holds back goes first.
            self.flush_group_writes().await?;
            let entries = self
                .tx
                .exhausted_pending(group.id, group.max_deliveries, self.now, EXHAUSTED_PAGE)
                .await?;
            let page_full = entries.len() >= EXHAUSTED_PAGE as usize;
            let (retired, left) = self.retire_entries(&head, &group, entries).await?;
            moved += retired;
            // Entries the dead-letter stream refused are due again only
            // after an ack timeout; with none leaving, stop paging.
            if !page_full || left == 0 {
                break;
            }
        }
        Ok(Ok(moved))
    }

    /// [`Transaction::retire`] for entries whose events are still to be
    /// read; an entry whose event is gone (trimmed, taken) is dropped.
    /// Returns how many were dead-lettered and how many left the PEL.
    pub(super) async fn retire_entries(
        &mut self,
        head: &StreamHead,
        group: &GroupRecord,
        entries: Vec<PendingEntry>,
    ) -> Result<(u64, u64), StorageError> {
        let mut events = self.events_of(head, &entries).await?;
        let mut gone = Vec::new();
        let mut exhausted = Vec::new();
        for entry in entries {
            match events.remove(&entry.sequence) {
                None => gone.push(entry.sequence),
                Some(event) => exhausted.push((entry, event)),
            }
        }
        self.hold_finished(group.id, &gone);
        let retired = self.retire(group, exhausted).await?;
        Ok((retired, retired + gone.len() as u64))
    }

    /// Before a trim through `cutoff`: every group's entries up to it go to
    /// the group's dead-letter stream with reason `trimmed`, and leave the
    /// PEL. One the dead-letter stream refuses is dropped with an error
    /// logged: its event is about to go, and an entry without one could
    /// never be delivered.
    pub(super) async fn dead_letter_pending_through(
        &mut self,
        head: &StreamHead,
        cutoff: Sequence,
    ) -> Result<(), StorageError> {
        self.flush_group_writes().await?;
        for group in self.tx.stream_groups(head).await? {
            let entries = self.tx.pending_through(group.id, cutoff).await?;
            if entries.is_empty() {
                continue;
            }
            let mut events = self.events_of(head, &entries).await?;
            let mut finished = Vec::with_capacity(entries.len());
            for entry in entries {
                if let Some(event) = events.remove(&entry.sequence) {
                    if !self
                        .dead_letter(&group, &entry, &event, REASON_TRIMMED)
                        .await?
                    {
                        error!(stream = %group.stream, group = %group.name, sequence = entry.sequence, "a trimmed pending event could not be dead-lettered; the group loses it");
                    }
                }
                finished.push(entry.sequence);
            }
            self.hold_finished(group.id, &finished);
        }
        Ok(())
    }

    /// Dead-letters entries that used up their deliveries, each with its
    /// event, and returns how many left the PEL. One the dead-letter stream
    /// refuses stays pending, due again after an ack timeout, rather than
    /// being lost.
    pub(super) async fn retire(
        &mut self,
        group: &GroupRecord,
        exhausted: Vec<(PendingEntry, StoredEvent)>,
    ) -> Result<u64, StorageError> {
        let until = self.deadline(group.ack_timeout);
        let mut finished = Vec::new();
        let mut deferred = Vec::new();
        for (entry, event) in exhausted {
            if self
                .dead_letter(group, &entry, &event, REASON_MAX_DELIVERIES)
                .await?
            {
                finished.push(entry.sequence);
            } else {
                deferred.push(PendingEntry {
                    deliverable_at: until,
                    ..entry
                });
            }
        }
        self.hold_saves(group.id, deferred).await?;
        self.hold_finished(group.id, &finished);
        Ok(finished.len() as u64)
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
        reason: &'static str,
    ) -> Result<bool, StorageError> {
        // Positions are never reused and a group's creation time tells apart
        // groups of the same name over time, so the id is unique per (event,
        // group): groups sharing a dead-letter stream never collide, and a
        // repeat of this very dead-lettering is recognised as a duplicate.
        let id = dead_letter_id(event.position, group);
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
            ("rlreason", Extension::String(reason.to_owned())),
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
            dedup_removed: false,
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
}
