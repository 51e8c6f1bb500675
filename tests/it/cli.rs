//! The `riverlog` CLI against a real server: output, stdin, exit codes.

use std::process::Stdio;

use riverlog::auth::{TokenConfig, token_digest};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::common::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `riverlog ARGS` against `server`, feeding `stdin`.
async fn riverlog(server: &str, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args(args)
        .env("RIVERLOG_SERVER", server)
        .env_remove("RIVERLOG_TOKEN")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cli starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = within(child.wait_with_output()).await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test]
async fn publish_and_tail_round_trip_as_cloudevents_json() {
    let server = TestServer::start().await;
    let url = server.url();

    let one = riverlog(
        &url,
        &[
            "publish",
            "orders",
            "--type",
            "order.created",
            "--id",
            "o-1",
            "--data",
            r#"{"total":12}"#,
        ],
        &[],
        "",
    )
    .await;
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert_eq!(one.stdout.trim(), "orders#1 @1 o-1");

    // Many from stdin: a full CloudEvent, a JSON value, a text line.
    let lines = concat!(
        r#"{"specversion":"1.0","id":"o-2","source":"/shop","type":"order.paid","subject":"order-2","data":{"paid":true}}"#,
        "\n",
        r#"{"total":30}"#,
        "\n\n",
        "plain words\n",
    );
    let many = riverlog(
        &url,
        &["publish", "orders", "--data", "-", "--batch", "2", "--json"],
        &[],
        lines,
    )
    .await;
    assert_eq!(many.code, 0, "{}", many.stderr);
    let published = json_lines(&many.stdout);
    let sequences: Vec<_> = published
        .iter()
        .map(|p| p["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [2, 3, 4]);
    assert_eq!(published[0]["id"], "o-2");

    let tail = riverlog(
        &url,
        &[
            "tail",
            "orders",
            "--from",
            "earliest",
            "--no-follow",
            "--json",
        ],
        &[],
        "",
    )
    .await;
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    let events = json_lines(&tail.stdout);
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["data"]["total"], 12);
    assert_eq!(events[0]["type"], "order.created");
    assert_eq!(events[0]["datacontenttype"], "application/json");
    assert_eq!(events[1]["subject"], "order-2");
    assert_eq!(events[1]["data"]["paid"], true);
    assert_eq!(events[1]["rlstream"], "orders");
    assert_eq!(events[1]["rlsequence"], 2);
    assert_eq!(events[3]["data"], "plain words");
    assert_eq!(events[3]["datacontenttype"], "text/plain");

    let human = riverlog(
        &url,
        &["tail", "orders", "--from", "seq:4", "--no-follow"],
        &[],
        "",
    )
    .await;
    assert!(
        human.stdout.contains("orders#4 @4 riverlog.cli"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.trim_end().ends_with("plain words"),
        "{}",
        human.stdout
    );

    // A duplicate id is reported, not appended twice.
    let again = riverlog(
        &url,
        &["publish", "orders", "--id", "o-1", "--data", "x"],
        &[],
        "",
    )
    .await;
    assert_eq!(again.stdout.trim(), "orders#1 @1 o-1 duplicate");
}

#[tokio::test]
async fn tail_follows_new_events_across_a_pattern() {
    let server = TestServer::start().await;
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args([
            "tail",
            "orders:*",
            "--count",
            "2",
            "--server",
            &server.url(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut client = server.client().await;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line);
        }
        seen
    });
    // The tail starts at `latest`, fixed before the server counts the
    // subscription: what is published after that, it sees.
    eventually("the tail's subscription", async || {
        let text = server.scrape().await;
        (metric(&text, "riverlog_subscriptions_active", &[]) == Some(1.0)).then_some(())
    })
    .await;
    for i in 0..2 {
        let orders = format!("orders:{i}");
        publish(&mut client, &orders, vec![event(&format!("e{i}"))]).await;
        publish(&mut client, "billing", vec![event(&format!("b{i}"))]).await;
    }
    let seen = within(reader).await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|l| l.contains(" orders:")), "{seen:?}");
    assert!(within(tail.wait()).await.unwrap().success());
}

