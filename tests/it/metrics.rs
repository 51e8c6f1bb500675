//! `/metrics`: every metric the operations guide lists moves under traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use riverlog::proto::v1;
use tonic::Code;

use crate::common::*;

/// Scrapes until `check` holds (gauges are sampled in the background).
async fn scrape_until(server: &TestServer, what: &str, check: impl Fn(&str) -> bool) -> String {
    eventually(what, async || {
        let text = server.scrape().await;
        check(&text).then_some(())
    })
    .await;
    let text = server.scrape().await;
    assert!(check(&text), "{what}:\n{text}");
    text
}

#[tokio::test]
async fn metrics_move_under_traffic() {
    let server = TestServer::start_with(|c| {
        c.group_metrics_interval = Duration::from_millis(20);
    })
    .await;
    let mut client = server.client().await;
    let before = server.scrape().await;
    assert_eq!(
        metric(&before, "riverlog_events_appended_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric(&before, "riverlog_subscriptions_active", &[]),
        Some(0.0)
    );
    assert_eq!(metric(&before, "riverlog_storage_up", &[]), Some(1.0));

    publish(&mut client, "orders", events("e", 0..3)).await;
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let text = server.scrape().await;
    assert_eq!(
        metric(&text, "riverlog_events_appended_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "riverlog_append_batch_size_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "riverlog_append_batch_size_sum", &[]),
        Some(3.0)
    );
    assert!(metric(&text, "riverlog_commit_duration_seconds_count", &[]) >= Some(1.0));
    let publish_ok = [
        ("rpc_system_name", "grpc"),
        ("rpc_method", "riverlog.v1.EventLog/Publish"),
        ("rpc_status_code", "OK"),
    ];
    assert_eq!(
        metric(&text, "rpc_server_call_duration_seconds_count", &publish_ok),
        Some(1.0),
        "{text}"
    );
    let not_found = [
        ("rpc_method", "riverlog.v1.EventLog/GetStream"),
        ("rpc_status_code", "NOT_FOUND"),
    ];
    assert_eq!(
        metric(&text, "rpc_server_call_duration_seconds_count", &not_found),
        Some(1.0)
    );
    assert!(
        metric(
            &text,
            "rpc_server_call_duration_seconds_bucket",
            &[
                ("rpc_method", "riverlog.v1.EventLog/Publish"),
                ("le", "+Inf")
            ]
        ) == Some(1.0)
    );

    // Subscriptions: active while open, their events counted.
    let mut sub = subscribe(&mut client, subscribe_request(&["orders"], None)).await;
    next_events(&mut sub, 3).await;
    let text = scrape_until(&server, "one subscription", |t| {
        metric(t, "riverlog_subscriptions_active", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_events_delivered_total",
            &[("via", "subscription")]
        ),
        Some(3.0)
    );
    // Read from storage: it subscribed from the earliest event.
    assert_eq!(
        metric(&text, "riverlog_subscription_storage_events_total", &[]),
        Some(3.0)
    );
    drop(sub);
    scrape_until(&server, "subscription closed", |t| {
        metric(t, "riverlog_subscriptions_active", &[]) == Some(0.0)
            && metric(
                t,
                "rpc_server_call_duration_seconds_count",
                &[
                    ("rpc_method", "riverlog.v1.EventLog/Subscribe"),
                    ("rpc_status_code", "CANCELLED"),
                ],
            ) == Some(1.0)
    })
    .await;

    // Consumer groups: deliveries, a redelivery, a dead letter, lag and
    // pending per group, open Consume streams.
    let mut groups = server.groups().await;
    group("orders", "billing")
        .max_deliveries(2)
        .create(&mut groups)
        .await;
    let text = scrape_until(&server, "lag of a new group", |t| {
        metric(
            t,
            "riverlog_group_lag",
            &[("stream", "orders"), ("group", "billing")],
        ) == Some(3.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_group_pending",
            &[("stream", "orders"), ("group", "billing")]
        ),
        Some(0.0)
    );
    let first = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!(seq_of(&first[0]), 1);
    let nack = |seq| nack_request("orders", "billing", vec![seq]);
    groups.nack(nack(1)).await.expect("nack");
    let again = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!((seq_of(&again[0]), again[0].delivery_count), (1, 2));
    groups.nack(nack(1)).await.expect("nack");
    // Two deliveries used up: the next fetch dead-letters it and moves on.
    let next = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    assert_eq!(seq_of(&next[0]), 2);
    let text = scrape_until(&server, "group traffic", |t| {
        metric(t, "riverlog_group_pending", &[("group", "billing")]) == Some(1.0)
            && metric(t, "riverlog_group_lag", &[("group", "billing")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "riverlog_events_delivered_total",
            &[("via", "group")]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "riverlog_events_redelivered_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "riverlog_events_dead_lettered_total", &[]),
        Some(1.0)
    );

    let consume = groups
        .consume(v1::ConsumeRequest {
            stream: "orders".into(),
            group: "billing".into(),
            consumer: "c2".into(),
            ..Default::default()
        })
        .await
        .expect("consume")
        .into_inner();
    scrape_until(&server, "one consumer", |t| {
        metric(t, "riverlog_consumers_active", &[]) == Some(1.0)
    })
    .await;
    drop(consume);
    scrape_until(&server, "consumer gone", |t| {
        metric(t, "riverlog_consumers_active", &[]) == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn calls_the_client_gives_up_on_count_as_cancelled() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("a")]).await;
    let mut groups = server.groups().await;
    group("s", "g").create(&mut groups).await;
    fetch(&mut groups, "s", "g", "c", 1, 0).await;
    // Nothing more to deliver: the fetch blocks until the client leaves.
    let blocked = groups.fetch(fetch_request("s", "g", "c", 1, 60_000));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), blocked)
            .await
            .is_err()
    );
    let cancelled = [
        ("rpc_method", "riverlog.v1.ConsumerGroups/Fetch"),
        ("rpc_status_code", "CANCELLED"),
    ];
    scrape_until(&server, "a cancelled Fetch", |t| {
        metric(t, "rpc_server_call_duration_seconds_count", &cancelled) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn unknown_methods_share_one_label() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/riverlog.v1.EventLog/NoSuchMethod-123");
    let codec = tonic_prost::ProstCodec::<v1::GetStreamRequest, v1::GetStreamResponse>::default();
    let err = grpc
        .unary(
            tonic::Request::new(v1::GetStreamRequest::default()),
            path,
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let text = server.scrape().await;
    assert!(!text.contains("NoSuchMethod"), "{text}");
    assert_eq!(
        metric(
            &text,
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "_OTHER"),
                ("rpc_status_code", "UNIMPLEMENTED"),
                ("error_type", "UNIMPLEMENTED")
            ]
        ),
        Some(1.0)
    );
}

/// A metric family as the README lists it or `/metrics` serves it: its
/// Prometheus name and its label names, `always` on every series (as far
/// as traffic can show) and `sometimes` only on some.
#[derive(Debug, Default, PartialEq)]
struct Family {
    always: BTreeSet<String>,
    sometimes: BTreeSet<String>,
}

/// The table of the README's "### Metrics" section: first column the
/// Prometheus name, fourth the labels, a label followed by an italic
/// *when ...* being conditional.
fn readme_families() -> BTreeMap<String, Family> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n### Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has a Metrics section");
    let ticked = |cell: &str| -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut rest = cell;
        while let Some(start) = rest.find('`') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('`') else { break };
            rest = &after[end + 1..];
            let conditional = rest
                .trim_start_matches(',')
                .trim_start()
                .starts_with("*when");
            out.push((after[..end].to_owned(), conditional));
        }
        out
    };
    let mut families = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let name = ticked(cells[0]).remove(0).0;
        let mut family = Family::default();
        for (label, conditional) in ticked(cells[3]) {
            if conditional {
                family.sometimes.insert(label);
            } else {
                family.always.insert(label);
            }
        }
        assert!(
            families.insert(name.clone(), family).is_none(),
            "{name} listed twice"
        );
    }
    families
}

