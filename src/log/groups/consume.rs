//! Consume: push delivery within the consumer's credit, with heartbeats
//! while idle, as a stream that asks the writer for work whenever its
//! buffer runs dry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;

use super::delivery::{Woken, batch_size};
use super::signals::{Connection, GroupSignal};
use super::{DEFAULT_MAX_IN_FLIGHT, DeliverRequest, Delivery};
use crate::auth::Principal;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::hub::HubReceiver;
use crate::log::{DEFAULT_HEARTBEAT, EventLog, MAX_HEARTBEAT, MIN_HEARTBEAT};
use crate::metrics::Active;
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::UnixMicros;

/// One item of a Consume stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeItem {
    /// An event to process and ack.
    Delivery(Delivery),
    /// Nothing was sent for a heartbeat interval.
    Heartbeat(UnixMicros),
}

impl EventLog {
    /// Push delivery: a stream of deliveries within `max_in_flight` unacked
    /// ones, with heartbeats while idle. Unknown streams and groups fail
    /// before the stream starts.
    pub async fn consume(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
        max_in_flight: u32,
        heartbeat: Option<Duration>,
    ) -> Result<impl Stream<Item = Result<ConsumeItem, LogError>> + Send + 'static, LogError> {
        authorize(caller, Operation::Consume(&stream))?;
        let mut request = DeliverRequest::new(stream, group, consumer);
        let credit = batch_size(max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        request.count = credit;
        request.max_in_flight = Some(credit);
        let heartbeat = heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
        if !(MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&heartbeat) {
            return Err(LogError::invalid(
                "heartbeat_interval",
                format!("must be between {MIN_HEARTBEAT:?} and {MAX_HEARTBEAT:?}"),
            ));
        }
        // Fails with GROUP_NOT_FOUND / STREAM_NOT_FOUND as the call's status.
        self.group_info(&request.stream, &request.group).await?;
        let signal = self.groups.get(&request.stream, &request.group);
        let state = ConsumeState {
            log: self.clone(),
            connection: Connection::open(signal.clone(), request.consumer.as_str()),
            active: Active::new(&self.metrics.consumers_active),
            signal,
            live: self.hub.subscribe(),
            request,
            heartbeat,
            ready: VecDeque::new(),
            last_sent: Instant::now(),
            done: false,
        };
        Ok(futures::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        }))
    }
}

/// The state of one Consume stream.
struct ConsumeState {
    log: EventLog,
    signal: Arc<GroupSignal>,
    /// Keeps the consumer listed as connected until the stream is dropped.
    #[allow(dead_code)]
    connection: Connection,
    /// Counts the stream in `riverlog.consumers.active` while it lives.
    #[allow(dead_code)]
    active: Active,
    live: HubReceiver,
    request: DeliverRequest,
    heartbeat: Duration,
    ready: VecDeque<Delivery>,
    last_sent: Instant,
    done: bool,
}

impl Drop for ConsumeState {
    /// Deliveries taken from the writer but never yielded go back to the
    /// group: the stream's consumer is gone.
    fn drop(&mut self) {
        let unsent: Vec<Delivery> = self.ready.drain(..).collect();
        self.log.give_back(
            self.request.stream.clone(),
            self.request.group.clone(),
            self.request.consumer.clone(),
            &unsent,
        );
    }
}

impl ConsumeState {
    async fn next(&mut self) -> Option<Result<ConsumeItem, LogError>> {
        loop {
            if let Some(delivery) = self.ready.pop_front() {
                self.last_sent = Instant::now();
                return Some(Ok(ConsumeItem::Delivery(delivery)));
            }
            if self.done {
                return None;
            }
            let signal = self.signal.clone();
            let changed = signal.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deliver = self.log.deliver_command(self.request.clone());
            let out = match self.log.writer.group(deliver).await {
                Ok(out) => out,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if !out.deliveries.is_empty() {
                self.log.count_deliveries(&out.deliveries);
                self.ready.extend(out.deliveries);
                continue;
            }
            let until = self.last_sent + self.heartbeat;
            match self
                .log
                .wait_for_work(&self.request, changed, &mut self.live, out.next_due, until)
                .await
            {
                Woken::Work => {}
                Woken::Deadline => {
                    self.last_sent = Instant::now();
                    return Some(Ok(ConsumeItem::Heartbeat(UnixMicros::now())));
                }
                Woken::Shutdown => {
                    self.done = true;
                    return Some(Err(LogError::ShuttingDown));
                }
            }
        }
    }
}