#[tokio::test]
async fn streams_and_groups_administration() {
    let server = TestServer::start().await;
    let url = server.url();
    let run = |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let r = riverlog(&url, args, &[], "").await;
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            r.stdout
        }
    };
    assert_eq!(
        run(&[
            "streams",
            "create",
            "jobs",
            "--max-events",
            "100",
            "--ttl",
            "1h"
        ])
        .await
        .trim(),
        "created jobs"
    );
    riverlog(&url, &["publish", "jobs", "--data", "-"], &[], "a\nb\nc\n").await;
    let info: Value =
        serde_json::from_str(&run(&["streams", "info", "jobs", "--json"]).await).unwrap();
    assert_eq!(info["event_count"], 3);
    assert_eq!(info["retention"]["max_events"], 100);
    assert_eq!(info["retention"]["ttl_seconds"], 3600.0);
    assert!(run(&["streams", "ls"]).await.starts_with("jobs\tevents=3"));

    assert_eq!(
        run(&[
            "groups",
            "create",
            "jobs",
            "workers",
            "--ack-timeout",
            "30s",
            "--max-deliveries",
            "3"
        ])
        .await
        .trim(),
        "created jobs/workers (dead letters to jobs:dlq)"
    );
    fetch(&mut server.groups().await, "jobs", "workers", "w1", 2, 0).await;
    let pending = json_lines(&run(&["groups", "pending", "jobs", "workers", "--json"]).await);
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0]["consumer"], "w1");
    let group: Value =
        serde_json::from_str(&run(&["groups", "info", "jobs", "workers", "--json"]).await).unwrap();
    assert_eq!(
        (group["pending"].as_u64(), group["lag"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        run(&["groups", "ls", "jobs"])
            .await
            .starts_with("jobs/workers\tpending=2")
    );
    assert_eq!(
        run(&["groups", "seek", "jobs", "workers", "--to", "latest"])
            .await
            .trim(),
        "jobs/workers goes on after sequence 3 (2 pending entries removed, lag 0)"
    );
    assert_eq!(
        run(&[
            "groups",
            "seek",
            "jobs",
            "workers",
            "--to",
            "2000-01-01T00:00:00Z"
        ])
        .await
        .trim(),
        "jobs/workers goes on after sequence 0 (0 pending entries removed, lag 3)"
    );
    assert_eq!(
        run(&["groups", "redrive", "jobs", "workers", "--sequences", "1-5"])
            .await
            .trim(),
        "redrove 0 dead letters to jobs/workers"
    );
    assert_eq!(
        run(&["groups", "delete", "jobs", "workers"]).await.trim(),
        "deleted jobs/workers"
    );

    let trimmed: Value =
        serde_json::from_str(&run(&["streams", "trim", "jobs", "--keep", "1"]).await).unwrap();
    assert_eq!(trimmed["removed"], 2);
    assert_eq!(
        run(&["streams", "delete", "jobs"]).await.trim(),
        "deleted jobs (1 events)"
    );
    assert_eq!(run(&["streams", "ls"]).await, "");
}

#[tokio::test]
async fn failures_have_clear_messages_and_exit_codes() {
    let server = TestServer::start_with(|c| {
        c.auth.tokens = vec![TokenConfig {
            name: "cli".into(),
            sha256: token_digest("cli-secret"),
            publish: vec!["*".into()],
            subscribe: vec!["*".into()],
            admin: true,
            metrics: false,
        }];
    })
    .await;
    let url = server.url();
    let token = [("RIVERLOG_TOKEN", "cli-secret")];

    let missing = riverlog(&url, &["streams", "info", "nope"], &token, "").await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("NotFound (STREAM_NOT_FOUND)"),
        "{}",
        missing.stderr
    );

    let nowhere = riverlog(
        &url,
        &["groups", "seek", "s", "g", "--to", "yesterday"],
        &token,
        "",
    )
    .await;
    assert_eq!(nowhere.code, 2, "a usage error");
    assert!(
        nowhere
            .stderr
            .contains("use earliest, latest, a sequence number or an RFC 3339 time"),
        "{}",
        nowhere.stderr
    );

    let anonymous = riverlog(&url, &["streams", "ls"], &[], "").await;
    assert_eq!(anonymous.code, 1);
    assert!(
        anonymous.stderr.contains("(UNAUTHENTICATED)"),
        "{}",
        anonymous.stderr
    );

    let conflict = riverlog(
        &url,
        &["publish", "s", "--data", "x", "--expect-last-sequence", "5"],
        &token,
        "",
    )
    .await;
    assert_eq!(conflict.code, 1);
    assert!(
        conflict.stderr.contains("WRONG_EXPECTED_SEQUENCE"),
        "{}",
        conflict.stderr
    );

    let bad_line = riverlog(
        &url,
        &["publish", "s", "--data", "-"],
        &token,
        "{\"specversion\":\"1.0\",\"id\":\"x\"}\n",
    )
    .await;
    assert_eq!(bad_line.code, 2);
    assert!(
        bad_line
            .stderr
            .contains("stdin line 1: `source` is required"),
        "{}",
        bad_line.stderr
    );

    let usage = riverlog(&url, &["tail", "s", "--from", "tomorrow"], &token, "").await;
    assert_eq!(usage.code, 2);
    assert!(
        usage.stderr.contains("use latest, earliest"),
        "{}",
        usage.stderr
    );
    let no_data = riverlog(&url, &["publish", "s"], &token, "").await;
    assert_eq!(no_data.code, 2);

    let unreachable = riverlog("http://127.0.0.1:1", &["streams", "ls"], &token, "").await;
    assert_eq!(unreachable.code, 3);
    assert!(
        unreachable
            .stderr
            .contains("cannot reach http://127.0.0.1:1"),
        "{}",
        unreachable.stderr
    );
}

