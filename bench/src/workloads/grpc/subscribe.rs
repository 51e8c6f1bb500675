//! W3, W4, W6 and W7: Subscribe streams (live fan-out, catch-up, idle
//! subscriptions, stalled subscribers).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::subscribe_response::Message;
use riverlog::proto::v1::{PublishRequest, SubscribeRequest, SubscribeResponse};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use super::{connect, create_stream, event, stamp_of};
use crate::measure::{Latency, ServerUse, now_micros, stamped_data};
use crate::target::riverlog::Riverlog;
use crate::workloads::driver::{Paced, Sender, Tally, merged, paced, preload, wait_for};
use crate::workloads::{Ctx, Outcome, Run};

/// Requests the paced publisher keeps outstanding at most.
const MAX_IN_FLIGHT: usize = 1024;
/// How long subscribers may take to receive what was published.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes one stamped event per request to one stream.
#[derive(Clone)]
struct OneEvent {
    client: EventLogClient<Channel>,
    stream: Arc<str>,
    bytes: usize,
}

impl Sender for OneEvent {
    async fn send(&self, index: u64, stamp_micros: u64) -> anyhow::Result<()> {
        self.client
            .clone()
            .publish(PublishRequest {
                stream: self.stream.to_string(),
                events: vec![event(
                    format!("e{index}"),
                    stamped_data(self.bytes, stamp_micros),
                )],
                expected: None,
            })
            .await
            .context("Publish")?;
        Ok(())
    }
}

/// Opens a Subscribe call on `stream` from the earliest event.
async fn subscribe(
    channel: Channel,
    stream: &str,
) -> Result<tonic::Streaming<SubscribeResponse>, tonic::Status> {
    Ok(EventLogClient::new(channel)
        .subscribe(SubscribeRequest {
            streams: vec![stream.to_owned()],
            ..SubscribeRequest::default()
        })
        .await?
        .into_inner())
}

