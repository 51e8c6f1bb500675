//! The workloads against Redis Streams, command for command the
//! counterpart of riverlog's: XADD, pipelined XADDs, XREAD BLOCK, XRANGE
//! pages, XREADGROUP + XACK.

mod reply;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{Value, cmd};
use tokio::task::JoinSet;

use super::driver::{
    Caller, Done, Sender, Tally, closed_loop, lock, merged, paced, preload, wait_for,
};
use super::{Ctx, Outcome, Run, WorkloadId};
use crate::measure::{Latency, now_micros, stamped_data};
use crate::target::redis::RedisServer;

/// The field each entry's data goes in.
const FIELD: &str = "d";
/// XRANGE page size of W4 (riverlog's catch-up reads pages of 512 too).
const PAGE: usize = 512;
/// Commands the paced publisher keeps outstanding at most.
const MAX_IN_FLIGHT: usize = 1024;
/// How long readers may take to receive what was published.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs workload `id` against `server`.
pub async fn run(id: WorkloadId, ctx: &Ctx<'_>, server: &RedisServer) -> anyhow::Result<Run> {
    match id {
        WorkloadId::W1 => publish(ctx, server, ctx.args.publish_callers, 1).await,
        WorkloadId::W1s => Ok(Run::Skipped(
            "Redis has no publish stream: compare riverlog's W1s with Redis's W1".into(),
        )),
        WorkloadId::W2 => publish(ctx, server, ctx.args.batch_callers, ctx.args.batch_size).await,
        WorkloadId::W3 => live(ctx, server).await,
        WorkloadId::W4 => catch_up(ctx, server).await,
        WorkloadId::W5 => group(ctx, server).await,
        WorkloadId::W6 => idle(ctx, server).await,
        WorkloadId::W7 => Ok(Run::Skipped(
            "n/a: Redis Streams readers pull (XREAD); a reader that stops reading stops asking, so the server \
             never pushes to or buffers for it and a stall costs it nothing by construction"
                .into(),
        )),
    }
}

/// An XADD of `data` to `key`.
fn xadd(key: &str, data: &[u8]) -> redis::Cmd {
    let mut c = cmd("XADD");
    c.arg(key).arg("*").arg(FIELD).arg(data);
    c
}

/// A publisher on its own connection: one XADD per call, or `batch`
/// XADDs in one pipeline.
struct Publisher {
    conn: MultiplexedConnection,
    key: String,
    batch: usize,
    bytes: usize,
}

impl Caller for Publisher {
    async fn call(&mut self) -> anyhow::Result<Done> {
        let data = stamped_data(self.bytes, 0);
        let started = Instant::now();
        if self.batch == 1 {
            let _: Value = xadd(&self.key, &data)
                .query_async(&mut self.conn)
                .await
                .context("XADD")?;
        } else {
            let mut pipe = redis::pipe();
            for _ in 0..self.batch {
                pipe.add_command(xadd(&self.key, &data)).ignore();
            }
            let _: Value = pipe
                .query_async(&mut self.conn)
                .await
                .context("XADD pipeline")?;
        }
        Ok(Done {
            events: self.batch as u64,
            latency: started.elapsed(),
        })
    }
}

/// W1 and W2: `callers` publishers, one connection each, on one stream.
async fn publish(
    ctx: &Ctx<'_>,
    server: &RedisServer,
    callers: usize,
    batch: usize,
) -> anyhow::Result<Run> {
    let key = ctx.stream(&format!("publish-{batch}"));
    let mut publishers = Vec::with_capacity(callers);
    for _ in 0..callers {
        publishers.push(Publisher {
            conn: server.connect().await?,
            key: key.clone(),
            batch,
            bytes: ctx.args.event_bytes,
        });
    }
    let timed = closed_loop(
        publishers,
        ctx.args.warmup(),
        ctx.args.duration(),
        &server.probe,
        ctx.progress,
        "publishing",
    )
    .await?;
    let requests = timed.latency.count();
    Ok(Run::done(Outcome {
        events: timed.events,
        elapsed: timed.elapsed,
        latency: timed
            .latency
            .figures(if batch == 1 { "XADD" } else { "XADD pipeline" }),
        server: timed.server,
        extra: vec![(
            "requests_per_s".into(),
            requests as f64 / timed.elapsed.as_secs_f64(),
        )],
        notes: vec![format!(
            "one stream, one connection per caller, {callers} connections"
        )],
    }))
}

