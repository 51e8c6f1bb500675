//! Stalled subscribers beside a healthy one: does a client that stops
//! reading slow anyone else down? (Guarantee 8; workload W7 of the
//! benchmark tool.)
//!
//! ```sh
//! cargo run --release --example stall_load -- [grpc url] [options]
//! cargo run --release --example stall_load -- http://127.0.0.1:50051 \
//!     --pid $(pidof riverlog) --metrics http://127.0.0.1:8080/metrics --compare 200 --repeat 3
//! ```
//! It starts nothing itself: point it at a running server. Each round uses a
//! fresh stream and:
//! 1. opens `--stalled N` Subscribe calls, each on its own HTTP/2 connection
//!    whose receive window is `--stalled-window` bytes (65535, HTTP/2's
//!    default, unless set), and never polls them: once the window is full
//!    the server cannot send, like a client that stopped reading;
//! 2. opens one healthy subscriber (own connection, default windows) that
//!    reads everything, checks that sequences arrive complete and in order,
//!    and records each event's publish→receive delay (every event carries
//!    the time its publish call started in its first 8 data bytes);
//! 3. publishes `--events E` events of `--event-bytes` data bytes in
//!    batches of `--batch` from `--publishers` concurrent callers sharing
//!    one connection, as fast as they are answered.
//!
//! With `--history H`, H events are published to the stream first
//! (untimed), so every subscriber starts with a catch-up from storage: the
//! stalled ones stop somewhere in it. Throughout the round a probe times a
//! one-event `Read` every `--probe-ms` on its own connection: what other
//! storage readers wait meanwhile.
//!
//! Per round it prints the healthy subscriber's catch-up time and its
//! delay p50/p95/p99/max (and the largest delay per tenth of the events, to
//! see when delays happened), publish throughput (events from the first
//! publish to the last answer) and call latency, the probe's latency, the
//! server's CPU time per event (utime+stime from /proc/PID/stat, from the
//! first publish until the healthy subscriber has every event; needs
//! `--pid`), its RSS before the stalled calls opened, after, at the peak and
//! at the end (`--pid`), and with `--metrics` how many events the server
//! handed to subscriptions (`riverlog_events_delivered_total{via=
//! "subscription"}`, read after the stalled calls closed): the healthy
//! subscriber's share plus what the stalled ones took before their windows
//! closed, which shows that the server's sender really blocked on them.
//!
//! `--compare N` runs N=0 and N stalled back to back in one invocation
//! (`--repeat R` times, alternating) and ends with a table, so ratios come
//! from one run on one machine state. The load generator shares the
//! machine with the server: its own CPU use is part of the measured delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures::StreamExt;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{
    PublishRequest, ReadDirection, ReadRequest, SubscribeRequest, subscribe_response::Message,
};
use riverlog::proto::{CloudEvent, EventPayload};
use tonic::transport::{Channel, Endpoint};

/// Workload W7: stalled subscribers beside a healthy one.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server's gRPC URL.
    #[arg(default_value = "http://127.0.0.1:50051")]
    url: String,
    /// The server's process id, for CPU time and RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// The server's Prometheus endpoint, to count server-side deliveries.
    #[arg(long)]
    metrics: Option<String>,
    /// Stalled subscribers of a single round.
    #[arg(long, default_value_t = 200)]
    stalled: usize,
    /// Run 0 and this many stalled subscribers back to back.
    #[arg(long)]
    compare: Option<usize>,
    /// Rounds of each setting (alternating under --compare).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Events published per round.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events published to the round's stream before anyone subscribes
    /// (untimed): every subscriber then starts with a catch-up from storage.
    #[arg(long, default_value_t = 0)]
    history: usize,
    /// Data bytes per event (the first 8 carry the publish time).
    #[arg(long, default_value_t = 1024)]
    event_bytes: usize,
    /// Events per publish call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent publish calls (on one shared connection).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// HTTP/2 receive window (stream and connection) of each stalled call.
    #[arg(long, default_value_t = 65_535)]
    stalled_window: u32,
    /// Interval of the storage read probe: a `Read` of the stream's newest
    /// event on its own connection, timed, for the whole round (0: off).
    #[arg(long, default_value_t = 100)]
    probe_ms: u64,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Resident set size in KiB.
fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of the whole process (all threads).
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The command name may hold spaces; the fields after it may not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture riverlog runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Sums a Prometheus counter's samples whose labels contain `label`.
/// `None` if the endpoint does not answer; 0 for a counter not reported yet.
async fn scrape(url: &str, name: &str, label: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with(name) && line.contains(label) {
            total += line.rsplit(' ').next()?.parse::<f64>().ok()?;
        }
    }
    Some(total)
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What one round measured.
#[derive(Debug, Clone, Default)]
struct Round {
    stalled: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    received: usize,
    in_order: bool,
    events_per_s: f64,
    publish_p50: f64,
    publish_p99: f64,
    cpu_us_per_event: Option<f64>,
    rss_before: Option<u64>,
    rss_opened: Option<u64>,
    rss_peak: Option<u64>,
    rss_end: Option<u64>,
    delivered: Option<f64>,
    catch_up: Duration,
    /// Largest delay in each tenth of the events, in publish order.
    tenths: Vec<f64>,
    /// Storage read probe latencies in µs, sorted.
    probes: Vec<u64>,
}

/// A Subscribe call that is never polled, with the connection it owns.
struct Stalled {
    _channel: Channel,
    _response: tonic::Response<tonic::Streaming<riverlog::proto::v1::SubscribeResponse>>,
}

async fn open_stalled(args: &Args, stream: &str) -> Result<Stalled, Box<dyn std::error::Error>> {
    let channel = Endpoint::from_shared(args.url.clone())?
        .initial_stream_window_size(args.stalled_window)
        .initial_connection_window_size(args.stalled_window)
        .connect()
        .await?;
    let response = EventLogClient::new(channel.clone())
        .subscribe(SubscribeRequest {
            streams: vec![stream.to_owned()],
            ..SubscribeRequest::default()
        })
        .await?;
    Ok(Stalled {
        _channel: channel,
        _response: response,
    })
}

/// The healthy subscriber: reads `history + events` events, returning the
/// delay in µs of each of the last `events` and whether sequences came
/// complete and in order.
async fn healthy(
    url: String,
    stream: String,
    history: usize,
    events: usize,
    caught_up: Arc<AtomicBool>,
) -> Result<(Vec<u64>, bool), tonic::Status> {
    let mut client = EventLogClient::connect(url)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut items = client
        .subscribe(SubscribeRequest {
            streams: vec![stream],
            ..SubscribeRequest::default()
        })
        .await?
        .into_inner();
    let mut delays = Vec::with_capacity(events);
    let mut in_order = true;
    let mut expected = 1;
    while delays.len() < events {
        let Some(item) = items.message().await? else {
            break;
        };
        let seen_at = now_micros();
        match item.message {
            Some(Message::CaughtUp(_)) => caught_up.store(true, Ordering::Release),
            Some(Message::Event(e)) => {
                in_order &= e.sequence == expected;
                expected = e.sequence + 1;
                if e.sequence <= history as u64 {
                    continue;
                }
                let sent_at = e
                    .event
                    .and_then(|p| p.decode().ok())
                    .and_then(|ce| match ce.data {
                        Some(Data::BinaryData(d)) if d.len() >= 8 => {
                            Some(u64::from_le_bytes(d[..8].try_into().ok()?))
                        }
                        _ => None,
                    })
                    .unwrap_or(seen_at);
                delays.push(seen_at.saturating_sub(sent_at));
            }
            _ => {}
        }
    }
    Ok((delays, in_order))
}

/// Publishes events `first..first + count` to `stream` from
/// `args.publishers` concurrent callers; returns each call's latency in µs.
async fn publish(
    args: &Args,
    stream: &str,
    first: usize,
    count: usize,
) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let publisher = EventLogClient::connect(args.url.clone()).await?;
    let batches = count.div_ceil(args.batch);
    let next_batch = Arc::new(AtomicUsize::new(0));
    let publishers: Vec<_> = (0..args.publishers)
        .map(|_| {
            let (mut client, next_batch, stream) =
                (publisher.clone(), next_batch.clone(), stream.to_owned());
            let (batch, bytes) = (args.batch, args.event_bytes.max(8));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let b = next_batch.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return Ok::<_, tonic::Status>(latencies);
                    }
                    let sent_at = now_micros();
                    let mut data = vec![0x2a; bytes];
                    data[..8].copy_from_slice(&sent_at.to_le_bytes());
                    let from = first + b * batch;
                    let payloads = (from..(from + batch).min(first + count))
                        .map(|i| {
                            EventPayload::from(CloudEvent {
                                id: format!("e{i}"),
                                source: "/stall-load".into(),
                                spec_version: "1.0".into(),
                                r#type: "load.event".into(),
                                attributes: Default::default(),
                                data: Some(Data::BinaryData(data.clone())),
                            })
                        })
                        .collect();
                    let call = Instant::now();
                    client
                        .publish(PublishRequest {
                            stream: stream.clone(),
                            events: payloads,
                            expected: None,
                        })
                        .await?;
                    latencies.push(call.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for p in publishers {
        latencies.extend(p.await??);
    }
    Ok(latencies)
}

/// Times a `Read` of the newest event every `args.probe_ms` until `running`
/// turns false: how long other storage readers wait meanwhile.
async fn probe(
    args: Args,
    stream: String,
    running: Arc<AtomicBool>,
) -> Result<Vec<u64>, tonic::Status> {
    let mut latencies = Vec::new();
    if args.probe_ms == 0 {
        return Ok(latencies);
    }
    let mut client = EventLogClient::connect(args.url.clone())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    while running.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client
            .read(ReadRequest {
                stream: stream.clone(),
                direction: ReadDirection::Backward as i32,
                limit: 1,
                ..ReadRequest::default()
            })
            .await
        {
            // Before the first publish the stream does not exist yet.
            Ok(_) => latencies.push(started.elapsed().as_micros() as u64),
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(args.probe_ms)).await;
    }
    Ok(latencies)
}

