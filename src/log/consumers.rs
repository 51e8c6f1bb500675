//! The consumer-group and checkpoint operations of [`EventLog`].
//!
//! Delivery is pull-based underneath: Fetch and each Consume stream ask the
//! writer for work (due redeliveries first, then new events, within the
//! consumer's credit), and when there is none they wait for something that
//! could change that: new events on the stream (the hub), an ack, nack,
//! claim or removed consumer in the group (a per-group signal), the next
//! pending entry falling due, or their own deadline. Consumers asking at
//! the same time share the work, which is the load balancing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::Stream;
use opentelemetry::KeyValue;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;

use crate::metrics::{Active, GroupSample};

use super::error::LogError;
use super::groups::{
    Checkpoint, CheckpointAt, CheckpointOwner, ClaimTarget, DEAD_LETTER_SUFFIX,
    DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_IN_FLIGHT, DeliverRequest, Delivered,
    Delivery, GroupInfo, GroupSettings, GroupStart, MAX_DELIVERY_BATCH, PendingEntry, PendingQuery,
    PendingSummary, Settled,
};
use super::hub::HubReceiver;
use super::model::{Sequence, UnixMicros};
use super::names::{Label, StreamName};
use super::subscription::Start;
use super::writer::{GiveBack, GroupCommand, Reply};
use super::{EventLog, MAX_HEARTBEAT, MIN_HEARTBEAT, parse_stream};

/// Most sequences one Ack, Nack or Claim may name.
pub const MAX_SEQUENCES_PER_CALL: usize = 10_000;

/// Wake-ups and live connections of the consumer groups on this server.
#[derive(Default)]
pub(crate) struct GroupSignals {
    groups: Mutex<HashMap<(StreamName, Label), Arc<GroupSignal>>>,
}

