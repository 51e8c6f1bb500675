//! Dead letters: the background pass that moves an entry whose last
//! allowed delivery timed out to the dead-letter stream without waiting for
//! a consumer of its group to ask for work (consumers may be gone for
//! good), and redrive, which gives dead letters back to their group.
//!
//! Finding work is a read on a reader connection; only groups that have
//! some become a writer command, so an idle server writes nothing. With
//! several replicas on one PostgreSQL database every replica runs the pass:
//! each group's work happens in a write transaction, which holds the
//! log-head lock, so a second replica finds the entries already gone (and
//! a repeat of one dead-lettering is recognised by its event id anyway).

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::auth::Principal;
use crate::log::EventLog;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::writer::{GroupCommand, dead_letter_origin};
use crate::model::filter::EventFilter;
use crate::model::groups::{RedriveSelection, Redriven};
use crate::model::names::{GroupName, StreamName};
use crate::model::query::{Direction, ReadFrom};
use crate::model::records::{Position, Sequence, UnixMicros};

/// Dead-letter events a redrive reads at a time.
const REDRIVE_PAGE: u32 = 500;
/// Dead letters one redrive gives back at most; `Redriven::more` says when
/// more of the selection remain.
const MAX_REDRIVE: usize = 10_000;
/// Dead letters whose original is gone that one redrive lists at most.
const MAX_ORIGIN_GONE_LISTED: usize = 1_000;

impl EventLog {
    /// Gives `group`'s dead letters chosen by `selection` back to it: each
    /// becomes a pending entry due now with a fresh delivery count, and its
    /// copy leaves the dead-letter stream; nothing is appended to the
    /// group's stream. At most 10,000 per call (`Redriven::more` says when
    /// more remain). A dead letter whose original event is gone is kept,
    /// listed in `origin_gone` (the first 1,000) and not counted. The
    /// choosing reads on a reader connection; only the chosen dead letters
    /// go to the writer. Needs admin and subscribe on the stream and
    /// subscribe and publish on the dead-letter stream (its copies are
    /// taken off it). Errors: `InvalidArgument` for an empty range, `StreamNotFound`,
    /// `GroupNotFound`, `Denied`.
    pub async fn redrive(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        selection: RedriveSelection,
    ) -> Result<Redriven, LogError> {
        authorize(caller, Operation::ChangeGroup(&stream))?;
        if let RedriveSelection::DeadLetterSequences { first, last } = selection {
            if first == 0 || last < first {
                return Err(LogError::invalid(
                    "dead_letter_sequences",
                    "first must be at least 1 and last at least first",
                ));
            }
        }
        let info = self.group_info(&stream, &group).await?;
        let record = info.state.group;
        let dead_letter_stream = record.dead_letter_stream.clone();
        authorize(caller, Operation::Take(&dead_letter_stream))?;

        // Choose on a reader, page by page: the selection's dead letters of
        // this group whose originals are still in the stream, up to the cap;
        // orphans are listed, not counted.
        let (mut from, last) = match &selection {
            RedriveSelection::DeadLetterSequences { first, last } => (*first, *last),
            _ => (1, Sequence::MAX),
        };
        let filter = match &selection {
            RedriveSelection::Filter(filter) => filter.clone(),
            _ => EventFilter::default(),
        };
        let mut chosen: Vec<(Sequence, Position)> = Vec::new();
        let mut out = Redriven::default();
        'pages: while from <= last {
            let page = self
                .storage
                .read_stream(
                    &dead_letter_stream,
                    ReadFrom::Sequence(from),
                    Direction::Forward,
                    &filter,
                    REDRIVE_PAGE,
                )
                .await?;
            let Some(end) = page.last().map(|e| e.sequence) else {
                break;
            };
            let candidates: Vec<(Sequence, Position)> = page
                .iter()
                .filter(|e| e.sequence <= last)
                .filter_map(|e| Some((e.sequence, dead_letter_origin(&e.id, &record)?)))
                .collect();
            let positions: Vec<Position> = candidates.iter().map(|&(_, p)| p).collect();
            let retained: HashSet<Position> = self
                .storage
                .retained_positions(&stream, &positions)
                .await?
                .into_iter()
                .collect();
            for (dead_letter, position) in candidates {
                if !retained.contains(&position) {
                    if out.origin_gone.len() < MAX_ORIGIN_GONE_LISTED {
                        out.origin_gone.push(dead_letter);
                    }
                } else if chosen.len() == MAX_REDRIVE {
                    out.more = true;
                    break 'pages;
                } else {
                    chosen.push((dead_letter, position));
                }
            }
            if page.len() < REDRIVE_PAGE as usize {
                break;
            }
            from = end.saturating_add(1);
        }

        let given = self
            .writer
            .group(|reply| GroupCommand::Redrive {
                stream: stream.clone(),
                group: group.clone(),
                dead_letter_stream,
                chosen,
                reply,
            })
            .await?;
        out.redriven = given.redriven;
        // Originals trimmed between the choice and the transaction.
        for gone in given.origin_gone {
            if out.origin_gone.len() < MAX_ORIGIN_GONE_LISTED {
                out.origin_gone.push(gone);
            }
        }
        out.origin_gone.sort_unstable();
        if out.redriven > 0 {
            self.groups.wake(&stream, &group);
        }
        Ok(out)
    }

    /// Moves, in every group, the entries that are due and have used up
    /// their deliveries to the group's dead-letter stream. Returns how many
    /// were moved. Errors: the storage's, or `ShuttingDown`.
    pub async fn dead_letter_exhausted(&self) -> Result<u64, LogError> {
        let groups = self
            .storage
            .groups_with_exhausted_entries(UnixMicros::now())
            .await?;
        let mut moved = 0;
        for (stream, group) in groups {
            let outcome = self
                .writer
                .group(|reply| GroupCommand::DeadLetterExhausted {
                    stream: stream.clone(),
                    group: group.clone(),
                    reply,
                })
                .await;
            match outcome {
                Ok(n) => {
                    moved += n;
                    // The entries left the PEL: consumers held back by
                    // their credit may take more.
                    self.groups.wake(&stream, &group);
                }
                // Deleted meanwhile: nothing left to move.
                Err(LogError::GroupNotFound { .. } | LogError::StreamNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }
}

/// Runs the dead-letter pass every `every` until `shutdown`.
pub(crate) async fn run(log: EventLog, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let pass = tokio::select! {
            () = shutdown.cancelled() => return,
            pass = log.dead_letter_exhausted() => pass,
        };
        match pass {
            Ok(0) => {}
            Ok(moved) => debug!(moved, "dead-letter pass"),
            Err(LogError::ShuttingDown) => return,
            Err(e) => warn!(error = %e, "dead-letter pass failed; retrying at the next interval"),
        }
    }
}
