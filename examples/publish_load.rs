//! A quick publish load loop against a running server (the full benchmark
//! tool comes later).
//!
//! ```sh
//! cargo run --release --example publish_load -- http://127.0.0.1:50051 <batch> <publishers> <seconds>
//! ```
//! Prints publishes/s and events/s for `publishers` concurrent callers, each
//! publishing `batch` events (~200 bytes each) per call to its own stream.

use std::time::{Duration, Instant};

use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::{PublishRequest, event_log_client::EventLogClient};
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
    let batch: usize = arg(2, 1);
    let publishers: usize = arg(3, 64);
    let seconds: u64 = arg(4, 10);
    let client = EventLogClient::connect(url.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run = format!("{}", std::process::id());
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let mut client = client.clone();
            let run = run.clone();
            tokio::spawn(async move {
                let mut calls = 0u64;
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let events = (0..batch)
                        .map(|i| {
                            EventPayload::from(CloudEvent {
                                id: format!("{run}-{p}-{calls}-{i}"),
                                source: "/load".into(),
                                spec_version: "1.0".into(),
                                r#type: "load.event".into(),
                                attributes: Default::default(),
                                data: Some(Data::TextData("x".repeat(128))),
                            })
                        })
                        .collect();
                    let started = Instant::now();
                    client
                        .publish(PublishRequest {
                            stream: format!("load:{run}:{p}"),
                            events,
                            expected: None,
                        })
                        .await
                        .expect("publish");
                    latencies.push(started.elapsed());
                    calls += 1;
                }
                (calls, latencies)
            })
        })
        .collect();
    let started = Instant::now();
    let mut calls = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (c, l) = t.await?;
        calls += c;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "batch={batch} publishers={publishers}: {:.0} publishes/s, {:.0} events/s, latency p50={:?} p99={:?}",
        calls as f64 / elapsed,
        (calls * batch as u64) as f64 / elapsed,
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}
