//! Command-line arguments (clap derive). Every duration is in seconds, every
//! size in events or bytes as its name says.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::workloads::WorkloadId;

/// What the workloads run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// `riverlog serve` started by the tool on a fresh SQLite file.
    Sqlite,
    /// `riverlog serve` started by the tool (`--replicas` of them) on a fresh
    /// PostgreSQL database that it drops afterwards.
    Postgres,
    /// A redis-server started by the tool with `appendfsync always`.
    Redis,
}

/// riverlog's benchmark tool: the workloads W1-W7 of issue 15 against
/// riverlog on SQLite or PostgreSQL (a server it starts, or `--url`) and
/// against Redis Streams with `appendfsync always`, with a Markdown table on
/// stdout and a Markdown and JSON report in `--out`.
#[derive(Debug, Clone, Parser)]
#[command(name = "riverlog-bench", version)]
pub struct Args {
    /// Targets, comma-separated; with riverlog and redis both present the
    /// table gets a ratio column (riverlog / Redis, same run).
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub target: Vec<TargetKind>,
    /// Adds `redis` to the targets, for same-run ratios.
    #[arg(long)]
    pub compare: bool,
    /// A riverlog server someone else runs (gRPC URL); replaces the
    /// sqlite/postgres targets.
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the server's process id(s), for CPU time, RSS and
    /// bytes written from /proc (same machine only).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// With `--url`: the server's Prometheus endpoint, for events per commit.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// The `riverlog` server binary (default: `riverlog` next to this
    /// executable, as `cargo build --release --workspace` leaves it).
    #[arg(long)]
    pub riverlog_bin: Option<PathBuf>,
    /// PostgreSQL server for `--target postgres`: the tool creates a
    /// database `riverlog_bench_<pid>` there and drops it afterwards.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// PostgreSQL replicas on one database, comma-separated counts (each
    /// 1..3): W1/W1s/W2 run once per count, spread round-robin over that
    /// many servers; the other workloads use the first server.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub replicas: Vec<usize>,
    /// The redis-server binary for `--target redis`.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// Workloads to run, comma-separated (W1, W1s, W2, W3, W4, W5, W6, W7).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "W1,W1s,W2,W3,W4,W5,W6,W7"
    )]
    pub workloads: Vec<WorkloadId>,

    /// Measured seconds of each timed workload (W1, W1s, W2, W3, and each
    /// half of W7).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Unmeasured seconds of load before each timed workload's window.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Longest any one workload may take before it counts as failed, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Data bytes of every event (the first 8 carry the send time).
    #[arg(long, default_value_t = 256)]
    pub event_bytes: usize,

    /// W1/W1s: concurrent callers, one event per request.
    #[arg(long, default_value_t = 64)]
    pub publish_callers: usize,
    /// W1/W1s/W2: gRPC connections the callers share (round-robin; Redis
    /// always uses one connection per caller).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// W1s: requests a caller keeps in flight on its publish stream.
    #[arg(long, default_value_t = 1)]
    pub stream_window: usize,
    /// W2: concurrent callers.
    #[arg(long, default_value_t = 8)]
    pub batch_callers: usize,
    /// W2: events per request (Redis: XADDs per pipeline).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,

    /// W3: subscribers on the stream.
    #[arg(long, default_value_t = 50)]
    pub subscribers: usize,
    /// W3/W7: publish rate, events per second (one event per request,
    /// open loop: each event is stamped with its scheduled send time).
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,

    /// W4: stored events the subscriber catches up (the figure is
    /// for 1,000,000).
    #[arg(long, default_value_t = 200_000)]
    pub catch_up_events: u64,
    /// W4: the catch-up stops after this many seconds even if events are
    /// left (the report says how many it read): a slow read path gives a
    /// figure instead of a timeout.
    #[arg(long, default_value_t = 30.0)]
    pub catch_up_seconds: f64,
    /// W4/W5 preload (untimed): events per request.
    #[arg(long, default_value_t = 500)]
    pub preload_batch: usize,
    /// W4/W5 preload (untimed): concurrent callers.
    #[arg(long, default_value_t = 4)]
    pub preload_callers: usize,

    /// W5: events preloaded for the consumer group to work through.
    #[arg(long, default_value_t = 100_000)]
    pub group_events: u64,
    /// W5: consumers in the group.
    #[arg(long, default_value_t = 8)]
    pub consumers: usize,
    /// W5: events per Fetch (XREADGROUP COUNT).
    #[arg(long, default_value_t = 100)]
    pub fetch_count: u32,

    /// W6: idle subscriptions.
    #[arg(long, default_value_t = 10_000)]
    pub idle_subscriptions: usize,
    /// W6: subscriptions per HTTP/2 connection (the server allows 100 per
    /// connection by default, `max_subscriptions_per_connection`).
    #[arg(long, default_value_t = 100)]
    pub subscriptions_per_connection: usize,

    /// W7: stalled subscribers beside the healthy one.
    #[arg(long, default_value_t = 200)]
    pub stalled: usize,

    /// Report directory: `<label>.md` and `<label>.json` go there.
    #[arg(long, default_value = "benchmarks/results")]
    pub out: PathBuf,
    /// Report file name (default: `bench-<UTC time>`).
    #[arg(long)]
    pub label: Option<String>,
    /// No progress bars even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

impl Args {
    /// The measured window of timed workloads.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.01))
    }

    /// The unmeasured load before a timed window.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }

    /// The longest W4 catch-up.
    pub fn catch_up_limit(&self) -> Duration {
        Duration::from_secs_f64(self.catch_up_seconds.max(0.1))
    }

    /// The limit of one workload.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.max(1.0))
    }

    /// Checks the combinations clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.event_bytes >= 8, "--event-bytes must be at least 8");
        anyhow::ensure!(
            self.replicas.iter().all(|r| (1..=3).contains(r)),
            "--replicas takes counts from 1 to 3"
        );
        anyhow::ensure!(
            self.subscriptions_per_connection > 0
                && self.connections > 0
                && self.publish_callers > 0
                && self.batch_callers > 0
                && self.batch_size > 0
                && self.preload_batch > 0
                && self.preload_callers > 0
                && self.consumers > 0
                && self.fetch_count > 0
                && self.stream_window > 0,
            "counts of callers, connections, batches and consumers must be above 0"
        );
        anyhow::ensure!(self.rate > 0, "--rate must be above 0");
        Ok(())
    }
}
