//! Runs the benchmark tool end to end at tiny scale: every riverlog
//! workload against a SQLite server it starts, and every Redis workload
//! when `redis-server` is installed. Behaviour only (each workload ran and
//! counted events, the report parses), never timing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Arguments that make every workload tiny.
const TINY: &[&str] = &[
    "--duration",
    "0.5",
    "--warmup",
    "0.1",
    "--publish-callers",
    "4",
    "--batch-callers",
    "2",
    "--batch-size",
    "10",
    "--subscribers",
    "3",
    "--rate",
    "200",
    "--catch-up-events",
    "300",
    "--group-events",
    "300",
    "--consumers",
    "2",
    "--fetch-count",
    "20",
    "--preload-batch",
    "50",
    "--idle-subscriptions",
    "30",
    "--subscriptions-per-connection",
    "10",
    "--stalled",
    "3",
    "--timeout",
    "60",
    "--no-progress",
];

/// The server binary `cargo nextest run --workspace` / `cargo test
/// --workspace` builds beside this package's binary.
fn riverlog_bin() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_riverlog-bench"));
    let server = bench.with_file_name("riverlog");
    assert!(
        server.exists(),
        "{} is missing: build the server too (cargo build --workspace, or run the tests with --workspace)",
        server.display()
    );
    server
}

/// Runs the tool with `args` plus [`TINY`], writing its report to `out`;
/// returns the parsed JSON report and the stdout table.
fn run(out: &Path, args: &[&str]) -> (Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_riverlog-bench"))
        .args(args)
        .args(TINY)
        .arg("--riverlog-bin")
        .arg(riverlog_bin())
        .arg("--out")
        .arg(out)
        .args(["--label", "smoke"])
        .output()
        .expect("riverlog-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "riverlog-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let json = std::fs::read_to_string(out.join("smoke.json")).expect("the JSON report exists");
    assert!(out.join("smoke.md").exists(), "the Markdown report exists");
    (
        serde_json::from_str(&json).expect("the JSON report parses"),
        stdout,
    )
}

/// The row of `workload` on `target`.
fn row<'a>(report: &'a Value, workload: &str, target: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["workload"] == workload && r["target"] == target)
        .unwrap_or_else(|| panic!("no {workload} row for {target} in {report:#}"))
}

fn assert_ran(report: &Value, workload: &str, target: &str) {
    let r = row(report, workload, target);
    assert_eq!(r["status"], "ok", "{workload} on {target}: {r:#}");
    assert!(
        r["events"].as_u64().is_some_and(|e| e > 0),
        "{workload} on {target} counted no events: {r:#}"
    );
    assert!(r["events_per_s"].as_f64().is_some_and(|e| e > 0.0), "{r:#}");
}

#[test]
fn every_riverlog_workload_runs_on_sqlite() {
    let out = tempfile::tempdir().expect("temp dir");
    let (report, table) = run(out.path(), &["--target", "sqlite"]);
    for workload in ["W1", "W1s", "W2", "W3", "W4", "W5", "W6", "W7"] {
        assert_ran(&report, workload, "riverlog-sqlite");
        assert!(table.contains(&format!("| {workload} ")), "{table}");
    }
    // The server started here: its CPU time and memory were read.
    let w1 = row(&report, "W1", "riverlog-sqlite");
    assert!(w1["server_cpu_us_per_event"].as_f64().is_some(), "{w1:#}");
    assert!(w1["peak_rss_kib"].as_u64().is_some_and(|k| k > 0), "{w1:#}");
    assert!(w1["events_per_commit"].as_f64().is_some(), "{w1:#}");
    assert!(
        row(&report, "W6", "riverlog-sqlite")["extra"]["kib_per_subscription"].is_number(),
        "{report:#}"
    );
    let w7 = &row(&report, "W7", "riverlog-sqlite")["extra"];
    assert!(
        w7["baseline_p99_ms"].is_number() && w7["stalled_p99_ms"].is_number(),
        "{w7:#}"
    );
}

#[test]
fn every_redis_workload_runs_when_redis_is_installed() {
    let installed = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("SKIPPED: redis-server is not on PATH, so the Redis target was not tested");
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let (report, _) = run(out.path(), &["--target", "redis"]);
    for workload in ["W1", "W2", "W3", "W4", "W5", "W6"] {
        assert_ran(&report, workload, "redis");
    }
    for workload in ["W1s", "W7"] {
        assert_eq!(row(&report, workload, "redis")["status"], "skipped");
    }
}
