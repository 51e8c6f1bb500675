//! Applying one command to the write transaction: which operation runs it
//! and how its outcome is filed among the held-back answers.

use super::answer::{Answer, settle, settle_reclaiming};
use super::command::{Command, GroupCommand};
use super::held::settle_held;
use super::transaction::Transaction;
use crate::model::StorageError;
use crate::model::groups::Delivered;

impl Transaction {
    /// Applies one command; a storage error fails it and is returned.
    pub(super) async fn apply(
        &mut self,
        cmd: Command,
        answers: &mut Vec<Box<dyn Answer>>,
    ) -> Result<(), StorageError> {
        match cmd {
            Command::Append { request, reply } => {
                settle(reply, self.append(&request).await, answers)
            }
            Command::CreateStream {
                stream,
                retention,
                reply,
            } => settle(reply, self.create(&stream, &retention).await, answers),
            Command::DeleteStream { stream, reply } => {
                settle(reply, self.delete(&stream).await, answers)
            }
            Command::ExpireStream {
                stream,
                cutoff,
                reply,
            } => settle(reply, self.expire(&stream, cutoff).await, answers),
            Command::Trim {
                stream,
                until,
                reply,
            } => settle(reply, self.trim(&stream, until).await, answers),
            Command::TrimConsumed { stream, reply } => {
                settle(reply, self.trim_consumed(&stream).await, answers)
            }
            Command::ForgetRemovedIds {
                stream,
                before,
                reply,
            } => settle(
                reply,
                self.forget_removed_ids(&stream, before).await,
                answers,
            ),
            Command::Take {
                stream,
                end,
                limit,
                max_bytes,
                reply,
            } => settle(
                reply,
                self.take(&stream, end, limit, max_bytes).await,
                answers,
            ),
            Command::Group(cmd) => self.apply_group(cmd, answers).await,
            Command::Probe { bytes, reply } => {
                settle(reply, self.probe(bytes).await.map(Ok), answers)
            }
        }
    }

    async fn apply_group(
        &mut self,
        cmd: GroupCommand,
        answers: &mut Vec<Box<dyn Answer>>,
    ) -> Result<(), StorageError> {
        // Group commands read events: earlier appends of this batch must be
        // visible to them. Group writes held back stay held (see `held`).
        if let Err(e) = self.flush_events().await {
            cmd.fail(&e);
            return Err(e);
        }
        match cmd {
            GroupCommand::Create {
                stream,
                group,
                settings,
                reply,
            } => {
                let outcome = self.create_group(&stream, &group, &settings).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Delete {
                stream,
                group,
                reply,
            } => {
                let outcome = self.delete_group(&stream, &group).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::DeleteConsumer {
                stream,
                group,
                consumer,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.delete_consumer(&stream, &group, &consumer).await;
                settle(reply, outcome, answers)
            }
            // A caller gone before its delivery was decided gets nothing:
            // whatever it was handed would wait out an ack timeout.
            GroupCommand::Deliver { reply, .. } if reply.is_closed() => Ok(()),
            GroupCommand::Claim { reply, .. } if reply.is_closed() => Ok(()),
            // Re-reading one's own pending entries hands nothing out.
            GroupCommand::Deliver { request, reply, .. } if request.pending_only => {
                let outcome = self.deliver(&request).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Deliver {
                request,
                reply,
                give_back,
            } => {
                let outcome = self.deliver(&request).await;
                settle_reclaiming(reply, outcome, answers, |d: Delivered| {
                    give_back(d.deliveries);
                })
            }
            GroupCommand::Ack {
                stream,
                group,
                sequences,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.hold_ack(&stream, &group, sequences).await;
                settle_held(reply, outcome, answers)
            }
            GroupCommand::Nack {
                stream,
                group,
                holder,
                sequences,
                delay,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.nack(&stream, &group, holder, &sequences, delay).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Claim {
                stream,
                group,
                consumer,
                min_idle,
                target,
                reply,
                give_back,
            } => {
                let outcome = self
                    .claim(&stream, &group, &consumer, min_idle, target)
                    .await;
                settle_reclaiming(reply, outcome, answers, give_back)
            }
            GroupCommand::Release {
                stream,
                group,
                consumer,
                handed,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.release(&stream, &group, &consumer, &handed).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Seek {
                stream,
                group,
                start,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.seek_group(&stream, &group, start).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::Redrive {
                stream,
                group,
                dead_letter_stream,
                chosen,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self
                    .redrive(&stream, &group, &dead_letter_stream, &chosen)
                    .await;
                settle(reply, outcome, answers)
            }
            GroupCommand::DeadLetterExhausted {
                stream,
                group,
                reply,
            } => {
                self.tx.announce_group(&stream, &group);
                let outcome = self.dead_letter_exhausted(&stream, &group).await;
                settle(reply, outcome, answers)
            }
            GroupCommand::SaveCheckpoint { checkpoint, reply } => {
                let outcome = self.save_checkpoint(checkpoint).await;
                settle(reply, outcome, answers)
            }
        }
    }
}