/// The families `/metrics` serves (from `# TYPE` lines) and the label
/// names of their samples (`le` aside); a label is `always` when every
/// sample of the family has it.
fn served_families(text: &str) -> BTreeMap<String, Family> {
    let mut kinds = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            kinds.insert(name.to_owned(), kind.to_owned());
        }
    }
    let mut seen: BTreeMap<String, Vec<BTreeSet<String>>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').expect("sample value").0;
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let family = kinds
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (kinds[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{f}{s}")))
            })
            .unwrap_or_else(|| panic!("sample {name} of no TYPE"));
        let names: BTreeSet<String> = labels
            .trim_end_matches('}')
            .split("\",")
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
            .filter(|k| k != "le")
            .collect();
        seen.entry(family.clone()).or_default().push(names);
    }
    kinds
        .keys()
        .map(|name| {
            let samples = seen.remove(name).unwrap_or_default();
            let all: BTreeSet<String> = samples.iter().flatten().cloned().collect();
            let always: BTreeSet<String> = all
                .iter()
                .filter(|l| samples.iter().all(|s| s.contains(*l)))
                .cloned()
                .collect();
            let sometimes = all.difference(&always).cloned().collect();
            (name.clone(), Family { always, sometimes })
        })
        .collect()
}

#[tokio::test]
async fn the_readme_lists_every_metric_and_label_served_and_nothing_else() {
    let server = TestServer::start_with(|c| {
        c.group_metrics_interval = Duration::from_millis(20);
        c.retention_interval = Duration::from_millis(20);
        c.retention_max_events = Some(2);
    })
    .await;
    let mut client = server.client().await;
    // gRPC: appends, a refusal, a subscription, a PublishStream call, a
    // group with a redelivery and a dead letter, an unknown method.
    publish(&mut client, "orders", events("e", 0..3)).await;
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut sub = subscribe(&mut client, subscribe_request(&["orders"], None)).await;
    next_events(&mut sub, 2).await;
    drop(sub);
    let answers = client
        .publish_stream(futures::stream::iter(vec![publish_request(
            "orders",
            vec![event("s1")],
        )]))
        .await
        .expect("PublishStream opens")
        .into_inner();
    use futures::StreamExt as _;
    let answers: Vec<_> = within(answers.collect::<Vec<_>>()).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let mut groups = server.groups().await;
    group("orders", "billing")
        .max_deliveries(1)
        .create(&mut groups)
        .await;
    let first = fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    groups
        .nack(nack_request("orders", "billing", vec![seq_of(&first[0])]))
        .await
        .expect("nack");
    fetch(&mut groups, "orders", "billing", "c1", 1, 0).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let unknown = grpc
        .unary(
            tonic::Request::new(v1::GetStreamRequest::default()),
            http::uri::PathAndQuery::from_static("/riverlog.v1.EventLog/Nope"),
            tonic_prost::ProstCodec::<v1::GetStreamRequest, v1::GetStreamResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);
    // HTTP: a routed request and one no route matches.
    let addr = server.http_addr.to_string();
    assert_eq!(http_get(&addr, "/api/v1/streams/orders").await.0, 200);
    assert_eq!(http_get(&addr, "/no/such/page").await.0, 404);

    let text = scrape_until(&server, "group gauges and retention", |t| {
        metric(t, "riverlog_group_lag", &[("group", "billing")]).is_some()
            && metric(t, "riverlog_retention_removed_total", &[]).is_some()
    })
    .await;
    let served = served_families(&text);
    let listed = readme_families();
    let served_names: BTreeSet<_> = served.keys().collect();
    let listed_names: BTreeSet<_> = listed.keys().collect();
    assert_eq!(
        served_names, listed_names,
        "metrics served (left) and listed in the README (right) differ:\n{text}"
    );
    for (name, family) in &listed {
        let got = &served[name];
        let all_listed: BTreeSet<_> = family.always.union(&family.sometimes).collect();
        let all_served: BTreeSet<_> = got.always.union(&got.sometimes).collect();
        assert!(
            all_served.is_subset(&all_listed),
            "{name}: served labels {all_served:?} not all in the README {all_listed:?}"
        );
        assert!(
            family.always.is_subset(&got.always),
            "{name}: the README's labels {:?} are not on every served series ({:?})",
            family.always,
            got.always
        );
    }
    // The conditional labels the traffic above produced are served too.
    let rpc = &served["rpc_server_call_duration_seconds"];
    assert!(rpc.sometimes.contains("error_type"), "{rpc:?}");
    let http = &served["http_server_request_duration_seconds"];
    assert!(http.sometimes.contains("http_route"), "{http:?}");
}

