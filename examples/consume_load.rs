//! A quick consumer-group load loop against a running server (the full
//! benchmark tool comes later).
//!
//! ```sh
//! cargo run --release --example consume_load -- http://127.0.0.1:50051 <events> <consumers> <max_in_flight> <ack_batch> [consume|fetch]
//! ```
//! Publishes `events` events (256 bytes of data each) to a fresh stream,
//! creates a group, then runs `consumers` consumers and reports how fast
//! events were delivered and acked end to end. `consume` (the default)
//! runs Consume streams with `max_in_flight` credit that ack in batches of
//! `ack_batch`; `fetch` is the benchmark's W5: each consumer, on a
//! connection of its own, loops Fetch of up to `max_in_flight` events
//! (block 100 ms when empty) and an Ack of what it got.
//!
//! With `LOAD_PIDS=pid,pid...` it also prints, per process, the CPU time
//! and the bytes written (`/proc/<pid>/stat` and `io`) during the timed
//! part (`LOAD_PIDS_CMD`, a shell command printing more such pids, is run
//! when that part starts: PostgreSQL's backends of the server); with `LOAD_METRICS=host:port` (the server's HTTP side) the commits
//! the writer made meanwhile.

use std::time::{Duration, Instant};

use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::consumer_groups_client::ConsumerGroupsClient;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{
    AckRequest, ConsumeRequest, CreateGroupRequest, FetchRequest, GetGroupRequest, PublishRequest,
    consume_response,
};
use riverlog::proto::{CloudEvent, EventPayload};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: String = arg(1, "http://127.0.0.1:50051".to_owned());
    let total: usize = arg(2, 100_000);
    let consumers: usize = arg(3, 8);
    let max_in_flight: u32 = arg(4, 500);
    let ack_batch: usize = arg(5, 100);
    let fetch_mode = arg(6, "consume".to_owned()) == "fetch";
    let stream = format!("consume-load:{}", std::process::id());

    let mut log = EventLogClient::connect(url.clone()).await?;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let events = chunk
            .iter()
            .map(|i| {
                EventPayload::from(CloudEvent {
                    id: format!("e{i}"),
                    source: "/load".into(),
                    spec_version: "1.0".into(),
                    r#type: "load.event".into(),
                    attributes: Default::default(),
                    data: Some(Data::TextData("x".repeat(256))),
                })
            })
            .collect();
        log.publish(PublishRequest {
            stream: stream.clone(),
            events,
            expected: None,
        })
        .await?;
    }
    let mut groups = ConsumerGroupsClient::connect(url.clone()).await?;
    groups
        .create_group(CreateGroupRequest {
            stream: stream.clone(),
            group: "load".into(),
            ..Default::default()
        })
        .await?;

    if fetch_mode {
        let mut clients = Vec::new();
        for _ in 0..consumers {
            clients.push(ConsumerGroupsClient::connect(url.clone()).await?);
        }
        let before = Usage::sample().await;
        let started = Instant::now();
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, mut client)| {
                let (stream, acked) = (stream.clone(), acked.clone());
                tokio::spawn(async move {
                    use std::sync::atomic::Ordering;
                    while acked.load(Ordering::Acquire) < total {
                        let deliveries = client
                            .fetch(FetchRequest {
                                stream: stream.clone(),
                                group: "load".into(),
                                consumer: format!("c{c}"),
                                count: max_in_flight,
                                block_ms: 100,
                                ..Default::default()
                            })
                            .await
                            .expect("fetch")
                            .into_inner()
                            .deliveries;
                        let sequences: Vec<u64> = deliveries
                            .iter()
                            .filter_map(|d| d.event.as_ref().map(|e| e.sequence))
                            .collect();
                        if sequences.is_empty() {
                            continue;
                        }
                        let done = client
                            .ack(AckRequest {
                                stream: stream.clone(),
                                group: "load".into(),
                                sequences,
                            })
                            .await
                            .expect("ack")
                            .into_inner()
                            .acked;
                        acked.fetch_add(done as usize, Ordering::AcqRel);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{total} events, {consumers} consumers, fetch {max_in_flight} + ack: \
             all acked in {elapsed:.2}s = {:.0} acked events/s",
            total as f64 / elapsed
        );
        Usage::again(&before).await.report(&before, total);
        return Ok(());
    }

    let before = Usage::sample().await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..consumers)
        .map(|c| {
            let mut groups = groups.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut deliveries = groups
                    .consume(ConsumeRequest {
                        stream: stream.clone(),
                        group: "load".into(),
                        consumer: format!("c{c}"),
                        max_in_flight,
                        heartbeat_interval: None,
                    })
                    .await
                    .expect("consume")
                    .into_inner();
                let mut batch = Vec::new();
                loop {
                    // Ack what is held when nothing more arrives promptly.
                    let next =
                        tokio::time::timeout(Duration::from_millis(20), deliveries.message()).await;
                    match next {
                        Ok(Ok(Some(msg))) => {
                            if let Some(consume_response::Message::Delivery(d)) = msg.message {
                                batch.push(d.event.expect("event").sequence);
                            }
                            if batch.len() < ack_batch {
                                continue;
                            }
                        }
                        Ok(_) => return,
                        Err(_) if batch.is_empty() => continue,
                        Err(_) => {}
                    }
                    groups
                        .ack(AckRequest {
                            stream: stream.clone(),
                            group: "load".into(),
                            sequences: std::mem::take(&mut batch),
                        })
                        .await
                        .expect("ack");
                }
            })
        })
        .collect();
    loop {
        let info = groups
            .get_group(GetGroupRequest {
                stream: stream.clone(),
                group: "load".into(),
            })
            .await?
            .into_inner()
            .info
            .expect("info");
        if info.ack_floor as usize >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        t.abort();
    }
    println!(
        "{total} events, {consumers} consumers, max_in_flight={max_in_flight}, ack batch {ack_batch}: \
         all acked in {elapsed:.2}s = {:.0} acked events/s",
        total as f64 / elapsed
    );
    Usage::again(&before).await.report(&before, total);
    Ok(())
}

