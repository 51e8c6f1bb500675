//! A quick consumer-group load loop against a running server (the full
//! benchmark tool comes later).
//!
//! ```sh
//! cargo run --release --example consume_load -- http://127.0.0.1:50051 <events> <consumers> <max_in_flight> <ack_batch>
//! ```
//! Publishes `events` events to a fresh stream, creates a group, then runs
//! `consumers` Consume streams that ack in batches, and reports how fast
//! events were delivered and acked end to end.

use std::time::{Duration, Instant};

use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::consumer_groups_client::ConsumerGroupsClient;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{
    AckRequest, ConsumeRequest, CreateGroupRequest, GetGroupRequest, PublishRequest,
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
                    data: Some(Data::TextData("x".repeat(128))),
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
    Ok(())
}
