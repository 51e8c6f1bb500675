//! The group-commit writer: one task per process owns every mutation.
//!
//! Callers queue commands; the writer takes everything queued (bounded by
//! count and bytes), applies it in one transaction and commits once, so one
//! fsync serves every caller in the batch. Each command is checked before
//! anything of it is written, so a rejected command leaves no trace while
//! the others in its batch still commit. A storage error rolls the whole
//! batch back and fails every command in it.
//!
//! # Layout
//! - here: [`WriterHandle`], through which callers queue commands, and the
//!   task's start and [`WriterTask::finish`].
//! - `command`: the commands, with named fields, and their answer types.
//! - `batch`: the loop that gathers a batch, commits it and feeds the hub.
//! - `answer`: answers held back until the commit.
//! - `transaction`: what one transaction has read and has yet to write.
//! - `apply`: which operation runs each command.
//! - the operations, each an `impl Transaction` block: `append`, `streams`
//!   (create, delete, expire, trim, take), `groups` (create, seek and
//!   delete groups and consumers), `delivery` (hand out work, dead-letter),
//!   `redrive` (dead letters back to their group), `settlement` (ack, nack,
//!   claim, release), `checkpoints`, `probe`;
//!   `held`: the group writes they hold back until a flush, so the acks and
//!   deliveries of a batch share a few multi-row statements.
//!
//! Imports run one way: `answer` ← `command` ← `transaction` ← the
//! operations, `apply` ← `batch` ← here. The domain outside sees only the
//! handle and the commands, never the transaction.

mod answer;
mod append;
mod apply;
mod batch;
mod checkpoints;
mod command;
mod delivery;
mod groups;
mod held;
mod probe;
mod redrive;
mod settlement;
mod streams;
mod transaction;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::error::LogError;
use super::hub::Hub;
use crate::log::history::History;
use crate::metrics::Metrics;
use crate::model::names::StreamName;
use crate::model::query::{TakeEnd, TrimUntil};
use crate::model::records::{Retention, StoredEvent, StreamInfo, UnixMicros};
use crate::storage::Storage;
use batch::{WriteOutcome, Writer};
use command::Command;

pub(crate) use answer::Reply;
pub use command::{AppendRequest, Appended};
pub(crate) use command::{GiveBack, GroupCommand};
pub(crate) use delivery::dead_letter_origin;
pub use transaction::StreamLimits;

/// Commands that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;
/// Bytes a write probe writes: at least a few pages, at most enough to tell
/// that large batches fit without allocating a whole batch's worth.
pub const PROBE_BYTES: std::ops::RangeInclusive<usize> = (64 << 10)..=(8 << 20);

/// Queues commands for the writer task. Cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Command>,
    outcome: Arc<WriteOutcome>,
}

/// The answer to a queued command: ready once the batch that holds it has
/// committed (or failed).
pub struct Queued<T>(oneshot::Receiver<Result<T, LogError>>);

impl<T> Future for Queued<T> {
    type Output = Result<T, LogError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The writer drops commands only when it stops.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(LogError::ShuttingDown)))
    }
}

impl WriterHandle {
    /// Queues a command; returns once the writer holds it. Commands are
    /// applied in the order they were queued, each in the same commit as
    /// the one queued before it or a later one.
    async fn queue<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<Queued<T>, LogError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(make(reply))
            .await
            .map_err(|_| LogError::ShuttingDown)?;
        Ok(Queued(answer))
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, LogError> {
        self.queue(make).await?.await
    }