#[tokio::test]
async fn stdin_goes_over_one_publish_stream_with_chained_expectations() {
    let server = TestServer::start().await;
    let url = server.url();
    let lines: String = (1..=10).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let run = riverlog(
        &url,
        &[
            "publish",
            "chain",
            "--data",
            "-",
            "--batch",
            "3",
            "--expect-last-sequence",
            "0",
        ],
        &[],
        &lines,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sequences: Vec<_> = run
        .stdout
        .lines()
        .map(|l| l.split(['#', ' ']).nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        sequences,
        (1..=10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    // Four requests on PublishStream, each expecting where the last left off.
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "riverlog_publish_stream_requests_total",
            &[("rpc_grpc_status_code", "0")]
        ),
        Some(4.0)
    );

    // Run again with the same expectation: the first batch is refused,
    // and nothing after it lands out of place.
    let again = riverlog(
        &url,
        &[
            "publish",
            "chain",
            "--data",
            "-",
            "--batch",
            "3",
            "--expect-last-sequence",
            "0",
        ],
        &[],
        &lines,
    )
    .await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("WRONG_EXPECTED_SEQUENCE"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, "");
    let mut client = server.client().await;
    assert_eq!(read_all(&mut client, "chain").await.len(), 10);
}

/// The text data of a recorded event.
fn text_data(e: &riverlog::proto::v1::RecordedEvent) -> String {
    use riverlog::proto::cloudevent::cloud_event::Data;
    match e
        .event
        .as_ref()
        .expect("event")
        .decode()
        .expect("decodes")
        .data
    {
        Some(Data::TextData(text)) => text,
        other => panic!("not text data: {other:?}"),
    }
}

/// Starts `riverlog ARGS` against `server` with stdin left open.
fn spawn_riverlog(server: &str, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args(args)
        .env("RIVERLOG_SERVER", server)
        .env_remove("RIVERLOG_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cli starts")
}

#[tokio::test]
async fn a_refused_stdin_batch_stops_the_sending_and_the_output_lists_exactly_what_landed() {
    use crate::publish_stream::{WriteLock, in_flight_reaches};
    let server = TestServer::start_with(|c| c.max_event_size = 1024).await;
    let url = server.url();
    let mut client = server.client().await;
    publish(&mut client, "stop", vec![event("seed")]).await;
    let big = "x".repeat(2000);
    // The writer stalled, so every batch is sent before any answer comes
    // back: those after the refused one were sent and are appended too.
    let lock = WriteLock::take(&server.db).await;
    let mut cli = spawn_riverlog(
        &url,
        &["publish", "stop", "--data", "-", "--batch", "1", "--json"],
    );
    let mut stdin = cli.stdin.take().unwrap();
    stdin
        .write_all(format!("a\nb\n{big}\nc\nd\ne\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    in_flight_reaches(&server, 6).await;
    lock.release().await;
    let out = within(cli.wait_with_output()).await.unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("EVENT_TOO_LARGE"), "{stderr}");
    let printed: Vec<String> = json_lines(&String::from_utf8(out.stdout).unwrap())
        .iter()
        .map(|p| p["sequence"].to_string())
        .collect();
    assert_eq!(
        printed,
        ["2", "3", "4", "5", "6"],
        "every appended event, in order"
    );
    let stored: Vec<String> = read_all(&mut client, "stop")
        .await
        .iter()
        .map(text_data)
        .collect();
    assert_eq!(
        stored[1..],
        ["a", "b", "c", "d", "e"],
        "never the refused one"
    );

    // With --expect-last-sequence each batch expects where the ones before
    // it lead: those after the refused one fail too, whatever the timing.
    let run = riverlog(
        &url,
        &[
            "publish",
            "stop2",
            "--data",
            "-",
            "--batch",
            "1",
            "--expect-last-sequence",
            "0",
        ],
        &[],
        &format!("a\nb\n{big}\nc\nd\ne\n"),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("EVENT_TOO_LARGE"), "{}", run.stderr);
    assert_eq!(
        read_all(&mut client, "stop2").await.len(),
        2,
        "a and b only"
    );
}

#[tokio::test]
async fn a_refusal_ends_the_publish_without_waiting_for_stdin_to_end() {
    let server = TestServer::start_with(|c| c.max_event_size = 1024).await;
    let mut cli = spawn_riverlog(
        &server.url(),
        &["publish", "tailed", "--data", "-", "--batch", "1"],
    );
    let mut stdin = cli.stdin.take().unwrap();
    stdin
        .write_all(format!("a\n{}\n", "x".repeat(2000)).as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    // Stdin stays open, like `tail -f`: the refusal alone ends the run.
    let out = within(cli.wait_with_output()).await.unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("EVENT_TOO_LARGE"), "{stderr}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    drop(stdin);
}

#[tokio::test]
async fn version_names_the_commit_it_was_built_from() {
    let run = riverlog("", &["--version"], &[], "").await;
    assert_eq!(run.code, 0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = std::env::var("RIVERLOG_GIT_COMMIT")
        .ok()
        .or(head)
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        run.stdout.trim(),
        format!("riverlog {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn serve_help_shows_every_default() {
    // `riverlog config` with nothing set prints each default.
    let mut config = std::process::Command::new(env!("CARGO_BIN_EXE_riverlog"));
    config.arg("config");
    let mut help = std::process::Command::new(env!("CARGO_BIN_EXE_riverlog"));
    help.args(["serve", "--help"]);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("RIVERLOG_")) {
        config.env_remove(&name);
        help.env_remove(&name);
    }
    let config = String::from_utf8(config.output().unwrap().stdout).unwrap();
    let help = String::from_utf8(help.output().unwrap().stdout).unwrap();
    let flag_help = |key: &str| -> String {
        let flag = format!("--{} <VALUE>", key.replace('_', "-"));
        let start = help.find(&flag).unwrap_or_else(|| panic!("{flag} missing"));
        let rest = &help[start + flag.len()..];
        rest[..rest.find("\n      --").unwrap_or(rest.len())].to_owned()
    };
    let mut checked = 0;
    for line in config.lines().filter(|l| l.ends_with("# default")) {
        if let Some(unset) = line.strip_prefix("# ") {
            let key = unset.split_whitespace().next().unwrap();
            assert!(
                !flag_help(key).contains("[default:"),
                "{key} has no default"
            );
            continue;
        }
        let (key, value) = line
            .trim_end_matches("# default")
            .split_once(" = ")
            .unwrap();
        let value = value.trim().trim_matches('"');
        assert!(
            flag_help(key).contains(&format!("[default: {value}]")),
            "{key}: {}",
            flag_help(key)
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} defaults found in:\n{config}");
}
