//! The report: one row per workload run, printed as a Markdown table and
//! written as `<label>.md` and `<label>.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::measure::LatencyFigures;
use crate::workloads::{Outcome, WorkloadId};

/// How a workload run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran; the figures are set.
    Ok,
    /// It does not apply to the target (`reason` says why).
    Skipped,
    /// It failed (`reason` holds the error).
    Failed,
}

/// One workload against one target (and replica count).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `W1`..`W7`, `W1s`.
    pub workload: String,
    /// What it did, with this run's settings.
    pub title: String,
    /// `riverlog-sqlite`, `riverlog-postgres`, `riverlog` (a given URL), `redis`.
    pub target: String,
    /// Servers the load was spread over.
    pub replicas: usize,
    /// How it ended.
    pub status: Status,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// Events counted (published, delivered, caught up or acked).
    pub events: u64,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_s: f64,
    /// Client-side latency percentiles.
    pub latency: Option<LatencyFigures>,
    /// Server CPU time (user + system, all replicas) per event, µs.
    pub server_cpu_us_per_event: Option<f64>,
    /// Peak server RSS over the window (VmHWM, replicas summed), KiB.
    pub peak_rss_kib: Option<u64>,
    /// The peak could not be reset: it is the server's lifetime peak.
    pub peak_rss_is_lifetime: bool,
    /// Bytes the server sent to storage per event (/proc/PID/io write_bytes).
    pub write_bytes_per_event: Option<f64>,
    /// Events per append transaction (riverlog's /metrics).
    pub events_per_commit: Option<f64>,
    /// Mean write transaction time, commit included, ms (riverlog's /metrics).
    pub mean_commit_ms: Option<f64>,
    /// CPU time of the database's own processes (PostgreSQL: every
    /// `postgres` process on the machine) per event, µs.
    pub database_cpu_us_per_event: Option<f64>,
    /// Bytes the database's own processes sent to storage per event.
    pub database_write_bytes_per_event: Option<f64>,
    /// Workload-specific figures; names carry their unit.
    pub extra: BTreeMap<String, f64>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl Row {
    fn empty(id: WorkloadId, title: String, target: &str, replicas: usize, status: Status) -> Self {
        Self {
            workload: id.name().into(),
            title,
            target: target.into(),
            replicas,
            status,
            reason: None,
            events: 0,
            seconds: 0.0,
            events_per_s: 0.0,
            latency: None,
            server_cpu_us_per_event: None,
            peak_rss_kib: None,
            peak_rss_is_lifetime: false,
            write_bytes_per_event: None,
            events_per_commit: None,
            mean_commit_ms: None,
            database_cpu_us_per_event: None,
            database_write_bytes_per_event: None,
            extra: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// A row for a workload that did not run.
    pub fn not_run(
        id: WorkloadId,
        title: String,
        target: &str,
        replicas: usize,
        status: Status,
        reason: String,
    ) -> Self {
        let mut row = Self::empty(id, title, target, replicas, status);
        row.reason = Some(reason);
        row
    }

    /// The row of a workload that ran.
    pub fn from_outcome(
        id: WorkloadId,
        title: String,
        target: &str,
        replicas: usize,
        o: Outcome,
    ) -> Self {
        let mut row = Self::empty(id, title, target, replicas, Status::Ok);
        let events = o.events.max(1) as f64;
        let per_event_us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / events;
        row.events = o.events;
        row.seconds = o.elapsed.as_secs_f64();
        row.events_per_s = if row.seconds > 0.0 {
            o.events as f64 / row.seconds
        } else {
            0.0
        };
        row.latency = o.latency;
        row.server_cpu_us_per_event = o.server.cpu.map(per_event_us);
        row.peak_rss_kib = o.server.peak_rss_kib;
        row.peak_rss_is_lifetime = o.server.peak_rss_kib.is_some() && o.server.peak_is_lifetime;
        row.write_bytes_per_event = o.server.write_bytes.map(|b| b as f64 / events);
        row.events_per_commit = o.server.commits.and_then(|c| c.events_per_commit());
        row.mean_commit_ms = o.server.commits.and_then(|c| c.mean_commit_ms());
        row.database_cpu_us_per_event = o.server.database_cpu.map(per_event_us);
        row.database_write_bytes_per_event =
            o.server.database_write_bytes.map(|b| b as f64 / events);
        row.extra = o.extra.into_iter().collect();
        row.notes = o.notes;
        if o.events == 0 {
            row.notes.push("no events counted".into());
        }
        row
    }

    /// The row's target with its replica count when above one.
    fn target_name(&self) -> String {
        if self.replicas > 1 {
            format!("{} ×{}", self.target, self.replicas)
        } else {
            self.target.clone()
        }
    }

    /// The figure a workload is judged by, in a few words.
    fn headline(&self) -> String {
        let x = |k: &str| self.extra.get(k).copied();
        match self.workload.as_str() {
            "W3" => x("published_events_per_s")
                .map_or_else(String::new, |r| format!("published {r:.0} ev/s")),
            "W4" => x("first_event_ms")
                .map_or_else(String::new, |f| format!("first event after {f:.1} ms")),
            "W6" => x("kib_per_subscription")
                .map_or_else(String::new, |k| format!("{k:.1} KiB per subscription")),
            "W7" => match (
                x("stalled_p99_ms"),
                x("baseline_p99_ms"),
                x("p99_ratio_stalled_to_baseline"),
            ) {
                (Some(s), Some(b), Some(r)) => {
                    format!("p99 {s:.1} ms with stalled vs {b:.1} ms without (×{r:.2})")
                }
                _ => String::new(),
            },
            _ => x("requests_per_s").map_or_else(String::new, |r| format!("{r:.0} requests/s")),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The report's file name, without extension.
    pub label: String,
    /// When the run started (UTC, ISO 8601).
    pub started_utc: String,
    /// The command line.
    pub command: String,
    /// The machine: CPU model and count.
    pub machine: String,
    /// One row per workload run.
    pub rows: Vec<Row>,
}

/// Formats an optional figure.
fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// A server figure, followed by the database processes' one when known
/// (`62.0 + 59.9 db`).
fn with_database(server: Option<f64>, database: Option<f64>, digits: usize) -> String {
    match database {
        Some(db) => format!("{} + {db:.digits$} db", opt(server, digits)),
        None => opt(server, digits),
    }
}

impl Report {
    /// Whether a workload failed.
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| r.status == Status::Failed)
    }

    /// The Redis row a riverlog row is compared with (W1s with W1).
    fn redis_peer(&self, row: &Row) -> Option<&Row> {
        if row.target == "redis" {
            return None;
        }
        let workload = if row.workload == "W1s" {
            "W1"
        } else {
            row.workload.as_str()
        };
        self.rows
            .iter()
            .find(|r| r.target == "redis" && r.workload == workload && r.status == Status::Ok)
    }

    /// riverlog / Redis on the figure each goal of issue 15 is stated in.
    fn ratio(&self, row: &Row) -> String {
        let Some(peer) = self.redis_peer(row) else {
            return String::new();
        };
        if row.status != Status::Ok {
            return String::new();
        }
        let p99 = |r: &Row| r.latency.as_ref().map(|l| l.p99_ms);
        match row.workload.as_str() {
            "W3" => match (p99(row), p99(peer)) {
                (Some(a), Some(b)) if b > 0.0 => format!("p99 ×{:.2}", a / b),
                _ => String::new(),
            },
            "W6" => match (
                row.extra.get("kib_per_subscription"),
                peer.extra.get("kib_per_subscription"),
            ) {
                (Some(a), Some(b)) if *b > 0.0 => format!("KiB/sub ×{:.2}", a / b),
                _ => String::new(),
            },
            "W7" => String::new(),
            _ if peer.events_per_s > 0.0 => format!("×{:.2}", row.events_per_s / peer.events_per_s),
            _ => String::new(),
        }
    }

    /// The summary table (Markdown).
    pub fn table(&self) -> String {
        let compare = self.rows.iter().any(|r| r.target == "redis")
            && self.rows.iter().any(|r| r.target != "redis");
        let mut out = String::new();
        out.push_str("| workload | target | events/s | p50 ms | p99 ms | p999 ms | server CPU µs/event | peak RSS MiB | written B/event | events/commit |");
        if compare {
            out.push_str(" vs Redis |");
        }
        out.push_str(" key figure |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        if compare {
            out.push_str("--:|");
        }
        out.push_str("---|\n");
        for row in &self.rows {
            let l = row.latency.as_ref();
            let _ = write!(
                out,
                "| {} {} | {} |",
                row.workload,
                row.title,
                row.target_name()
            );
            if row.status == Status::Ok {
                let _ = write!(
                    out,
                    " {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                    row.events_per_s,
                    opt(l.map(|l| l.p50_ms), 2),
                    opt(l.map(|l| l.p99_ms), 2),
                    opt(l.map(|l| l.p999_ms), 2),
                    with_database(
                        row.server_cpu_us_per_event,
                        row.database_cpu_us_per_event,
                        1
                    ),
                    opt(row.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
                    with_database(
                        row.write_bytes_per_event,
                        row.database_write_bytes_per_event,
                        0
                    ),
                    opt(row.events_per_commit, 1),
                );
                if compare {
                    let _ = write!(out, " {} |", self.ratio(row));
                }
                let _ = writeln!(out, " {} |", row.headline());
            } else {
                let cells = if compare { 9 } else { 8 };
                out.push_str(&" - |".repeat(cells));
                let status = if row.status == Status::Skipped {
                    "skipped"
                } else {
                    "FAILED"
                };
                let reason = row
                    .reason
                    .as_deref()
                    .unwrap_or("")
                    .replace('|', "/")
                    .replace('\n', " ");
                let _ = writeln!(out, " {status}: {reason} |");
            }
        }
        out
    }

    /// The whole Markdown report: the table, then each row's details.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# riverlog benchmark: {}\n\nStarted {} on {}.\n\n```sh\n{}\n```\n\n",
            self.label, self.started_utc, self.machine, self.command
        );
        out.push_str(&self.table());
        out.push_str(
            "\nLatency is per request for publish workloads, publish→receive for W3/W6/W7, per \
             fetch+ack cycle for W5. Server CPU is user+system time of the server process(es) over \
             the measured window divided by its events; peak RSS is VmHWM over the window; written \
             bytes are /proc/PID/io write_bytes; `+ N db` adds PostgreSQL's own processes (all of \
             them on the machine, whoever they serve).\n\n## Details\n",
        );
        for row in &self.rows {
            let _ = write!(
                out,
                "\n### {} {} on {}\n\n",
                row.workload,
                row.title,
                row.target_name()
            );
            match row.status {
                Status::Ok => {
                    let _ = writeln!(
                        out,
                        "- {} events in {:.2} s = {:.0} events/s",
                        row.events, row.seconds, row.events_per_s
                    );
                    if let Some(l) = &row.latency {
                        let _ = writeln!(
                            out,
                            "- latency ({}, {} samples): p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
                            l.what, l.samples, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
                        );
                    }
                    if let Some(c) = row.mean_commit_ms {
                        let _ = writeln!(
                            out,
                            "- {} events per append commit, {c:.2} ms per write transaction",
                            opt(row.events_per_commit, 1)
                        );
                    }
                    if row.database_cpu_us_per_event.is_some() {
                        let _ = writeln!(
                            out,
                            "- PostgreSQL processes: {} µs CPU and {} bytes written per event",
                            opt(row.database_cpu_us_per_event, 1),
                            opt(row.database_write_bytes_per_event, 0)
                        );
                    }
                    if row.peak_rss_is_lifetime {
                        out.push_str(
                            "- peak RSS is the server's lifetime peak (could not reset it)\n",
                        );
                    }
                    for (k, v) in &row.extra {
                        let _ = writeln!(out, "- {k}: {v:.2}");
                    }
                    for n in &row.notes {
                        let _ = writeln!(out, "- {n}");
                    }
                    if let Some(ratio) = Some(self.ratio(row)).filter(|r| !r.is_empty()) {
                        let _ = writeln!(out, "- against Redis (same run): {ratio}");
                    }
                }
                Status::Skipped | Status::Failed => {
                    let _ = writeln!(
                        out,
                        "- {}: {}",
                        if row.status == Status::Skipped {
                            "skipped"
                        } else {
                            "FAILED"
                        },
                        row.reason.as_deref().unwrap_or("")
                    );
                }
            }
        }
        out
    }

    /// Writes `<dir>/<label>.md` and `<dir>/<label>.json`; returns their paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let md = dir.join(format!("{}.md", self.label));
        let json = dir.join(format!("{}.json", self.label));
        std::fs::write(&md, self.markdown())
            .with_context(|| format!("cannot write {}", md.display()))?;
        std::fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", json.display()))?;
        Ok((md, json))
    }
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn ratio_against_redis() {
        let row = |target: &str, eps: f64| {
            let mut r = Row::empty(WorkloadId::W1, "t".into(), target, 1, Status::Ok);
            r.events_per_s = eps;
            r
        };
        let report = Report {
            label: "x".into(),
            started_utc: String::new(),
            command: String::new(),
            machine: String::new(),
            rows: vec![row("riverlog-sqlite", 50.0), row("redis", 100.0)],
        };
        assert_eq!(report.ratio(&report.rows[0]), "×0.50");
        assert!(report.table().contains("×0.50"));
        let json = serde_json::to_string(&report).expect("serializes");
        let back: Report = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.rows.len(), 2);
    }
}
