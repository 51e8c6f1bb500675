//! Redrive inside the write transaction: dead letters a reader already
//! chose go back to their group as due pending entries with a fresh
//! delivery count, and their copies leave the dead-letter stream. The
//! original events were never removed from the group's stream, so nothing
//! is appended there. The choosing (a scan of the dead-letter stream) runs
//! outside the transaction, so a large dead-letter stream never holds up
//! the writer (see `log::groups::dead_letters`).

use std::collections::{HashMap, HashSet};

use super::answer::Outcome;
use super::delivery::dead_letter_origin;
use super::transaction::Transaction;
use crate::model::groups::{PendingEntry, Redriven};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::{Position, Sequence};

impl Transaction {
    /// Gives back `chosen` dead letters of `group` ((dead-letter sequence,
    /// original position), found in `dead_letter_stream` by a reader): each
    /// still there whose original is still in the stream becomes a pending
    /// entry due now, held by no one, delivered 0 times, and its copy is
    /// removed. One whose original went meanwhile is reported; one already
    /// gone from the dead-letter stream (another redrive) is skipped.
    pub(super) async fn redrive(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        dead_letter_stream: &StreamName,
        chosen: &[(Sequence, Position)],
    ) -> Outcome<Redriven> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Redriven::default();
        // The group was recreated since the choice: its dead letters are
        // elsewhere and the caller was not checked for those.
        if &record.dead_letter_stream != dead_letter_stream || chosen.is_empty() {
            return Ok(Ok(out));
        }
        let Some(mut dead_letters) = self.head(dead_letter_stream).await? else {
            return Ok(Ok(out));
        };
        // Reads events and entries: this batch's appends and held group
        // writes go first.
        self.flush().await?;
        self.flush_group_writes().await?;

        let wanted: Vec<Sequence> = chosen.iter().map(|&(s, _)| s).collect();
        // Still there, and still this group's copy of that position.
        let present: HashMap<Sequence, Position> = self
            .tx
            .events_by_sequence(dead_letters.id, &wanted)
            .await?
            .into_iter()
            .filter_map(|e| Some((e.sequence, dead_letter_origin(&e.id, &record)?)))
            .collect();
        let positions: Vec<Position> = present.values().copied().collect();
        let origins: HashMap<Position, Sequence> = self
            .tx
            .sequences_at_positions(record.stream_id, &positions)
            .await?
            .into_iter()
            .collect();
        let sequences: Vec<Sequence> = origins.values().copied().collect();
        // An entry already pending (handed out again after a seek back)
        // keeps its holder and count.
        let pending: HashSet<Sequence> = self
            .tx
            .pending_entries(record.id, &sequences)
            .await?
            .into_iter()
            .map(|e| e.sequence)
            .collect();
        let mut given_back = Vec::new();
        let mut entries = Vec::new();
        for &(dead_letter, position) in chosen {
            if present.get(&dead_letter) != Some(&position) {
                continue;
            }
            let Some(&sequence) = origins.get(&position) else {
                out.origin_gone.push(dead_letter);
                continue;
            };
            given_back.push(dead_letter);
            // Past the cursor the group has not delivered it yet (it was
            // sought back): it comes again as a new delivery anyway.
            if sequence <= record.cursor && !pending.contains(&sequence) {
                entries.push(PendingEntry {
                    sequence,
                    consumer: String::new(),
                    delivery_count: 0,
                    delivered_at: self.now,
                    deliverable_at: self.now,
                });
            }
        }
        self.tx.save_pending(record.id, &entries).await?;
        let removed = self.tx.remove_events(&dead_letters, &given_back).await?;
        dead_letters.event_count = dead_letters.event_count.saturating_sub(removed);
        self.set_head(dead_letters);
        out.redriven = given_back.len() as u64;
        Ok(Ok(out))
    }
}
