//! Persistence across restarts, crash durability, and the binary's
//! signal handling.

use crate::common::*;

#[tokio::test]
async fn history_and_sequences_survive_a_restart() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let before = publish(&mut client, "s", events("e", 0..5)).await;
    publish(&mut client, "t", vec![event("t-0")]).await;
    let db = server.stop().await;

    let server = TestServer::start_in(db, |_| {}).await;
    let mut client = server.client().await;
    let history = read_all(&mut client, "s").await;
    assert_eq!(
        history.iter().map(event_id).collect::<Vec<_>>(),
        ["e-0", "e-1", "e-2", "e-3", "e-4"]
    );
    assert_eq!(history[4].position, before[4].position);

    let after = publish(&mut client, "s", vec![event("e-5"), event("e-0")]).await;
    assert_eq!(after[0].sequence, 6);
    assert!(
        after[0].position > 6,
        "positions continue after the other stream's event"
    );
    assert!(after[1].duplicate, "idempotency survives restarts");
    assert!(after[0].recorded_at.unwrap().seconds >= before[0].recorded_at.unwrap().seconds);
}

#[tokio::test]
async fn acknowledged_publishes_survive_kill_9() {
    let db = TestDb::new().await;
    let (mut child, url) = spawn_binary(&db).await;
    let mut load = Load::start(&connect(&url).await, "crash", "");
    // Kill the server in the middle of the stream of publishes.
    let mut acked = Vec::new();
    load.until_acked(300, &mut acked).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let acked = load.finish(acked).await;

    let sequences = assert_acked_stored(db, "crash", &acked).await;
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
}

#[tokio::test]
async fn sigterm_shuts_the_binary_down_cleanly() {
    let db = TestDb::new().await;
    let (mut child, url) = spawn_binary(&db).await;
    let mut client = connect(&url).await;
    publish(&mut client, "s", vec![event("1")]).await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = within(child.wait()).await.unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn sigterm_under_load_answers_what_it_accepted_and_loses_none_of_it() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let db = TestDb::new().await;
    let spawned = spawn_binary_with(&db, &["--shutdown-grace", "2s"], &[]).await;
    let mut child = spawned.child;
    let client = connect(&spawned.grpc_url).await;
    let mut health = HealthClient::new(
        tonic::transport::Channel::from_shared(spawned.grpc_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut watch).await, 1, "SERVING");
    let mut sub = subscribe(&mut client.clone(), subscribe_request(&["load"], None)).await;

    let mut load = Load::start(&client, "load", "");
    let mut acked = Vec::new();
    load.until_acked(200, &mut acked).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    assert_eq!(next_status(&mut watch).await, 2, "NOT_SERVING at once");
    // The subscription ends with UNAVAILABLE so its client reconnects
    // elsewhere; what it got before is in order.
    let ended = within(async {
        loop {
            match sub.message().await {
                Ok(Some(r)) => assert!(r.message.is_some()),
                Ok(None) => panic!("subscription ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_error(&ended, tonic::Code::Unavailable, "SHUTTING_DOWN");
    let acked = load.finish(acked).await;
    let exit = within(child.wait()).await.unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    assert_acked_stored(db, "load", &acked).await;
}
