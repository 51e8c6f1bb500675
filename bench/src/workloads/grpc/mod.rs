//! The workloads against riverlog, through its gRPC API (the generated
//! client of `riverlog::proto`).

mod groups;
mod publish;
mod subscribe;

use std::time::Duration;

use anyhow::Context;
use riverlog::proto::cloudevent::cloud_event::Data;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{CreateStreamRequest, RecordedEvent};
use riverlog::proto::{CloudEvent, EventPayload};
use tonic::transport::{Channel, Endpoint};

use super::{Ctx, Run, WorkloadId};
use crate::target::riverlog::Riverlog;

/// Runs workload `id` against `target`, its publish workloads spread over
/// the first `replicas` servers.
pub async fn run(
    id: WorkloadId,
    ctx: &Ctx<'_>,
    target: &Riverlog,
    replicas: usize,
) -> anyhow::Result<Run> {
    let urls = &target.urls[..replicas.clamp(1, target.urls.len())];
    let mut run = run_on(id, ctx, target, urls).await?;
    if let (Run::Done(outcome), true) = (&mut run, target.urls.len() > 1) {
        outcome.notes.push(format!(
            "server CPU, RSS and writes summed over all {} running replicas; the load used {}",
            target.urls.len(),
            urls.len()
        ));
    }
    Ok(run)
}

async fn run_on(
    id: WorkloadId,
    ctx: &Ctx<'_>,
    target: &Riverlog,
    urls: &[String],
) -> anyhow::Result<Run> {
    match id {
        WorkloadId::W1 => publish::unary(ctx, target, urls, ctx.args.publish_callers, 1).await,
        WorkloadId::W1s => publish::streamed(ctx, target, urls).await,
        WorkloadId::W2 => {
            publish::unary(
                ctx,
                target,
                urls,
                ctx.args.batch_callers,
                ctx.args.batch_size,
            )
            .await
        }
        WorkloadId::W3 => subscribe::live(ctx, target).await,
        WorkloadId::W4 => subscribe::catch_up(ctx, target).await,
        WorkloadId::W5 => groups::fetch_ack(ctx, target).await,
        WorkloadId::W6 => subscribe::idle(ctx, target).await,
        WorkloadId::W7 => subscribe::stalled(ctx, target).await,
    }
}

/// One HTTP/2 connection to `url`.
async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("bad server URL {url}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// `count` connections, spread round-robin over `urls`.
async fn connect_all(urls: &[String], count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        channels.push(connect(&urls[i % urls.len()]).await?);
    }
    Ok(channels)
}

/// A benchmark event: `data` as binary data.
fn event(id: String, data: Vec<u8>) -> EventPayload {
    EventPayload::from(CloudEvent {
        id,
        source: "/riverlog-bench".into(),
        spec_version: "1.0".into(),
        r#type: "bench.event".into(),
        attributes: Default::default(),
        data: Some(Data::BinaryData(data)),
    })
}

/// The send-time stamp in a received event's data.
fn stamp_of(recorded: &RecordedEvent) -> Option<u64> {
    match recorded.event.as_ref()?.decode().ok()?.data? {
        Data::BinaryData(d) => crate::measure::read_stamp(&d),
        _ => None,
    }
}

/// Creates `stream` (empty), so subscribers can open before the first
/// publish.
async fn create_stream(url: &str, stream: &str) -> anyhow::Result<()> {
    EventLogClient::new(connect(url).await?)
        .create_stream(CreateStreamRequest {
            stream: stream.to_owned(),
            ..CreateStreamRequest::default()
        })
        .await
        .with_context(|| format!("CreateStream {stream}"))?;
    Ok(())
}
