//! W5: a consumer group working through a preloaded stream with Fetch +
//! Ack.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use riverlog::proto::v1::consumer_groups_client::ConsumerGroupsClient;
use riverlog::proto::v1::group_start::Start;
use riverlog::proto::v1::{AckRequest, CreateGroupRequest, FetchRequest, GroupStart};
use tokio::task::JoinSet;

use super::connect;
use super::subscribe::preload_stream;
use crate::measure::Latency;
use crate::target::riverlog::Riverlog;
use crate::workloads::{Ctx, Outcome, Run};

/// The group's name.
const GROUP: &str = "bench";
/// How long an empty Fetch waits for work, ms.
const BLOCK_MS: u32 = 100;

/// W5: `--group-events` events preloaded (untimed), a group from the
/// earliest, `--consumers` consumers (one connection each) looping Fetch
/// of `--fetch-count` then Ack of what came, until every event is acked.
pub async fn fetch_ack(ctx: &Ctx<'_>, target: &Riverlog) -> anyhow::Result<Run> {
    let args = ctx.args;
    let url = &target.urls[0];
    let stream = ctx.stream("group");
    let total = args.group_events;
    preload_stream(ctx, url, &stream, total).await?;
    // The preload's writes are not the group's.
    target.probe.settle(Duration::from_secs(15)).await;
    ConsumerGroupsClient::new(connect(url).await?)
        .create_group(CreateGroupRequest {
            stream: stream.clone(),
            group: GROUP.into(),
            start: Some(GroupStart {
                start: Some(Start::Earliest(())),
            }),
            ack_timeout: Some(prost_types_duration(Duration::from_secs(300))),
            ..CreateGroupRequest::default()
        })
        .await
        .context("CreateGroup")?;

    let acked = Arc::new(AtomicU64::new(0));
    let bar = ctx.progress.counter("fetch + ack", total);
    let mut consumers = Vec::new();
    for c in 0..args.consumers {
        consumers.push((ConsumerGroupsClient::new(connect(url).await?), c));
    }
    let begin = target.probe.begin().await;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (mut client, c) in consumers {
        let (acked, stream, bar) = (acked.clone(), stream.clone(), bar.clone());
        let count = args.fetch_count;
        tasks.spawn(async move {
            let mut latency = Latency::new();
            while acked.load(Ordering::Acquire) < total {
                let cycle = Instant::now();
                let deliveries = client
                    .fetch(FetchRequest {
                        stream: stream.clone(),
                        group: GROUP.into(),
                        consumer: format!("c{c}"),
                        count,
                        block_ms: BLOCK_MS,
                        ..FetchRequest::default()
                    })
                    .await
                    .context("Fetch")?
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
                        group: GROUP.into(),
                        sequences,
                    })
                    .await
                    .context("Ack")?
                    .into_inner()
                    .acked;
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
    let server = target.probe.end(&begin).await;
    bar.finish_and_clear();
    joined.with_context(|| format!("the group did not finish within {:?}", args.timeout()))??;
    Ok(Run::done(Outcome {
        events: acked.load(Ordering::Acquire),
        elapsed,
        latency: latency.figures("fetch + ack cycle"),
        server,
        extra: Vec::new(),
        notes: vec![format!(
            "events acked; preloaded untimed; Fetch block_ms {BLOCK_MS} when empty"
        )],
    }))
}

/// A protobuf Duration.
fn prost_types_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    }
}
