//! One invocation: start each target, run the chosen workloads on it, stop
//! it, and collect the rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::{Args, TargetKind};
use crate::progress::Progress;
use crate::report::{Report, Row, Status, utc};
use crate::target::redis::RedisServer;
use crate::target::riverlog::Riverlog;
use crate::target::riverlog_binary;
use crate::workloads::{self, Ctx, Run, WorkloadId};

/// Longest wait for the server to go idle before a workload.
const SETTLE_LIMIT: Duration = Duration::from_secs(15);

/// A target as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Sqlite,
    Postgres,
    Url,
    Redis,
}

impl Plan {
    fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "riverlog-sqlite",
            Self::Postgres => "riverlog-postgres",
            Self::Url => "riverlog",
            Self::Redis => "redis",
        }
    }
}

/// The targets in the order they run: riverlog first, Redis last.
fn plans(args: &Args) -> Vec<Plan> {
    let mut plans = Vec::new();
    if args.url.is_some() {
        plans.push(Plan::Url);
    } else {
        for kind in &args.target {
            let plan = match kind {
                TargetKind::Sqlite => Plan::Sqlite,
                TargetKind::Postgres => Plan::Postgres,
                TargetKind::Redis => continue,
            };
            if !plans.contains(&plan) {
                plans.push(plan);
            }
        }
    }
    if args.compare || args.target.contains(&TargetKind::Redis) {
        plans.push(Plan::Redis);
    }
    plans
}

/// A started target (boxed: both are large and held for a whole run).
enum Started {
    Riverlog(Box<Riverlog>),
    Redis(Box<RedisServer>),
}

impl Started {
    async fn start(plan: Plan, args: &Args) -> anyhow::Result<Self> {
        Ok(match plan {
            Plan::Sqlite => Self::Riverlog(Box::new(
                Riverlog::start_sqlite(&riverlog_binary(args.riverlog_bin.as_ref())?).await?,
            )),
            Plan::Postgres => {
                let replicas = args.replicas.iter().copied().max().unwrap_or(1);
                Self::Riverlog(Box::new(
                    Riverlog::start_postgres(
                        &riverlog_binary(args.riverlog_bin.as_ref())?,
                        &args.database_url,
                        replicas,
                    )
                    .await?,
                ))
            }
            Plan::Url => Self::Riverlog(Box::new(Riverlog::external(
                args.url.as_deref().unwrap_or_default(),
                &args.server_pid,
                args.metrics_url.as_deref(),
            ))),
            Plan::Redis => Self::Redis(Box::new(RedisServer::start(&args.redis_server).await?)),
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Self::Riverlog(r) => r.stop().await,
            Self::Redis(r) => r.stop().await,
        }
    }
}

/// Runs every chosen workload on every chosen target.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    args.validate()?;
    let progress = Progress::new(!args.no_progress);
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut workloads = args.workloads.clone();
    workloads.sort();
    workloads.dedup();
    let mut rows = Vec::new();
    let mut serial = 0;
    for plan in plans(args) {
        progress.step(&format!("== {}: starting", plan.label()));
        let target = match Started::start(plan, args).await {
            Ok(t) => t,
            Err(e) => {
                progress.step(&format!("== {}: cannot start: {e:#}", plan.label()));
                for &id in &workloads {
                    rows.push(Row::not_run(
                        id,
                        id.title(args),
                        plan.label(),
                        1,
                        Status::Failed,
                        format!("the target did not start: {e:#}"),
                    ));
                }
                continue;
            }
        };
        for &id in &workloads {
            let replica_counts = match (&target, plan, id.is_publish()) {
                (Started::Riverlog(_), Plan::Postgres, true) => {
                    let mut r = args.replicas.clone();
                    r.sort_unstable();
                    r.dedup();
                    r
                }
                _ => vec![1],
            };
            for replicas in replica_counts {
                serial += 1;
                let ctx = Ctx {
                    args,
                    progress: &progress,
                    prefix: format!("bench-{}-{started_at}-{serial}", std::process::id()),
                };
                let row = run_one(&ctx, &target, plan, id, replicas).await;
                progress.step(&format!("   {}", summary(&row)));
                let skipped = row.status == Status::Skipped;
                rows.push(row);
                if skipped {
                    // It would be skipped again with more replicas.
                    break;
                }
            }
        }
        progress.step(&format!("== {}: stopping", plan.label()));
        if let Err(e) = target.stop().await {
            progress.step(&format!("== {}: did not stop cleanly: {e:#}", plan.label()));
        }
    }
    Ok(Report {
        label: args
            .label
            .clone()
            .unwrap_or_else(|| format!("bench-{}", utc(started_at).replace(':', "-"))),
        started_utc: utc(started_at),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(),
        rows,
    })
}

/// Runs one workload, bounded by three times `--timeout` on top of its own
/// limits, and makes its row.
async fn run_one(
    ctx: &Ctx<'_>,
    target: &Started,
    plan: Plan,
    id: WorkloadId,
    replicas: usize,
) -> Row {
    let args = ctx.args;
    let title = id.title(args);
    let label = plan.label();
    ctx.progress.step(&format!(
        "-- {} {title} on {label}{}",
        id.name(),
        if replicas > 1 {
            format!(" ×{replicas}")
        } else {
            String::new()
        }
    ));
    let probe = match target {
        Started::Riverlog(r) => &r.probe,
        Started::Redis(r) => &r.probe,
    };
    probe.settle(SETTLE_LIMIT).await;
    let run = async {
        match target {
            Started::Riverlog(r) => workloads::grpc::run(id, ctx, r, replicas).await,
            Started::Redis(r) => workloads::redis::run(id, ctx, r).await,
        }
    };
    let limit = args.timeout() * 3 + Duration::from_secs(30);
    match tokio::time::timeout(limit, run).await {
        Ok(Ok(Run::Done(outcome))) => Row::from_outcome(id, title, label, replicas, *outcome),
        Ok(Ok(Run::Skipped(why))) => Row::not_run(id, title, label, replicas, Status::Skipped, why),
        Ok(Err(e)) => Row::not_run(id, title, label, replicas, Status::Failed, format!("{e:#}")),
        Err(_) => Row::not_run(
            id,
            title,
            label,
            replicas,
            Status::Failed,
            format!("did not finish within {limit:?}"),
        ),
    }
}

/// One line on a finished row, for the progress output.
fn summary(row: &Row) -> String {
    match row.status {
        Status::Ok => format!(
            "{} events in {:.1} s = {:.0} events/s{}{}",
            row.events,
            row.seconds,
            row.events_per_s,
            row.latency
                .as_ref()
                .map_or_else(String::new, |l| format!(", p99 {:.2} ms", l.p99_ms)),
            row.server_cpu_us_per_event
                .map_or_else(String::new, |c| format!(", {c:.1} µs server CPU/event")),
        ),
        Status::Skipped => format!("skipped: {}", row.reason.as_deref().unwrap_or("")),
        Status::Failed => format!("FAILED: {}", row.reason.as_deref().unwrap_or("")),
    }
}

/// CPU model and count, from /proc/cpuinfo.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}
