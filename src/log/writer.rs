//! The group-commit writer: one task per process owns every mutation.
//!
//! Callers queue commands; the writer takes everything queued (bounded by
//! count and bytes), applies it in one transaction and commits once, so one
//! fsync serves every caller in the batch. Each command is checked before
//! anything of it is written, so a rejected command leaves no trace while
//! the others in its batch still commit. A storage error rolls the whole
//! batch back and fails every command in it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::error::{Expectation, LogError};
use super::event::NewEvent;
use super::group_commands::GroupCommand;
use super::hub::Hub;
use super::model::{Position, Retention, Sequence, StoredEvent, StreamInfo, UnixMicros};
use super::names::StreamName;
use crate::metrics::Metrics;
use crate::storage::{
    EventRow, ExistingEvent, Storage, StorageError, StreamHead, TakeEnd, TrimUntil, WriteTx,
};

/// Most commands applied in one transaction.
const MAX_BATCH_COMMANDS: usize = 1024;
/// Most payload bytes applied in one transaction (a single larger command
/// still goes through, alone).
const MAX_BATCH_BYTES: usize = 32 << 20;
/// Commands that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;
/// Bytes a write probe writes: at least a few pages, at most enough to tell
/// that large batches fit without allocating a whole batch's worth.
pub const PROBE_BYTES: std::ops::RangeInclusive<usize> = (64 << 10)..=(8 << 20);

/// An append of one publish request.
#[derive(Debug)]
pub struct AppendRequest {
    /// Target stream.
    pub stream: StreamName,
    /// Validated events, in order.
    pub events: Vec<NewEvent>,
    /// Optimistic-concurrency condition.
    pub expected: Expectation,
    /// Create the stream if it does not exist.
    pub auto_create: bool,
}

/// Where one published event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event id.
    pub id: String,
    /// Its sequence.
    pub sequence: Sequence,
    /// Its position.
    pub position: Position,
    /// When it was recorded.
    pub recorded_at: UnixMicros,
    /// Whether it was already in the stream.
    pub duplicate: bool,
}

/// A stored event found by id answers a republish as its duplicate.
impl From<ExistingEvent> for Appended {
    fn from(found: ExistingEvent) -> Self {
        Self {
            id: found.id,
            sequence: found.sequence,
            position: found.position,
            recorded_at: found.recorded_at,
            duplicate: true,
        }
    }
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, LogError>>;

enum Command {
    Append(AppendRequest, Reply<Vec<Appended>>),
    Create(StreamName, Retention, Reply<StreamInfo>),
    Delete(StreamName, Reply<u64>),
    /// Deletes the stream if nothing was appended since the cutoff.
    Expire(StreamName, UnixMicros, Reply<Option<u64>>),
    Trim(StreamName, TrimUntil, Reply<u64>),
    Take(StreamName, TakeEnd, u32, usize, Reply<Vec<StoredEvent>>),
    Group(GroupCommand),
    /// Replaces the probe's scratch row with this many bytes, to learn
    /// whether a write of that size succeeds.
    Probe(usize, Reply<()>),
}

impl Command {
    fn is_probe(&self) -> bool {
        matches!(self, Self::Probe(..))
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Append(req, _) => req.events.iter().map(|e| e.payload.len()).sum(),
            _ => 0,
        }
    }

    fn fail(self, error: &StorageError) {
        fn send<T>(reply: Reply<T>, error: &StorageError) {
            // A caller that went away no longer needs its answer.
            let _ = reply.send(Err(LogError::Storage(error.clone())));
        }
        match self {
            Self::Append(_, r) => send(r, error),
            Self::Create(_, _, r) => send(r, error),
            Self::Expire(_, _, r) => send(r, error),
            Self::Delete(_, r) | Self::Trim(_, _, r) => send(r, error),
            Self::Take(_, _, _, _, r) => send(r, error),
            Self::Group(g) => g.fail(error),
            Self::Probe(_, r) => send(r, error),
        }
    }
}

/// Queues commands for the writer task. Cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Command>,
    outcome: Arc<WriteOutcome>,
}

