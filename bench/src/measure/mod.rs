//! Measuring the server side of a workload: CPU time, peak memory, bytes
//! written and commit counters, as deltas over the measured window; and
//! the latency histograms of the client side.

pub mod latency;
pub mod metrics;
pub mod proc;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use latency::{Latency, LatencyFigures};
pub use metrics::Commits;

/// Where to look for a target's server-side figures.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The server processes (replicas are summed).
    pub pids: Vec<u32>,
    /// riverlog's Prometheus endpoints, one per server, for commit counters.
    pub metrics_urls: Vec<String>,
    /// Command name of helper processes whose CPU time and writes count as
    /// the database's (`postgres`: every PostgreSQL process on the machine).
    pub database_processes: Option<String>,
    /// A database the tool made (PostgreSQL): [`Probe::settle`] asks it
    /// for a `CHECKPOINT` first, so the previous workload's (or an earlier
    /// run's dropped database's) dirty pages are not written back during
    /// the next window.
    pub checkpoint_url: Option<String>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    cpu: Option<Duration>,
    write_bytes: Option<u64>,
    commits: Option<Commits>,
    database: HashMap<u32, (Duration, u64)>,
    peak_reset: bool,
}

/// What the server used over a measured window.
#[derive(Debug, Clone, Default)]
pub struct ServerUse {
    /// CPU time (user + system) of the server processes.
    pub cpu: Option<Duration>,
    /// Bytes the server processes sent to storage.
    pub write_bytes: Option<u64>,
    /// Peak RSS in KiB over the window (summed over replicas); over the
    /// process's whole life when it could not be reset (`peak_is_lifetime`).
    pub peak_rss_kib: Option<u64>,
    /// The peak could not be reset at the window's start.
    pub peak_is_lifetime: bool,
    /// Commit counters from `/metrics`.
    pub commits: Option<Commits>,
    /// CPU time of the database's own processes (PostgreSQL).
    pub database_cpu: Option<Duration>,
    /// Bytes the database's own processes sent to storage.
    pub database_write_bytes: Option<u64>,
}

impl Probe {
    /// Starts a measured window: resets the peak RSS and reads the counters.
    pub async fn begin(&self) -> Snapshot {
        let peak_reset =
            !self.pids.is_empty() && self.pids.iter().all(|&pid| proc::reset_peak_rss(pid));
        let mut snapshot = self.snapshot().await;
        snapshot.peak_reset = peak_reset;
        snapshot
    }

    /// Ends a window begun with [`Probe::begin`]: the deltas since then.
    pub async fn end(&self, begin: &Snapshot) -> ServerUse {
        let end = self.snapshot().await;
        let peak = self.sum(proc::peak_rss_kib);
        let (database_cpu, database_write_bytes) = if self.database_processes.is_some() {
            let mut cpu = Duration::ZERO;
            let mut written = 0;
            for (pid, (c, w)) in &end.database {
                let (c0, w0) = begin.database.get(pid).copied().unwrap_or_default();
                cpu += c.saturating_sub(c0);
                written += w.saturating_sub(w0);
            }
            (Some(cpu), Some(written))
        } else {
            (None, None)
        };
        ServerUse {
            cpu: end.cpu.zip(begin.cpu).map(|(e, b)| e.saturating_sub(b)),
            write_bytes: end
                .write_bytes
                .zip(begin.write_bytes)
                .map(|(e, b)| e.saturating_sub(b)),
            peak_rss_kib: peak,
            peak_is_lifetime: !begin.peak_reset,
            commits: end.commits.zip(begin.commits).map(|(e, b)| e.since(&b)),
            database_cpu,
            database_write_bytes,
        }
    }

    /// Waits until the servers, and the database's processes where they
    /// count, are nearly idle (under a tenth of a core over 250 ms), at
    /// most `limit`: what the previous workload left behind (closing 10,000
    /// subscriptions, a checkpoint, autovacuum) must not be measured as the
    /// next one's. A database the tool made is checkpointed first (best
    /// effort: without the right to, it is only waited for). Returns at
    /// once without server pids.
    pub async fn settle(&self, limit: Duration) {
        const WINDOW: Duration = Duration::from_millis(250);
        let until = std::time::Instant::now() + limit;
        if let Some(url) = &self.checkpoint_url {
            let _ = tokio::time::timeout(limit, checkpoint(url)).await;
        }
        let busy = || {
            let database = self
                .database_processes
                .as_deref()
                .map(|name| {
                    proc::pids_named(name)
                        .into_iter()
                        .filter_map(proc::cpu_time)
                        .sum::<Duration>()
                })
                .unwrap_or_default();
            self.sum_duration(proc::cpu_time)
                .map(|server| server + database)
        };
        let mut last = busy();
        while last.is_some() && std::time::Instant::now() < until {
            tokio::time::sleep(WINDOW).await;
            let now = busy();
            if let (Some(a), Some(b)) = (last, now) {
                // A process that exits meanwhile makes the sum go down.
                if b.saturating_sub(a) < WINDOW / 10 {
                    return;
                }
            }
            last = now;
        }
    }

    /// Resident set size now, KiB, summed over the servers.
    pub fn rss_kib(&self) -> Option<u64> {
        self.sum(proc::rss_kib)
    }

    async fn snapshot(&self) -> Snapshot {
        let mut commits = None;
        for url in &self.metrics_urls {
            match metrics::commits(url).await {
                Some(c) => commits = Some(commits.unwrap_or_default() + c),
                None => {
                    commits = None;
                    break;
                }
            }
        }
        let database = match &self.database_processes {
            Some(name) => proc::pids_named(name)
                .into_iter()
                .filter_map(|pid| {
                    Some((
                        pid,
                        (proc::cpu_time(pid)?, proc::write_bytes(pid).unwrap_or(0)),
                    ))
                })
                .collect(),
            None => HashMap::new(),
        };
        Snapshot {
            cpu: self.sum_duration(proc::cpu_time),
            write_bytes: self.sum(proc::write_bytes),
            commits,
            database,
            peak_reset: false,
        }
    }

    /// Sums a per-process figure; `None` unless every server has it.
    fn sum(&self, f: impl Fn(u32) -> Option<u64>) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| f(pid)).sum()
    }

    fn sum_duration(&self, f: impl Fn(u32) -> Option<Duration>) -> Option<Duration> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| f(pid)).sum()
    }
}

/// Microseconds since the Unix epoch: the send-time stamp carried in the
/// first 8 bytes (little endian) of each event's data, so a receiver in
/// this process can compute publish→receive delay.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `bytes` bytes of event data whose first 8 carry `stamp_micros`.
pub fn stamped_data(bytes: usize, stamp_micros: u64) -> Vec<u8> {
    let mut data = vec![0x2a; bytes.max(8)];
    data[..8].copy_from_slice(&stamp_micros.to_le_bytes());
    data
}

/// The send-time stamp of event data made by [`stamped_data`].
pub fn read_stamp(data: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(..8)?.try_into().ok()?))
}

/// Asks the PostgreSQL server at `url` for a `CHECKPOINT` (superuser or the
/// `pg_checkpoint` role).
async fn checkpoint(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    conn.close().await
}
