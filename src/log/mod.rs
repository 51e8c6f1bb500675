//! The domain: streams, events, consumer groups, checkpoints and
//! retention over one group-commit writer.
//!
//! [`EventLog`] is the one entry point both transports (gRPC and HTTP/SSE)
//! call. It takes the caller and parsed names, checks the caller's
//! permission, then the rest of the request, sends every mutation through
//! the writer and serves reads from storage.
//!
//! # Layout
//! - here: [`EventLog`], its start, limits, and the stream operations
//!   (create, describe, list, delete, publish, read, subscribe, trim,
//!   take).
//! - [`writer`]: the group-commit writer; every mutation, group and
//!   checkpoint commands included, is one of its commands.
//! - [`groups`]: consumer groups (admin, delivery, settlement, wake-ups,
//!   metric sampling) and the group and checkpoint records.
//! - `checkpoints`: committing, reading and resuming from checkpoints.
//! - [`access`]: which permission each operation needs; every operation
//!   here checks its caller with it first thing.
//! - [`parse`]: request strings into names, for the transports to call
//!   at the edge (operations take parsed names).
//! - [`hub`]: in-memory fan-out of committed batches; `tailer` feeds it
//!   from storage when several processes write one database.
//! - [`subscription`]: catch-up from storage, then live from the hub.
//! - [`retention`]: per-stream limits enforced in the background.
//! - [`history`]: the last hour of throughput per stream and backlog per
//!   group, in memory, for the console's charts.
//! - `tasks`: [`LogTasks`], the writer and background tasks, joined
//!   before storage closes.
//! - [`event`], [`error`]: new events as parsed from the wire, and the
//!   domain's error; names, records and filters are in [`crate::model`].
//!
//! The domain files reach the writer only through its handle and
//! commands; the writer takes only record types from them (`groups`).

pub mod access;
mod checkpoints;
pub mod error;
pub mod event;
pub mod groups;
pub mod history;
pub mod hub;
pub mod parse;
pub mod retention;
pub mod subscription;
mod tailer;
mod tasks;
pub mod writer;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::model::filter::EventFilter;
pub use crate::model::names::{StreamName, StreamPattern, StreamSelector};
pub use crate::model::records::{
    Position, Retention, RetentionPolicy, Sequence, StoredEvent, StreamInfo, UnixMicros,
};
pub use error::{Expectation, LogError};
pub use event::{AttributeValue, EventAttributes, NewEvent};
pub use groups::{Claim, ConsumeItem, CreateGroup, Fetch, ListPending, MAX_SEQUENCES_PER_CALL};
pub use subscription::{Start, SubscriptionItem};
pub use tasks::LogTasks;
pub use writer::{AppendRequest, Appended, Queued, StreamLimits};

use crate::auth::Principal;
use crate::metrics::Metrics;
use crate::model::query::{Direction, ReadFrom, TakeEnd, TrimUntil};
use crate::storage::Storage;
use access::{Operation, authorize};
use hub::Hub;
use subscription::Subscription;
use writer::WriterHandle;

/// Largest page ListStreams returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most stream names and patterns one subscription may combine.
pub const MAX_SUBSCRIPTION_STREAMS: usize = 100;
/// Heartbeat interval when the request leaves it unset.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Shortest heartbeat interval accepted.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
/// Longest heartbeat interval accepted.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);
/// Most batches the hub keeps (besides its byte budget, `Limits::live_buffer_bytes`).
const HUB_MAX_BATCHES: usize = 4096;

/// Limits and switches the log enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest encoded CloudEvent accepted.
    pub max_event_size: usize,
    /// Most events per publish.
    pub max_batch_events: usize,
    /// Most encoded bytes per publish.
    pub max_batch_bytes: usize,
    /// Whether Publish creates missing streams.
    pub auto_create_streams: bool,
    /// Bytes of recently committed events kept in memory for live
    /// subscribers that fall a little behind; beyond it they read storage.
    pub live_buffer_bytes: usize,
    /// Most subscriptions reading storage at once (catching up, or back
    /// from falling behind): fewer than the read connections, so however
    /// many catch up, other reads still find a connection.
    pub catch_up_reads: usize,
    /// Most streams and most events per stream (0: no limit).
    pub streams: StreamLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_size: 1 << 20,
            max_batch_events: 1000,
            max_batch_bytes: 16 << 20,
            auto_create_streams: true,
            live_buffer_bytes: 64 << 20,
            catch_up_reads: 2,
            streams: StreamLimits::default(),
        }
    }
}