async fn round(
    args: &Args,
    stalled: usize,
    index: usize,
) -> Result<Round, Box<dyn std::error::Error>> {
    let stream = format!("stall-load:{}:{index}", std::process::id());
    if args.history > 0 {
        publish(args, &stream, 0, args.history).await?;
    }
    let delivered_before = match &args.metrics {
        Some(url) => {
            scrape(
                url,
                "riverlog_events_delivered_total",
                "via=\"subscription\"",
            )
            .await
        }
        None => None,
    };
    let rss_before = rss_kib(args.pid);
    let probing = Arc::new(AtomicBool::new(true));
    let prober = tokio::spawn(probe(args.clone(), stream.clone(), probing.clone()));

    let mut calls = Vec::with_capacity(stalled);
    let mut opening = futures::stream::iter(0..stalled)
        .map(|_| open_stalled(args, &stream))
        .buffer_unordered(32);
    while let Some(call) = opening.next().await {
        calls.push(call?);
    }
    drop(opening);

    let caught_up = Arc::new(AtomicBool::new(false));
    let catching_up = Instant::now();
    let reader = tokio::spawn(healthy(
        args.url.clone(),
        stream.clone(),
        args.history,
        args.events,
        caught_up.clone(),
    ));
    while !caught_up.load(Ordering::Acquire) {
        if reader.is_finished() {
            reader.await??;
            return Err("the healthy subscriber ended before catching up".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let catch_up = catching_up.elapsed();
    let rss_opened = rss_kib(args.pid);

    let peak = Arc::new(AtomicU64::new(rss_opened.unwrap_or(0)));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), args.pid);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu_start = cpu_time(args.pid);
    let started = Instant::now();
    let mut latencies = publish(args, &stream, args.history, args.events).await?;
    let published_in = started.elapsed();
    let (mut delays, in_order) =
        match tokio::time::timeout(Duration::from_secs(args.timeout), reader).await {
            Ok(done) => done??,
            Err(_) => return Err("the healthy subscriber did not get every event in time".into()),
        };
    let cpu_end = cpu_time(args.pid);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_end = rss_kib(args.pid);

    probing.store(false, Ordering::Relaxed);
    let mut probes = prober.await??;
    probes.sort_unstable();
    drop(calls);
    let delivered = match (&args.metrics, delivered_before) {
        (Some(url), Some(before)) => {
            // Closed subscriptions report what they had sent when the server
            // drops them, which follows the connections closing.
            let mut last = None;
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = scrape(
                    url,
                    "riverlog_events_delivered_total",
                    "via=\"subscription\"",
                )
                .await;
                if now.is_some() && now == last {
                    break;
                }
                last = now;
            }
            last.map(|after| after - before)
        }
        _ => None,
    };

    let tenths = delays
        .chunks(delays.len().div_ceil(10).max(1))
        .map(|c| c.iter().copied().max().unwrap_or(0) as f64 / 1000.0)
        .collect();
    delays.sort_unstable();
    latencies.sort_unstable();
    Ok(Round {
        stalled,
        p50: percentile_ms(&delays, 0.50),
        p95: percentile_ms(&delays, 0.95),
        p99: percentile_ms(&delays, 0.99),
        max: percentile_ms(&delays, 1.0),
        received: delays.len(),
        in_order,
        events_per_s: args.events as f64 / published_in.as_secs_f64(),
        publish_p50: percentile_ms(&latencies, 0.50),
        publish_p99: percentile_ms(&latencies, 0.99),
        cpu_us_per_event: cpu_start
            .zip(cpu_end)
            .map(|(a, b)| (b - a).as_secs_f64() * 1e6 / args.events as f64),
        rss_before,
        rss_opened,
        rss_peak: Some(peak.load(Ordering::Relaxed)).filter(|_| args.pid.is_some()),
        rss_end,
        delivered,
        catch_up,
        tenths,
        probes,
    })
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn report(args: &Args, r: &Round) {
    println!(
        "stalled={}: healthy got {} of {} events{}",
        r.stalled,
        r.received,
        args.events,
        if r.in_order {
            ", complete and in order"
        } else {
            ", OUT OF ORDER OR WITH GAPS"
        }
    );
    println!(
        "  healthy caught up with {} events of history in {:.1?}",
        args.history, r.catch_up
    );
    println!(
        "  healthy publish→receive ms: p50={:.1} p95={:.1} p99={:.1} max={:.1}",
        r.p50, r.p95, r.p99, r.max
    );
    let tenths: Vec<String> = r.tenths.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "  healthy max ms per tenth of the events: {}",
        tenths.join(" ")
    );
    println!(
        "  publish: {:.0} events/s; call latency ms p50={:.1} p99={:.1}",
        r.events_per_s, r.publish_p50, r.publish_p99
    );
    if !r.probes.is_empty() {
        println!(
            "  storage read probe ms ({} reads): p50={:.1} p99={:.1} max={:.1}",
            r.probes.len(),
            percentile_ms(&r.probes, 0.50),
            percentile_ms(&r.probes, 0.99),
            percentile_ms(&r.probes, 1.0)
        );
    }
    if let Some(cpu) = r.cpu_us_per_event {
        println!("  server CPU: {cpu:.1} µs/event");
    }
    if args.pid.is_some() {
        let growth = r
            .rss_end
            .zip(r.rss_before)
            .map(|(e, b)| e as f64 - b as f64);
        println!(
            "  server RSS MiB: before={} stalled-open={} peak={} end={}{}",
            mib(r.rss_before),
            mib(r.rss_opened),
            mib(r.rss_peak),
            mib(r.rss_end),
            match growth {
                Some(g) if r.stalled > 0 => format!(
                    " (end-before {:+.1} MiB, {:+.3} MiB per stalled call)",
                    g / 1024.0,
                    g / 1024.0 / r.stalled as f64
                ),
                Some(g) => format!(" (end-before {:+.1} MiB)", g / 1024.0),
                None => String::new(),
            }
        );
    }
    if let Some(d) = r.delivered {
        let healthy = r.received + args.history;
        let extra = d - healthy as f64;
        println!(
            "  server delivered to subscriptions: {d:.0} = healthy {healthy} + {extra:.0} to stalled calls{}",
            if r.stalled > 0 {
                format!(" ({:.0} each)", extra / r.stalled as f64)
            } else {
                String::new()
            }
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let settings: Vec<usize> = match args.compare {
        Some(n) => (0..args.repeat).flat_map(|_| [0, n]).collect(),
        None => vec![args.stalled; args.repeat],
    };
    println!(
        "workload W7 stall_load: events={} event_bytes={} batch={} publishers={} (one connection) \
         stalled={:?} stalled_window={} history={} healthy=1 start=earliest on a fresh stream per round, \
         probe every {} ms, url={}",
        args.events,
        args.event_bytes,
        args.batch,
        args.publishers,
        settings,
        args.stalled_window,
        args.history,
        args.probe_ms,
        args.url
    );
    let mut rounds = Vec::new();
    for (index, &stalled) in settings.iter().enumerate() {
        let r = round(&args, stalled, index).await?;
        report(&args, &r);
        rounds.push(r);
        // Let closed connections and their subscriptions go before the next.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if rounds.len() > 1 {
        println!(
            "\n| stalled | p50 ms | p95 ms | p99 ms | max ms | events/s | CPU µs/event | RSS end-before MiB | catch-up ms | probe p99 ms |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for r in &rounds {
            println!(
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {:.0} | {:.1} |",
                r.stalled,
                r.p50,
                r.p95,
                r.p99,
                r.max,
                r.events_per_s,
                r.cpu_us_per_event
                    .map_or_else(|| "-".into(), |c| format!("{c:.1}")),
                r.rss_end.zip(r.rss_before).map_or_else(
                    || "-".into(),
                    |(e, b)| format!("{:+.1}", (e as f64 - b as f64) / 1024.0)
                ),
                r.catch_up.as_secs_f64() * 1000.0,
                percentile_ms(&r.probes, 0.99),
            );
        }
        if args.compare.is_some() {
            for pair in rounds.chunks(2) {
                if let [base, loaded] = pair {
                    println!(
                        "ratio stalled={}/0: p50 x{:.2} p99 x{:.2} max x{:.2} events/s x{:.2}{}",
                        loaded.stalled,
                        loaded.p50 / base.p50,
                        loaded.p99 / base.p99,
                        loaded.max / base.max,
                        loaded.events_per_s / base.events_per_s,
                        base.cpu_us_per_event
                            .zip(loaded.cpu_us_per_event)
                            .map_or_else(String::new, |(b, l)| format!(" CPU/event x{:.2}", l / b)),
                    );
                }
            }
        }
    }
    Ok(())
}