/// What the last write transaction showed about storage.
#[derive(Default)]
struct WriteOutcome {
    /// Set when a batch failed because storage was unavailable, cleared by
    /// the next commit.
    failing: AtomicBool,
    /// Payload bytes of the last batch that failed so.
    failed_bytes: AtomicUsize,
}

impl WriterHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, LogError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(make(reply))
            .await
            .map_err(|_| LogError::ShuttingDown)?;
        answer.await.map_err(|_| LogError::ShuttingDown)?
    }

    /// Runs a consumer-group or checkpoint command.
    pub(super) async fn group<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> GroupCommand,
    ) -> Result<T, LogError> {
        self.call(|r| Command::Group(make(r))).await
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
        self.call(|r| Command::Probe(bytes, r)).await?;
        self.call(|r| Command::Probe(0, r)).await
    }

    /// Appends a publish request's events.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<Appended>, LogError> {
        self.call(|r| Command::Append(request, r)).await
    }

    /// Creates a stream.
    pub async fn create_stream(
        &self,
        stream: StreamName,
        retention: Retention,
    ) -> Result<StreamInfo, LogError> {
        self.call(|r| Command::Create(stream, retention, r)).await
    }

    /// Deletes a stream; returns the number of events deleted.
    pub async fn delete_stream(&self, stream: StreamName) -> Result<u64, LogError> {
        self.call(|r| Command::Delete(stream, r)).await
    }

    /// Deletes a stream idle since before `cutoff` (no appends, or created
    /// before it when it never had any); returns the events removed, or
    /// `None` when the stream is gone or no longer idle.
    pub async fn expire(
        &self,
        stream: StreamName,
        cutoff: UnixMicros,
    ) -> Result<Option<u64>, LogError> {
        self.call(|r| Command::Expire(stream, cutoff, r)).await
    }

    /// Trims a stream; returns the number of events removed.
    pub async fn trim(&self, stream: StreamName, until: TrimUntil) -> Result<u64, LogError> {
        self.call(|r| Command::Trim(stream, until, r)).await
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
        self.call(|r| Command::Take(stream, end, limit, max_bytes, r))
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
) -> (WriterHandle, WriterTask) {
    let (queue, commands) = mpsc::channel(QUEUE_DEPTH);
    let stop = CancellationToken::new();
    let outcome = Arc::new(WriteOutcome::default());
    let writer = Writer {
        storage,
        hub,
        limits,
        metrics,
        outcome: outcome.clone(),
    };
    let handle = tokio::spawn(writer.run(commands, clock_floor.unwrap_or_default(), stop.clone()));
    (WriterHandle { queue, outcome }, WriterTask { handle, stop })
}

/// What the writer task owns.
struct Writer {
    storage: Arc<dyn Storage>,
    hub: Option<Hub>,
    limits: StreamLimits,
    metrics: Arc<Metrics>,
    outcome: Arc<WriteOutcome>,
}

