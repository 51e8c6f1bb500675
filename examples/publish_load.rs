//! A quick publish load loop against a running server (the full benchmark
//! tool comes later).
//!
//! ```sh
//! cargo run --release --example publish_load -- http://127.0.0.1:50051 <batch> <publishers> <seconds> [unary|stream] [outstanding]
//! ```
//! Prints publishes/s and events/s for `publishers` concurrent callers, each
//! publishing `batch` events (~200 bytes each) per request to its own
//! stream. `unary` (the default) makes one Publish call per request and
//! waits for it; `stream` opens one PublishStream call per publisher and
//! keeps up to `outstanding` (default 32) requests unanswered on it.
//! Latency is from sending a request to its answer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::{PublishRequest, event_log_client::EventLogClient};
use riverlog::proto::{CloudEvent, EventPayload};
use tonic::transport::Channel;

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// One publisher's request number `call`.
fn request(run: &str, p: usize, call: u64, batch: usize) -> PublishRequest {
    let events = (0..batch)
        .map(|i| {
            EventPayload::from(CloudEvent {
                id: format!("{run}-{p}-{call}-{i}"),
                source: "/load".into(),
                spec_version: "1.0".into(),
                r#type: "load.event".into(),
                attributes: Default::default(),
                data: Some(Data::TextData("x".repeat(128))),
            })
        })
        .collect();
    PublishRequest {
        stream: format!("load:{run}:{p}"),
        events,
        expected: None,
    }
}

type Outcome = Result<(u64, Vec<Duration>), Box<dyn std::error::Error + Send + Sync>>;

/// Unary: one call per request, each awaited.
async fn unary(
    mut client: EventLogClient<Channel>,
    run: String,
    p: usize,
    batch: usize,
    deadline: Instant,
) -> Outcome {
    let mut calls = 0u64;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        client.publish(request(&run, p, calls, batch)).await?;
        latencies.push(started.elapsed());
        calls += 1;
    }
    Ok((calls, latencies))
}

/// PublishStream: one call, up to `outstanding` requests unanswered.
async fn stream(
    mut client: EventLogClient<Channel>,
    run: String,
    p: usize,
    batch: usize,
    deadline: Instant,
    outstanding: usize,
) -> Outcome {
    let (requests, outgoing) = tokio::sync::mpsc::channel(outstanding);
    let mut answers = client
        .publish_stream(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let mut sent_at = VecDeque::with_capacity(outstanding);
    let mut sent = 0u64;
    let mut latencies = Vec::new();
    let mut requests = Some(requests);
    loop {
        let sending = sent_at.len() < outstanding && Instant::now() < deadline;
        if !sending && sent_at.is_empty() {
            break;
        }
        tokio::select! {
            permit = async { requests.as_ref().expect("open").reserve().await }, if sending => {
                permit?.send(request(&run, p, sent, batch));
                sent_at.push_back(Instant::now());
                sent += 1;
            }
            answer = answers.message() => {
                let answer = answer?.ok_or("the call ended early")?;
                if let Some(error) = answer.error {
                    return Err(format!("refused: {error:?}").into());
                }
                if let Some(at) = sent_at.pop_front() {
                    latencies.push(at.elapsed());
                }
            }
        }
    }
    // Half-close: the call ends OK.
    requests.take();
    while answers.message().await?.is_some() {}
    Ok((latencies.len() as u64, latencies))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url: String = arg(1, "http://127.0.0.1:50051".to_owned());
    let batch: usize = arg(2, 1);
    let publishers: usize = arg(3, 64);
    let seconds: u64 = arg(4, 10);
    let mode: String = arg(5, "unary".to_owned());
    let outstanding: usize = arg(6, 32);
    let client = EventLogClient::connect(url.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run = format!("{}", std::process::id());
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let client = client.clone();
            let run = run.clone();
            match mode.as_str() {
                "stream" => tokio::spawn(stream(client, run, p, batch, deadline, outstanding)),
                _ => tokio::spawn(unary(client, run, p, batch, deadline)),
            }
        })
        .collect();
    let started = Instant::now();
    let mut calls = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (c, l) = t.await??;
        calls += c;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "mode={mode} batch={batch} publishers={publishers}: {:.0} publishes/s, {:.0} events/s, latency p50={:?} p99={:?}",
        calls as f64 / elapsed,
        (calls * batch as u64) as f64 / elapsed,
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}
