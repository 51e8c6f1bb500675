//! W1, W1s and W2: closed-loop publishers (unary Publish, or the
//! bidirectional PublishStream).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::proto::v1::{PublishRequest, PublishResponse};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::{connect_all, event};
use crate::measure::stamped_data;
use crate::target::riverlog::Riverlog;
use crate::workloads::driver::{Caller, Done, closed_loop};
use crate::workloads::{Ctx, Outcome, Run};

/// How long opening a PublishStream call and its first round trip may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A caller of unary Publish, `batch` events per request.
struct Unary {
    client: EventLogClient<Channel>,
    stream: String,
    tag: String,
    batch: usize,
    bytes: usize,
    sent: u64,
}

impl Unary {
    fn request(&mut self) -> PublishRequest {
        let events = (0..self.batch)
            .map(|i| {
                event(
                    format!("{}-{}-{i}", self.tag, self.sent),
                    stamped_data(self.bytes, 0),
                )
            })
            .collect();
        self.sent += 1;
        PublishRequest {
            stream: self.stream.clone(),
            events,
            expected: None,
        }
    }
}

impl Caller for Unary {
    async fn call(&mut self) -> anyhow::Result<Done> {
        let request = self.request();
        let started = Instant::now();
        self.client.publish(request).await.context("Publish")?;
        Ok(Done {
            events: self.batch as u64,
            latency: started.elapsed(),
        })
    }
}

/// W1 (`batch` 1) and W2: `callers` unary publishers on one stream over
/// `--connections` connections spread over `urls`.
pub async fn unary(
    ctx: &Ctx<'_>,
    target: &Riverlog,
    urls: &[String],
    callers: usize,
    batch: usize,
) -> anyhow::Result<Run> {
    let args = ctx.args;
    let stream = ctx.stream(&format!("publish-{batch}-{}", urls.len()));
    let channels = connect_all(urls, args.connections.min(callers)).await?;
    let callers = (0..callers)
        .map(|c| Unary {
            client: EventLogClient::new(channels[c % channels.len()].clone()),
            stream: stream.clone(),
            tag: format!("c{c}"),
            batch,
            bytes: args.event_bytes,
            sent: 0,
        })
        .collect();
    let timed = closed_loop(
        callers,
        args.warmup(),
        args.duration(),
        &target.probe,
        ctx.progress,
        "publishing",
    )
    .await?;
    let requests = timed.latency.count();
    let notes = vec![format!(
        "one stream, {} connection(s) over {} server(s)",
        channels.len(),
        urls.len()
    )];
    Ok(Run::done(Outcome {
        events: timed.events,
        elapsed: timed.elapsed,
        latency: timed.latency.figures("publish request"),
        server: timed.server,
        extra: vec![(
            "requests_per_s".into(),
            requests as f64 / timed.elapsed.as_secs_f64(),
        )],
        notes,
    }))
}

/// A caller on its own PublishStream call, keeping `window` requests of
/// one event in flight.
struct Streamed {
    requests: mpsc::Sender<PublishRequest>,
    responses: tonic::Streaming<PublishResponse>,
    in_flight: VecDeque<Instant>,
    window: usize,
    stream: String,
    tag: String,
    bytes: usize,
    sent: u64,
}

impl Streamed {
    /// Opens the call and does one round trip, so a server without the rpc
    /// is found before the timed window (`Err(status)` with UNIMPLEMENTED).
    async fn open(
        channel: Channel,
        stream: String,
        tag: String,
        window: usize,
        bytes: usize,
    ) -> Result<Self, tonic::Status> {
        let (requests, rx) = mpsc::channel(window + 1);
        // Queued before the call starts: a server may wait for the first
        // message before it answers with headers.
        let first = one_event(&stream, &tag, 0, bytes);
        let first_sent = Instant::now();
        requests
            .send(first)
            .await
            .map_err(|_| tonic::Status::cancelled("the publish stream closed"))?;
        let responses = EventLogClient::new(channel)
            .publish_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        let mut caller = Self {
            requests,
            responses,
            in_flight: VecDeque::from([first_sent]),
            window,
            stream,
            tag,
            bytes,
            sent: 1,
        };
        caller.receive().await?;
        Ok(caller)
    }

