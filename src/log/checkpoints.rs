//! Checkpoints: named positions a plain subscriber commits and resumes
//! from, per stream or global, each readable only by its owner.

use super::access::{Operation, authorize};
use super::error::LogError;
use super::groups::{Checkpoint, CheckpointAt};
use super::subscription::Start;
use super::writer::GroupCommand;
use super::{EventLog, parse};
use crate::auth::Principal;
use crate::model::names::{CheckpointName, StreamName};
use crate::model::records::UnixMicros;

/// Streams a [`LogError::CheckpointPerStream`] names at most.
const PER_STREAM_NAMED: usize = 5;

impl EventLog {
    /// Commits one of the caller's checkpoints: of `stream`, or global
    /// (`None`).
    pub async fn commit_checkpoint(
        &self,
        caller: &Principal,
        name: CheckpointName,
        stream: Option<StreamName>,
        at: Option<CheckpointAt>,
    ) -> Result<Checkpoint, LogError> {
        authorize(caller, Operation::Checkpoint(stream.as_ref()))?;
        let (sequence, position) = match (at, &stream) {
            (None, _) => {
                return Err(LogError::invalid(
                    "at",
                    "set a sequence, a position or a time",
                ));
            }
            // Resumes by position at the first event recorded at or after
            // `t`: in the stream for a per-stream checkpoint, in the log
            // for a global one.
            (Some(CheckpointAt::Time(t)), _) => (0, self.storage.position_before_time(t).await?),
            (Some(CheckpointAt::Sequence(_)), None) => {
                return Err(LogError::invalid(
                    "sequence",
                    "a global checkpoint takes a position; name a stream for a sequence",
                ));
            }
            (Some(CheckpointAt::Sequence(s)), Some(stream)) => {
                // A checkpoint names an event processed, so one that cannot
                // exist yet would make its resume skip events: refused now
                // rather than when a subscription resumes from it.
                let last = self
                    .storage
                    .get_stream(stream)
                    .await?
                    .ok_or_else(|| LogError::StreamNotFound(stream.to_string()))?
                    .last_sequence;
                LogError::refuse_beyond_head(
                    "sequence",
                    s.saturating_add(1),
                    last.saturating_add(1),
                    Some(stream.as_str()),
                    Some(name.as_str()),
                )?;
                // Remember where that event sits in the log too, so the
                // checkpoint can also be resumed by position.
                let position = self
                    .storage
                    .position_before_sequence(stream, s.saturating_add(1))
                    .await?;
                (s, position)
            }
            (Some(CheckpointAt::Position(p)), _) => {
                let head = self.storage.head_position().await?;
                LogError::refuse_beyond_head(
                    "position",
                    p.saturating_add(1),
                    head.saturating_add(1),
                    None,
                    Some(name.as_str()),
                )?;
                (0, p)
            }
        };
        let checkpoint = Checkpoint {
            owner: caller.checkpoint_owner(),
            name,
            stream,
            sequence,
            position,
            committed_at: UnixMicros::now(),
        };
        self.writer
            .group(|reply| GroupCommand::SaveCheckpoint { checkpoint, reply })
            .await
    }

    /// Reads one of the caller's checkpoints: of `stream`, or global
    /// (`None`).
    pub async fn get_checkpoint(
        &self,
        caller: &Principal,
        name: &CheckpointName,
        stream: Option<&StreamName>,
    ) -> Result<Checkpoint, LogError> {
        authorize(caller, Operation::Checkpoint(stream))?;
        self.storage
            .checkpoint(&caller.checkpoint_owner(), name, stream)
            .await?
            .ok_or_else(|| LogError::CheckpointNotFound {
                name: name.to_string(),
                stream: stream.map(|s| s.to_string()),
            })
    }

    /// The caller's checkpoints whose names start with `prefix`, but for
    /// those of streams it may no longer read.
    pub async fn list_checkpoints(
        &self,
        caller: &Principal,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, LogError> {
        authorize(caller, Operation::ListCheckpoints)?;
        let mut checkpoints = self
            .storage
            .list_checkpoints(&caller.checkpoint_owner(), prefix)
            .await?;
        checkpoints.retain(|c| {
            c.stream
                .as_ref()
                .is_none_or(|s| caller.may_read(s.as_str()))
        });
        Ok(checkpoints)
    }

    /// Where a subscription starting at checkpoint `name` begins: right
    /// after the committed event. A single-stream subscription uses the
    /// stream's checkpoint of that name, else the global one; others use
    /// the global one. With none committed yet it starts at the earliest
    /// event (a new reader starts from the beginning).
    pub(super) async fn checkpoint_start(
        &self,
        caller: &Principal,
        name: &str,
        single_stream: Option<&StreamName>,
    ) -> Result<Start, LogError> {
        let owner = &caller.checkpoint_owner();
        let label = parse::checkpoint(name)?;
        if let Some(stream) = single_stream {
            if let Some(cp) = self.storage.checkpoint(owner, &label, Some(stream)).await? {
                return Ok(if cp.sequence > 0 {
                    Start::Sequence(cp.sequence.saturating_add(1))
                } else {
                    Start::Position(cp.position.saturating_add(1))
                });
            }
        }
        if let Some(cp) = self.storage.checkpoint(owner, &label, None).await? {
            return Ok(Start::Position(cp.position.saturating_add(1)));
        }
        // Never committed: a first run starts from the earliest event. But
        // per-stream checkpoints of that name mean the caller resumes the
        // wrong kind: refuse rather than replay everything.
        if single_stream.is_none() {
            let streams: Vec<String> = self
                .storage
                .list_checkpoints(owner, label.as_str())
                .await?
                .into_iter()
                .filter(|cp| cp.name == label)
                // Streams the caller may no longer read are neither named
                // nor counted.
                .filter_map(|cp| cp.stream.map(|s| s.to_string()))
                .filter(|s| caller.may_read(s))
                .take(PER_STREAM_NAMED)
                .collect();
            if !streams.is_empty() {
                return Err(LogError::CheckpointPerStream {
                    name: name.to_owned(),
                    streams,
                });
            }
        }
        Ok(Start::Earliest)
    }
}