impl Writer {
    async fn run(
        self,
        mut commands: mpsc::Receiver<Command>,
        mut clock: UnixMicros,
        stop: CancellationToken,
    ) {
        let Self {
            storage,
            hub,
            limits,
            metrics,
            outcome,
        } = self;
        // A probe met while a batch was being gathered: it goes next, alone.
        let mut held_back: Option<Command> = None;
        loop {
            let next = match held_back.take() {
                Some(cmd) => Some(cmd),
                None => tokio::select! {
                    biased;
                    cmd = commands.recv() => cmd,
                    () = stop.cancelled() => {
                        // Refuse new commands; what is queued still commits.
                        commands.close();
                        commands.recv().await
                    }
                },
            };
            let Some(first) = next else { break };
            let mut bytes = first.bytes();
            // A probe commits in a transaction of its own: its filler must
            // never fail a publish that would have fitted, and its failure
            // must only say something about its own size.
            let alone = first.is_probe();
            let mut batch = vec![first];
            while !alone && batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
                match commands.try_recv() {
                    Ok(cmd) if cmd.is_probe() => {
                        held_back = Some(cmd);
                        break;
                    }
                    Ok(cmd) => {
                        bytes += cmd.bytes();
                        batch.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            // recorded_at never goes backwards, even if the wall clock does, so
            // time-based starts can rely on it growing with position.
            clock = clock.max(UnixMicros::now());
            let size = batch.len();
            let started = std::time::Instant::now();
            match commit_batch(storage.as_ref(), batch, clock, limits).await {
                Ok(Committed {
                    events,
                    dead_lettered,
                }) => {
                    outcome.failing.store(false, Ordering::Release);
                    debug!(commands = size, events = events.len(), "committed");
                    metrics
                        .commit_duration
                        .record(started.elapsed().as_secs_f64(), &[]);
                    if !events.is_empty() {
                        metrics.events_appended.add(events.len() as u64, &[]);
                        metrics.append_batch_size.record(events.len() as u64, &[]);
                    }
                    if dead_lettered > 0 {
                        metrics.events_dead_lettered.add(dead_lettered, &[]);
                    }
                    if let Some(hub) = hub.as_ref().filter(|_| !events.is_empty()) {
                        hub.publish(Arc::new(events.into_iter().map(Arc::new).collect()));
                    }
                }
                Err(e) => {
                    if matches!(e, StorageError::Unavailable(_)) {
                        // What the probe must fit: the payload that did not.
                        // A probe's or an event-less batch's failure keeps it.
                        if bytes > 0 {
                            outcome.failed_bytes.store(bytes, Ordering::Release);
                        }
                        outcome.failing.store(true, Ordering::Release);
                    }
                    warn!(commands = size, error = %e, "write batch rolled back");
                }
            }
        }
        debug!("writer stopped");
    }
}

/// What a committed batch did.
struct Committed {
    /// Appended events, in position order, for the hub.
    events: Vec<StoredEvent>,
    /// Events moved to dead-letter streams.
    dead_lettered: u64,
}

/// Applies a batch in one transaction, answers every caller, and returns
/// what was committed.
async fn commit_batch(
    storage: &dyn Storage,
    batch: Vec<Command>,
    now: UnixMicros,
    limits: StreamLimits,
) -> Result<Committed, StorageError> {
    let mut tx = match storage.begin_write().await {
        Ok(tx) => tx,
        Err(e) => {
            batch.into_iter().for_each(|c| c.fail(&e));
            return Err(e);
        }
    };
    let floor = match tx.recorded_floor().await {
        Ok(floor) => floor,
        Err(e) => {
            tx.rollback().await;
            batch.into_iter().for_each(|c| c.fail(&e));
            return Err(e);
        }
    };
    // Other writers of a shared database may have recorded later times.
    let mut work = Transaction::new(tx, now.max(floor), limits);
    if let Err(e) = work.prefetch(&batch).await {
        work.tx.rollback().await;
        batch.into_iter().for_each(|c| c.fail(&e));
        return Err(e);
    }
    // Answers are held back until the commit succeeded: nobody hears "done"
    // for something that may still roll back.
    let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(batch.len());
    let mut commands = batch.into_iter();
    while let Some(cmd) = commands.next() {
        if let Err(e) = work.apply(cmd, &mut answers).await {
            work.tx.rollback().await;
            answers.into_iter().for_each(|a| a.fail(&e));
            commands.for_each(|c| c.fail(&e));
            return Err(e);
        }
    }
    match work.finish().await {
        Ok(committed) => {
            answers.into_iter().for_each(|a| a.send());
            Ok(committed)
        }
        Err(e) => {
            answers.into_iter().for_each(|a| a.fail(&e));
            Err(e)
        }
    }
}

/// A caller's answer, decided but held until the transaction's fate is known.
pub(super) trait Answer: Send {
    /// The transaction committed: send the decided result.
    fn send(self: Box<Self>);
    /// The transaction rolled back: report the storage error instead.
    fn fail(self: Box<Self>, error: &StorageError);
}

struct Decided<T> {
    reply: Reply<T>,
    result: Result<T, LogError>,
    /// Takes back a result whose caller went away before it was sent
    /// (what it handed out must not wait for someone who is gone).
    reclaim: Option<Box<dyn FnOnce(T) + Send>>,
}

impl<T: Send> Answer for Decided<T> {
    fn send(self: Box<Self>) {
        let Self {
            reply,
            result,
            reclaim,
        } = *self;
        // A caller that went away no longer needs its answer.
        if let (Err(Ok(unsent)), Some(reclaim)) = (reply.send(result), reclaim) {
            reclaim(unsent);
        }
    }

    fn fail(self: Box<Self>, error: &StorageError) {
        let _ = self.reply.send(Err(LogError::Storage(error.clone())));
    }
}

/// Files the outcome of one command: a decided result waits in `answers`,
/// a storage error is reported at once and aborts the batch.
pub(super) fn settle<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Result<Result<T, LogError>, StorageError>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<(), StorageError> {
    settle_answer(reply, outcome, answers, None)
}

/// Like [`settle`]; if the caller is gone when the committed result is
/// sent, `reclaim` gets it back (to release what it handed out).
pub(super) fn settle_reclaiming<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Result<Result<T, LogError>, StorageError>,
    answers: &mut Vec<Box<dyn Answer>>,
    reclaim: impl FnOnce(T) + Send + 'static,
) -> Result<(), StorageError> {
    settle_answer(reply, outcome, answers, Some(Box::new(reclaim)))
}

fn settle_answer<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Result<Result<T, LogError>, StorageError>,
    answers: &mut Vec<Box<dyn Answer>>,
    reclaim: Option<Box<dyn FnOnce(T) + Send>>,
) -> Result<(), StorageError> {
    match outcome {
        Ok(result) => {
            answers.push(Box::new(Decided {
                reply,
                result,
                reclaim,
            }));
            Ok(())
        }
        Err(e) => {
            let _ = reply.send(Err(LogError::Storage(e.clone())));
            Err(e)
        }
    }
}