/// What the processes named by `LOAD_PIDS` used so far, and the server's
/// commits (`LOAD_METRICS`).
struct Usage {
    /// (pid, CPU ticks, bytes written)
    processes: Vec<(u32, u64, u64)>,
    /// (commits, seconds spent committing)
    commits: Option<(f64, f64)>,
    at: Instant,
}

impl Usage {
    /// The processes of `LOAD_PIDS` and `LOAD_PIDS_CMD`, now.
    async fn sample() -> Self {
        let mut pids = std::env::var("LOAD_PIDS").unwrap_or_default();
        if let Ok(cmd) = std::env::var("LOAD_PIDS_CMD") {
            let out = std::process::Command::new("sh").arg("-c").arg(cmd).output();
            if let Ok(out) = out {
                pids.push(',');
                pids.push_str(&String::from_utf8_lossy(&out.stdout));
            }
        }
        let mut pids: Vec<u32> = pids
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        // This load itself comes last.
        pids.push(std::process::id());
        Self::of(&pids).await
    }

    /// The same processes as `before`, now.
    async fn again(before: &Self) -> Self {
        let pids: Vec<u32> = before.processes.iter().map(|p| p.0).collect();
        Self::of(&pids).await
    }

    async fn of(pids: &[u32]) -> Self {
        let processes = pids
            .iter()
            .map(|&pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Fields after the command name (which may hold spaces).
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let tick = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|f| f.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
                let cpu = tick(11) + tick(12);
                let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
                let written = io
                    .lines()
                    .find_map(|l| l.strip_prefix("write_bytes: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                (pid, cpu, written)
            })
            .collect();
        let commits = match std::env::var("LOAD_METRICS") {
            Ok(addr) => commits(&addr).await,
            Err(_) => None,
        };
        Self {
            processes,
            commits,
            at: Instant::now(),
        }
    }

    fn report(&self, before: &Self, events: usize) {
        let events = events as f64;
        for ((pid, cpu, written), (_, cpu0, written0)) in
            self.processes.iter().zip(&before.processes)
        {
            let cpu_us = (cpu - cpu0) as f64 * 10_000.0;
            let who = if *pid == std::process::id() {
                "this load".to_owned()
            } else {
                format!("pid {pid}")
            };
            println!(
                "{who}: {:.2} s CPU = {:.1} us/event, {:.0} bytes written/event",
                cpu_us / 1e6,
                cpu_us / events,
                (written - written0) as f64 / events
            );
        }
        if let (Some(now), Some(then)) = (self.commits, before.commits) {
            let (commits, busy) = (now.0 - then.0, now.1 - then.1);
            let elapsed = (self.at - before.at).as_secs_f64();
            println!(
                "{commits:.0} commits, {:.1} events/commit, {:.2} ms/commit, writer busy {:.0} %",
                events / commits,
                busy * 1e3 / commits,
                busy * 100.0 / elapsed
            );
        }
    }
}

/// riverlog_commit_duration_seconds_count and _sum from the server's
/// /metrics.
async fn commits(addr: &str) -> Option<(f64, f64)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    let ask = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(ask.as_bytes()).await.ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).await.ok()?;
    let total = |name: &str| {
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(|a, b| a + b)
    };
    Some((
        total("riverlog_commit_duration_seconds_count")?,
        total("riverlog_commit_duration_seconds_sum")?,
    ))
}
