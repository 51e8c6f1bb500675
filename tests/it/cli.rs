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
        serde_json::from_str(&run(&["streams", "info", "jobs", "-o", "json"]).await).unwrap();
    assert_eq!(info["event_count"], 3);
    assert_eq!(info["retention"]["max_events"], 100);
    assert_eq!(info["retention"]["ttl_seconds"], 3600.0);
    // `--json` from before `-o` still works.
    let old: Value =
        serde_json::from_str(&run(&["streams", "info", "jobs", "--json"]).await).unwrap();
    assert_eq!(old, info);
    assert_eq!(
        table_rows(&run(&["streams", "ls"]).await)[0][..3],
        ["jobs", "3", "1"]
    );

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
    let pending = json_lines(&run(&["groups", "pending", "jobs", "workers", "-o", "json"]).await);
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0]["consumer"], "w1");
    let group: Value =
        serde_json::from_str(&run(&["groups", "info", "jobs", "workers", "-o", "json"]).await)
            .unwrap();
    assert_eq!(
        (group["pending"].as_u64(), group["lag"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        table_rows(&run(&["groups", "ls", "jobs"]).await)[0][..3],
        ["jobs", "workers", "2"]
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
        serde_json::from_str(&run(&["streams", "trim", "jobs", "--keep", "1", "-o", "json"]).await)
            .unwrap();
    assert_eq!(trimmed["removed"], 2);
    assert_eq!(
        run(&["streams", "delete", "jobs", "--yes"]).await.trim(),
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

/// The cells of a `-o text` table's rows (the header left out), checking
/// on the way that every row's columns start where the header's do.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    // A column starts after a run of at least two spaces (header names
    // like "LAST APPEND" have one inside).
    let starts: Vec<usize> = std::iter::once(0)
        .chain(header.match_indices("  ").filter_map(|(i, _)| {
            let rest = &header[i..];
            let next = i + rest.len() - rest.trim_start().len();
            (header.as_bytes()[i - 1] != b' ').then_some(next)
        }))
        .collect();
    lines
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(n, &start)| {
                    assert!(
                        start == 0 || line.as_bytes()[start - 1] == b' ',
                        "column {n} of {line:?} does not start at {start}:\n{text}"
                    );
                    let end = starts.get(n + 1).copied().unwrap_or(line.len());
                    line[start..end.min(line.len())].trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// Runs `riverlog ARGS` on a terminal: `script` (util-linux) gives it one
/// for stdin, stdout and stderr, and types `input`. `shell_prefix` runs
/// before it in the same shell line (a pipe into it, say). The terminal
/// mixes stdout and stderr into `stdout`.
async fn riverlog_on_terminal(server: &str, shell_prefix: &str, args: &[&str], input: &str) -> Run {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(env!("CARGO_BIN_EXE_riverlog"))
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{shell_prefix}{line}"))
        .arg("/dev/null")
        .env("RIVERLOG_SERVER", server)
        .env_remove("RIVERLOG_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) starts");
    let mut typed = child.stdin.take().unwrap();
    typed.write_all(input.as_bytes()).await.unwrap();
    drop(typed);
    let out = within(child.wait_with_output()).await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The subcommands `riverlog [COMMAND...] --help` lists (without `help`).
async fn subcommands(path: &[&str]) -> Vec<String> {
    let args: Vec<&str> = path.iter().copied().chain(["--help"]).collect();
    let help = riverlog("", &args, &[], "").await;
    assert_eq!(help.code, 0, "{}", help.stderr);
    help.stdout
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn server_takes_host_port_urls_and_the_environment() {
    let server = TestServer::start().await;
    let host_port = server.addr.to_string();
    let url = server.url();
    publish(&mut server.client().await, "s", vec![event("a")]).await;

    // host:port as a flag (plaintext), an http:// URL from the variable.
    let flag = riverlog(
        "",
        &["streams", "--server", &host_port, "-o", "json"],
        &[],
        "",
    )
    .await;
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    assert_eq!(json_lines(&flag.stdout)[0]["stream"], "s");
    let env = riverlog(&url, &["streams", "-o", "json"], &[], "").await;
    assert_eq!(env.stdout, flag.stdout);
    let env_host_port = riverlog(&host_port, &["streams", "-o", "json"], &[], "").await;
    assert_eq!(env_host_port.stdout, flag.stdout);

    for (server_arg, expected) in [
        ("localhost", "\"localhost\" has no port"),
        ("grpc://127.0.0.1:1", "grpc:// is not supported"),
        ("127.0.0.1:1/path", "is not an address"),
    ] {
        let bad = riverlog("", &["streams", "--server", server_arg], &[], "").await;
        assert_eq!(bad.code, 2, "{server_arg}");
        assert!(bad.stderr.contains(expected), "{}", bad.stderr);
        assert!(bad.stderr.contains("give host:port"), "{}", bad.stderr);
    }
    let both = riverlog(&url, &["streams", "--tls"], &[], "").await;
    assert_eq!(both.code, 2);
    assert!(
        both.stderr.contains("use https:// or drop --tls"),
        "{}",
        both.stderr
    );
}

#[tokio::test]
async fn tls_is_spoken_with_https_or_tls_and_a_mismatch_is_named_both_ways() {
    let pki = crate::tls::Pki::new();
    let tls_server = pki.server(false).await;
    let ca = pki.path("ca.pem");
    let port = tls_server.addr.port();
    publish_over_tls_is_possible(&tls_server, &ca).await;

    // TLS with https:// or with --tls on host:port.
    let https = format!("https://localhost:{port}");
    let host_port = format!("localhost:{port}");
    for args in [
        vec!["streams", "--server", &https, "--ca-cert", &ca],
        vec!["streams", "--server", &host_port, "--tls", "--ca-cert", &ca],
    ] {
        let run = riverlog("", &args, &[], "").await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert_eq!(table_rows(&run.stdout)[0][0], "tls", "{args:?}");
    }
    let by_env = riverlog(
        &host_port,
        &["streams", "--ca-cert", &ca],
        &[("RIVERLOG_TLS", "true")],
        "",
    )
    .await;
    assert_eq!(by_env.code, 0, "{}", by_env.stderr);

    // Without the CA the certificate is refused, and the message says so
    // rather than only "transport error".
    let no_ca = riverlog("", &["streams", "--server", &https], &[], "").await;
    assert_eq!(no_ca.code, 3, "{}", no_ca.stderr);
    assert!(
        no_ca
            .stderr
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        no_ca.stderr
    );

    // Plaintext to the TLS server: host:port alone, and http://.
    for server_arg in [host_port.clone(), format!("http://127.0.0.1:{port}")] {
        let plain = riverlog("", &["streams", "--server", &server_arg], &[], "").await;
        assert_eq!(plain.code, 2, "{server_arg}: {}", plain.stderr);
        assert!(
            plain.stderr.contains("speaks TLS; use https:// or --tls"),
            "{server_arg}: {}",
            plain.stderr
        );
        assert!(
            !plain.stderr.contains("transport error"),
            "{}",
            plain.stderr
        );
    }

    // TLS to a plaintext server.
    let plain_server = TestServer::start().await;
    let plain_port = plain_server.addr.port();
    for args in [
        vec![
            "streams".to_owned(),
            "--server".into(),
            format!("https://localhost:{plain_port}"),
        ],
        vec![
            "streams".to_owned(),
            "--server".into(),
            format!("127.0.0.1:{plain_port}"),
            "--tls".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let tls = riverlog("", &args, &[], "").await;
        assert_eq!(tls.code, 2, "{args:?}: {}", tls.stderr);
        assert!(
            tls.stderr
                .contains("does not speak TLS; use http:// or drop --tls"),
            "{args:?}: {}",
            tls.stderr
        );
    }

    // Nobody there: still "cannot reach", exit 3, not a guess about TLS.
    drop(plain_server);
    let gone = riverlog(
        "",
        &["streams", "--server", "127.0.0.1:1", "--tls"],
        &[],
        "",
    )
    .await;
    assert_eq!(gone.code, 3, "{}", gone.stderr);
    assert!(
        gone.stderr.contains("cannot reach https://127.0.0.1:1"),
        "{}",
        gone.stderr
    );
}

/// Puts a stream named `tls` on the TLS server, through the CLI.
async fn publish_over_tls_is_possible(server: &TestServer, ca: &str) {
    let url = format!("https://localhost:{}", server.addr.port());
    let run = riverlog(
        &url,
        &["publish", "tls", "--data", "x", "--ca-cert", ca],
        &[],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test]
async fn streams_and_groups_without_a_subcommand_list() {
    let server = TestServer::start().await;
    let url = server.url();
    let mut client = server.client().await;
    publish(&mut client, "orders", vec![event("a")]).await;
    publish(&mut client, "billing", vec![event("b")]).await;
    group("orders", "audit")
        .create(&mut server.groups().await)
        .await;
    group("orders", "shipping")
        .create(&mut server.groups().await)
        .await;

    for format in ["text", "json"] {
        let bare = riverlog(&url, &["streams", "-o", format], &[], "").await;
        assert_eq!(bare.code, 0, "{}", bare.stderr);
        let ls = riverlog(&url, &["streams", "ls", "-o", format], &[], "").await;
        let list = riverlog(&url, &["streams", "list", "-o", format], &[], "").await;
        assert_eq!(bare.stdout, ls.stdout, "{format}");
        assert_eq!(bare.stdout, list.stdout, "{format}");

        let bare = riverlog(&url, &["groups", "orders", "-o", format], &[], "").await;
        assert_eq!(bare.code, 0, "{}", bare.stderr);
        let ls = riverlog(&url, &["groups", "ls", "orders", "-o", format], &[], "").await;
        assert_eq!(bare.stdout, ls.stdout, "{format}");
    }
    let names: Vec<String> = table_rows(&riverlog(&url, &["streams"], &[], "").await.stdout)
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(names, ["billing", "orders"]);
    let pattern = riverlog(&url, &["streams", "ord*"], &[], "").await;
    assert_eq!(table_rows(&pattern.stdout).len(), 1);
    let groups: Vec<String> =
        table_rows(&riverlog(&url, &["groups", "orders"], &[], "").await.stdout)
            .into_iter()
            .map(|row| row[1].clone())
            .collect();
    assert_eq!(groups, ["audit", "shipping"]);

    let no_stream = riverlog(&url, &["groups"], &[], "").await;
    assert_eq!(no_stream.code, 2);
    assert!(
        no_stream
            .stderr
            .contains("groups belong to a stream: give it, as in `riverlog groups STREAM`"),
        "{}",
        no_stream.stderr
    );
    let missing = riverlog(&url, &["groups", "nope"], &[], "").await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("STREAM_NOT_FOUND"),
        "{}",
        missing.stderr
    );
    let misplaced = riverlog(&url, &["streams", "ord*", "ls"], &[], "").await;
    assert_eq!(misplaced.code, 2);
    assert!(
        misplaced.stderr.contains("put it after"),
        "{}",
        misplaced.stderr
    );
}

#[tokio::test]
async fn publish_reads_stdin_unless_it_is_a_terminal() {
    let server = TestServer::start().await;
    let url = server.url();
    let piped = riverlog(
        &url,
        &["publish", "piped", "-o", "json"],
        &[],
        "{\"n\":1}\nplain\n",
    )
    .await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(json_lines(&piped.stdout).len(), 2);
    let stored = read_all(&mut server.client().await, "piped").await;
    assert_eq!(
        stored.iter().map(text_data).collect::<Vec<_>>(),
        ["{\"n\":1}", "plain"]
    );

    // An empty pipe publishes nothing, like any filter.
    let empty = riverlog(&url, &["publish", "piped"], &[], "").await;
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert!(
        empty.stderr.starts_with("published 0 events"),
        "{}",
        empty.stderr
    );

    // `--data` wins over a pipe.
    let data = riverlog(&url, &["publish", "piped", "--data", "x"], &[], "ignored\n").await;
    assert_eq!(data.code, 0, "{}", data.stderr);
    assert_eq!(read_all(&mut server.client().await, "piped").await.len(), 3);

    let terminal = riverlog_on_terminal(&url, "", &["publish", "piped"], "").await;
    assert_eq!(terminal.code, 2, "{}", terminal.stdout);
    assert!(
        terminal
            .stdout
            .contains("give the event data with --data TEXT, or pipe events to stdin"),
        "{}",
        terminal.stdout
    );
    assert_eq!(read_all(&mut server.client().await, "piped").await.len(), 3);
}

#[tokio::test]
async fn json_data_with_a_json_content_type_is_checked_before_calling_the_server() {
    // Nothing listens on port 1: a usage error proves no call was made.
    for content_type in [
        "application/json",
        "text/json; charset=utf-8",
        "application/vnd.x+json",
    ] {
        let bad = riverlog(
            "127.0.0.1:1",
            &[
                "publish",
                "s",
                "--data",
                "{\"total\": 12",
                "--content-type",
                content_type,
            ],
            &[],
            "",
        )
        .await;
        assert_eq!(bad.code, 2, "{content_type}: {}", bad.stderr);
        assert!(
            bad.stderr.contains(&format!(
                "--data is not JSON, which --content-type {content_type} declares: EOF while parsing an object at line 1 column 12"
            )),
            "{}",
            bad.stderr
        );
    }
    // Other types take any text; JSON types take any JSON value.
    let server = TestServer::start().await;
    let url = server.url();
    for (data, content_type) in [
        ("{\"total\": 12", "text/plain"),
        ("\"a string\"", "application/json"),
        ("[1, 2]", "application/cloudevents+json"),
    ] {
        let ok = riverlog(
            &url,
            &[
                "publish",
                "s",
                "--data",
                data,
                "--content-type",
                content_type,
            ],
            &[],
            "",
        )
        .await;
        assert_eq!(ok.code, 0, "{data} {content_type}: {}", ok.stderr);
    }

    // From stdin: the line is named and its batch is not sent.
    let lines = riverlog(
        &url,
        &["publish", "lines", "--content-type", "application/json"],
        &[],
        "{\"ok\":true}\nnot json\n",
    )
    .await;
    assert_eq!(lines.code, 2, "{}", lines.stderr);
    assert!(
        lines.stderr.contains(
            "stdin line 2 is not JSON, which --content-type application/json declares: expected ident at line 1 column 2"
        ),
        "{}",
        lines.stderr
    );
    let mut client = server.client().await;
    assert_eq!(read_all(&mut client, "s").await.len(), 3);
    let lines_stream = client
        .get_stream(riverlog::proto::v1::GetStreamRequest {
            stream: "lines".into(),
        })
        .await;
    assert_eq!(
        lines_stream.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::NotFound)
    );
}

#[tokio::test]
async fn every_command_prints_tables_or_json_lines() {
    let server = TestServer::start().await;
    let url = server.url();
    let run = |args: Vec<&'static str>| {
        let url = url.clone();
        async move {
            let r = riverlog(&url, &args, &[], "").await;
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            r.stdout
        }
    };
    let json = |args: Vec<&'static str>| async move {
        let out = run([args, vec!["-o", "json"]].concat()).await;
        json_lines(&out)
    };
    let created = json(vec!["streams", "create", "jobs", "--max-events", "9"]).await;
    assert_eq!(created[0]["stream"], "jobs");
    assert_eq!(created[0]["retention"]["max_events"], 9);
    let published = json(vec!["publish", "jobs", "--data", "1"]).await;
    assert_eq!(published[0]["sequence"], 1);
    json(vec!["publish", "jobs", "--data", "2"]).await;

    let streams = run(vec!["streams"]).await;
    assert_eq!(
        streams
            .lines()
            .next()
            .unwrap()
            .split("   ")
            .map(str::trim)
            .collect::<Vec<_>>(),
        ["STREAM", "EVENTS", "FIRST", "LAST", "GROUPS", "LAST APPEND"]
    );
    assert_eq!(table_rows(&streams)[0][..5], ["jobs", "2", "1", "2", "0"]);
    let info = run(vec!["streams", "info", "jobs"]).await;
    assert!(
        info.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["events", "2"]),
        "{info}"
    );
    assert!(
        info.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["max", "events", "9"]),
        "{info}"
    );

    let group = json(vec![
        "groups",
        "create",
        "jobs",
        "workers",
        "--max-deliveries",
        "2",
    ])
    .await;
    assert_eq!(
        (
            group[0]["group"].as_str(),
            group[0]["max_deliveries"].as_u64()
        ),
        (Some("workers"), Some(2))
    );
    fetch(&mut server.groups().await, "jobs", "workers", "w1", 1, 0).await;
    let info = run(vec!["groups", "info", "jobs", "workers"]).await;
    let consumers = info.split("\n\n").nth(1).expect("a consumers table");
    assert_eq!(table_rows(consumers)[0][..2], ["w1", "1"]);
    let pending = table_rows(&run(vec!["groups", "pending", "jobs", "workers"]).await);
    assert_eq!(pending[0][..3], ["1", "w1", "1"]);
    let pending = json(vec!["groups", "pending", "jobs", "workers"]).await;
    assert_eq!(pending[0]["sequence"], 1);
    let sought = json(vec!["groups", "seek", "jobs", "workers", "--to", "latest"]).await;
    assert_eq!(sought[0]["pending_removed"], 1);
    assert_eq!(sought[0]["group"]["lag"], 0);
    let redriven = json(vec!["groups", "redrive", "jobs", "workers", "--all"]).await;
    assert_eq!(
        (
            redriven[0]["redriven"].as_u64(),
            redriven[0]["more"].as_bool()
        ),
        (Some(0), Some(false))
    );
    let events = json(vec!["tail", "jobs", "--from", "earliest", "--no-follow"]).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e["rlsequence"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let deleted = json(vec!["groups", "delete", "jobs", "workers"]).await;
    assert_eq!(deleted[0]["deleted"], true);
    let trimmed = run(vec!["streams", "trim", "jobs", "--keep", "1"]).await;
    assert_eq!(trimmed.trim(), "removed 1 events from jobs");
    let deleted = json(vec!["streams", "delete", "jobs", "--yes"]).await;
    assert_eq!(deleted[0]["events_deleted"], 1);
    let empty = riverlog(&url, &["streams"], &[], "").await;
    assert_eq!(
        (empty.stdout.as_str(), empty.stderr.trim()),
        ("", "no streams")
    );

    let bad = riverlog(&url, &["streams", "-o", "yaml"], &[], "").await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("[possible values: text, json]"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn bulk_publish_sums_up_on_stderr_and_shows_progress_only_on_a_terminal() {
    let server = TestServer::start().await;
    let url = server.url();
    let piped = riverlog(&url, &["publish", "bulk", "--batch", "2"], &[], "a\nb\nc\n").await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(piped.stdout.lines().count(), 3);
    let stored = read_all(&mut server.client().await, "bulk").await;
    let bytes: usize = stored
        .iter()
        .map(|e| e.event.as_ref().unwrap().encoded().len())
        .sum();
    // No terminal: the summary alone, no progress drawing.
    let summary = piped.stderr.trim_end();
    assert_eq!(piped.stderr.lines().count(), 1, "{:?}", piped.stderr);
    assert!(
        summary.starts_with(&format!("published 3 events ({bytes} B) in ")),
        "{summary}"
    );
    assert!(summary.contains(" events/s, "), "{summary}");
    assert!(!piped.stderr.contains('\x1b'), "{:?}", piped.stderr);

    let again = riverlog(&url, &["publish", "bulk"], &[], "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}\n{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}\n").await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("; 1 of them were duplicates"),
        "{}",
        again.stderr
    );

    // On a terminal the counter is drawn on stderr; the per-event lines and
    // the summary still come.
    let terminal =
        riverlog_on_terminal(&url, "printf 'd\\ne\\n' | ", &["publish", "bulk"], "").await;
    assert_eq!(terminal.code, 0, "{}", terminal.stdout);
    // Three events, then one (and its duplicate), then these two.
    assert!(terminal.stdout.contains("bulk#5 @"), "{}", terminal.stdout);
    assert!(terminal.stdout.contains("bulk#6 @"), "{}", terminal.stdout);
    assert!(
        terminal.stdout.contains("published 2 events ("),
        "{}",
        terminal.stdout
    );
}

#[tokio::test]
async fn deleting_a_stream_asks_on_a_terminal_and_needs_yes_without_one() {
    let server = TestServer::start().await;
    let url = server.url();
    let mut client = server.client().await;
    publish(&mut client, "precious", events("p", 0..3)).await;

    let script = riverlog(&url, &["streams", "delete", "precious"], &[], "y\n").await;
    assert_eq!(script.code, 2, "{}", script.stderr);
    assert!(
        script
            .stderr
            .contains("deleting stream precious cannot be undone: pass --yes to confirm"),
        "{}",
        script.stderr
    );
    assert_eq!(read_all(&mut client, "precious").await.len(), 3);

    for answer in ["n\n", "\n", "whatever\n"] {
        let no = riverlog_on_terminal(&url, "", &["streams", "delete", "precious"], answer).await;
        assert_eq!(no.code, 1, "{answer:?}: {}", no.stdout);
        assert!(
            no.stdout.contains(
                "delete stream precious with its 3 events, 0 groups and its checkpoints? [y/N]"
            ),
            "{}",
            no.stdout
        );
        assert!(
            no.stdout.contains("not confirmed; nothing was changed"),
            "{}",
            no.stdout
        );
        assert_eq!(read_all(&mut client, "precious").await.len(), 3);
    }
    let missing = riverlog_on_terminal(&url, "", &["streams", "delete", "nope"], "y\n").await;
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing.stdout.contains("STREAM_NOT_FOUND"),
        "{}",
        missing.stdout
    );
    assert!(!missing.stdout.contains("[y/N]"), "{}", missing.stdout);

    let yes = riverlog_on_terminal(&url, "", &["streams", "delete", "precious"], "y\n").await;
    assert_eq!(yes.code, 0, "{}", yes.stdout);
    assert!(
        yes.stdout.contains("deleted precious (3 events)"),
        "{}",
        yes.stdout
    );

    publish(&mut client, "scratch", vec![event("s")]).await;
    let flag = riverlog(&url, &["streams", "delete", "scratch", "-y"], &[], "").await;
    assert_eq!(
        (flag.code, flag.stdout.trim()),
        (0, "deleted scratch (1 events)")
    );
}

#[tokio::test]
async fn tailing_a_missing_stream_says_so_unless_told_to_wait() {
    let server = TestServer::start().await;
    let url = server.url();
    let missing = riverlog(&url, &["tail", "later", "--no-follow"], &[], "").await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(
            "NotFound (STREAM_NOT_FOUND): stream later does not exist (--wait waits for it to be created)"
        ),
        "{}",
        missing.stderr
    );
    let bad_name = riverlog(&url, &["tail", "no spaces"], &[], "").await;
    assert_eq!(bad_name.code, 2, "{}", bad_name.stderr);

    let mut tail = spawn_riverlog(&url, &["tail", "later", "--wait", "--count", "1"]);
    eventually("the tail's subscription", async || {
        let text = server.scrape().await;
        (metric(&text, "riverlog_subscriptions_active", &[]) == Some(1.0)).then_some(())
    })
    .await;
    publish(&mut server.client().await, "later", vec![event("first")]).await;
    drop(tail.stdin.take());
    let out = within(tail.wait_with_output()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(" later#1 @")
    );
}

#[tokio::test]
async fn completion_scripts_and_man_pages_cover_every_subcommand() {
    let top = subcommands(&[]).await;
    assert!(
        top.contains(&"streams".to_owned()) && top.contains(&"man".to_owned()),
        "{top:?}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = riverlog("", &["completion", shell], &[], "").await;
        assert_eq!(script.code, 0, "{shell}: {}", script.stderr);
        for name in &top {
            assert!(
                script.stdout.contains(name.as_str()),
                "{shell} lacks {name}"
            );
        }
    }
    let bash = riverlog("", &["completion", "bash"], &[], "").await.stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riverlog.bash");
    std::fs::write(&file, bash).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let unknown = riverlog("", &["completion", "tcsh"], &[], "").await;
    assert_eq!(unknown.code, 2);

    let page = riverlog("", &["man"], &[], "").await;
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(
        page.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &page.stdout[..80]
    );
    assert!(page.stdout.contains(".TH riverlog 1"), "{}", page.stdout);
    let section = page
        .stdout
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .expect("a SUBCOMMANDS section");
    for name in &top {
        assert!(
            section.contains(&format!("riverlog\\-{}", name.replace('-', "\\-"))),
            "the man page lacks {name}"
        );
    }
    let version = riverlog("", &["--version"], &[], "").await.stdout;
    let version = version.trim().trim_start_matches("riverlog ");
    assert!(
        page.stdout.contains(version),
        "the man page lacks the version {version}"
    );

    // One page per command, subcommands of subcommands included.
    let pages = riverlog(
        "",
        &["man", "--out-dir", dir.path().to_str().unwrap()],
        &[],
        "",
    )
    .await;
    assert_eq!(pages.code, 0, "{}", pages.stderr);
    let mut expected = vec!["riverlog.1".to_owned()];
    for name in &top {
        expected.push(format!("riverlog-{name}.1"));
        if ["streams", "groups"].contains(&name.as_str()) {
            for sub in subcommands(&[name]).await {
                expected.push(format!("riverlog-{name}-{sub}.1"));
            }
        }
    }
    for file in &expected {
        let path = dir.path().join(file);
        assert!(
            pages.stdout.contains(&path.display().to_string()),
            "{file} not listed"
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{file}");
    }
    assert_eq!(
        pages.stdout.lines().count(),
        expected.len(),
        "{}",
        pages.stdout
    );
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

#[tokio::test]
async fn a_closed_pipe_ends_completion_and_man_with_a_message_not_a_panic() {
    // As in `riverlog completion bash | head -1`: the reader is gone
    // before the script is written (dropped right after the spawn, while
    // the child is still starting).
    for args in [&["completion", "bash"][..], &["man"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riverlog"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_http_port_given_as_server_is_named_as_such() {
    let server = TestServer::start().await;
    let http = server.api().url("");
    let authority = http
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let out = riverlog("", &["streams", "--server", &authority], &[], "").await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("answered plain HTTP, not gRPC") && out.stderr.contains(&authority),
        "{}",
        out.stderr
    );
}