/// A read of one stream's history.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    /// The stream.
    pub stream: StreamName,
    /// Where to start.
    pub from: ReadFrom,
    /// Direction.
    pub direction: Direction,
    /// Maximum events; 0 = default.
    pub limit: u32,
    /// Event filter.
    pub filter: EventFilter,
}

/// A publish's events and condition, decoded and admitted by a transport.
#[derive(Debug, Clone, Default)]
pub struct PublishBatch {
    /// Each event as its attributes and its protobuf encoding, which is
    /// stored as is.
    pub events: Vec<(EventAttributes, Bytes)>,
    /// What the stream's state must be.
    pub expected: Expectation,
}

/// One page of a stream's history.
#[derive(Debug, Clone)]
pub struct ReadPage {
    /// Events in reading order.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts: the first event not returned; at the
    /// end, the sequence the next appended event will get (forward) or 0
    /// (backward).
    pub next_sequence: Sequence,
    /// No further event exists in this direction now.
    pub end_of_stream: bool,
}

/// A subscription request.
#[derive(Debug, Clone, Default)]
pub struct SubscribeQuery {
    /// Stream names and patterns.
    pub streams: Vec<StreamSelector>,
    /// Where to start.
    pub start: Start,
    /// Event filter.
    pub filter: EventFilter,
    /// Heartbeat interval; `None` = default.
    pub heartbeat: Option<Duration>,
}

/// The event log service.
#[derive(Clone)]
pub struct EventLog {
    storage: Arc<dyn Storage>,
    writer: WriterHandle,
    hub: Hub,
    /// Read slots subscriptions share (`Limits::catch_up_reads`).
    catch_up_reads: Arc<tokio::sync::Semaphore>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    /// Wake-ups and connections of consumer groups.
    groups: Arc<groups::GroupSignals>,
    metrics: Arc<Metrics>,
    /// The last hour of throughput and group backlog, fed by the writer
    /// and the group-metrics sampler.
    history: Arc<history::History>,
}

/// Resolves page sizes the AIP-158 way: 0 means the default, values above
/// the maximum are lowered to it.
fn page_size(requested: u32, default: u32) -> u32 {
    match requested {
        0 => default,
        n => n.min(MAX_PAGE_SIZE),
    }
}