    async fn send(&mut self) -> Result<(), tonic::Status> {
        let request = one_event(&self.stream, &self.tag, self.sent, self.bytes);
        self.sent += 1;
        self.in_flight.push_back(Instant::now());
        self.requests
            .send(request)
            .await
            .map_err(|_| tonic::Status::cancelled("the publish stream closed"))
    }

    /// The next answer; the latency of the request it answers.
    async fn receive(&mut self) -> Result<std::time::Duration, tonic::Status> {
        let answer = self
            .responses
            .message()
            .await?
            .ok_or_else(|| tonic::Status::aborted("the server ended the publish stream"))?;
        if let Some(refused) = answer.error {
            return Err(tonic::Status::new(
                tonic::Code::from(refused.code),
                format!("request refused ({}): {}", refused.reason, refused.message),
            ));
        }
        let sent = self
            .in_flight
            .pop_front()
            .ok_or_else(|| tonic::Status::internal("an answer to no request"))?;
        Ok(sent.elapsed())
    }
}

impl Caller for Streamed {
    async fn call(&mut self) -> anyhow::Result<Done> {
        while self.in_flight.len() < self.window {
            self.send().await?;
        }
        let latency = self.receive().await.context("PublishStream")?;
        Ok(Done { events: 1, latency })
    }
}

/// A publish of one event, the `n`th of caller `tag`.
fn one_event(stream: &str, tag: &str, n: u64, bytes: usize) -> PublishRequest {
    PublishRequest {
        stream: stream.to_owned(),
        events: vec![event(format!("{tag}-{n}"), stamped_data(bytes, 0))],
        expected: None,
    }
}

/// W1s: W1 through PublishStream, one call per caller; skipped while the
/// server answers UNIMPLEMENTED.
pub async fn streamed(ctx: &Ctx<'_>, target: &Riverlog, urls: &[String]) -> anyhow::Result<Run> {
    let args = ctx.args;
    let stream = ctx.stream(&format!("publish-stream-{}", urls.len()));
    let channels = connect_all(urls, args.connections.min(args.publish_callers)).await?;
    let mut callers = Vec::with_capacity(args.publish_callers);
    for c in 0..args.publish_callers {
        let opened = tokio::time::timeout(
            OPEN_TIMEOUT,
            Streamed::open(
                channels[c % channels.len()].clone(),
                stream.clone(),
                format!("c{c}"),
                args.stream_window,
                args.event_bytes,
            ),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!("no answer to the first PublishStream request within {OPEN_TIMEOUT:?}")
        })?;
        match opened {
            Ok(caller) => callers.push(caller),
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                return Ok(Run::Skipped(format!(
                    "the server answers UNIMPLEMENTED to PublishStream{}",
                    Some(status.message())
                        .filter(|m| !m.is_empty())
                        .map_or_else(String::new, |m| format!(" ({m})"))
                )));
            }
            Err(status) => return Err(status).context("opening PublishStream"),
        }
    }
    let timed = closed_loop(
        callers,
        args.warmup(),
        args.duration(),
        &target.probe,
        ctx.progress,
        "publishing (stream)",
    )
    .await?;
    Ok(Run::done(Outcome {
        events: timed.events,
        elapsed: timed.elapsed,
        latency: timed.latency.figures("publish request on the stream"),
        server: timed.server,
        extra: vec![(
            "requests_per_s".into(),
            timed.latency.count() as f64 / timed.elapsed.as_secs_f64(),
        )],
        notes: vec![format!(
            "one stream, one PublishStream call per caller, {} request(s) in flight each, {} connection(s)",
            args.stream_window,
            channels.len()
        )],
    }))
}