/// One group's wake-up and its connected consumers.
#[derive(Default)]
pub(crate) struct GroupSignal {
    /// Woken when entries may have become deliverable or credit was freed.
    changed: Notify,
    /// Open Consume streams per consumer name.
    connected: Mutex<HashMap<String, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the map consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupSignals {
    fn get(&self, stream: &StreamName, group: &Label) -> Arc<GroupSignal> {
        lock(&self.groups)
            .entry((stream.clone(), group.clone()))
            .or_default()
            .clone()
    }

    fn wake(&self, stream: &StreamName, group: &Label) {
        if let Some(signal) = lock(&self.groups).get(&(stream.clone(), group.clone())) {
            signal.changed.notify_waiters();
        }
    }

    /// Wakes and drops the signal of a deleted group; its waiters find the
    /// group gone.
    fn forget(&self, stream: &StreamName, group: &Label) {
        if let Some(signal) = lock(&self.groups).remove(&(stream.clone(), group.clone())) {
            signal.changed.notify_waiters();
        }
    }

    /// Wakes and drops the signals of every group of a deleted stream.
    pub(super) fn forget_stream(&self, stream: &StreamName) {
        lock(&self.groups).retain(|(s, _), signal| {
            let keep = s != stream;
            if !keep {
                signal.changed.notify_waiters();
            }
            keep
        });
    }

    fn connected(&self, stream: &StreamName, group: &Label) -> Vec<String> {
        let Some(signal) = lock(&self.groups)
            .get(&(stream.clone(), group.clone()))
            .cloned()
        else {
            return Vec::new();
        };
        let mut names: Vec<String> = lock(&signal.connected).keys().cloned().collect();
        names.sort();
        names
    }
}

/// Counts a Consume stream as connected for as long as it lives.
struct Connection {
    signal: Arc<GroupSignal>,
    consumer: String,
}

impl Connection {
    fn open(signal: Arc<GroupSignal>, consumer: &str) -> Self {
        *lock(&signal.connected)
            .entry(consumer.to_owned())
            .or_default() += 1;
        Self {
            signal,
            consumer: consumer.to_owned(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut connected = lock(&self.signal.connected);
        if let Some(n) = connected.get_mut(&self.consumer) {
            *n -= 1;
            if *n == 0 {
                connected.remove(&self.consumer);
            }
        }
    }
}

/// What ended a wait for work.
enum Woken {
    /// Something changed: ask for work again.
    Work,
    /// The wait's deadline passed.
    Deadline,
    /// The server is stopping.
    Shutdown,
}

/// One item of a Consume stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeItem {
    /// An event to process and ack.
    Delivery(Delivery),
    /// Nothing was sent for a heartbeat interval.
    Heartbeat(UnixMicros),
}

/// A CreateGroup request, unparsed.
#[derive(Debug, Clone, Default)]
pub struct CreateGroup {
    /// Stream name.
    pub stream: String,
    /// Group name.
    pub group: String,
    /// Where it starts.
    pub start: GroupStart,
    /// Redelivery timeout; `None` = default.
    pub ack_timeout: Option<Duration>,
    /// Deliveries before dead-lettering; 0 = default.
    pub max_deliveries: u32,
    /// Dead-letter stream; empty = `<stream>:dlq`.
    pub dead_letter_stream: String,
}

fn parse_label(kind: &'static str, name: &str) -> Result<Label, LogError> {
    Label::parse(name).map_err(|reason| LogError::InvalidLabel {
        kind,
        name: name.to_owned(),
        reason,
    })
}

fn check_sequences(sequences: &[Sequence]) -> Result<(), LogError> {
    if sequences.is_empty() {
        return Err(LogError::invalid("sequences", "name at least one sequence"));
    }
    if sequences.len() > MAX_SEQUENCES_PER_CALL {
        return Err(LogError::invalid(
            "sequences",
            format!("at most {MAX_SEQUENCES_PER_CALL} per call"),
        ));
    }
    Ok(())
}

/// Fetch and credit sizes the AIP-158 way: 0 = `default`, capped.
fn batch_size(requested: u32, default: u32) -> u32 {
    match requested {
        0 => default,
        n => n.min(MAX_DELIVERY_BATCH),
    }
}

fn instant_at(t: UnixMicros) -> Instant {
    let wait = t.0.saturating_sub(UnixMicros::now().0).max(0);
    Instant::now() + Duration::from_micros(u64::try_from(wait).unwrap_or(0))
}

impl CreateGroup {
    /// Where the group's dead letters go: the named stream, or
    /// `<stream>:dlq` by default.
    pub fn dead_letter_stream(&self) -> Result<StreamName, LogError> {
        match self.dead_letter_stream.as_str() {
            "" => StreamName::parse(&format!("{}{DEAD_LETTER_SUFFIX}", self.stream)).map_err(|e| {
                LogError::invalid(
                    "dead_letter_stream",
                    format!("the default `<stream>{DEAD_LETTER_SUFFIX}` is not a valid name ({e}); name one"),
                )
            }),
            name => StreamName::parse(name)
                .map_err(|e| LogError::invalid("dead_letter_stream", e.to_string())),
        }
    }
}

impl EventLog {
    /// Creates a consumer group on an existing stream.
    pub async fn create_group(&self, request: CreateGroup) -> Result<GroupInfo, LogError> {
        let stream = parse_stream(&request.stream)?;
        let group = parse_label("group", &request.group)?;
        let ack_timeout = match request.ack_timeout {
            None => DEFAULT_ACK_TIMEOUT,
            Some(d) if d < Duration::from_millis(1) => {
                return Err(LogError::invalid("ack_timeout", "must be at least 1ms"));
            }
            Some(d) => d,
        };
        let max_deliveries = match request.max_deliveries {
            0 => DEFAULT_MAX_DELIVERIES,
            n => n,
        };
        let dead_letter_stream = request.dead_letter_stream()?;
        if dead_letter_stream == stream {
            return Err(LogError::invalid(
                "dead_letter_stream",
                "must differ from the group's stream",
            ));
        }
        let settings = GroupSettings {
            start: request.start,
            ack_timeout,
            max_deliveries,
            dead_letter_stream,
        };
        self.writer
            .group(|reply| GroupCommand::Create {
                stream: stream.clone(),
                group: group.clone(),
                settings,
                reply,
            })
            .await?;
        self.group_info(&stream, &group).await
    }

