//! Redrive inside the write transaction: a group's dead letters go back to
//! the group as due pending entries with a fresh delivery count, and their
//! copies leave the dead-letter stream. The original events were never
//! removed from the group's stream, so nothing is appended there.

use std::collections::{HashMap, HashSet};

use super::answer::Outcome;
use super::delivery::dead_letter_origin;
use super::transaction::Transaction;
use crate::model::groups::{PendingEntry, RedriveSelection, Redriven};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::{Position, Sequence, StoredEvent};

/// Dead-letter events read at a time.
const PAGE: u32 = 500;
/// Dead letters one redrive gives back at most; `Redriven::more` says
/// when more of the selection remain.
pub(crate) const MAX_REDRIVE: usize = 10_000;
/// Dead letters whose original is gone that one redrive lists at most.
const MAX_ORIGIN_GONE_LISTED: usize = 1_000;

impl Transaction {
    /// Gives `group`'s dead letters chosen by `selection` back to it (at
    /// most [`MAX_REDRIVE`]): each becomes a pending entry due now, held by
    /// no one, delivered 0 times, and its copy is removed from the
    /// dead-letter stream. A dead letter whose original event is gone stays
    /// where it is and is reported.
    pub(super) async fn redrive(
        &mut self,
        stream: &StreamName,
        group: &GroupName,
        selection: &RedriveSelection,
    ) -> Outcome<Redriven> {
        let (_, record) = match self.group_of(stream, group).await? {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Redriven::default();
        let Some(mut dead_letters) = self.head(&record.dead_letter_stream).await? else {
            return Ok(Ok(out));
        };
        // Reads events and entries: this batch's appends and held group
        // writes go first.
        self.flush().await?;
        self.flush_group_writes().await?;

        let (mut after, last) = match selection {
            RedriveSelection::DeadLetterSequences { first, last } => {
                (first.saturating_sub(1), *last)
            }
            _ => (0, Sequence::MAX),
        };
        // Page by page: the dead letters of this group that the selection
        // takes, resolved to their original sequences at once, so only
        // those given back count toward the cap (a run of orphans cannot
        // stall the redrive).
        let mut given_back = Vec::new();
        let mut entries = Vec::new();
        'pages: while after < last {
            let page = self.tx.events_after(dead_letters.id, after, PAGE).await?;
            let Some(end) = page.last().map(|e| e.sequence) else {
                break;
            };
            let chosen: Vec<(Sequence, Position)> = page
                .iter()
                .filter(|e| e.sequence <= last && selected(selection, e))
                .filter_map(|e| Some((e.sequence, dead_letter_origin(&e.id, &record)?)))
                .collect();
            let positions: Vec<Position> = chosen.iter().map(|&(_, p)| p).collect();
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
            for (dead_letter, position) in chosen {
                let Some(&sequence) = origins.get(&position) else {
                    if out.origin_gone.len() < MAX_ORIGIN_GONE_LISTED {
                        out.origin_gone.push(dead_letter);
                    }
                    continue;
                };
                if given_back.len() == MAX_REDRIVE {
                    out.more = true;
                    break 'pages;
                }
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
            after = end;
        }
        self.tx.save_pending(record.id, &entries).await?;
        let removed = self.tx.remove_events(&dead_letters, &given_back).await?;
        dead_letters.event_count = dead_letters.event_count.saturating_sub(removed);
        self.set_head(dead_letters);
        out.redriven = given_back.len() as u64;
        Ok(Ok(out))
    }
}

fn selected(selection: &RedriveSelection, event: &StoredEvent) -> bool {
    match selection {
        RedriveSelection::Filter(filter) => filter.matches(event),
        RedriveSelection::All | RedriveSelection::DeadLetterSequences { .. } => true,
    }
}
