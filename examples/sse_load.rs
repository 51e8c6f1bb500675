//! Many concurrent Server-Sent Events clients on one stream: how long an
//! event takes from publish to every client, and what the server's memory
//! costs per connection.
//!
//! ```sh
//! cargo run --release --example sse_load -- <http base> <grpc url> <clients> <events> [server pid]
//! cargo run --release --example sse_load -- http://127.0.0.1:8080 http://127.0.0.1:50051 1000 100 $(pidof riverlog)
//! ```
//! Opens `clients` SSE connections (each its own TCP connection), then
//! publishes `events` events 20 ms apart over gRPC, each carrying its
//! publish time; every client records the delay until it saw each event.
//! Reports delay percentiles over all deliveries, whether every client got
//! every event, and the server's RSS (from /proc, given its pid) before and
//! after the clients connected. The load generator shares the machine with
//! the server, so its own CPU use is part of the measured delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::PublishRequest;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::{CloudEvent, EventPayload};
use tokio::sync::Mutex;

fn arg(n: usize) -> Option<String> {
    std::env::args().nth(n)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

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

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let http = arg(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let grpc = arg(2).unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let clients: usize = arg(3).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let events: usize = arg(4).and_then(|a| a.parse().ok()).unwrap_or(100);
    let pid: Option<u32> = arg(5).and_then(|a| a.parse().ok());
    let stream = format!("sse-load-{}", now_micros());

    let rss_before = rss_kib(pid);
    let delays = Arc::new(Mutex::new(Vec::with_capacity(clients * events)));
    let ready = Arc::new(AtomicUsize::new(0));
    let complete = Arc::new(AtomicUsize::new(0));
    let url = format!("{http}/api/v1/subscribe?stream={stream}&from=latest&heartbeat=30s");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (url, delays, ready, complete) =
            (url.clone(), delays.clone(), ready.clone(), complete.clone());
        tasks.push(tokio::spawn(async move {
            // One client, one connection, like separate browsers.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let response = client.get(&url).send().await.expect("connects");
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            let mut mine = Vec::with_capacity(events);
            let mut announced = false;
            while mine.len() < events {
                let Some(Ok(chunk)) = body.next().await else {
                    break;
                };
                let seen_at = now_micros();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let message: String = buffer.drain(..end + 2).collect();
                    if !announced && message.contains("caught-up") {
                        announced = true;
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(line) = message.lines().find(|l| l.starts_with("data: ")) {
                        let json: serde_json::Value =
                            serde_json::from_str(&line[6..]).unwrap_or_default();
                        if let Some(t) = json["data"]["t"].as_u64() {
                            mine.push(seen_at.saturating_sub(t));
                        }
                    }
                }
            }
            if mine.len() == events {
                complete.fetch_add(1, Ordering::Relaxed);
            }
            delays.lock().await.extend(mine);
        }));
    }
    while ready.load(Ordering::Relaxed) < clients {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "only {} of {clients} clients connected",
                ready.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_time = started.elapsed();
    let rss_connected = rss_kib(pid);

    let mut publisher = EventLogClient::connect(grpc).await?;
    let mut rss_peak = rss_connected;
    for i in 0..events {
        let event = CloudEvent {
            id: format!("e{i}"),
            source: "/sse-load".into(),
            spec_version: "1.0".into(),
            r#type: "load.tick".into(),
            data: Some(Data::TextData(format!("{{\"t\":{}}}", now_micros()))),
            ..CloudEvent::default()
        };
        publisher
            .publish(PublishRequest {
                stream: stream.clone(),
                events: vec![EventPayload::from_event(&event)],
                expected: None,
            })
            .await?;
        rss_peak = rss_peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
    }
    let mut delays = delays.lock().await.clone();
    delays.sort_unstable();
    println!(
        "clients={clients} events={events}: {} of {clients} clients got every event ({} deliveries); connected in {:.1?}",
        complete.load(Ordering::Relaxed),
        delays.len(),
        connect_time
    );
    println!(
        "publish-to-delivery ms: p50={:.2} p95={:.2} p99={:.2} max={:.2}",
        percentile(&delays, 0.50),
        percentile(&delays, 0.95),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0)
    );
    if let (Some(before), Some(connected), Some(peak)) = (rss_before, rss_connected, rss_peak) {
        println!(
            "server RSS MiB: before={:.1} connected={:.1} peak={:.1} (+{:.1} MiB for {clients} connections)",
            before as f64 / 1024.0,
            connected as f64 / 1024.0,
            peak as f64 / 1024.0,
            (peak.saturating_sub(before)) as f64 / 1024.0
        );
    }
    Ok(())
}
