//! Subscriptions: catch up from storage, then tail the hub.
//!
//! A subscription registers with the hub *before* it reads history, so
//! every batch committed after registration reaches it live and every batch
//! committed before is in storage; positions it has already passed are
//! skipped at the seam, so nothing is missed or repeated. If it falls
//! behind the hub's ring (a slow client stops polling it), it goes back to
//! reading pages from storage: what a subscriber costs stays bounded by one
//! page, however far behind it is.
//!
//! The next page is read only once the client has taken everything read
//! before (the transport stops asking for items when the client's HTTP/2
//! window is full). Pages are sized in bytes, whatever the events weigh:
//! the first small, each next one twice the last, up to
//! [`CATCH_UP_PAGE_BYTES`], so a subscription never reads much further
//! ahead than its client has shown it takes. And only a few subscriptions
//! read at once (`Limits::catch_up_reads`): a client that stops reading
//! holds one small page and costs no further reads, and however many catch
//! up together, other reads keep connections of the read pool. A read runs in a task of
//! its own, so it finishes and frees its connection and its slot even when
//! the client stops reading meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use opentelemetry::metrics::Counter;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::error::LogError;
use super::hub::{CommittedBatch, HubReceiver, Lagged, event_bytes};
use crate::model::StorageError;
use crate::model::filter::EventFilter;
use crate::model::names::{StreamPattern, StreamSelector};
use crate::model::records::{Position, Sequence, StoredEvent, UnixMicros};
use crate::storage::Storage;

/// Most events read from storage per catch-up query.
pub const CATCH_UP_PAGE: u32 = 512;
/// Most bytes of events one catch-up query reads, about: the most a
/// subscription holds ahead of a client that stopped reading.
pub const CATCH_UP_PAGE_BYTES: usize = 256 * 1024;
/// Bytes of the first catch-up page; each next one may hold twice the last.
const FIRST_PAGE_BYTES: usize = 16 * 1024;
/// Events of the first catch-up query, before their size is known.
const FIRST_PAGE_EVENTS: u32 = 8;

/// The size of a subscription's next catch-up page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSize {
    /// Events to ask storage for, from the size of the events read so far.
    events: u32,
    /// Bytes to keep of them; the rest is read again with the next page.
    bytes: usize,
}

impl Default for PageSize {
    fn default() -> Self {
        Self {
            events: FIRST_PAGE_EVENTS,
            bytes: FIRST_PAGE_BYTES,
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Start {
    /// The oldest retained event.
    #[default]
    Earliest,
    /// Only events committed after subscribing.
    Latest,
    /// The first event with at least this sequence (single-stream only).
    Sequence(Sequence),
    /// The first event with at least this position.
    Position(Position),
    /// The first event recorded at or after this time.
    Time(UnixMicros),
    /// Right after a committed checkpoint.
    Checkpoint(String),
}

impl Start {
    /// Parses the textual form the CLI and the HTTP API share: `latest`,
    /// `earliest`, `seq:N`, `pos:N`, `time:RFC3339` or `checkpoint:NAME`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let number = |n: &str| {
            n.parse::<u64>()
                .map_err(|_| format!("{s:?}: {n:?} is not a whole number"))
        };
        Ok(match s.split_once(':') {
            None if s == "latest" => Self::Latest,
            None if s == "earliest" => Self::Earliest,
            Some(("seq", n)) => Self::Sequence(number(n)?),
            Some(("pos", n)) => Self::Position(number(n)?),
            Some(("time", t)) => Self::Time(
                UnixMicros::parse_rfc3339(t)
                    .ok_or_else(|| format!("{s:?}: {t:?} is not an RFC 3339 time"))?,
            ),
            Some(("checkpoint", name)) => Self::Checkpoint(name.to_owned()),
            _ => {
                return Err(format!(
                    "{s:?}: use latest, earliest, seq:N, pos:N, time:RFC3339 or checkpoint:NAME"
                ));
            }
        })
    }
}

/// One item of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// A matching event.
    Event(Arc<StoredEvent>),
    /// Nothing was sent for a heartbeat interval.
    Heartbeat {
        /// Position examined so far.
        position: Position,
        /// Server time.
        time: UnixMicros,
    },
    /// History is delivered; live from here on.
    CaughtUp {
        /// Position examined so far.
        position: Position,
    },
}