    async fn group_info(&self, stream: &StreamName, group: &Label) -> Result<GroupInfo, LogError> {
        let Some(state) = self.storage.group_state(stream, group).await? else {
            // Name the missing piece, as the writer's commands do.
            return Err(match self.storage.get_stream(stream).await? {
                None => LogError::StreamNotFound(stream.to_string()),
                Some(_) => LogError::GroupNotFound {
                    stream: stream.to_string(),
                    group: group.to_string(),
                },
            });
        };
        Ok(GroupInfo {
            state,
            connected: self.groups.connected(stream, group),
        })
    }

    /// Describes a group.
    pub async fn get_group(&self, stream: &str, group: &str) -> Result<GroupInfo, LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        self.group_info(&stream, &group).await
    }

    /// The groups of a stream, in name order.
    pub async fn list_groups(&self, stream: &str) -> Result<Vec<GroupInfo>, LogError> {
        let name = parse_stream(stream)?;
        if self.storage.get_stream(&name).await?.is_none() {
            return Err(LogError::StreamNotFound(stream.to_owned()));
        }
        let states = self.storage.list_group_states(&name).await?;
        Ok(states
            .into_iter()
            .map(|state| {
                let connected = self.groups.connected(&name, &state.group.name);
                GroupInfo { state, connected }
            })
            .collect())
    }

    /// Deletes a group with its pending entries.
    pub async fn delete_group(&self, stream: &str, group: &str) -> Result<(), LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        self.writer
            .group(|reply| GroupCommand::Delete {
                stream: stream.clone(),
                group: group.clone(),
                reply,
            })
            .await?;
        self.groups.forget(&stream, &group);
        Ok(())
    }