/// XADDs one stamped entry per event on a shared (pipelining) connection.
#[derive(Clone)]
struct OneEntry {
    conn: MultiplexedConnection,
    key: Arc<str>,
    bytes: usize,
}

impl Sender for OneEntry {
    async fn send(&self, _index: u64, stamp_micros: u64) -> anyhow::Result<()> {
        let _: Value = xadd(&self.key, &stamped_data(self.bytes, stamp_micros))
            .query_async(&mut self.conn.clone())
            .await
            .context("XADD")?;
        Ok(())
    }
}

/// A reader looping XREAD BLOCK 0 from the stream's start; counts `ready`
/// before its first read.
async fn reader(
    mut conn: MultiplexedConnection,
    key: String,
    tally: Arc<Tally>,
    ready: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut last = "0-0".to_owned();
    ready.fetch_add(1, Ordering::Release);
    loop {
        let value: Value = cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last)
            .query_async(&mut conn)
            .await
            .context("XREAD")?;
        for entry in reply::xread(&value)? {
            tally.receive(entry.stamp, true);
            last = entry.id;
        }
    }
}

/// Waits until every reader has issued its first XREAD BLOCK (Redis's
/// `blocked_clients` counts them).
async fn until_blocked(
    server: &RedisServer,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut conn = server.connect().await?;
    let until = Instant::now() + timeout;
    loop {
        let info: String = cmd("INFO")
            .arg("clients")
            .query_async(&mut conn)
            .await
            .context("INFO clients")?;
        let blocked: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if blocked >= count {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "only {blocked} of {count} readers blocked within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// W3: `--subscribers` readers (own connection each) on one stream while
/// `--rate` entries/s are added for `--duration`.
async fn live(ctx: &Ctx<'_>, server: &RedisServer) -> anyhow::Result<Run> {
    let args = ctx.args;
    let key = ctx.stream("live");
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let mut tallies = Vec::new();
    for _ in 0..args.subscribers {
        let tally = Arc::new(Tally::default());
        tallies.push(tally.clone());
        tasks.spawn(reader(
            server.connect().await?,
            key.clone(),
            tally,
            ready.clone(),
        ));
    }
    until_blocked(server, args.subscribers, args.timeout()).await?;
    let sender = OneEntry {
        conn: server.connect().await?,
        key: key.as_str().into(),
        bytes: args.event_bytes,
    };
    let begin = server.probe.begin().await;
    let published = paced(
        sender,
        args.rate,
        args.duration(),
        MAX_IN_FLIGHT,
        ctx.progress,
        "publishing at rate",
    )
    .await?;
    let complete = wait_for(&tallies, published.sent, DRAIN_TIMEOUT).await;
    let server_use = server.probe.end(&begin).await;
    tasks.abort_all();
    let received: u64 = tallies.iter().map(|t| t.received()).sum();
    let mut notes = vec![format!(
        "events = deliveries ({} published × {} readers looping XREAD BLOCK 0 COUNT 1000); XADDs from one pipelining connection",
        published.sent,
        tallies.len()
    )];
    if !complete {
        notes.push(format!("INCOMPLETE: {received} deliveries arrived"));
    }
    let mut extra = vec![(
        "published_events_per_s".into(),
        published.sent as f64 / published.elapsed.as_secs_f64(),
    )];
    if let Some(f) = published.latency.figures("XADD") {
        extra.push(("publish_p99_ms".into(), f.p99_ms));
    }
    Ok(Run::done(Outcome {
        events: received,
        elapsed: published.elapsed,
        latency: merged(&tallies).figures("XADD→XREAD"),
        server: server_use,
        extra,
        notes,
    }))
}

/// Adds `total` entries to `key` in pipelines of `--preload-batch` from
/// `--preload-callers` connections.
async fn preload_key(
    ctx: &Ctx<'_>,
    server: &RedisServer,
    key: &str,
    total: u64,
) -> anyhow::Result<()> {
    let batch = ctx.args.preload_batch as u64;
    let conn = server.connect().await?;
    let (key, bytes) = (Arc::<str>::from(key), ctx.args.event_bytes);
    preload(
        total.div_ceil(batch),
        ctx.args.preload_callers,
        ctx.progress,
        "preloading (untimed)",
        move |b| {
            let (mut conn, key) = (conn.clone(), key.clone());
            async move {
                let data = stamped_data(bytes, 0);
                let mut pipe = redis::pipe();
                for _ in b * batch..((b + 1) * batch).min(total) {
                    pipe.add_command(xadd(&key, &data)).ignore();
                }
                let _: Value = pipe
                    .query_async(&mut conn)
                    .await
                    .context("XADD (preload)")?;
                Ok(())
            }
        },
    )
    .await?;
    // As for riverlog: the preload's writes are not the workload's.
    server.probe.settle(Duration::from_secs(15)).await;
    Ok(())
}

/// W4: `--catch-up-events` entries preloaded (untimed), then read back
/// with XRANGE pages of 512 from the start.
async fn catch_up(ctx: &Ctx<'_>, server: &RedisServer) -> anyhow::Result<Run> {
    let args = ctx.args;
    let key = ctx.stream("catch-up");
    let total = args.catch_up_events;
    preload_key(ctx, server, &key, total).await?;
    let mut conn = server.connect().await?;
    let bar = ctx.progress.counter("catching up", total);
    let begin = server.probe.begin().await;
    let started = Instant::now();
    let mut received = 0u64;
    let mut from = "-".to_owned();
    let until = started + args.catch_up_limit();
    let mut notes = vec![format!("XRANGE pages of {PAGE}; preloaded untimed")];
    while received < total {
        if Instant::now() >= until {
            notes.push(format!(
                "STOPPED after {:?} (--catch-up-seconds): {received} of {total} entries read",
                args.catch_up_limit()
            ));
            break;
        }
        let value: Value = cmd("XRANGE")
            .arg(&key)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut conn)
            .await
            .context("XRANGE")?;
        let entries = reply::entries(&value)?;
        let Some(last) = entries.last() else {
            anyhow::bail!("the stream ended after {received} entries");
        };
        from = format!("({}", last.id);
        received += entries.len() as u64;
        bar.set_position(received);
    }
    let elapsed = started.elapsed();
    let server_use = server.probe.end(&begin).await;
    bar.finish_and_clear();
    Ok(Run::done(Outcome {
        events: received,
        elapsed,
        latency: None,
        server: server_use,
        extra: Vec::new(),
        notes,
    }))
}

/// W5: `--group-events` entries preloaded, a group from 0, `--consumers`
/// consumers (own connection each) looping XREADGROUP COUNT n + XACK.
async fn group(ctx: &Ctx<'_>, server: &RedisServer) -> anyhow::Result<Run> {
    let args = ctx.args;
    let key = ctx.stream("group");
    let total = args.group_events;
    preload_key(ctx, server, &key, total).await?;
    let mut admin = server.connect().await?;
    let _: Value = cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("bench")
        .arg("0")
        .query_async(&mut admin)
        .await
        .context("XGROUP CREATE")?;
    let acked = Arc::new(AtomicU64::new(0));
    let bar = ctx.progress.counter("xreadgroup + xack", total);
    let mut conns = Vec::new();
    for _ in 0..args.consumers {
        conns.push(server.connect().await?);
    }
    let begin = server.probe.begin().await;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        let (acked, key, bar) = (acked.clone(), key.clone(), bar.clone());
        let count = args.fetch_count;
        tasks.spawn(async move {
            let mut latency = Latency::new();
            while acked.load(Ordering::Acquire) < total {
                let cycle = Instant::now();
                let value: Value = cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("bench")
                    .arg(format!("c{c}"))
                    .arg("COUNT")
                    .arg(count)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(">")
                    .query_async(&mut conn)
                    .await
                    .context("XREADGROUP")?;
                let ids: Vec<String> = reply::xread(&value)?.into_iter().map(|e| e.id).collect();
                if ids.is_empty() {
                    continue;
                }
                let done: u64 = cmd("XACK")
                    .arg(&key)
                    .arg("bench")
                    .arg(&ids)
                    .query_async(&mut conn)
                    .await
                    .context("XACK")?;
                latency.record(cycle.elapsed());
                acked.fetch_add(done, Ordering::AcqRel);
                bar.inc(done);
            }
            anyhow::Ok(latency)
        });
    }
    let mut latency = Latency::new();
    let joined = tokio::time::timeout(args.timeout(), async {
        while let Some(joined) = tasks.join_next().await {
            latency.merge(&joined.context("a consumer panicked")??);
        }
        anyhow::Ok(())
    })
    .await;
    let elapsed = started.elapsed();
    let server_use = server.probe.end(&begin).await;
    bar.finish_and_clear();
    joined.with_context(|| format!("the group did not finish within {:?}", args.timeout()))??;
    Ok(Run::done(Outcome {
        events: acked.load(Ordering::Acquire),
        elapsed,
        latency: latency.figures("XREADGROUP + XACK cycle"),
        server: server_use,
        extra: Vec::new(),
        notes: vec!["entries acked; preloaded untimed; XREADGROUP BLOCK 100 when empty".into()],
    }))
}

/// W6: `--idle-subscriptions` connections each blocked in XREAD BLOCK 0
/// on one stream; the server's RSS growth per reader, then one entry
/// woken to all of them.
async fn idle(ctx: &Ctx<'_>, server: &RedisServer) -> anyhow::Result<Run> {
    let args = ctx.args;
    let count = args.idle_subscriptions;
    let key = ctx.stream("idle");
    let begin = server.probe.begin().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.probe.rss_kib();
    let opening = Instant::now();
    let bar = ctx.progress.counter("opening readers", count as u64);
    let conns: Vec<MultiplexedConnection> = futures::stream::iter(0..count)
        .map(|_| {
            let bar = bar.clone();
            async move {
                let conn = server.connect().await;
                bar.inc(1);
                conn
            }
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    let tally = Arc::new(Tally::default());
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let (key, tally) = (key.clone(), tally.clone());
        tasks.spawn(async move {
            let value: Value = cmd("XREAD")
                .arg("BLOCK")
                .arg(0)
                .arg("STREAMS")
                .arg(&key)
                .arg("$")
                .query_async(&mut conn)
                .await
                .context("XREAD")?;
            for entry in reply::xread(&value)? {
                tally.receive(entry.stamp, true);
            }
            anyhow::Ok(())
        });
    }
    until_blocked(server, count, args.timeout()).await?;
    let opened_in = opening.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.probe.rss_kib();

    let mut conn = server.connect().await?;
    let woken = Instant::now();
    let _: Value = xadd(&key, &stamped_data(args.event_bytes, now_micros()))
        .query_async(&mut conn)
        .await
        .context("XADD (wake-up)")?;
    let complete = wait_for(std::slice::from_ref(&tally), count as u64, DRAIN_TIMEOUT).await;
    let elapsed = woken.elapsed();
    let server_use = server.probe.end(&begin).await;
    tasks.abort_all();
    let mut extra = vec![("open_seconds".into(), opened_in.as_secs_f64())];
    let mut notes = vec![
        "one connection per reader; RSS growth includes them".into(),
        "events = wake-up deliveries (one entry to every reader); CPU covers opening and the wake-up".into(),
    ];
    if let Some((before, after)) = rss_before.zip(rss_after) {
        extra.push(("rss_before_kib".into(), before as f64));
        extra.push(("rss_after_kib".into(), after as f64));
        extra.push((
            "kib_per_subscription".into(),
            (after as f64 - before as f64) / count.max(1) as f64,
        ));
    }
    if !complete {
        notes.push(format!(
            "INCOMPLETE: {} of {count} readers got the wake-up entry",
            tally.received()
        ));
    }
    let latency = lock(&tally.latency).figures("XADD→XREAD (wake-up)");
    Ok(Run::done(Outcome {
        events: tally.received(),
        elapsed,
        latency,
        server: server_use,
        extra,
        notes,
    }))
}