#[tokio::test]
async fn rpc_calls_carry_the_stable_rpc_conventions() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("a")]).await;
    let err = client
        .get_stream(v1::GetStreamRequest {
            stream: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let text = server.scrape().await;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("rpc_server_call_duration_seconds_count"))
        .collect();
    let publish = lines
        .iter()
        .find(|l| l.contains("rpc_method=\"riverlog.v1.EventLog/Publish\""))
        .expect("a Publish series");
    assert!(
        publish.contains("rpc_system_name=\"grpc\"") && publish.contains("rpc_status_code=\"OK\""),
        "{publish}"
    );
    // NOT_FOUND describes the request: no server error.
    let missing = lines
        .iter()
        .find(|l| l.contains("rpc_status_code=\"NOT_FOUND\""))
        .expect("a NOT_FOUND series");
    assert!(!missing.contains("error_type"), "{missing}");
    for old in ["rpc_system=", "rpc_service=", "rpc_grpc_status_code="] {
        assert!(lines.iter().all(|l| !l.contains(old)), "{old}: {lines:?}");
    }
    // Seconds, not the old milliseconds: one quick call is under a second.
    let sum = metric(
        &text,
        "rpc_server_call_duration_seconds_sum",
        &[("rpc_method", "riverlog.v1.EventLog/Publish")],
    )
    .expect("sum");
    assert!(sum < 1.0, "{sum}");
}

