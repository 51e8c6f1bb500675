//! The workloads W1-W7 (and W1s), written once per kind of target:
//! [`grpc`] for riverlog, [`redis`] for Redis Streams. [`driver`] holds the
//! load shapes they share (closed-loop callers, an open-loop paced
//! publisher, preloading).

pub mod driver;
pub mod grpc;
pub mod redis;

use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

use crate::cli::Args;
use crate::measure::{LatencyFigures, ServerUse};
use crate::progress::Progress;

/// A workload of issue 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
pub enum WorkloadId {
    /// Publish, 1 event per request, 64 concurrent callers (unary Publish; XADD).
    #[value(name = "W1")]
    W1,
    /// W1 through the bidirectional `PublishStream` rpc (riverlog only;
    /// skipped on a server that answers UNIMPLEMENTED).
    #[value(name = "W1s")]
    W1s,
    /// Publish, batches of 100, 8 callers (100 XADDs pipelined).
    #[value(name = "W2")]
    W2,
    /// 50 subscribers on one stream while a publisher sends 5,000 events/s:
    /// publish→receive latency.
    #[value(name = "W3")]
    W3,
    /// One subscriber catches up N stored events from the earliest.
    #[value(name = "W4")]
    W4,
    /// Consumer group of 8, Fetch up to 100 + Ack (XREADGROUP + XACK).
    #[value(name = "W5")]
    W5,
    /// 10,000 idle subscriptions: server memory per subscription, then one
    /// event woken to all of them.
    #[value(name = "W6")]
    W6,
    /// 200 stalled subscribers beside a healthy one: the healthy one's p99
    /// against a run without them.
    #[value(name = "W7")]
    W7,
}

impl WorkloadId {
    /// Its short name, `W1`..`W7`.
    pub fn name(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W1s => "W1s",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W4 => "W4",
            Self::W5 => "W5",
            Self::W6 => "W6",
            Self::W7 => "W7",
        }
    }

    /// What it does, with this run's settings.
    pub fn title(self, args: &Args) -> String {
        match self {
            Self::W1 => format!("publish, 1 event/request, {} callers", args.publish_callers),
            Self::W1s => format!(
                "publish stream, 1 event/request, {} callers{}",
                args.publish_callers,
                if args.stream_window > 1 {
                    format!(", {} in flight each", args.stream_window)
                } else {
                    String::new()
                }
            ),
            Self::W2 => format!(
                "publish, batches of {}, {} callers",
                args.batch_size, args.batch_callers
            ),
            Self::W3 => format!("{} subscribers at {} ev/s", args.subscribers, args.rate),
            Self::W4 => format!("catch-up of {} stored events", args.catch_up_events),
            Self::W5 => format!(
                "group of {}, fetch {} + ack, {} events",
                args.consumers, args.fetch_count, args.group_events
            ),
            Self::W6 => format!("{} idle subscriptions", args.idle_subscriptions),
            Self::W7 => format!("{} stalled subscribers + 1 healthy", args.stalled),
        }
    }

    /// Whether it publishes (W1/W1s/W2 run once per replica count).
    pub fn is_publish(self) -> bool {
        matches!(self, Self::W1 | Self::W1s | Self::W2)
    }
}

/// What one workload run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Events the workload counts (published, delivered, caught up or
    /// acked: see the workload).
    pub events: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Client-side latency, if the workload times something.
    pub latency: Option<LatencyFigures>,
    /// The server's use over the window.
    pub server: ServerUse,
    /// Workload-specific figures, names carrying their unit.
    pub extra: Vec<(String, f64)>,
    /// Remarks for the reader.
    pub notes: Vec<String>,
}

/// How a workload ended.
#[derive(Debug)]
pub enum Run {
    /// It ran.
    Done(Box<Outcome>),
    /// It does not apply to this target; why.
    Skipped(String),
}

impl Run {
    /// The run of a workload that ran.
    pub fn done(outcome: Outcome) -> Self {
        Self::Done(Box::new(outcome))
    }
}

/// What every workload gets.
pub struct Ctx<'a> {
    /// The settings.
    pub args: &'a Args,
    /// Progress display.
    pub progress: &'a Progress,
    /// A prefix unique to this run and target, for stream names.
    pub prefix: String,
}

impl Ctx<'_> {
    /// A stream name unique to this run: `<prefix>:<name>`.
    pub fn stream(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}