/// The state of one write transaction while its commands are applied.
pub(super) struct Transaction {
    pub(super) tx: Box<dyn WriteTx>,
    pub(super) now: UnixMicros,
    /// Stream heads read (and locked) so far; `None` = known not to exist.
    heads: HashMap<StreamName, Option<StreamHead>>,
    /// Heads whose counters changed since the last flush.
    dirty: Vec<StreamName>,
    /// The log head, once read.
    log_head: Option<Position>,
    log_head_dirty: bool,
    /// Rows not inserted yet; inserting them together is the point of
    /// batching.
    rows: Vec<EventRow>,
    /// Ids appended by this transaction and not yet inserted, per stream id,
    /// so a later command in the batch sees them as duplicates.
    unflushed_ids: HashMap<(i64, String), usize>,
    /// Streams whose stored duplicates of this batch's ids were looked up
    /// up front (see `prefetch`); valid until the first flush.
    prefetched: std::collections::HashSet<i64>,
    /// What that lookup found, by (stream id, event id).
    existing: HashMap<(i64, String), Appended>,
    /// Every event appended, in position order.
    appended: Vec<StoredEvent>,
    /// Events dead-lettered by group commands.
    pub(super) dead_lettered: u64,
    limits: StreamLimits,
    /// Streams that exist, once counted (only creating one needs it).
    stream_count: Option<u64>,
}

/// Size limits the writer enforces; 0 means none.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamLimits {
    /// Most streams the log holds.
    pub max_streams: u64,
    /// Most retained events per stream.
    pub max_stream_events: u64,
}

impl Transaction {
    fn new(tx: Box<dyn WriteTx>, now: UnixMicros, limits: StreamLimits) -> Self {
        Self {
            tx,
            now,
            heads: HashMap::new(),
            dirty: Vec::new(),
            log_head: None,
            log_head_dirty: false,
            rows: Vec::new(),
            unflushed_ids: HashMap::new(),
            prefetched: std::collections::HashSet::new(),
            existing: HashMap::new(),
            appended: Vec::new(),
            dead_lettered: 0,
            limits,
            stream_count: None,
        }
    }