/// Ends a task when its handle goes: a catch-up read is abandoned when its
/// subscription ends first, instead of waiting for a slot and reading a
/// page no one will take.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running subscription's state.
pub(crate) struct Subscription {
    /// Counts the subscription as active while it lives.
    #[allow(dead_code)]
    pub(crate) active: crate::metrics::Active,
    /// `riverlog.events.delivered`.
    pub(crate) delivered: Counter<u64>,
    /// `riverlog.subscription.storage.events`: events read for catch-up.
    pub(crate) storage_events: Counter<u64>,
    /// Shared by all subscriptions: how many may read storage at once.
    pub(crate) catch_up_reads: Arc<Semaphore>,
    /// How much the next catch-up query reads.
    pub(crate) page: PageSize,
    /// Events sent but not yet added to `delivered`: counted once per
    /// drained batch, not per event on the fan-out path.
    pub(crate) unreported: u64,
    pub(crate) storage: Arc<dyn Storage>,
    /// Registered with the hub before the first storage read.
    pub(crate) live: HubReceiver,
    pub(crate) selectors: Vec<StreamSelector>,
    pub(crate) filter: EventFilter,
    /// Streams the caller may read; `None`: all.
    pub(crate) readable: Option<Arc<[StreamPattern]>>,
    /// Lowest sequence to deliver, for sequence starts.
    pub(crate) min_sequence: Option<Sequence>,
    /// Highest position examined: everything at or below it was delivered
    /// or filtered out.
    pub(crate) cursor: Position,
    pub(crate) heartbeat: Duration,
    pub(crate) shutdown: CancellationToken,
    pub(crate) catching_up: bool,
    pub(crate) caught_up_sent: bool,
    pub(crate) ready: VecDeque<Arc<StoredEvent>>,
    pub(crate) last_sent: Instant,
    pub(crate) done: bool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.report_delivered();
    }
}

impl Subscription {
    fn report_delivered(&mut self) {
        if self.unreported > 0 {
            self.delivered.add(
                std::mem::take(&mut self.unreported),
                &[opentelemetry::KeyValue::new("via", "subscription")],
            );
        }
    }

