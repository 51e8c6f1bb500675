//! The crash and fault suite: the real binary killed with SIGKILL again and
//! again under publish load, and a consumer that dies holding a batch. (The
//! disk-full and storage-fault cases are in `disk_full` and `faults`; the
//! PostgreSQL outages in `postgres::outages`.)
//!
//! Bounded for the test command: 3 kill rounds. `RIVERLOG_CRASH_ROUNDS=20`
//! (or any number) makes it a long run; RELIABILITY.md keeps the figures.

use riverlog::proto::v1::{self, consume_response::Message};

use crate::common::*;

fn rounds() -> usize {
    std::env::var("RIVERLOG_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

#[tokio::test]
async fn kill_9_rounds_under_publish_load_lose_no_acknowledged_event() {
    let rounds = rounds();
    let db = TestDb::new().await;
    let mut acked = Vec::new();
    for round in 0..rounds {
        let (mut child, url) = spawn_binary(&db).await;
        // Ids of their own each round: a retry of a stored id would only be
        // answered as a duplicate.
        let mut load = Load::start(&connect(&url).await, "crash", &format!("r{round}-"));
        // Kill at a different point of each round's stream of commits.
        let mut seen = Vec::new();
        load.until_acked(100 + (round * 137) % 400, &mut seen).await;
        child.start_kill().expect("SIGKILL sent");
        child.wait().await.expect("killed");
        acked.extend(load.finish(seen).await);
    }
    // One more start over whatever the last kill left: every acknowledged
    // event is there at its acknowledged sequence, with no gaps.
    let sequences = assert_acked_stored(db, "crash", &acked).await;
    assert!(sequences.len() >= acked.len());
    assert_eq!(
        sequences,
        (1..=sequences.len() as u64).collect::<Vec<_>>(),
        "no gaps after {rounds} kills"
    );
    // For long runs' records (RELIABILITY.md).
    eprintln!(
        "kill -9: {rounds} rounds, {} acknowledged events checked, {} stored, none lost",
        acked.len(),
        sequences.len()
    );
}

#[tokio::test]
async fn a_consumer_that_dies_holding_a_batch_loses_nothing_and_duplicates_only_the_unacked() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "jobs", events("job", 0..10)).await;
    let mut groups = server.groups().await;
    group("jobs", "workers")
        .ack_timeout_ms(1_000)
        .max_deliveries(5)
        .create(&mut groups)
        .await;

    // Consumer "a", on a connection of its own, takes the whole batch and
    // acks three before it dies (its connection drops mid-stream).
    let channel = server.channel().await;
    let mut a = v1::consumer_groups_client::ConsumerGroupsClient::new(channel);
    let mut stream = a
        .consume(v1::ConsumeRequest {
            stream: "jobs".into(),
            group: "workers".into(),
            consumer: "a".into(),
            max_in_flight: 10,
            heartbeat_interval: None,
        })
        .await
        .expect("consume")
        .into_inner();
    let mut held = Vec::new();
    while held.len() < 10 {
        // Heartbeats carry nothing to hold.
        if let v1::ConsumeResponse {
            message: Some(Message::Delivery(d)),
        } = within(stream.message()).await.expect("open").expect("more")
        {
            held.push(seq_of(&d));
        }
    }
    ack(&mut groups, "jobs", "workers", held[..3].to_vec()).await;
    drop(stream);
    drop(a);

    // Consumer "b" gets exactly the seven unacked ones, each a second time.
    let mut redelivered = Vec::new();
    while redelivered.len() < 7 {
        for d in fetch(&mut groups, "jobs", "workers", "b", 10, 10_000).await {
            assert_eq!(d.delivery_count, 2, "sequence {}", seq_of(&d));
            redelivered.push(seq_of(&d));
        }
    }
    redelivered.sort_unstable();
    assert_eq!(redelivered, held[3..].to_vec());
    ack(&mut groups, "jobs", "workers", redelivered).await;
    let info = group_info(&mut groups, "jobs", "workers").await;
    assert_eq!(info.pending, 0);
    assert!(
        fetch(&mut groups, "jobs", "workers", "b", 10, 0)
            .await
            .is_empty(),
        "nothing is delivered a third time"
    );
}