impl EventLog {
    /// Starts the writer over `storage`. Returns the log and its tasks, to
    /// be finished at shutdown before storage closes. Cancelling `shutdown`
    /// ends every subscription and background task.
    pub async fn start(
        storage: Arc<dyn Storage>,
        limits: Limits,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, LogTasks), LogError> {
        let hub = Hub::new(limits.live_buffer_bytes, HUB_MAX_BATCHES);
        let clock_floor = storage.last_recorded_at().await?;
        let background = TaskTracker::new();
        let local_hub = match storage.commit_feed().await? {
            // Several processes may write: the tailer feeds the hub.
            Some(feed) => {
                let cursor = storage.head_position().await?;
                background.spawn(tailer::run(
                    storage.clone(),
                    hub.clone(),
                    feed,
                    cursor,
                    shutdown.clone(),
                ));
                None
            }
            None => Some(hub.clone()),
        };
        let history = Arc::new(history::History::default());
        let (writer, writer_task) = writer::spawn(
            storage.clone(),
            local_hub,
            clock_floor,
            limits.streams,
            metrics.clone(),
            history.clone(),
        );
        let log = Self {
            storage,
            writer,
            hub,
            catch_up_reads: Arc::new(tokio::sync::Semaphore::new(limits.catch_up_reads.max(1))),
            limits: Arc::new(limits),
            shutdown: shutdown.clone(),
            groups: Arc::default(),
            metrics,
            history,
        };
        // Other replicas' acks, nacks, seeks and redrives wake the
        // consumers waiting here at once.
        if let Some(mut feed) = log.storage.group_feed().await {
            let (signals, stop) = (log.groups.clone(), shutdown.clone());
            background.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        woken = feed.recv() => match woken {
                            Some((stream, group)) => signals.wake(&stream, &group),
                            None => return,
                        },
                    }
                }
            });
        }
        let tasks = LogTasks {
            background,
            writer: writer_task,
            shutdown,
        };
        Ok((log, tasks))
    }

    /// Resolves when the server begins to shut down: calls that stay open
    /// (subscriptions, publish streams) end then.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.shutdown.clone().cancelled_owned()
    }

    /// Whether storage takes writes, as far as the last write transaction
    /// showed: after one failed for want of storage (a full disk, a lost
    /// database), commits a probe write to find out whether it does again.
    ///
    /// # Errors
    /// The probe's storage error while writes still fail.
    pub async fn check_writes(&self) -> Result<(), LogError> {
        if self.writer.writes_failing() {
            self.writer.probe().await?;
        }
        Ok(())
    }

    /// Creates an empty stream.
    pub async fn create_stream(
        &self,
        caller: &Principal,
        stream: StreamName,
        retention: Retention,
    ) -> Result<StreamInfo, LogError> {
        authorize(caller, Operation::Administer(&stream))?;
        self.writer.create_stream(stream, retention).await
    }

    /// Describes a stream.
    pub async fn get_stream(
        &self,
        caller: &Principal,
        stream: &StreamName,
    ) -> Result<StreamInfo, LogError> {
        authorize(caller, Operation::Inspect(stream))?;
        self.storage
            .get_stream(stream)
            .await?
            .ok_or_else(|| LogError::StreamNotFound(stream.to_string()))
    }

    /// Lists streams in name order; returns the page and the next page token
    /// (empty on the last page). Only streams the caller may read are
    /// listed, and page tokens never name others. (The pattern is checked
    /// after the caller, as it always was: it names no stream to check.)
    pub async fn list_streams(
        &self,
        caller: &Principal,
        pattern: &str,
        page_size_requested: u32,
        page_token: &str,
    ) -> Result<(Vec<StreamInfo>, String), LogError> {
        authorize(caller, Operation::ListStreams)?;
        let pattern = match pattern {
            "" => None,
            p => Some(
                StreamPattern::parse(p).map_err(|reason| LogError::InvalidPattern {
                    pattern: p.to_owned(),
                    reason,
                })?,
            ),
        };
        let after =
            match page_token {
                "" => None,
                t => Some(StreamName::parse(t).map_err(|_| {
                    LogError::invalid("page_token", "not a token this server issued")
                })?),
            };
        let size = page_size(page_size_requested, DEFAULT_PAGE_SIZE);
        let visible = |s: &StreamInfo| caller.may_read(s.name.as_str());
        let mut streams = Vec::new();
        let mut cursor = after.map(|a| a.to_string());
        // One extra stream tells whether another page exists.
        while streams.len() <= size as usize {
            let page = self
                .storage
                .list_streams(pattern.as_ref(), cursor.as_deref(), size + 1)
                .await?;
            let end = page.len() <= size as usize;
            cursor = page.last().map(|s| s.name.to_string());
            streams.extend(page.into_iter().filter(visible));
            if end {
                break;
            }
        }
        let next = if streams.len() > size as usize {
            streams.truncate(size as usize);
            streams
                .last()
                .map(|s| s.name.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((streams, next))
    }

    /// Deletes a stream and its events; returns how many events went.
    pub async fn delete_stream(
        &self,
        caller: &Principal,
        stream: StreamName,
    ) -> Result<u64, LogError> {
        authorize(caller, Operation::Administer(&stream))?;
        let deleted = self.writer.delete_stream(stream.clone()).await?;
        self.forget_stream(&stream);
        Ok(deleted)
    }

    /// Drops what memory holds of a deleted stream: its groups' wake-ups
    /// and its history.
    fn forget_stream(&self, stream: &StreamName) {
        self.groups.forget_stream(stream);
        self.history.forget_stream(stream.as_str());
    }

    /// Appends events atomically, once `caller` may publish to `stream`.
    /// Only then does `admit` decode the rest of the request (its
    /// condition and events, within the caller's publish rate): a refused
    /// caller spends no allowance and hears nothing about its events.
    pub async fn publish<E: From<LogError>>(
        &self,
        caller: &Principal,
        stream: StreamName,
        admit: impl FnOnce() -> Result<PublishBatch, E>,
    ) -> Result<Vec<Appended>, E> {
        Ok(self.queue_publish(caller, stream, admit).await?.await?)
    }

    /// [`EventLog::publish`] up to the writer's queue: every check made,
    /// the events queued for commit, the commit not awaited. A caller may
    /// queue its next publish at once; publishes queued one after the
    /// other are applied in that order (an expected sequence sees the
    /// events queued before it), and share commits.
    pub async fn queue_publish<E: From<LogError>>(
        &self,
        caller: &Principal,
        stream: StreamName,
        admit: impl FnOnce() -> Result<PublishBatch, E>,
    ) -> Result<Queued<Vec<Appended>>, E> {
        authorize(caller, Operation::Publish(&stream)).map_err(LogError::from)?;
        let PublishBatch { events, expected } = admit()?;
        Ok(self.queue_append(stream, events, expected).await?)
    }

    async fn queue_append(
        &self,
        name: StreamName,
        events: Vec<(EventAttributes, Bytes)>,
        expected: Expectation,
    ) -> Result<Queued<Vec<Appended>>, LogError> {
        let limits = &self.limits;
        if events.is_empty() {
            return Err(LogError::invalid(
                "events",
                "at least one event is required",
            ));
        }
        if events.len() > limits.max_batch_events {
            return Err(LogError::BatchTooLarge(format!(
                "{} events in one publish, over the limit of {}",
                events.len(),
                limits.max_batch_events
            )));
        }
        let mut total = 0usize;
        let mut checked = Vec::with_capacity(events.len());
        for (index, (attrs, payload)) in events.into_iter().enumerate() {
            if payload.len() > limits.max_event_size {
                return Err(LogError::EventTooLarge {
                    index,
                    size: payload.len(),
                    limit: limits.max_event_size,
                });
            }
            total += payload.len();
            checked.push(
                NewEvent::validate(attrs, payload)
                    .map_err(|reason| LogError::InvalidEvent { index, reason })?,
            );
        }
        if total > limits.max_batch_bytes {
            return Err(LogError::BatchTooLarge(format!(
                "{total} bytes in one publish, over the limit of {}",
                limits.max_batch_bytes
            )));
        }
        self.writer
            .queue_append(AppendRequest {
                stream: name,
                events: checked,
                expected,
                auto_create: limits.auto_create_streams,
                dedup_removed: true,
            })
            .await
    }

    /// Reads a page of one stream's history.
    pub async fn read(&self, caller: &Principal, query: ReadQuery) -> Result<ReadPage, LogError> {
        authorize(caller, Operation::Inspect(&query.stream))?;
        let name = &query.stream;
        let info = self
            .storage
            .get_stream(name)
            .await?
            .ok_or_else(|| LogError::StreamNotFound(name.to_string()))?;
        let limit = page_size(query.limit, DEFAULT_PAGE_SIZE);
        // One extra event tells whether another page exists.
        let mut events = self
            .storage
            .read_stream(name, query.from, query.direction, &query.filter, limit + 1)
            .await?;
        // A page holds at most `limit` events and about a publish's worth
        // of bytes, so it always fits in a response.
        let keep = crate::model::records::fitting(&events, self.limits.max_batch_bytes)
            .min(limit as usize);
        if events.len() > keep {
            let next_sequence = events[keep].sequence;
            events.truncate(keep);
            return Ok(ReadPage {
                events,
                next_sequence,
                end_of_stream: false,
            });
        }
        // At the end, forward: the sequence the next appended event will
        // get, whatever `from` was. A `from` past the end must not be
        // echoed back: a poller would skip every event appended between
        // the end and it. (Events appended since `info` was read may be in
        // the page already.)
        let next_sequence = match query.direction {
            Direction::Forward => {
                let after_last = events.last().map_or(0, |e| e.sequence + 1);
                after_last.max(info.last_sequence + 1)
            }
            Direction::Backward => 0,
        };
        Ok(ReadPage {
            events,
            next_sequence,
            end_of_stream: true,
        })
    }

    /// Starts a subscription: history first, then live events of the
    /// streams the caller may read. A checkpoint start names one of the
    /// caller's checkpoints.
    pub async fn subscribe(
        &self,
        caller: &Principal,
        query: SubscribeQuery,
    ) -> Result<impl Stream<Item = Result<SubscriptionItem, LogError>> + Send + 'static, LogError>
    {
        authorize(caller, Operation::Subscribe(&query.streams))?;
        if query.streams.is_empty() {
            return Err(LogError::invalid(
                "streams",
                "name at least one stream or pattern",
            ));
        }
        if query.streams.len() > MAX_SUBSCRIPTION_STREAMS {
            return Err(LogError::invalid(
                "streams",
                format!("at most {MAX_SUBSCRIPTION_STREAMS} streams and patterns"),
            ));
        }
        let selectors = query.streams;
        let heartbeat = query.heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
        if !(MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&heartbeat) {
            return Err(LogError::invalid(
                "heartbeat_interval",
                format!("must be between {MIN_HEARTBEAT:?} and {MAX_HEARTBEAT:?}"),
            ));
        }

        let (start, checkpoint) = match query.start {
            Start::Checkpoint(name) => {
                let single = match selectors.as_slice() {
                    [StreamSelector::Name(n)] => Some(n),
                    _ => None,
                };
                (
                    self.checkpoint_start(caller, &name, single).await?,
                    Some(name),
                )
            }
            other => (other, None),
        };
        // Register with the hub before looking at storage: see subscription.rs.
        let live = self.hub.subscribe();
        let mut min_sequence = None;
        // A start past what the log has assigned is refused: the cursor
        // would sit above events not appended yet, and the subscription
        // would skip them when they come (a resume id from before the log
        // was reset would stall it for good).
        let checkpoint = checkpoint.as_deref();
        let cursor = match &start {
            Start::Earliest => 0,
            Start::Latest => self.storage.head_position().await?,
            Start::Position(p) => {
                let next = self.storage.head_position().await?.saturating_add(1);
                LogError::refuse_beyond_head("position", *p, next, None, checkpoint)?;
                p.saturating_sub(1)
            }
            Start::Time(t) => self.storage.position_before_time(*t).await?,
            Start::Sequence(s) => {
                let [StreamSelector::Name(name)] = selectors.as_slice() else {
                    return Err(LogError::invalid(
                        "start.sequence",
                        "a sequence start needs exactly one stream name (no pattern); \
                         use a position for several streams",
                    ));
                };
                let last = self
                    .storage
                    .get_stream(name)
                    .await?
                    .map_or(0, |info| info.last_sequence);
                let next = last.saturating_add(1);
                LogError::refuse_beyond_head(
                    "sequence",
                    *s,
                    next,
                    Some(name.as_str()),
                    checkpoint,
                )?;
                min_sequence = Some(*s);
                self.storage.position_before_sequence(name, *s).await?
            }
            Start::Checkpoint(_) => unreachable!("resolved above"),
        };
        let subscription = Subscription {
            active: crate::metrics::Active::new(&self.metrics.subscriptions_active),
            delivered: self.metrics.events_delivered.clone(),
            storage_events: self.metrics.subscription_storage_events.clone(),
            catch_up_reads: self.catch_up_reads.clone(),
            page: Default::default(),
            unreported: 0,
            storage: self.storage.clone(),
            live,
            selectors,
            filter: query.filter,
            readable: caller.readable(),
            min_sequence,
            cursor,
            heartbeat,
            shutdown: self.shutdown.clone(),
            catching_up: true,
            caught_up_sent: false,
            ready: VecDeque::new(),
            last_sent: Instant::now(),
            done: false,
        };
        Ok(subscription.into_stream())
    }

    /// Removes old events from a stream; returns how many went.
    pub async fn trim(
        &self,
        caller: &Principal,
        stream: StreamName,
        until: TrimUntil,
    ) -> Result<u64, LogError> {
        authorize(caller, Operation::Administer(&stream))?;
        self.writer.trim(stream, until).await
    }

    /// Removes and returns up to `limit` events from one end of a stream.
    pub async fn take(
        &self,
        caller: &Principal,
        stream: StreamName,
        end: TakeEnd,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        authorize(caller, Operation::Take(&stream))?;
        let limit = page_size(limit, 1);
        self.writer
            .take(stream, end, limit, self.limits.max_batch_bytes)
            .await
    }
}

/// Every stream of the log, a page at a time in name order, for the
/// background passes (retention, group metrics) that visit them all.
pub(crate) struct StreamPages<'a> {
    log: &'a EventLog,
    /// The last name of the previous page; `None` before the first.
    after: Option<String>,
    done: bool,
}

impl StreamPages<'_> {
    /// The next page of at most [`MAX_PAGE_SIZE`] streams; `None` after
    /// the last.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<StreamInfo>>, LogError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .log
            .storage
            .list_streams(None, self.after.as_deref(), MAX_PAGE_SIZE)
            .await?;
        self.done = page.len() < MAX_PAGE_SIZE as usize;
        match page.last() {
            Some(last) => self.after = Some(last.name.to_string()),
            None => return Ok(None),
        }
        Ok(Some(page))
    }
}

impl EventLog {
    /// Walks every stream (see [`StreamPages`]).
    pub(crate) fn stream_pages(&self) -> StreamPages<'_> {
        StreamPages {
            log: self,
            after: None,
            done: false,
        }
    }
}