/// A subscriber that reads everything: counts `ready` once caught up,
/// then tallies every event with its delay.
async fn reader(
    channel: Channel,
    stream: String,
    tally: Arc<Tally>,
    ready: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut items = subscribe(channel, &stream).await.context("Subscribe")?;
    while let Some(item) = items.message().await.context("Subscribe stream")? {
        match item.message {
            Some(Message::Event(e)) => tally.receive(stamp_of(&e), true),
            Some(Message::CaughtUp(_)) => {
                ready.fetch_add(1, Ordering::Release);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Waits until `ready` reaches `count`, failing early if a task of `tasks`
/// failed.
async fn until_ready(
    ready: &AtomicUsize,
    count: usize,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    while ready.load(Ordering::Acquire) < count {
        if let Some(joined) = tasks.try_join_next() {
            joined.context("a subscriber panicked")??;
            anyhow::bail!("a subscription ended before it caught up");
        }
        anyhow::ensure!(
            Instant::now() < until,
            "only {} of {count} subscriptions caught up within {timeout:?}",
            ready.load(Ordering::Acquire)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Publishes `--rate` events/s to `stream` for `--duration` from one
/// connection, then waits (at most [`DRAIN_TIMEOUT`]) until every reader
/// of `tallies` got them all: what was published, the server's use over
/// that time, and whether every reader got every event.
async fn publish_to(
    ctx: &Ctx<'_>,
    target: &Riverlog,
    stream: &str,
    tallies: &[Arc<Tally>],
) -> anyhow::Result<(Paced, ServerUse, bool)> {
    let args = ctx.args;
    let sender = OneEvent {
        client: EventLogClient::new(connect(&target.urls[0]).await?),
        stream: stream.into(),
        bytes: args.event_bytes,
    };
    let begin = target.probe.begin().await;
    let published = paced(
        sender,
        args.rate,
        args.duration(),
        MAX_IN_FLIGHT,
        ctx.progress,
        "publishing at rate",
    )
    .await?;
    let complete = wait_for(tallies, published.sent, DRAIN_TIMEOUT).await;
    let server = target.probe.end(&begin).await;
    Ok((published, server, complete))
}

/// W3: `--subscribers` subscribers on one stream (one connection each)
/// while one publisher sends `--rate` events/s for `--duration`.
pub async fn live(ctx: &Ctx<'_>, target: &Riverlog) -> anyhow::Result<Run> {
    let args = ctx.args;
    let url = &target.urls[0];
    let stream = ctx.stream("live");
    create_stream(url, &stream).await?;
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let mut tallies = Vec::new();
    for _ in 0..args.subscribers {
        let tally = Arc::new(Tally::default());
        tallies.push(tally.clone());
        tasks.spawn(reader(
            connect(url).await?,
            stream.clone(),
            tally,
            ready.clone(),
        ));
    }
    until_ready(&ready, args.subscribers, &mut tasks, args.timeout()).await?;
    let (published, server, complete) = publish_to(ctx, target, &stream, &tallies).await?;
    tasks.abort_all();
    Ok(Run::done(fan_out_outcome(
        &tallies, &published, server, complete,
    )))
}

/// The outcome of a paced publish to subscribers that tallied it.
fn fan_out_outcome(
    tallies: &[Arc<Tally>],
    published: &Paced,
    server: ServerUse,
    complete: bool,
) -> Outcome {
    let received: u64 = tallies.iter().map(|t| t.received()).sum();
    let mut notes = vec![format!(
        "events = deliveries ({} published × {} subscribers); CPU per delivery",
        published.sent,
        tallies.len()
    )];
    if !complete {
        notes.push(format!(
            "INCOMPLETE: {received} of {} deliveries arrived within {DRAIN_TIMEOUT:?}",
            published.sent * tallies.len() as u64
        ));
    }
    Outcome {
        events: received,
        elapsed: published.elapsed,
        latency: merged(tallies).figures("publish→receive"),
        server,
        extra: publish_extra(published),
        notes,
    }
}

/// The publisher's own figures.
fn publish_extra(published: &Paced) -> Vec<(String, f64)> {
    let mut extra = vec![(
        "published_events_per_s".into(),
        published.sent as f64 / published.elapsed.as_secs_f64(),
    )];
    if let Some(f) = published.latency.figures("publish") {
        extra.push(("publish_p99_ms".into(), f.p99_ms));
    }
    extra
}

/// W4: `--catch-up-events` events preloaded (untimed), then one subscriber
/// reads them all from the earliest.
pub async fn catch_up(ctx: &Ctx<'_>, target: &Riverlog) -> anyhow::Result<Run> {
    let args = ctx.args;
    let url = &target.urls[0];
    let stream = ctx.stream("catch-up");
    let total = args.catch_up_events;
    preload_stream(ctx, url, &stream, total).await?;
    // The preload's writes are not the catch-up's.
    target.probe.settle(Duration::from_secs(15)).await;

    let channel = connect(url).await?;
    let bar = ctx.progress.counter("catching up", total);
    let begin = target.probe.begin().await;
    let started = Instant::now();
    let mut items = subscribe(channel, &stream).await.context("Subscribe")?;
    let mut received = 0u64;
    let mut first = None;
    let limit = args.catch_up_limit();
    let read = tokio::time::timeout(limit, async {
        while received < total {
            let Some(item) = items.message().await.context("Subscribe stream")? else {
                anyhow::bail!("the subscription ended after {received} events");
            };
            if let Some(Message::Event(_)) = item.message {
                first.get_or_insert_with(|| started.elapsed());
                received += 1;
                if received % 4096 == 0 {
                    bar.set_position(received);
                }
            }
        }
        anyhow::Ok(())
    })
    .await;
    let elapsed = started.elapsed();
    let server = target.probe.end(&begin).await;
    bar.finish_and_clear();
    drop(items);
    let mut notes = vec![format!(
        "preloaded untimed in batches of {} by {} callers",
        args.preload_batch, args.preload_callers
    )];
    match read {
        Ok(done) => done?,
        Err(_) => notes.push(format!(
            "STOPPED after {limit:?} (--catch-up-seconds): {received} of {total} events read"
        )),
    }
    let mut extra = Vec::new();
    if let Some(first) = first {
        extra.push(("first_event_ms".into(), first.as_secs_f64() * 1000.0));
    }
    Ok(Run::done(Outcome {
        events: received,
        elapsed,
        latency: None,
        server,
        extra,
        notes,
    }))
}

/// Publishes `total` events to `stream` in batches of `--preload-batch`
/// from `--preload-callers` callers.
pub(super) async fn preload_stream(
    ctx: &Ctx<'_>,
    url: &str,
    stream: &str,
    total: u64,
) -> anyhow::Result<()> {
    let batch = ctx.args.preload_batch as u64;
    let client = EventLogClient::new(connect(url).await?);
    let (stream, bytes) = (Arc::<str>::from(stream), ctx.args.event_bytes);
    preload(
        total.div_ceil(batch),
        ctx.args.preload_callers,
        ctx.progress,
        "preloading (untimed)",
        move |b| {
            let (mut client, stream) = (client.clone(), stream.clone());
            async move {
                let events = (b * batch..((b + 1) * batch).min(total))
                    .map(|i| event(format!("e{i}"), stamped_data(bytes, 0)))
                    .collect();
                client
                    .publish(PublishRequest {
                        stream: stream.to_string(),
                        events,
                        expected: None,
                    })
                    .await
                    .context("Publish (preload)")?;
                Ok(())
            }
        },
    )
    .await
}

/// W6: `--idle-subscriptions` subscriptions on an empty stream over
/// connections of `--subscriptions-per-connection`; the server's RSS growth
/// per subscription, then one event woken to all of them.
pub async fn idle(ctx: &Ctx<'_>, target: &Riverlog) -> anyhow::Result<Run> {
    let args = ctx.args;
    let url = &target.urls[0];
    let count = args.idle_subscriptions;
    let stream = ctx.stream("idle");
    create_stream(url, &stream).await?;
    let begin = target.probe.begin().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = target.probe.rss_kib();

    let opening = Instant::now();
    let per_connection = args.subscriptions_per_connection;
    let channels: Vec<Channel> = futures::stream::iter(0..count.div_ceil(per_connection))
        .map(|_| connect(url))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let ready = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let opening_slots = Arc::new(tokio::sync::Semaphore::new(256));
    let bar = ctx.progress.counter("opening subscriptions", count as u64);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (channel, stream) = (channels[i / per_connection].clone(), stream.clone());
        let (ready, tally, slots, bar) = (
            ready.clone(),
            tally.clone(),
            opening_slots.clone(),
            bar.clone(),
        );
        tasks.spawn(async move {
            let permit = slots.acquire_owned().await?;
            let mut items = subscribe(channel, &stream).await.context("Subscribe")?;
            let mut permit = Some(permit);
            while let Some(item) = items.message().await.context("Subscribe stream")? {
                match item.message {
                    Some(Message::CaughtUp(_)) => {
                        permit.take();
                        bar.inc(1);
                        ready.fetch_add(1, Ordering::Release);
                    }
                    Some(Message::Event(e)) => {
                        tally.receive(stamp_of(&e), true);
                        return Ok(());
                    }
                    _ => {}
                }
            }
            anyhow::bail!("the subscription ended")
        });
    }
    until_ready(&ready, count, &mut tasks, args.timeout()).await?;
    bar.finish_and_clear();
    let opened_in = opening.elapsed();
    // Let allocations settle before reading the RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = target.probe.rss_kib();

    let mut client = EventLogClient::new(connect(url).await?);
    let woken = Instant::now();
    client
        .publish(PublishRequest {
            stream: stream.clone(),
            events: vec![event(
                "wake".into(),
                stamped_data(args.event_bytes, now_micros()),
            )],
            expected: None,
        })
        .await
        .context("Publish (wake-up)")?;
    let complete = wait_for(std::slice::from_ref(&tally), count as u64, DRAIN_TIMEOUT).await;
    let elapsed = woken.elapsed();
    let server = target.probe.end(&begin).await;
    tasks.abort_all();

    let mut extra = vec![("open_seconds".into(), opened_in.as_secs_f64())];
    let mut notes = vec![
        format!(
            "{} connections of up to {per_connection} subscriptions; RSS growth includes them",
            channels.len()
        ),
        "events = wake-up deliveries (one event to every subscription); CPU covers opening and the wake-up".into(),
    ];
    if let Some((before, after)) = rss_before.zip(rss_after) {
        extra.push(("rss_before_kib".into(), before as f64));
        extra.push(("rss_after_kib".into(), after as f64));
        extra.push((
            "kib_per_subscription".into(),
            (after as f64 - before as f64) / count.max(1) as f64,
        ));
    } else {
        notes.push("no server pid: RSS per subscription unknown".into());
    }
    if !complete {
        notes.push(format!(
            "INCOMPLETE: {} of {count} subscriptions got the wake-up event",
            tally.received()
        ));
    }
    let latency =
        crate::workloads::driver::lock(&tally.latency).figures("publish→receive (wake-up)");
    Ok(Run::done(Outcome {
        events: tally.received(),
        elapsed,
        latency,
        server,
        extra,
        notes,
    }))
}

/// One W7 round's figures.
struct Round {
    latency: Latency,
    published: Paced,
    received: u64,
    server: ServerUse,
    complete: bool,
}

/// W7: a healthy subscriber's publish→receive delay with `--stalled`
/// stalled subscribers beside it, against a round without them.
pub async fn stalled(ctx: &Ctx<'_>, target: &Riverlog) -> anyhow::Result<Run> {
    let args = ctx.args;
    ctx.progress.step("  W7 round 1: no stalled subscribers");
    let base = stall_round(ctx, target, 0).await?;
    ctx.progress.step(&format!(
        "  W7 round 2: {} stalled subscribers",
        args.stalled
    ));
    let loaded = stall_round(ctx, target, args.stalled).await?;
    let base_f = base.latency.figures("publish→receive, healthy subscriber");
    let loaded_f = loaded
        .latency
        .figures("publish→receive, healthy subscriber");
    let mut extra = publish_extra(&loaded.published);
    if let (Some(b), Some(l)) = (&base_f, &loaded_f) {
        extra.push(("baseline_p50_ms".into(), b.p50_ms));
        extra.push(("baseline_p99_ms".into(), b.p99_ms));
        extra.push(("stalled_p99_ms".into(), l.p99_ms));
        extra.push(("p99_ratio_stalled_to_baseline".into(), l.p99_ms / b.p99_ms));
    }
    let mut notes = vec![format!(
        "figures are the round with {} stalled subscribers (own connections, 64 KiB windows, never read); baseline: the same round without them",
        args.stalled
    )];
    for (name, round) in [("baseline", &base), ("stalled", &loaded)] {
        if !round.complete {
            notes.push(format!(
                "INCOMPLETE ({name}): the healthy subscriber got {} of {} events",
                round.received, round.published.sent
            ));
        }
    }
    Ok(Run::done(Outcome {
        events: loaded.received,
        elapsed: loaded.published.elapsed,
        latency: loaded_f,
        server: loaded.server,
        extra,
        notes,
    }))
}

/// A Subscribe call that is never read, with the connection it owns.
struct StalledCall {
    _channel: Channel,
    _items: tonic::Streaming<SubscribeResponse>,
}

async fn stall_round(ctx: &Ctx<'_>, target: &Riverlog, stalled: usize) -> anyhow::Result<Round> {
    let args = ctx.args;
    target.probe.settle(Duration::from_secs(15)).await;
    let url = &target.urls[0];
    let stream = ctx.stream(&format!("stall-{stalled}"));
    create_stream(url, &stream).await?;
    let mut calls = Vec::with_capacity(stalled);
    let mut opening = futures::stream::iter(0..stalled)
        .map(|_| async {
            // HTTP/2's default 64 KiB windows: full after ~200 events, then
            // the server cannot send, as with a client that stopped reading.
            let channel = Endpoint::from_shared(url.clone())?
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
                .connect()
                .await
                .context("connecting a stalled subscriber")?;
            let items = subscribe(channel.clone(), &stream)
                .await
                .context("Subscribe (stalled)")?;
            anyhow::Ok(StalledCall {
                _channel: channel,
                _items: items,
            })
        })
        .buffer_unordered(32);
    while let Some(call) = opening.next().await {
        calls.push(call?);
    }
    drop(opening);

    let ready = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let mut tasks = JoinSet::new();
    tasks.spawn(reader(
        connect(url).await?,
        stream.clone(),
        tally.clone(),
        ready.clone(),
    ));
    until_ready(&ready, 1, &mut tasks, args.timeout()).await?;
    let (published, server, complete) =
        publish_to(ctx, target, &stream, std::slice::from_ref(&tally)).await?;
    tasks.abort_all();
    drop(calls);
    let latency = crate::workloads::driver::lock(&tally.latency).clone();
    Ok(Round {
        latency,
        received: tally.received(),
        published,
        server,
        complete,
    })
}