#[tokio::test]
async fn http_requests_are_measured_by_route_template_never_by_path() {
    let server = TestServer::start().await;
    let addr = server.http_addr.to_string();
    for stream in ["a", "b", "c"] {
        assert_eq!(
            http_get(&addr, &format!("/api/v1/streams/{stream}"))
                .await
                .0,
            404
        );
    }
    let (status, _) = http_get(&addr, "/api/v1/streams?limit=nope-xyz").await;
    let text = server.scrape().await;
    let route = [
        ("http_request_method", "GET"),
        ("http_route", "/api/v1/streams/{stream}"),
        ("http_response_status_code", "404"),
        ("url_scheme", "http"),
        ("network_protocol_version", "1.1"),
    ];
    assert_eq!(
        metric(&text, "http_server_request_duration_seconds_count", &route),
        Some(3.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "/api/v1/streams"),
                ("http_response_status_code", &status.to_string())
            ]
        ) == Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("xyz") && !text.contains("streams/a\""),
        "{text}"
    );
    // Client errors are not server errors.
    let served: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .collect();
    assert!(
        served.iter().all(|l| !l.contains("error_type")),
        "{served:?}"
    );
}

#[tokio::test]
async fn sse_streams_are_counted_once_when_they_close() {
    // Heartbeats make the server notice a client that left.
    let server = TestServer::start_with(|c| c.sse_heartbeat = Duration::from_millis(100)).await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("a")]).await;
    let sse = [("http_route", "/api/v1/subscribe")];
    let response = server.api().get("/subscribe?stream=s").await;
    assert_eq!(
        response.status().as_u16(),
        200,
        "{:?}",
        response.text().await
    );
    let mut body = response.bytes_stream();
    use futures::StreamExt as _;
    within(body.next())
        .await
        .expect("a first event")
        .expect("bytes");
    // Open: not counted yet.
    let text = server.scrape().await;
    assert_eq!(
        metric(&text, "http_server_request_duration_seconds_count", &sse),
        None,
        "{text}"
    );
    drop(body);
    scrape_until(&server, "the closed SSE stream counted", |t| {
        metric(t, "http_server_request_duration_seconds_count", &sse) == Some(1.0)
    })
    .await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn process_metrics_come_from_proc() {
    use procfs::process::Process;
    let server = TestServer::start().await;
    let stat = || Process::myself().unwrap().stat().unwrap();
    let ticks = procfs::ticks_per_second() as f64;
    let before = stat();
    let text = server.scrape().await;
    let after = stat();
    // CPU time is a counter in seconds: between two reads of our own.
    for (mode, low, high) in [
        ("user", before.utime, after.utime),
        ("system", before.stime, after.stime),
    ] {
        let seconds = metric(
            &text,
            "process_cpu_time_seconds_total",
            &[("cpu_mode", mode)],
        )
        .unwrap_or_else(|| panic!("{mode} CPU time:\n{text}"));
        assert!(
            low as f64 / ticks <= seconds && seconds <= high as f64 / ticks,
            "{mode}: {seconds} s outside {low}..{high} ticks"
        );
    }
    let rss = metric(&text, "process_memory_usage_bytes", &[]).expect("RSS");
    let virt = metric(&text, "process_memory_virtual_bytes", &[]).expect("virtual");
    assert!(rss > 1e6 && virt >= rss, "rss {rss}, virtual {virt}");
    // The test process holds at least the listeners and the database open.
    let fds = metric(&text, "process_unix_file_descriptor_count", &[]).expect("fds");
    let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() as f64;
    assert!(
        fds >= 3.0 && (fds - listed).abs() < 64.0,
        "{fds} vs {listed}"
    );
    let threads = metric(&text, "process_thread_count", &[]).expect("threads");
    assert!(
        threads >= 1.0 && threads <= before.num_threads.max(after.num_threads) as f64 + 8.0,
        "{threads}"
    );
}