    /// Reads, in one statement each, the heads of every stream the batch
    /// appends to and the stored events with the batch's ids. Per-command
    /// lookups would cost a round trip each, and round trips, not rows,
    /// are what limits a group commit.
    async fn prefetch(&mut self, batch: &[Command]) -> Result<(), StorageError> {
        let appends = || {
            batch.iter().filter_map(|c| match c {
                Command::Append(req, _) => Some(req),
                _ => None,
            })
        };
        let mut names: Vec<StreamName> = appends().map(|r| r.stream.clone()).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Ok(());
        }
        let found = self.tx.stream_heads(&names).await?;
        for name in names {
            self.heads.insert(name, None);
        }
        for head in found {
            self.heads.insert(head.name.clone(), Some(head));
        }
        let mut keys: Vec<(i64, &str)> = Vec::new();
        for req in appends() {
            if let Some(Some(head)) = self.heads.get(&req.stream) {
                self.prefetched.insert(head.id);
                keys.extend(req.events.iter().map(|e| (head.id, e.id.as_str())));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        for found in self.tx.find_events(&keys).await? {
            self.existing
                .insert((found.stream_id, found.id.clone()), found.into());
        }
        Ok(())
    }

    pub(super) async fn head(
        &mut self,
        name: &StreamName,
    ) -> Result<Option<StreamHead>, StorageError> {
        if let Some(head) = self.heads.get(name) {
            return Ok(head.clone());
        }
        let head = self
            .tx
            .stream_heads(std::slice::from_ref(name))
            .await?
            .pop();
        self.heads.insert(name.clone(), head.clone());
        Ok(head)
    }

    fn set_head(&mut self, head: StreamHead) {
        if !self.dirty.contains(&head.name) {
            self.dirty.push(head.name.clone());
        }
        self.heads.insert(head.name.clone(), Some(head));
    }

    /// Applies one command; a storage error fails it and is returned.
    async fn apply(
        &mut self,
        cmd: Command,
        answers: &mut Vec<Box<dyn Answer>>,
    ) -> Result<(), StorageError> {
        match cmd {
            Command::Append(req, reply) => settle(reply, self.append(&req).await, answers),
            Command::Create(name, retention, reply) => {
                settle(reply, self.create(&name, &retention).await, answers)
            }
            Command::Delete(name, reply) => settle(reply, self.delete(&name).await, answers),
            Command::Expire(name, cutoff, reply) => {
                settle(reply, self.expire(&name, cutoff).await, answers)
            }
            Command::Trim(name, until, reply) => {
                settle(reply, self.trim(&name, until).await, answers)
            }
            Command::Take(name, end, limit, max_bytes, reply) => settle(
                reply,
                self.take(&name, end, limit, max_bytes).await,
                answers,
            ),
            Command::Group(cmd) => self.apply_group(cmd, answers).await,
            Command::Probe(bytes, reply) => settle(reply, self.probe(bytes).await.map(Ok), answers),
        }
    }

    /// Writes what every append writes (the log head, rewritten as it is
    /// unless this batch moves it anyway) plus `bytes` of scratch data.
    async fn probe(&mut self, bytes: usize) -> Result<(), StorageError> {
        if self.log_head.is_none() {
            self.log_head = Some(self.tx.log_head().await?);
        }
        self.log_head_dirty = true;
        self.tx.write_probe(&filler(bytes)).await
    }

    pub(super) async fn append(
        &mut self,
        req: &AppendRequest,
    ) -> Result<Result<Vec<Appended>, LogError>, StorageError> {
        let head = self.head(&req.stream).await?;

        // Which events the stream already holds: in storage, earlier in this
        // transaction, or earlier in this same request.
        let mut known: HashMap<String, Appended> = HashMap::new();
        if let Some(h) = &head {
            let mut to_look_up = Vec::new();
            for e in &req.events {
                let key = (h.id, e.id.clone());
                if let Some(&i) = self.unflushed_ids.get(&key) {
                    known.insert(e.id.clone(), appended(&self.rows[i].event, true));
                } else if self.prefetched.contains(&h.id) {
                    if let Some(original) = self.existing.get(&key) {
                        known.insert(e.id.clone(), original.clone());
                    }
                } else {
                    to_look_up.push((h.id, e.id.as_str()));
                }
            }
            if !to_look_up.is_empty() {
                for found in self.tx.find_events(&to_look_up).await? {
                    known.insert(found.id.clone(), found.into());
                }
            }
        }
        let is_retry = req.events.iter().all(|e| known.contains_key(e.id.as_str()));
        if is_retry {
            return Ok(Ok(req
                .events
                .iter()
                .map(|e| known[e.id.as_str()].clone())
                .collect()));
        }

        let actual = head.as_ref().map(|h| h.last_sequence);
        let satisfied = match req.expected {
            Expectation::Any => true,
            Expectation::NoStream => head.is_none(),
            Expectation::Exists => head.is_some(),
            Expectation::LastSequence(s) => actual.unwrap_or(0) == s,
        };
        if !satisfied {
            return Ok(Err(LogError::WrongExpectedSequence {
                stream: req.stream.to_string(),
                expected: req.expected,
                actual,
            }));
        }

        let limit = self.limits.max_stream_events;
        if limit > 0 {
            let new = req
                .events
                .iter()
                .filter(|e| !known.contains_key(e.id.as_str()))
                .map(|e| e.id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len() as u64;
            let held = head.as_ref().map_or(0, |h| h.event_count);
            if held + new > limit {
                return Ok(Err(LogError::StreamFull {
                    stream: req.stream.to_string(),
                    limit,
                }));
            }
        }
        let mut head = match head {
            Some(h) => h,
            None if req.auto_create => {
                if let Err(e) = self.make_room_for_stream().await? {
                    return Ok(Err(e));
                }
                let h = self
                    .tx
                    .create_stream(&req.stream, &Retention::default(), self.now)
                    .await?;
                // A new stream stores nothing yet: no lookups needed.
                self.prefetched.insert(h.id);
                self.heads.insert(req.stream.clone(), Some(h.clone()));
                h
            }
            None => return Ok(Err(LogError::StreamNotFound(req.stream.to_string()))),
        };
        let mut position = match self.log_head {
            Some(p) => p,
            None => self.tx.log_head().await?,
        };

        let mut results = Vec::with_capacity(req.events.len());
        for e in &req.events {
            if let Some(a) = known.get(e.id.as_str()) {
                results.push(a.clone());
                continue;
            }
            head.last_sequence += 1;
            position += 1;
            let event = StoredEvent {
                stream: req.stream.clone(),
                sequence: head.last_sequence,
                position,
                recorded_at: self.now,
                id: e.id.clone(),
                event_type: e.event_type.clone(),
                source: e.source.clone(),
                subject: e.subject.clone(),
                payload: e.payload.clone(),
            };
            let a = appended(&event, false);
            // A repeated id later in this request is a duplicate of this one.
            known.insert(
                e.id.clone(),
                Appended {
                    duplicate: true,
                    ..a.clone()
                },
            );
            self.unflushed_ids
                .insert((head.id, e.id.clone()), self.rows.len());
            self.rows.push(EventRow {
                stream_id: head.id,
                event,
            });
            head.event_count += 1;
            results.push(a);
        }
        head.last_position = position;
        head.last_appended_at = Some(self.now);
        self.set_head(head);
        self.log_head = Some(position);
        self.log_head_dirty = true;
        Ok(Ok(results))
    }

    /// Counts a stream about to be created against `max_streams`.
    async fn make_room_for_stream(&mut self) -> Result<Result<(), LogError>, StorageError> {
        let limit = self.limits.max_streams;
        if limit == 0 {
            return Ok(Ok(()));
        }
        let count = match self.stream_count {
            Some(n) => n,
            // Every write transaction holds the log-head lock on PostgreSQL,
            // so no other replica creates streams between count and insert.
            None => self.tx.count_streams().await?,
        };
        if count >= limit {
            self.stream_count = Some(count);
            return Ok(Err(LogError::TooManyStreams { limit }));
        }
        self.stream_count = Some(count + 1);
        Ok(Ok(()))
    }

    async fn create(
        &mut self,
        name: &StreamName,
        retention: &Retention,
    ) -> Result<Result<StreamInfo, LogError>, StorageError> {
        if self.head(name).await?.is_some() {
            return Ok(Err(LogError::StreamAlreadyExists(name.to_string())));
        }
        if let Err(e) = self.make_room_for_stream().await? {
            return Ok(Err(e));
        }
        let head = self.tx.create_stream(name, retention, self.now).await?;
        self.prefetched.insert(head.id);
        self.heads.insert(name.clone(), Some(head));
        Ok(Ok(StreamInfo {
            name: name.clone(),
            event_count: 0,
            first_sequence: 0,
            last_sequence: 0,
            last_position: 0,
            created_at: self.now,
            last_appended_at: None,
            retention: retention.clone(),
            group_count: 0,
        }))
    }

    async fn expire(
        &mut self,
        name: &StreamName,
        cutoff: UnixMicros,
    ) -> Result<Result<Option<u64>, LogError>, StorageError> {
        // Read in the transaction: an append earlier in this very batch
        // counts as activity.
        let idle = match self.head(name).await? {
            None => false,
            Some(head) => head.last_appended_at.unwrap_or(head.created_at) < cutoff,
        };
        if !idle {
            return Ok(Ok(None));
        }
        Ok(self.delete(name).await?.map(Some))
    }

    async fn delete(&mut self, name: &StreamName) -> Result<Result<u64, LogError>, StorageError> {
        let Some(head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let removed = self.tx.delete_stream(head.id).await?;
        self.heads.insert(name.clone(), None);
        if let Some(n) = self.stream_count.as_mut() {
            *n = n.saturating_sub(1);
        }
        Ok(Ok(removed))
    }

    async fn trim(
        &mut self,
        name: &StreamName,
        until: TrimUntil,
    ) -> Result<Result<u64, LogError>, StorageError> {
        let Some(mut head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let removed = self.tx.trim(head.id, until).await?;
        if removed > 0 {
            head.event_count = head.event_count.saturating_sub(removed);
            self.set_head(head);
        }
        Ok(Ok(removed))
    }

    async fn take(
        &mut self,
        name: &StreamName,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Result<Vec<StoredEvent>, LogError>, StorageError> {
        let Some(mut head) = self.head(name).await? else {
            return Ok(Err(LogError::StreamNotFound(name.to_string())));
        };
        self.flush().await?;
        let taken = self.tx.take(&head, end, limit, max_bytes).await?;
        if !taken.is_empty() {
            head.event_count = head.event_count.saturating_sub(taken.len() as u64);
            self.set_head(head);
        }
        Ok(Ok(taken))
    }

    /// Writes pending rows and counters so later statements see them.
    pub(super) async fn flush(&mut self) -> Result<(), StorageError> {
        // Flushed ids are in storage now, where only a fresh lookup sees
        // them (and a trim or take after this may remove stored ones).
        self.prefetched.clear();
        self.existing.clear();
        if !self.rows.is_empty() {
            self.tx.insert_events(&self.rows).await?;
            self.appended
                .extend(self.rows.drain(..).map(|row| row.event));
            self.unflushed_ids.clear();
        }
        let dirty: Vec<StreamHead> = std::mem::take(&mut self.dirty)
            .iter()
            .filter_map(|name| self.heads.get(name).cloned().flatten())
            .collect();
        if !dirty.is_empty() {
            self.tx.save_stream_heads(&dirty).await?;
        }
        if self.log_head_dirty {
            if let Some(p) = self.log_head {
                self.tx.save_log_head(p, self.now).await?;
            }
            self.log_head_dirty = false;
        }
        Ok(())
    }

    /// Writes what is pending and commits; on any error the transaction is
    /// rolled back (by `commit` itself when the commit fails).
    async fn finish(mut self) -> Result<Committed, StorageError> {
        if let Err(e) = self.flush().await {
            self.tx.rollback().await;
            return Err(e);
        }
        self.tx.commit().await?;
        Ok(Committed {
            events: self.appended,
            dead_lettered: self.dead_lettered,
        })
    }
}

/// `len` bytes that no storage engine compresses to nothing (xorshift; not
/// for anything but taking up space).
fn filler(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn appended(e: &StoredEvent, duplicate: bool) -> Appended {
    Appended {
        id: e.id.clone(),
        sequence: e.sequence,
        position: e.position,
        recorded_at: e.recorded_at,
        duplicate,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::{StorageOptions, sqlite::SqliteStorage};

    fn events(ids: &[&str]) -> Vec<NewEvent> {
        ids.iter()
            .map(|id| NewEvent {
                id: (*id).to_owned(),
                event_type: "t".into(),
                source: "/s".into(),
                subject: None,
                payload: Bytes::from_static(b"x"),
            })
            .collect()
    }

    fn append(
        stream: &StreamName,
        ids: &[&str],
        expected: Expectation,
    ) -> (Command, oneshot::Receiver<Result<Vec<Appended>, LogError>>) {
        let (reply, answer) = oneshot::channel();
        let req = AppendRequest {
            stream: stream.clone(),
            events: events(ids),
            expected,
            auto_create: true,
        };
        (Command::Append(req, reply), answer)
    }

    fn summary(answer: Result<Vec<Appended>, LogError>) -> Vec<(String, Sequence, bool)> {
        answer
            .expect("appended")
            .into_iter()
            .map(|a| (a.id, a.sequence, a.duplicate))
            .collect()
    }

    #[tokio::test]
    async fn one_batch_sees_its_own_appends_rejects_alone_and_survives_a_mid_batch_flush() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let storage = SqliteStorage::open(&url, &StorageOptions::default())
            .await
            .unwrap();
        let s = StreamName::parse("s").unwrap();
        let t = StreamName::parse("t").unwrap();

        // A stored event first, so the batch's prefetch has something to find.
        let (seed, seeded) = append(&s, &["stored"], Expectation::Any);
        commit_batch(&storage, vec![seed], UnixMicros(1), StreamLimits::default())
            .await
            .unwrap();
        seeded.await.unwrap().unwrap();

        let (a1, r1) = append(&s, &["a", "stored"], Expectation::Any);
        let (a2, r2) = append(&s, &["a", "b"], Expectation::Any);
        let (a3, r3) = append(&s, &["c"], Expectation::LastSequence(99));
        let (a4, r4) = append(&t, &["x"], Expectation::NoStream);
        let (take_reply, r5) = oneshot::channel();
        let take = Command::Take(s.clone(), TakeEnd::Oldest, 1, usize::MAX, take_reply);
        let (a6, r6) = append(&s, &["b", "stored", "d"], Expectation::Any);
        let events = commit_batch(
            &storage,
            vec![a1, a2, a3, a4, take, a6],
            UnixMicros(2),
            StreamLimits::default(),
        )
        .await
        .unwrap()
        .events;

        assert_eq!(
            summary(r1.await.unwrap()),
            [("a".into(), 2, false), ("stored".into(), 1, true)]
        );
        assert_eq!(
            summary(r2.await.unwrap()),
            [("a".into(), 2, true), ("b".into(), 3, false)]
        );
        assert!(matches!(
            r3.await.unwrap(),
            Err(LogError::WrongExpectedSequence {
                actual: Some(3),
                ..
            })
        ));
        assert_eq!(summary(r4.await.unwrap()), [("x".into(), 1, false)]);
        let taken = r5.await.unwrap().unwrap();
        assert_eq!(
            taken.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["stored"]
        );
        // After the take flushed the batch: "b" is still found in storage,
        // the taken "stored" is gone and so may be appended again.
        assert_eq!(
            summary(r6.await.unwrap()),
            [
                ("b".into(), 3, true),
                ("stored".into(), 4, false),
                ("d".into(), 5, false)
            ]
        );
        let positions: Vec<_> = events.iter().map(|e| e.position).collect();
        assert_eq!(positions, [2, 3, 4, 5, 6], "positions follow commit order");
    }
}
