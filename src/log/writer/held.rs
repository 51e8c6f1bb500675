//! Consumer-group writes a transaction holds back until it flushes, so the
//! acks and deliveries of many consumers cost a few multi-row statements
//! per group instead of several statements each (as event rows are
//! inserted together).
//!
//! Held back per group: acks (one `DELETE ... RETURNING`, whose rows decide
//! each ack's answer at the flush, so the answer is still only sent after
//! the commit), entries handed out (one upsert), entries a delivery found
//! finished (with the acks' delete), the cursor (one update) and consumer
//! activity (one upsert). Group records are read once per transaction.
//!
//! Fetch-style deliveries read the pending list through
//! [`Transaction::due_entries`] and [`Transaction::next_due_at`], which
//! account for what is held back. Every other command that reads or
//! writes the pending list or the consumers calls
//! [`Transaction::flush_group_writes`] first, so it sees storage exactly
//! as the commands before it left it.
//!
//! Entries held back are never due at the transaction's time: a delivery
//! makes its entry due again only after the group's ack timeout (at least a
//! millisecond). Writes that make entries due at once (nack, release, a
//! removed consumer) go to storage directly, after a flush.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::answer::{Answer, Outcome, Reply, refuse};
use super::transaction::Transaction;
use crate::log::error::LogError;
use crate::model::StorageError;
use crate::model::groups::{GroupRecord, PendingEntry, Settled};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::{Sequence, UnixMicros};
use crate::storage::StreamHead;

/// What a transaction knows of consumer groups and has yet to write.
#[derive(Default)]
pub(super) struct GroupWrites {
    /// Groups read (or created) in this transaction, by stream row id and
    /// name, with the cursor as this transaction moved it. A deleted
    /// stream's entries are never found again: its name then has no head,
    /// or a new row id.
    found: HashMap<(i64, GroupName), GroupRecord>,
    /// Writes not made yet, by group id (flushed in that order).
    unwritten: BTreeMap<i64, Unwritten>,
}

/// One group's held-back writes.
#[derive(Default)]
struct Unwritten {
    cursor: Option<Sequence>,
    /// Consumers active in this transaction.
    touched: BTreeSet<String>,
    /// Entries handed out (or kept for a later retry), by sequence.
    saves: BTreeMap<Sequence, PendingEntry>,
    /// Entries a delivery found finished: event gone, or dead-lettered.
    finished: BTreeSet<Sequence>,
    /// Acks in the order they were applied.
    acks: Vec<HeldAck>,
    /// Every sequence the acks name.
    acked: BTreeSet<Sequence>,
    /// A look for due entries came back short: apart from what is held
    /// back here, nothing else is due at this transaction's time.
    due_seen: bool,
}

impl Unwritten {
    /// Whether a stored entry is superseded by what is held back.
    fn hides(&self, sequence: Sequence) -> bool {
        self.saves.contains_key(&sequence)
            || self.finished.contains(&sequence)
            || self.acked.contains(&sequence)
    }
}

struct HeldAck {
    wanted: Vec<Sequence>,
    outcome: Arc<OnceLock<Settled>>,
}

/// An ack's answer, decided when its delete is written.
pub(super) struct HeldAnswer {
    reply: Reply<Settled>,
    outcome: Arc<OnceLock<Settled>>,
}

impl Answer for HeldAnswer {
    fn send(self: Box<Self>) {
        // A commit always follows the flush that decides the outcome.
        let result = self.outcome.get().cloned().ok_or_else(|| {
            LogError::Storage(StorageError::Failure(
                "an ack was committed without being written".into(),
            ))
        });
        // A caller that went away no longer needs its answer.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, error: &StorageError) {
        refuse(self.reply, error);
    }
}