    /// Removes a consumer; its pending entries are claimable at once.
    pub async fn delete_consumer(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<u64, LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        let consumer = parse_label("consumer", consumer)?;
        let released = self
            .writer
            .group(|reply| GroupCommand::DeleteConsumer {
                stream: stream.clone(),
                group: group.clone(),
                consumer,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(released)
    }

    fn deliver_request(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<DeliverRequest, LogError> {
        Ok(DeliverRequest {
            stream: parse_stream(stream)?,
            group: parse_label("group", group)?,
            consumer: parse_label("consumer", consumer)?,
            count: 1,
            max_in_flight: None,
            pending_only: false,
        })
    }

    /// The writer command that hands out work for `request`; deliveries
    /// whose caller is gone by the time they are answered come back.
    fn deliver_command(
        &self,
        request: DeliverRequest,
    ) -> impl FnOnce(Reply<Delivered>) -> GroupCommand + use<> {
        let give_back = self.give_back_to(
            request.stream.clone(),
            request.group.clone(),
            request.consumer.clone(),
        );
        move |reply| GroupCommand::Deliver {
            request,
            reply,
            give_back,
        }
    }

    /// Gives deliveries that never reached `consumer` back to the group.
    fn give_back_to(&self, stream: StreamName, group: Label, consumer: Label) -> GiveBack {
        let log = self.clone();
        Box::new(move |deliveries| log.give_back(stream, group, consumer, &deliveries))
    }

    /// Releases deliveries whose caller is gone (a Fetch past its deadline
    /// or cancelled, a closed Consume stream): due at once for the next
    /// consumer, held by no one, the lost delivery not counted. Without
    /// this they would wait out the group's ack timeout. Runs on a task of
    /// its own: the writer calls this and must not wait for itself.
    fn give_back(
        &self,
        stream: StreamName,
        group: Label,
        consumer: Label,
        deliveries: &[Delivery],
    ) {
        if deliveries.is_empty() {
            return;
        }
        let handed = deliveries
            .iter()
            .map(|d| (d.event.sequence, d.delivery_count))
            .collect();
        // No runtime means the process is ending: the entries keep their
        // ack timeout, as any unacked delivery does.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let log = self.clone();
        runtime.spawn(async move {
            if let Err(e) = log.release(stream, group, consumer, handed).await {
                debug!(error = %e, "cannot give back deliveries; they wait for their ack timeout");
            }
        });
    }

    /// See [`EventLog::give_back`]; returns how many entries were released.
    async fn release(
        &self,
        stream: StreamName,
        group: Label,
        consumer: Label,
        handed: Vec<(Sequence, u32)>,
    ) -> Result<u64, LogError> {
        let released = self
            .writer
            .group(|reply| GroupCommand::Release {
                stream: stream.clone(),
                group: group.clone(),
                consumer,
                handed,
                reply,
            })
            .await?;
        if released > 0 {
            self.groups.wake(&stream, &group);
        }
        Ok(released)
    }

    /// Waits until there may be work for `request`, `until` passes or the
    /// server stops. `changed` must have been armed before the last look.
    async fn wait_for_work(
        &self,
        request: &DeliverRequest,
        changed: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        live: &mut HubReceiver,
        next_due: Option<UnixMicros>,
        until: Instant,
    ) -> Woken {
        let due = tokio::time::sleep_until(next_due.map_or(until, instant_at));
        tokio::pin!(due);
        let mut changed = changed;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Woken::Shutdown,
                () = changed.as_mut() => return Woken::Work,
                batch = live.recv() => match batch {
                    Ok(b) if b.iter().any(|e| e.stream == request.stream) => return Woken::Work,
                    Ok(_) => {}
                    // Batches were missed; one of them may have been ours.
                    Err(_) => return Woken::Work,
                },
                () = &mut due => return Woken::Work,
                () = tokio::time::sleep_until(until) => return Woken::Deadline,
            }
        }
    }

    /// Lag and pending count of every consumer group (at most `limit`),
    /// for the metrics.
    pub async fn group_samples(&self, limit: usize) -> Result<Vec<GroupSample>, LogError> {
        let mut samples = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .list_streams(None, after.as_deref(), super::MAX_PAGE_SIZE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.to_string());
            for stream in page.iter().filter(|s| s.group_count > 0) {
                for state in self.storage.list_group_states(&stream.name).await? {
                    if samples.len() >= limit {
                        return Ok(samples);
                    }
                    samples.push(GroupSample {
                        stream: stream.name.to_string(),
                        group: state.group.name.to_string(),
                        lag: state.lag,
                        pending: state.pending,
                    });
                }
            }
            if page.len() < super::MAX_PAGE_SIZE as usize {
                break;
            }
        }
        Ok(samples)
    }

    /// Counts deliveries in the metrics.
    fn count_deliveries(&self, deliveries: &[Delivery]) {
        let again = deliveries.iter().filter(|d| d.delivery_count > 1).count() as u64;
        self.metrics
            .events_delivered
            .add(deliveries.len() as u64, &[KeyValue::new("via", "group")]);
        if again > 0 {
            self.metrics.events_redelivered.add(again, &[]);
        }
    }