    /// Turns the subscription into a stream of items that ends after an
    /// error (storage failure or shutdown).
    pub(crate) fn into_stream(
        self,
    ) -> impl Stream<Item = Result<SubscriptionItem, LogError>> + Send + 'static {
        futures::stream::unfold(self, |mut sub| async move {
            let item = sub.next().await?;
            Some((item, sub))
        })
    }

    fn wanted(&self, e: &StoredEvent) -> bool {
        self.min_sequence.is_none_or(|min| e.sequence >= min)
            && self
                .readable
                .as_ref()
                .is_none_or(|r| r.iter().any(|p| p.matches(e.stream.as_str())))
    }

    fn sent(&mut self, item: SubscriptionItem) -> Option<Result<SubscriptionItem, LogError>> {
        self.last_sent = Instant::now();
        Some(Ok(item))
    }

    fn end(&mut self, error: LogError) -> Option<Result<SubscriptionItem, LogError>> {
        self.done = true;
        Some(Err(error))
    }

    async fn next(&mut self) -> Option<Result<SubscriptionItem, LogError>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.unreported += 1;
                return self.sent(SubscriptionItem::Event(event));
            }
            self.report_delivered();
            if self.shutdown.is_cancelled() {
                return self.end(LogError::ShuttingDown);
            }
            if self.catching_up {
                // Everything read before has gone to the client: only now is
                // the next page read.
                let page = tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => return self.end(LogError::ShuttingDown),
                    page = self.read_page() => page,
                };
                let page = match page {
                    Ok(page) => page,
                    Err(e) => return self.end(e.into()),
                };
                if page.is_empty() {
                    self.catching_up = false;
                    if !self.caught_up_sent {
                        self.caught_up_sent = true;
                        let position = self.cursor;
                        return self.sent(SubscriptionItem::CaughtUp { position });
                    }
                    continue;
                }
                self.queue_page(page);
                continue;
            }
            let deadline = self.last_sent + self.heartbeat;
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return self.end(LogError::ShuttingDown),
                received = self.live.recv() => match received {
                    Ok(batch) => self.accept(&batch),
                    Err(Lagged) => {
                        debug!(cursor = self.cursor, "subscription lagged; reading from storage");
                        self.catching_up = true;
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    let item = SubscriptionItem::Heartbeat {
                        position: self.cursor,
                        time: UnixMicros::now(),
                    };
                    return self.sent(item);
                }
            }
        }
    }

    /// Reads the next catch-up page in a task of its own. The transport
    /// stops polling a subscription once its client's window is full, also
    /// in the middle of a read: run in the subscription, the query would
    /// keep its read connection until the client read again or went away,
    /// and a few clients stalled that way took the whole read pool. In its
    /// own task the query finishes and gives the connection back; only the
    /// page waits for the client. The task also waits for one of the read
    /// slots subscriptions share, and holds it for the query only.
    async fn read_page(&self) -> Result<Vec<StoredEvent>, StorageError> {
        let storage = self.storage.clone();
        let slots = self.catch_up_reads.clone();
        let (cursor, limit) = (self.cursor, self.page.events);
        let (selectors, filter) = (self.selectors.clone(), self.filter.clone());
        let mut read = AbortOnDrop(tokio::spawn(async move {
            // Taken in the task, not in the subscription: a semaphore hands
            // a freed slot to the next waiter whether or not that waiter is
            // polled. It is never closed.
            let _slot = slots.acquire_owned().await;
            storage.read_log(cursor, &selectors, &filter, limit).await
        }));
        (&mut read.0)
            .await
            .unwrap_or_else(|e| Err(StorageError::Failure(format!("catch-up read: {e}"))))
    }

    /// Queues a page's wanted events up to its byte size (at least one);
    /// the cursor stops at the last event examined, so any rest is read
    /// again with the next page. Sizes the next page: twice the bytes, as
    /// the client will have taken all of these before it is read, in events
    /// of the weight these had.
    fn queue_page(&mut self, page: Vec<StoredEvent>) {
        let read = page.len();
        let read_bytes: usize = page.iter().map(event_bytes).sum();
        self.storage_events.add(read as u64, &[]);
        let mut queued_bytes = 0;
        for event in page {
            if queued_bytes >= self.page.bytes {
                break;
            }
            self.cursor = event.position;
            if self.wanted(&event) {
                queued_bytes += event_bytes(&event);
                self.ready.push_back(Arc::new(event));
            }
        }
        let average = (read_bytes / read.max(1)).max(1);
        self.page.bytes = (self.page.bytes * 2).min(CATCH_UP_PAGE_BYTES);
        self.page.events = u32::try_from(self.page.bytes / average)
            .unwrap_or(CATCH_UP_PAGE)
            .clamp(1, CATCH_UP_PAGE);
    }

    /// Queues the matching events of a live batch not seen yet.
    fn accept(&mut self, batch: &CommittedBatch) {
        for event in batch.iter() {
            if event.position <= self.cursor {
                continue;
            }
            self.cursor = event.position;
            if self
                .selectors
                .iter()
                .any(|s| s.matches(event.stream.as_str()))
                && self.filter.matches(event)
                && self.wanted(event)
            {
                self.ready.push_back(Arc::clone(event));
            }
        }
    }
}
