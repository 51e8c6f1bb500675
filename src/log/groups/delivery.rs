//! Handing out work: Fetch (XREADGROUP) and the parts Consume shares with
//! it: asking the writer for work, waiting for some, and giving back what
//! never reached its consumer.
//!
//! Delivery is pull-based underneath: Fetch and each Consume stream ask the
//! writer for work (due redeliveries first, then new events, within the
//! consumer's credit), and when there is none they wait for something that
//! could change that: new events on the stream (the hub), an ack, nack,
//! claim or removed consumer in the group (its signal), the next pending
//! entry falling due, or their own deadline. Consumers asking at the same
//! time share the work, which is the load balancing.

use std::time::Duration;

use opentelemetry::KeyValue;
use tokio::time::Instant;
use tracing::debug;

use super::{DeliverRequest, Delivered, Delivery, Fetch, MAX_DELIVERY_BATCH};
use crate::auth::Principal;
use crate::log::EventLog;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::hub::HubReceiver;
use crate::log::writer::{GiveBack, GroupCommand, Reply};
use crate::model::names::{ConsumerName, GroupName, StreamName};
use crate::model::records::{Sequence, UnixMicros};

/// What ended a wait for work.
pub(super) enum Woken {
    /// Something changed: ask for work again.
    Work,
    /// The wait's deadline passed.
    Deadline,
    /// The server is stopping.
    Shutdown,
}

/// Fetch and credit sizes the AIP-158 way: 0 = `default`, capped.
pub(super) fn batch_size(requested: u32, default: u32) -> u32 {
    match requested {
        0 => default,
        n => n.min(MAX_DELIVERY_BATCH),
    }
}

fn instant_at(t: UnixMicros) -> Instant {
    let wait = t.0.saturating_sub(UnixMicros::now().0).max(0);
    Instant::now() + Duration::from_micros(u64::try_from(wait).unwrap_or(0))
}

impl DeliverRequest {
    /// One delivery for `consumer`.
    pub(super) fn new(stream: StreamName, group: GroupName, consumer: ConsumerName) -> Self {
        Self {
            stream,
            group,
            consumer,
            count: 1,
            max_in_flight: None,
            pending_only: false,
        }
    }
}

