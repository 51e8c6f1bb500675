//! Saving a checkpoint inside the write transaction, stamped with the
//! transaction's time.

use super::answer::Outcome;
use super::transaction::Transaction;
use crate::log::error::LogError;
use crate::model::groups::Checkpoint;

impl Transaction {
    pub(super) async fn save_checkpoint(&mut self, checkpoint: Checkpoint) -> Outcome<Checkpoint> {
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