    /// Runs a consumer-group or checkpoint command.
    pub(crate) async fn group<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> GroupCommand,
    ) -> Result<T, LogError> {
        self.call(|reply| Command::Group(make(reply))).await
    }

    /// Whether the last write transaction failed for want of storage (a
    /// full disk, a lost database) and none has committed since.
    pub fn writes_failing(&self) -> bool {
        self.outcome.failing.load(Ordering::Acquire)
    }

    /// Commits a write twice as large as the payload of the last batch that
    /// failed for want of storage (within [`PROBE_BYTES`]), then frees its
    /// space again:
    /// succeeds only when such a batch would fit. Reads alone cannot tell,
    /// and neither can a one-page write: a full disk serves both.
    pub async fn probe(&self) -> Result<(), LogError> {
        // Twice the payload: the failed batch also wrote index pages and
        // left the space it got in the WAL file for the next writer, which
        // a probe of the same size could squeeze into while the batch still
        // cannot.
        let bytes = self
            .outcome
            .failed_bytes
            .load(Ordering::Acquire)
            .saturating_mul(2)
            .clamp(*PROBE_BYTES.start(), *PROBE_BYTES.end());
        self.call(|reply| Command::Probe { bytes, reply }).await?;
        self.call(|reply| Command::Probe { bytes: 0, reply }).await
    }

    /// Appends a publish request's events.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<Appended>, LogError> {
        self.queue_append(request).await?.await
    }

    /// Queues a publish request's events without waiting for their commit,
    /// so a caller may queue its next request meanwhile (see
    /// [`WriterHandle::queue`] for the order they are applied in).
    pub async fn queue_append(
        &self,
        request: AppendRequest,
    ) -> Result<Queued<Vec<Appended>>, LogError> {
        self.queue(|reply| Command::Append { request, reply }).await
    }

    /// Creates a stream.
    pub async fn create_stream(
        &self,
        stream: StreamName,
        retention: Retention,
    ) -> Result<StreamInfo, LogError> {
        self.call(|reply| Command::CreateStream {
            stream,
            retention,
            reply,
        })
        .await
    }

    /// Deletes a stream; returns the number of events deleted.
    pub async fn delete_stream(&self, stream: StreamName) -> Result<u64, LogError> {
        self.call(|reply| Command::DeleteStream { stream, reply })
            .await
    }

    /// Deletes a stream idle since before `cutoff` (no appends, or created
    /// before it when it never had any); returns the events removed, or
    /// `None` when the stream is gone or no longer idle.
    pub async fn expire(
        &self,
        stream: StreamName,
        cutoff: UnixMicros,
    ) -> Result<Option<u64>, LogError> {
        self.call(|reply| Command::ExpireStream {
            stream,
            cutoff,
            reply,
        })
        .await
    }

    /// Trims a stream; returns the number of events removed.
    pub async fn trim(&self, stream: StreamName, until: TrimUntil) -> Result<u64, LogError> {
        self.call(|reply| Command::Trim {
            stream,
            until,
            reply,
        })
        .await
    }

    /// Removes the events every group of the stream acked, by its retention
    /// policy (none under `limits`); returns how many went.
    pub async fn trim_consumed(&self, stream: StreamName) -> Result<u64, LogError> {
        self.call(|reply| Command::TrimConsumed { stream, reply })
            .await
    }

    /// Forgets the stream's removed ids of events recorded before
    /// `before` (past its dedup window); returns how many were forgotten.
    pub async fn forget_removed_ids(
        &self,
        stream: StreamName,
        before: UnixMicros,
    ) -> Result<u64, LogError> {
        self.call(|reply| Command::ForgetRemovedIds {
            stream,
            before,
            reply,
        })
        .await
    }

    /// Removes and returns up to `limit` events, and about `max_bytes` of
    /// payload (at least one event), from one end of a stream.
    pub async fn take(
        &self,
        stream: StreamName,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        self.call(|reply| Command::Take {
            stream,
            end,
            limit,
            max_bytes,
            reply,
        })
        .await
    }
}

/// The running writer task.
pub struct WriterTask {
    handle: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl WriterTask {
    /// Stops taking commands, commits those already queued, and waits up to
    /// `grace` for that. Later calls fail with SHUTTING_DOWN.
    pub async fn finish(self, grace: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            warn!("the writer did not finish its queue within the grace period");
        }
    }
}

/// Starts the writer task.
/// Committed events go to `hub` when given; when several processes write the
/// database, the tailer feeds the hub instead and this is `None`.
pub fn spawn(
    storage: Arc<dyn Storage>,
    hub: Option<Hub>,
    clock_floor: Option<UnixMicros>,
    limits: StreamLimits,
    metrics: Arc<Metrics>,
    history: Arc<History>,
) -> (WriterHandle, WriterTask) {
    let (queue, commands) = mpsc::channel(QUEUE_DEPTH);
    let stop = CancellationToken::new();
    let outcome = Arc::new(WriteOutcome::default());
    let writer = Writer {
        storage,
        hub,
        limits,
        metrics,
        history,
        outcome: outcome.clone(),
    };
    let handle = tokio::spawn(writer.run(commands, clock_floor.unwrap_or_default(), stop.clone()));
    (WriterHandle { queue, outcome }, WriterTask { handle, stop })
}
