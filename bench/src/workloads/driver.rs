//! Load shapes shared by the riverlog and Redis workloads.

use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

use crate::measure::{Latency, Probe, ServerUse, now_micros};
use crate::progress::Progress;

/// Callers are warming up: requests are not counted.
const WARMING: u8 = 0;
/// The measured window is open.
const MEASURING: u8 = 1;
/// Callers stop after their current request.
const STOPPED: u8 = 2;

/// One request of a closed-loop caller.
pub struct Done {
    /// Events the request carried.
    pub events: u64,
    /// Its latency (the caller times it: with several requests in flight
    /// on one stream, a call is not one request).
    pub latency: Duration,
}

/// A closed-loop caller: sends its next request when the previous one is
/// answered (or, for windowed streams, when the oldest one is).
pub trait Caller: Send + 'static {
    /// One request.
    fn call(&mut self) -> impl Future<Output = anyhow::Result<Done>> + Send;
}

/// What a timed window measured.
pub struct Timed {
    /// Events of requests that started and ended inside the window.
    pub events: u64,
    /// The window's length.
    pub elapsed: Duration,
    /// Those requests' latencies.
    pub latency: Latency,
    /// The server's use over the window.
    pub server: ServerUse,
}

/// Runs `callers` concurrently: `warmup` unmeasured, then `duration`
/// measured (server counters from `probe` over exactly that window).
pub async fn closed_loop<C: Caller>(
    callers: Vec<C>,
    warmup: Duration,
    duration: Duration,
    probe: &Probe,
    progress: &Progress,
    label: &str,
) -> anyhow::Result<Timed> {
    let state = Arc::new(AtomicU8::new(WARMING));
    let mut tasks = JoinSet::new();
    for mut caller in callers {
        let state = state.clone();
        tasks.spawn(async move {
            let mut latency = Latency::new();
            let mut events = 0;
            loop {
                let at_start = state.load(Ordering::Acquire);
                if at_start == STOPPED {
                    return Ok((latency, events));
                }
                let done = match caller.call().await {
                    Ok(done) => done,
                    Err(e) => {
                        state.store(STOPPED, Ordering::Release);
                        return Err(e);
                    }
                };
                if at_start == MEASURING && state.load(Ordering::Acquire) == MEASURING {
                    latency.record(done.latency);
                    events += done.events;
                }
            }
        });
    }
    let bar = progress.timer(label, warmup + duration);
    let stopped_early = |state: &AtomicU8| state.load(Ordering::Acquire) == STOPPED;
    sleep_watching(warmup, &bar, || stopped_early(&state)).await;
    let begin = probe.begin().await;
    // Only now: a probe that takes a while must not shorten the window.
    let _ = state.compare_exchange(WARMING, MEASURING, Ordering::AcqRel, Ordering::Acquire);
    let started = Instant::now();
    sleep_watching(duration, &bar, || stopped_early(&state)).await;
    state.store(STOPPED, Ordering::Release);
    let elapsed = started.elapsed();
    let server = probe.end(&begin).await;
    bar.finish_and_clear();
    let mut latency = Latency::new();
    let mut events = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined.context("a caller panicked")??;
        latency.merge(&l);
        events += e;
    }
    Ok(Timed {
        events,
        elapsed,
        latency,
        server,
    })
}

/// Sleeps `total`, ticking `bar` every 100 ms, returning early once
/// `stop()` holds.
async fn sleep_watching(total: Duration, bar: &indicatif::ProgressBar, stop: impl Fn() -> bool) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop() {
        let step = (until - Instant::now()).min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
        bar.set_position(bar.position() + u64::try_from(step.as_millis()).unwrap_or(0));
    }
}

/// Sends one event stamped with its scheduled send time (µs since the
/// epoch), for the open-loop publisher.
pub trait Sender: Clone + Send + Sync + 'static {
    /// Sends event number `index` stamped `stamp_micros`.
    fn send(
        &self,
        index: u64,
        stamp_micros: u64,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What the paced publisher did.
pub struct Paced {
    /// Events published.
    pub sent: u64,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
    /// Publish latency from each event's scheduled time to its answer.
    pub latency: Latency,
}

/// Publishes `rate` events per second for `duration`, open loop: event i
/// is due at start + i/rate and stamped with that time, whatever the
/// server's pace, so a server that falls behind shows it as latency
/// rather than as a slower schedule. At most `max_in_flight` requests are
/// outstanding.
pub async fn paced<S: Sender>(
    sender: S,
    rate: u64,
    duration: Duration,
    max_in_flight: usize,
    progress: &Progress,
    label: &str,
) -> anyhow::Result<Paced> {
    let total = (duration.as_secs_f64() * rate as f64).ceil().max(1.0) as u64;
    let bar = progress.counter(label, total);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let latency = Arc::new(Mutex::new(Latency::new()));
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let start = Instant::now();
    let start_micros = now_micros();
    let mut sent = 0;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            let permit = slots.clone().acquire_owned().await?;
            let stamp = start_micros + sent * 1_000_000 / rate;
            let (sender, latency) = (sender.clone(), latency.clone());
            let index = sent;
            tasks.spawn(async move {
                sender.send(index, stamp).await?;
                let taken = now_micros().saturating_sub(stamp);
                lock(&latency).record_micros(taken);
                drop(permit);
                Ok(())
            });
            sent += 1;
        }
        while let Some(joined) = tasks.try_join_next() {
            joined.context("a publish task panicked")??;
        }
        bar.set_position(sent);
        let next = start + Duration::from_secs_f64((sent as f64) / rate as f64);
        tokio::time::sleep_until(next.max(Instant::now() + Duration::from_micros(200)).into())
            .await;
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a publish task panicked")??;
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    let latency = lock(&latency).clone();
    Ok(Paced {
        sent,
        elapsed,
        latency,
    })
}

/// Events a subscriber received and their publish→receive delays, shared
/// between its task and the coordinator.
#[derive(Default)]
pub struct Tally {
    /// Events received.
    pub count: AtomicU64,
    /// Delays of the events received in the measured part.
    pub latency: Mutex<Latency>,
}

impl Tally {
    /// Counts one received event sent at `stamp_micros`; its delay is
    /// recorded when `measure` holds.
    pub fn receive(&self, stamp_micros: Option<u64>, measure: bool) {
        if let (true, Some(stamp)) = (measure, stamp_micros) {
            lock(&self.latency).record_micros(now_micros().saturating_sub(stamp));
        }
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Events received so far.
    pub fn received(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// Waits until every tally has `each` events, or `timeout` passes; returns
/// whether they all got there.
pub async fn wait_for(tallies: &[Arc<Tally>], each: u64, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if tallies.iter().all(|t| t.received() >= each) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The merged latency of `tallies`.
pub fn merged(tallies: &[Arc<Tally>]) -> Latency {
    let mut all = Latency::new();
    for t in tallies {
        all.merge(&lock(&t.latency));
    }
    all
}

/// Locks a mutex, ignoring poisoning (a panicked recorder leaves a usable
/// histogram).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends batches `0..batches` from `callers` concurrent tasks, each batch
/// through `send(batch_index)`: the untimed preload of W4 and W5.
pub async fn preload<F, Fut>(
    batches: u64,
    callers: usize,
    progress: &Progress,
    label: &str,
    send: F,
) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let bar = progress.counter(label, batches);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..callers.max(1) {
        let (next, send, bar) = (next.clone(), send.clone(), bar.clone());
        tasks.spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                send(b).await?;
                bar.inc(1);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a preload task panicked")??;
    }
    bar.finish_and_clear();
    Ok(())
}