    /// Unary delivery (XREADGROUP): up to `count` deliveries, waiting up to
    /// `block` for the first.
    pub async fn fetch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: u32,
        block: Duration,
        pending_only: bool,
    ) -> Result<Vec<Delivery>, LogError> {
        let deliveries = self
            .fetch_waiting(stream, group, consumer, count, block, pending_only)
            .await?;
        self.count_deliveries(&deliveries);
        Ok(deliveries)
    }

    async fn fetch_waiting(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: u32,
        block: Duration,
        pending_only: bool,
    ) -> Result<Vec<Delivery>, LogError> {
        let mut request = self.deliver_request(stream, group, consumer)?;
        request.count = batch_size(count, 1);
        request.pending_only = pending_only;
        let until = Instant::now() + block;
        let mut live = self.hub.subscribe();
        let deliver = || self.writer.group(self.deliver_command(request.clone()));
        let out = deliver().await?;
        if !out.deliveries.is_empty() || pending_only || block.is_zero() {
            return Ok(out.deliveries);
        }
        // The group exists (the delivery succeeded): only now register for
        // its wake-ups, so made-up group names leave nothing behind.
        let signal = self.groups.get(&request.stream, &request.group);
        loop {
            let changed = signal.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let out = deliver().await?;
            if !out.deliveries.is_empty() || Instant::now() >= until {
                return Ok(out.deliveries);
            }
            match self
                .wait_for_work(&request, changed, &mut live, out.next_due, until)
                .await
            {
                Woken::Work => {}
                Woken::Deadline => return Ok(Vec::new()),
                Woken::Shutdown => return Err(LogError::ShuttingDown),
            }
        }
    }

    /// Push delivery: a stream of deliveries within `max_in_flight` unacked
    /// ones, with heartbeats while idle. Unknown streams and groups fail
    /// before the stream starts.
    pub async fn consume(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max_in_flight: u32,
        heartbeat: Option<Duration>,
    ) -> Result<impl Stream<Item = Result<ConsumeItem, LogError>> + Send + 'static, LogError> {
        let mut request = self.deliver_request(stream, group, consumer)?;
        let credit = batch_size(max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        request.count = credit;
        request.max_in_flight = Some(credit);
        let heartbeat = heartbeat.unwrap_or(super::DEFAULT_HEARTBEAT);
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

    /// Acknowledges deliveries.
    pub async fn ack(
        &self,
        stream: &str,
        group: &str,
        sequences: Vec<Sequence>,
    ) -> Result<Settled, LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        check_sequences(&sequences)?;
        let settled = self
            .writer
            .group(|reply| GroupCommand::Ack {
                stream: stream.clone(),
                group: group.clone(),
                sequences,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(settled)
    }

    /// Rejects deliveries: they are due again after `delay`. With a
    /// consumer, only the entries it still holds.
    pub async fn nack(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        sequences: Vec<Sequence>,
        delay: Duration,
    ) -> Result<Settled, LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        let holder = match consumer {
            "" => None,
            c => Some(parse_label("consumer", c)?),
        };
        check_sequences(&sequences)?;
        let settled = self
            .writer
            .group(|reply| GroupCommand::Nack {
                stream: stream.clone(),
                group: group.clone(),
                holder,
                sequences,
                delay,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(settled)
    }

    /// The group's pending summary and a page of its entries.
    pub async fn list_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Option<Duration>,
        limit: u32,
        after_sequence: Sequence,
    ) -> Result<(PendingSummary, Vec<PendingEntry>), LogError> {
        let stream = parse_stream(stream)?;
        let group = parse_label("group", group)?;
        let consumer = match consumer {
            "" => None,
            c => Some(parse_label("consumer", c)?.to_string()),
        };
        let info = self.group_info(&stream, &group).await?;
        let id = info.state.group.id;
        let mut summary = self.storage.pending_summary(id).await?;
        // Entries given back by a caller that went away are held by no one
        // (consumer ""): counted, but not listed as a consumer.
        summary
            .consumers
            .retain(|(consumer, _)| !consumer.is_empty());
        let query = PendingQuery {
            consumer,
            delivered_before: min_idle.map(|d| UnixMicros::now().saturating_sub(d)),
            after_sequence,
            limit: super::page_size(limit, super::DEFAULT_PAGE_SIZE),
        };
        let entries = self.storage.list_pending(id, &query).await?;
        Ok((summary, entries))
    }

    /// Takes over idle pending entries: `sequences` (XCLAIM), or the oldest
    /// `count` when none are named (XAUTOCLAIM).
    pub async fn claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        sequences: Vec<Sequence>,
        count: u32,
    ) -> Result<Vec<Delivery>, LogError> {
        let request = self.deliver_request(stream, group, consumer)?;
        let target = if sequences.is_empty() {
            ClaimTarget::Oldest(batch_size(count, 100))
        } else {
            check_sequences(&sequences)?;
            ClaimTarget::Sequences(sequences)
        };
        let DeliverRequest {
            stream,
            group,
            consumer,
            ..
        } = request;
        let give_back = self.give_back_to(stream.clone(), group.clone(), consumer.clone());
        let claimed = self
            .writer
            .group(|reply| GroupCommand::Claim {
                stream: stream.clone(),
                group: group.clone(),
                consumer,
                min_idle,
                target,
                reply,
                give_back,
            })
            .await?;
        // The previous holders have credit again.
        self.groups.wake(&stream, &group);
        self.count_deliveries(&claimed);
        Ok(claimed)
    }

    /// Commits one of `owner`'s checkpoints: per stream (`stream`
    /// non-empty) or global.
    pub async fn commit_checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &str,
        stream: &str,
        at: Option<CheckpointAt>,
    ) -> Result<Checkpoint, LogError> {
        let name = parse_label("checkpoint", name)?;
        let stream = match stream {
            "" => None,
            s => Some(parse_stream(s)?),
        };
        let (sequence, position) = match (at, &stream) {
            (None, _) => return Err(LogError::invalid("at", "set a sequence or a position")),
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
            owner: owner.clone(),
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

    /// Reads one of `owner`'s checkpoints.
    pub async fn get_checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &str,
        stream: &str,
    ) -> Result<Checkpoint, LogError> {
        let label = parse_label("checkpoint", name)?;
        let stream_name = match stream {
            "" => None,
            s => Some(parse_stream(s)?),
        };
        self.storage
            .checkpoint(owner, &label, stream_name.as_ref())
            .await?
            .ok_or_else(|| LogError::CheckpointNotFound {
                name: name.to_owned(),
                stream: stream_name.map(|s| s.to_string()),
            })
    }

    /// `owner`'s checkpoints whose names start with `prefix`.
    pub async fn list_checkpoints(
        &self,
        owner: &CheckpointOwner,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, LogError> {
        Ok(self.storage.list_checkpoints(owner, prefix).await?)
    }

    /// Where a subscription starting at checkpoint `name` begins: right
    /// after the committed event. A single-stream subscription uses the
    /// stream's checkpoint of that name, else the global one; others use
    /// the global one. With none committed yet it starts at the earliest
    /// event (a new reader starts from the beginning).
    pub(super) async fn checkpoint_start(
        &self,
        owner: &CheckpointOwner,
        name: &str,
        single_stream: Option<&StreamName>,
    ) -> Result<Start, LogError> {
        let label = parse_label("checkpoint", name)?;
        if let Some(stream) = single_stream {
            if let Some(cp) = self.storage.checkpoint(owner, &label, Some(stream)).await? {
                return Ok(if cp.sequence > 0 {
                    Start::Sequence(cp.sequence.saturating_add(1))
                } else {
                    Start::Position(cp.position.saturating_add(1))
                });
            }
        }
        Ok(match self.storage.checkpoint(owner, &label, None).await? {
            Some(cp) => Start::Position(cp.position.saturating_add(1)),
            None => Start::Earliest,
        })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::StreamExt;
    use tokio::sync::oneshot;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::log::{EventAttributes, Expectation, Limits, WriterTask};
    use crate::metrics::Metrics;
    use crate::storage::{StorageOptions, sqlite::SqliteStorage};

    const HOUR: Duration = Duration::from_secs(3600);

    /// A log on a fresh SQLite file with `events` in stream `s` and group
    /// `g` on it, whose entries would wait an hour for redelivery.
    async fn log_with_group(events: usize) -> (EventLog, WriterTask, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let storage = SqliteStorage::open(&url, &StorageOptions::default())
            .await
            .unwrap();
        let (log, writer) = EventLog::start(
            Arc::new(storage),
            Limits::default(),
            CancellationToken::new(),
            Arc::new(Metrics::new().unwrap()),
        )
        .await
        .unwrap();
        let batch = (0..events)
            .map(|i| {
                let attributes = EventAttributes {
                    id: format!("e{i}"),
                    source: "/t".into(),
                    spec_version: "1.0".into(),
                    event_type: "t".into(),
                    extensions: Vec::new(),
                };
                (attributes, Bytes::from_static(b"x"))
            })
            .collect();
        log.publish("s", batch, Expectation::Any).await.unwrap();
        log.create_group(CreateGroup {
            stream: "s".into(),
            group: "g".into(),
            ack_timeout: Some(HOUR),
            ..CreateGroup::default()
        })
        .await
        .unwrap();
        (log, writer, dir)
    }

    fn handed(deliveries: &[Delivery]) -> Vec<(Sequence, u32)> {
        deliveries
            .iter()
            .map(|d| (d.event.sequence, d.delivery_count))
            .collect()
    }

    async fn pending(log: &EventLog) -> Vec<(Sequence, String, u32)> {
        let (_, entries) = log.list_pending("s", "g", "", None, 100, 0).await.unwrap();
        entries
            .into_iter()
            .map(|e| (e.sequence, e.consumer, e.delivery_count))
            .collect()
    }

    #[tokio::test]
    async fn a_delivery_whose_caller_is_gone_before_it_is_decided_hands_out_nothing() {
        let (log, _writer, _dir) = log_with_group(1).await;
        let mut request = log.deliver_request("s", "g", "gone").unwrap();
        request.count = 10;
        let (reply, answer) = oneshot::channel();
        drop(answer);
        let command = log.deliver_command(request);
        // The reply `group` waits on is dropped unused; the command carries
        // the closed one. Its result (no answer) does not matter.
        let _ = log
            .writer
            .group(|_unused: Reply<Delivered>| command(reply))
            .await;
        // Commands apply in order: this one sees what that one did.
        let got = log.fetch("s", "g", "heir", 10, Duration::ZERO, false).await;
        assert_eq!(handed(&got.unwrap()), [(1, 1)]);
        assert_eq!(pending(&log).await, [(1, "heir".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn given_back_deliveries_are_due_at_once_held_by_no_one_and_not_counted() {
        let (log, _writer, _dir) = log_with_group(2).await;
        let (s, g) = (StreamName::parse("s").unwrap(), Label::parse("g").unwrap());
        let gone = Label::parse("gone").unwrap();
        let lost = log.fetch("s", "g", "gone", 2, Duration::ZERO, false).await;
        let lost = handed(&lost.unwrap());
        assert_eq!(lost, [(1, 1), (2, 1)]);
        let released = log.release(s.clone(), g.clone(), gone.clone(), lost.clone());
        assert_eq!(released.await.unwrap(), 2);
        assert_eq!(
            pending(&log).await,
            [(1, String::new(), 0), (2, String::new(), 0)]
        );
        let got = log.fetch("s", "g", "heir", 2, Duration::ZERO, false).await;
        assert_eq!(handed(&got.unwrap()), [(1, 1), (2, 1)]);
        // A late give-back leaves entries someone else holds now alone.
        assert_eq!(log.release(s, g, gone, lost).await.unwrap(), 0);
        assert_eq!(
            pending(&log).await,
            [(1, "heir".to_owned(), 1), (2, "heir".to_owned(), 1)]
        );
    }

    #[tokio::test]
    async fn a_closed_consume_stream_gives_back_what_it_had_not_sent() {
        let (log, _writer, _dir) = log_with_group(3).await;
        let stream = log.consume("s", "g", "gone", 10, None).await.unwrap();
        let mut stream = Box::pin(stream);
        let first = match stream.next().await {
            Some(Ok(ConsumeItem::Delivery(d))) => d,
            other => panic!("expected a delivery, got {other:?}"),
        };
        assert_eq!(first.event.sequence, 1);
        drop(stream);
        // The give-back runs on its own task and wakes waiting fetches;
        // without it this fetch would come back empty.
        let patience = Duration::from_secs(20);
        let got = log.fetch("s", "g", "heir", 10, patience, false).await;
        assert_eq!(handed(&got.unwrap()), [(2, 1), (3, 1)]);
    }
}
