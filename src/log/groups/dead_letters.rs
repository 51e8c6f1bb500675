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

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::auth::Principal;
use crate::log::EventLog;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::writer::GroupCommand;
use crate::model::groups::{RedriveSelection, Redriven};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::UnixMicros;

impl EventLog {
    /// Gives `group`'s dead letters chosen by `selection` back to it, at
    /// most 10,000 per call (`Redriven::more` says when more remain; those
    /// whose original is gone do not count): each
    /// becomes a pending entry due now with a fresh delivery count, and its
    /// copy leaves the dead-letter stream. Nothing is appended to the
    /// group's stream. A dead letter whose original event is gone is kept
    /// and listed in `origin_gone`. Needs admin and subscribe on the stream
    /// and subscribe and publish on the dead-letter stream (its copies are
    /// taken off it). Errors: `StreamNotFound`, `GroupNotFound`, `Denied`.
    pub async fn redrive(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        selection: RedriveSelection,
    ) -> Result<Redriven, LogError> {
        authorize(caller, Operation::ChangeGroup(&stream))?;
        let info = self.group_info(&stream, &group).await?;
        authorize(
            caller,
            Operation::Take(&info.state.group.dead_letter_stream),
        )?;
        let redriven = self
            .writer
            .group(|reply| GroupCommand::Redrive {
                stream: stream.clone(),
                group: group.clone(),
                selection,
                reply,
            })
            .await?;
        if redriven.redriven > 0 {
            self.groups.wake(&stream, &group);
        }
        Ok(redriven)
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