impl EventLog {
    /// The writer command that hands out work for `request`; deliveries
    /// whose caller is gone by the time they are answered come back.
    pub(super) fn deliver_command(
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
    pub(super) fn give_back_to(
        &self,
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
    ) -> GiveBack {
        let log = self.clone();
        Box::new(move |deliveries| log.give_back(stream, group, consumer, &deliveries))
    }

    /// Releases deliveries whose caller is gone (a Fetch past its deadline
    /// or cancelled, a closed Consume stream): due at once for the next
    /// consumer, held by no one, the lost delivery not counted. Without
    /// this they would wait out the group's ack timeout. Runs on a task of
    /// its own: the writer calls this and must not wait for itself.
    pub(super) fn give_back(
        &self,
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
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
        group: GroupName,
        consumer: ConsumerName,
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
    pub(super) async fn wait_for_work(
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

    /// Counts deliveries in the metrics.
    pub(super) fn count_deliveries(&self, deliveries: &[Delivery]) {
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
    pub async fn fetch(&self, caller: &Principal, fetch: Fetch) -> Result<Vec<Delivery>, LogError> {
        authorize(caller, Operation::Consume(&fetch.stream))?;
        let deliveries = self.fetch_waiting(fetch).await?;
        self.count_deliveries(&deliveries);
        Ok(deliveries)
    }

    async fn fetch_waiting(&self, fetch: Fetch) -> Result<Vec<Delivery>, LogError> {
        let Fetch {
            stream,
            group,
            consumer,
            count,
            block,
            pending_only,
        } = fetch;
        let mut request = DeliverRequest::new(stream, group, consumer);
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::StreamExt;
    use tokio::sync::oneshot;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::log::groups::{ConsumeItem, CreateGroup, ListPending};
    use crate::log::{EventAttributes, Limits, LogTasks, PublishBatch, parse};
    use crate::metrics::Metrics;
    use crate::storage::Storage;
    use crate::storage::testing::on_each_backend;

    const HOUR: Duration = Duration::from_secs(3600);

    fn names(consumer: &str) -> (StreamName, GroupName, ConsumerName) {
        let consumer = parse::consumer(consumer).unwrap();
        (
            parse::stream("s").unwrap(),
            parse::group("g").unwrap(),
            consumer,
        )
    }

    async fn fetch(log: &EventLog, consumer: &str, count: u32, block: Duration) -> Vec<Delivery> {
        let (stream, group, consumer) = names(consumer);
        let fetch = Fetch {
            stream,
            group,
            consumer,
            count,
            block,
            pending_only: false,
        };
        log.fetch(&Principal::open(), fetch).await.unwrap()
    }

    /// A log on `storage` with `events` in stream `s` and group `g` on it,
    /// whose entries would wait an hour for redelivery.
    async fn log_with_group(storage: Arc<dyn Storage>, events: usize) -> (EventLog, LogTasks) {
        let (log, tasks) = EventLog::start(
            storage,
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
        let (stream, group, _) = names("c");
        let anyone = Principal::open();
        let admit = || {
            Ok::<_, LogError>(PublishBatch {
                events: batch,
                ..Default::default()
            })
        };
        log.publish(&anyone, stream.clone(), admit).await.unwrap();
        let create = CreateGroup {
            ack_timeout: Some(HOUR),
            ..CreateGroup::new(stream, group)
        };
        log.create_group(&anyone, create).await.unwrap();
        (log, tasks)
    }

    fn handed(deliveries: &[Delivery]) -> Vec<(Sequence, u32)> {
        deliveries
            .iter()
            .map(|d| (d.event.sequence, d.delivery_count))
            .collect()
    }

    async fn pending(log: &EventLog) -> Vec<(Sequence, String, u32)> {
        let (stream, group, _) = names("c");
        let query = ListPending {
            stream,
            group,
            consumer: None,
            min_idle: None,
            limit: 100,
            after_sequence: 0,
        };
        let (_, entries) = log.list_pending(&Principal::open(), query).await.unwrap();
        entries
            .into_iter()
            .map(|e| (e.sequence, e.consumer, e.delivery_count))
            .collect()
    }

    async fn a_delivery_whose_caller_is_gone_before_it_is_decided_hands_out_nothing(
        storage: Arc<dyn Storage>,
    ) {
        let (log, _tasks) = log_with_group(storage, 1).await;
        let (stream, group, consumer) = names("gone");
        let mut request = DeliverRequest::new(stream, group, consumer);
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
        let got = fetch(&log, "heir", 10, Duration::ZERO).await;
        assert_eq!(handed(&got), [(1, 1)]);
        assert_eq!(pending(&log).await, [(1, "heir".to_owned(), 1)]);
    }

    async fn given_back_deliveries_are_due_at_once_held_by_no_one_and_not_counted(
        storage: Arc<dyn Storage>,
    ) {
        let (log, _tasks) = log_with_group(storage, 2).await;
        let (s, g, gone) = names("gone");
        let lost = handed(&fetch(&log, "gone", 2, Duration::ZERO).await);
        assert_eq!(lost, [(1, 1), (2, 1)]);
        let released = log.release(s.clone(), g.clone(), gone.clone(), lost.clone());
        assert_eq!(released.await.unwrap(), 2);
        assert_eq!(
            pending(&log).await,
            [(1, String::new(), 0), (2, String::new(), 0)]
        );
        let got = fetch(&log, "heir", 2, Duration::ZERO).await;
        assert_eq!(handed(&got), [(1, 1), (2, 1)]);
        // A late give-back leaves entries someone else holds now alone.
        assert_eq!(log.release(s, g, gone, lost).await.unwrap(), 0);
        assert_eq!(
            pending(&log).await,
            [(1, "heir".to_owned(), 1), (2, "heir".to_owned(), 1)]
        );
    }

    async fn a_closed_consume_stream_gives_back_what_it_had_not_sent(storage: Arc<dyn Storage>) {
        let (log, _tasks) = log_with_group(storage, 3).await;
        let (s, g, gone) = names("gone");
        let anyone = Principal::open();
        let stream = log.consume(&anyone, s, g, gone, 10, None).await.unwrap();
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
        let got = fetch(&log, "heir", 10, patience).await;
        assert_eq!(handed(&got), [(2, 1), (3, 1)]);
    }

    on_each_backend!(
        a_delivery_whose_caller_is_gone_before_it_is_decided_hands_out_nothing,
        given_back_deliveries_are_due_at_once_held_by_no_one_and_not_counted,
        a_closed_consume_stream_gives_back_what_it_had_not_sent,
    );
}