/// Files an ack held back: its answer waits for the flush and the commit.
pub(super) fn settle_held(
    reply: Reply<Settled>,
    outcome: Outcome<Arc<OnceLock<Settled>>>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<(), StorageError> {
    match outcome {
        Ok(Ok(outcome)) => {
            answers.push(Box::new(HeldAnswer { reply, outcome }));
            Ok(())
        }
        Ok(Err(e)) => {
            let _ = reply.send(Err(e));
            Ok(())
        }
        Err(e) => {
            refuse(reply, &e);
            Err(e)
        }
    }
}

impl Transaction {
    /// A group of `head`, read once per transaction.
    pub(super) async fn find_group(
        &mut self,
        head: &StreamHead,
        name: &GroupName,
    ) -> Result<Option<GroupRecord>, StorageError> {
        let key = (head.id, name.clone());
        if let Some(record) = self.groups.found.get(&key) {
            return Ok(Some(record.clone()));
        }
        let record = self.tx.group(head, name).await?;
        if let Some(r) = &record {
            self.groups.found.insert(key, r.clone());
        }
        Ok(record)
    }

    /// Remembers a group created in this transaction.
    pub(super) fn remember_group(&mut self, record: &GroupRecord) {
        let key = (record.stream_id, record.name.clone());
        self.groups.found.insert(key, record.clone());
    }

    /// Forgets a group deleted in this transaction (its writes were
    /// flushed before).
    pub(super) fn forget_group(&mut self, record: &GroupRecord) {
        let key = (record.stream_id, record.name.clone());
        self.groups.found.remove(&key);
        self.groups.unwritten.remove(&record.id);
    }

    fn unwritten(&mut self, group_id: i64) -> &mut Unwritten {
        self.groups.unwritten.entry(group_id).or_default()
    }

    /// Records that `consumer` was active now.
    pub(super) fn touch(&mut self, group_id: i64, consumer: &str) {
        let touched = &mut self.unwritten(group_id).touched;
        if !touched.contains(consumer) {
            touched.insert(consumer.to_owned());
        }
    }

    /// Moves the group's cursor to `cursor`.
    pub(super) fn hold_cursor(&mut self, group: &GroupRecord, cursor: Sequence) {
        if let Some(found) = self
            .groups
            .found
            .get_mut(&(group.stream_id, group.name.clone()))
        {
            found.cursor = cursor;
        }
        self.unwritten(group.id).cursor = Some(cursor);
    }

    /// Inserts or replaces pending entries, none of them due now.
    pub(super) async fn hold_saves(
        &mut self,
        group_id: i64,
        entries: Vec<PendingEntry>,
    ) -> Result<(), StorageError> {
        debug_assert!(entries.iter().all(|e| e.deliverable_at > self.now));
        // An ack held back that names one of them came first: it must not
        // remove an entry made after it (its answer says "not pending").
        let acked_first = self
            .groups
            .unwritten
            .get(&group_id)
            .is_some_and(|w| entries.iter().any(|e| w.acked.contains(&e.sequence)));
        if acked_first {
            self.flush_group_writes().await?;
        }
        let saves = &mut self.unwritten(group_id).saves;
        for entry in entries {
            saves.insert(entry.sequence, entry);
        }
        Ok(())
    }

    /// Removes entries whose delivery is over (event gone, dead-lettered).
    pub(super) fn hold_finished(&mut self, group_id: i64, sequences: &[Sequence]) {
        let w = self.unwritten(group_id);
        for s in sequences {
            w.saves.remove(s);
            w.finished.insert(*s);
        }
    }

    /// Acks `sequences` of a group: the answer is decided when the flush
    /// removes them, and sent after the commit.
    pub(super) async fn hold_ack(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        mut sequences: Vec<Sequence>,
    ) -> Outcome<Arc<OnceLock<Settled>>> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        sequences.sort_unstable();
        sequences.dedup();
        let outcome = Arc::new(OnceLock::new());
        let w = self.unwritten(record.id);
        w.acked.extend(sequences.iter().copied());
        w.acks.push(HeldAck {
            wanted: sequences,
            outcome: outcome.clone(),
        });
        Ok(Ok(outcome))
    }

    /// Up to `limit` entries due now, longest-due first, as storage would
    /// hold them after the held-back writes; and whether more may be due.
    pub(super) async fn due_entries(
        &mut self,
        group_id: i64,
        limit: u32,
    ) -> Result<(Vec<PendingEntry>, bool), StorageError> {
        let now = self.now;
        let hidden = match self.groups.unwritten.get(&group_id) {
            Some(w) if w.due_seen => return Ok((Vec::new(), false)),
            Some(w) => w.saves.len() + w.finished.len() + w.acked.len(),
            None => 0,
        };
        let ask = limit.saturating_add(u32::try_from(hidden).unwrap_or(u32::MAX));
        let stored = self.tx.due_pending(group_id, now, ask).await?;
        let page_full = stored.len() >= ask as usize;
        let w = self.unwritten(group_id);
        let mut due: Vec<PendingEntry> = stored
            .into_iter()
            .filter(|e| !w.hides(e.sequence))
            .collect();
        let more = page_full || due.len() > limit as usize;
        due.truncate(limit as usize);
        w.due_seen = !more;
        Ok((due, more))
    }

    /// When the next entry becomes due after now, if any. May be early
    /// (an entry acked but not flushed yet), never late.
    pub(super) async fn next_due_at(
        &mut self,
        group_id: i64,
    ) -> Result<Option<UnixMicros>, StorageError> {
        let stored = self.tx.next_due(group_id, self.now).await?;
        let held = self
            .groups
            .unwritten
            .get(&group_id)
            .and_then(|w| w.saves.values().map(|e| e.deliverable_at).min());
        Ok(match (stored, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Writes every held-back group write, and decides the held acks'
    /// answers.
    pub(super) async fn flush_group_writes(&mut self) -> Result<(), StorageError> {
        let unwritten = std::mem::take(&mut self.groups.unwritten);
        for (group_id, w) in unwritten {
            if !w.touched.is_empty() {
                let names: Vec<&str> = w.touched.iter().map(String::as_str).collect();
                self.tx.touch_consumers(group_id, &names, self.now).await?;
            }
            if !w.saves.is_empty() {
                let saves: Vec<PendingEntry> = w.saves.into_values().collect();
                self.tx.save_pending(group_id, &saves).await?;
            }
            if !w.finished.is_empty() || !w.acked.is_empty() {
                let all: Vec<Sequence> = w.finished.union(&w.acked).copied().collect();
                let removed = self.tx.remove_pending(group_id, &all).await?;
                // A finished entry was finished before any ack of it (an
                // ack held back hides its entries from deliveries), so such
                // an ack found it no longer pending.
                let mut pending: HashSet<Sequence> = removed
                    .into_iter()
                    .filter(|s| !w.finished.contains(s))
                    .collect();
                for ack in w.acks {
                    let (settled, not_pending): (Vec<Sequence>, Vec<Sequence>) =
                        ack.wanted.into_iter().partition(|s| pending.remove(s));
                    let _ = ack.outcome.set(Settled {
                        settled: settled.len() as u64,
                        not_pending,
                    });
                }
            }
            if let Some(cursor) = w.cursor {
                self.tx.save_group_cursor(group_id, cursor).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::sync::oneshot;

    use super::*;
    use crate::log::error::Expectation;
    use crate::log::event::NewEvent;
    use crate::log::writer::batch::commit_batch;
    use crate::log::writer::command::{AppendRequest, Command, GroupCommand};
    use crate::log::writer::transaction::StreamLimits;
    use crate::model::groups::{
        DeliverRequest, Delivered, GroupSettings, GroupStart, PendingQuery,
    };
    use crate::model::names::ConsumerName;
    use crate::storage::Storage;
    use crate::storage::testing::on_each_backend;

    type Answer<T> = oneshot::Receiver<Result<T, LogError>>;

    fn names() -> (StreamName, GroupName) {
        (
            StreamName::parse("s").unwrap(),
            GroupName::parse("g").unwrap(),
        )
    }

    fn deliver(consumer: &str, count: u32) -> (Command, Answer<Delivered>) {
        let (stream, group) = names();
        let (reply, answer) = oneshot::channel();
        let request = DeliverRequest {
            stream,
            group,
            consumer: ConsumerName::parse(consumer).unwrap(),
            count,
            max_in_flight: None,
            pending_only: false,
        };
        let give_back = Box::new(|_| {});
        let cmd = GroupCommand::Deliver {
            request,
            reply,
            give_back,
        };
        (Command::Group(cmd), answer)
    }

    fn ack(sequences: &[Sequence]) -> (Command, Answer<Settled>) {
        let (stream, group) = names();
        let (reply, answer) = oneshot::channel();
        let cmd = GroupCommand::Ack {
            stream,
            group,
            sequences: sequences.to_vec(),
            reply,
        };
        (Command::Group(cmd), answer)
    }

    fn nack_now(sequences: &[Sequence]) -> (Command, Answer<Settled>) {
        let (stream, group) = names();
        let (reply, answer) = oneshot::channel();
        let cmd = GroupCommand::Nack {
            stream,
            group,
            holder: None,
            sequences: sequences.to_vec(),
            delay: Duration::ZERO,
            reply,
        };
        (Command::Group(cmd), answer)
    }

    async fn commit(storage: &dyn Storage, batch: Vec<Command>, now: i64) {
        commit_batch(
            storage,
            batch,
            UnixMicros(now),
            StreamLimits::default(),
            |_| (),
        )
        .await
        .unwrap();
    }

    async fn handed(answer: Answer<Delivered>) -> Vec<(Sequence, u32)> {
        let delivered = answer.await.unwrap().unwrap();
        delivered
            .deliveries
            .iter()
            .map(|d| (d.event.sequence, d.delivery_count))
            .collect()
    }

    async fn settled(answer: Answer<Settled>) -> (u64, Vec<Sequence>) {
        let s = answer.await.unwrap().unwrap();
        (s.settled, s.not_pending)
    }

    async fn acks_and_deliveries_of_one_batch_see_each_other_in_order(storage: Arc<dyn Storage>) {
        let storage = &*storage;
        let (stream, group) = names();
        let (reply, _appended) = oneshot::channel();
        let events = (1..=6)
            .map(|i| NewEvent {
                id: format!("e{i}"),
                event_type: "t".into(),
                source: "/s".into(),
                subject: None,
                payload: Bytes::from_static(b"x"),
            })
            .collect();
        let request = AppendRequest {
            stream: stream.clone(),
            events,
            expected: Expectation::Any,
            auto_create: true,
            dedup_removed: true,
        };
        let (created, _) = oneshot::channel();
        let create = GroupCommand::Create {
            stream: stream.clone(),
            group: group.clone(),
            settings: GroupSettings {
                start: GroupStart::Earliest,
                ack_timeout: Duration::from_secs(3600),
                max_deliveries: 5,
                dead_letter_stream: StreamName::parse("s:dlq").unwrap(),
            },
            reply: created,
        };
        let setup = vec![Command::Append { request, reply }, Command::Group(create)];
        commit(storage, setup, 1).await;

        // One batch, applied in this order.
        let (a1, early) = ack(&[5]);
        let (d1, first) = deliver("c1", 3);
        let (a2, one_two) = ack(&[2, 1, 2]);
        let (a3, two_three) = ack(&[2, 3]);
        let (d2, second) = deliver("c2", 10);
        let (a4, four) = ack(&[4]);
        commit(storage, vec![a1, d1, a2, a3, d2, a4], 2).await;
        // Acked before it was delivered: not pending then, pending now.
        assert_eq!(settled(early).await, (0, vec![5]));
        assert_eq!(handed(first).await, [(1, 1), (2, 1), (3, 1)]);
        assert_eq!(settled(one_two).await, (2, vec![]));
        // 2 went with the ack before.
        assert_eq!(settled(two_three).await, (1, vec![2]));
        assert_eq!(handed(second).await, [(4, 1), (5, 1), (6, 1)]);
        assert_eq!(settled(four).await, (1, vec![]));

        let state = storage.group_state(&stream, &group).await.unwrap().unwrap();
        assert_eq!(state.group.cursor, 6);
        let consumers: Vec<&str> = state.consumers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(consumers, ["c1", "c2"]);
        let query = PendingQuery {
            limit: 100,
            ..PendingQuery::default()
        };
        let pending = |entries: Vec<PendingEntry>| {
            entries
                .into_iter()
                .map(|e| (e.sequence, e.consumer, e.delivery_count))
                .collect::<Vec<_>>()
        };
        let id = state.group.id;
        assert_eq!(
            pending(storage.list_pending(id, &query).await.unwrap()),
            [(5, "c2".to_owned(), 1), (6, "c2".to_owned(), 1)]
        );

        // Due again at once: redelivered once, by the first delivery that
        // asks, and an ack after it settles the redelivery.
        let (n1, nacked) = nack_now(&[5]);
        let (d3, third) = deliver("c1", 10);
        let (d4, fourth) = deliver("c2", 10);
        let (a5, rest) = ack(&[5, 6]);
        let (a6, again) = ack(&[5]);
        commit(storage, vec![n1, d3, d4, a5, a6], 3).await;
        assert_eq!(settled(nacked).await, (1, vec![]));
        assert_eq!(handed(third).await, [(5, 2)]);
        let fourth = fourth.await.unwrap().unwrap();
        assert!(fourth.deliveries.is_empty());
        // 6, delivered at 2, is the first to fall due again.
        assert_eq!(fourth.next_due, Some(UnixMicros(2 + 3_600_000_000)));
        assert_eq!(settled(rest).await, (2, vec![]));
        assert_eq!(settled(again).await, (0, vec![5]));
        assert!(storage.list_pending(id, &query).await.unwrap().is_empty());
    }

    on_each_backend!(acks_and_deliveries_of_one_batch_see_each_other_in_order);
}
