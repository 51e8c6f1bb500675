//! A real full disk under SQLite: a small tmpfs holds the database beside a
//! filler file. The batch that does not fit is refused with UNAVAILABLE and
//! leaves nothing behind; once the filler is deleted, the same server takes
//! writes again, without a restart.
//!
//! Mounting needs root (CI runs as root). Where it is not allowed,
//! `scripts/test.sh` says so loudly and sets `RIVERLOG_TEST_NO_TMPFS=1`,
//! and this test returns without checking anything; without that variable
//! a failed mount fails the test, so it never skips unnoticed.

use std::path::{Path, PathBuf};
use std::process::Command;

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use riverlog::proto::EventPayload;
use riverlog::proto::cloudevent::cloud_event::Data;

use crate::common::*;

/// A tmpfs mounted for the test, unmounted when dropped (also on panic).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Self { dir }),
            other => {
                assert!(
                    std::env::var_os("RIVERLOG_TEST_NO_TMPFS").is_some(),
                    "cannot mount a tmpfs ({other:?}); run as root, or set \
                     RIVERLOG_TEST_NO_TMPFS=1 to skip the disk-full test"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn fill(path: &PathBuf, bytes: usize) {
    std::fs::write(path, vec![0x55u8; bytes]).expect("filler written");
}

/// A server whose SQLite database lives on an 8 MiB tmpfs that a file of
/// `filler` bytes (`<tmpfs>/filler`) already takes part of; `None` where
/// the test does not apply (PostgreSQL, whose disk is not ours) or mounting
/// is not allowed (said loudly).
async fn server_on_small_disk(
    filler: usize,
    adjust: impl FnOnce(&mut riverlog::config::Config),
) -> Option<(Tmpfs, TestServer)> {
    if backend_is_postgres() {
        return None;
    }
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        eprintln!("!!! disk-full test SKIPPED: RIVERLOG_TEST_NO_TMPFS is set");
        return None;
    };
    fill(&tmpfs.path().join("filler"), filler);
    let db = TestDb::with_url(format!(
        "sqlite://{}",
        tmpfs.path().join("riverlog.db").display()
    ));
    let server = TestServer::start_in(db, adjust).await;
    Some((tmpfs, server))
}

/// `count` events `{prefix}-{i}` of `bytes` binary data each.
fn blobs(prefix: &str, count: usize, bytes: usize) -> Vec<EventPayload> {
    (0..count)
        .map(|i| {
            let mut e = cloud_event(&format!("{prefix}-{i}"), "test.created", None);
            e.data = Some(Data::BinaryData(vec![0xAB; bytes]));
            EventPayload::from(e)
        })
        .collect()
}

#[tokio::test]
async fn a_full_disk_refuses_the_batch_and_writes_resume_once_space_is_freed() {
    let Some((tmpfs, server)) = server_on_small_disk(4 << 20, |_| {}).await else {
        return;
    };
    let filler = tmpfs.path().join("filler");
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);

    let batch = |n: usize| blobs(&format!("b{n}"), 50, 1024);
    let mut stored = 0;
    let refused = loop {
        assert!(stored < 2_000, "8 MiB never filled up");
        match client.publish(publish_request("s", batch(stored))).await {
            Ok(_) => stored += 1,
            Err(status) => break status,
        }
    };
    assert_error(&refused, Code::Unavailable, "STORAGE_UNAVAILABLE");
    assert!(stored > 0, "some batches fit before the disk was full");
    // Reads still work, but writes cannot succeed: not ready.
    assert_eq!(
        next_status(&mut watch).await,
        ServingStatus::NotServing as i32
    );

    std::fs::remove_file(&filler).expect("filler removed");
    // The refused batch again, now that it fits: accepted as new, because
    // nothing of its first attempt was kept.
    let retried = client
        .publish(publish_request("s", batch(stored)))
        .await
        .expect("publish succeeds once space is freed")
        .into_inner();
    assert!(retried.positions.iter().all(|p| !p.duplicate));
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);

    let events = read_all(&mut client, "s").await;
    assert_eq!(
        events.len(),
        (stored + 1) * 50,
        "every acknowledged event, once"
    );
    let sequences: Vec<_> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>());
    drop(watch);
    drop(client);
    server.stop().await;
}

/// Health turns SERVING again only once a batch as large as the one that
/// failed fits: a failed probe must not make the next probe smaller, or
/// readiness would flap with every retry of the batch that still cannot be
/// written.
#[tokio::test]
async fn health_stays_not_serving_while_the_failed_batch_still_does_not_fit() {
    // About 2.5 MiB stay free for the database and its WAL.
    let Some((_tmpfs, server)) = server_on_small_disk(5 << 20, |_| {}).await else {
        return;
    };
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);

    // A small write fits.
    client
        .publish(publish_request("s", events("small", 0..1)))
        .await
        .expect("a small publish fits");
    // About 4 MiB in one batch: more than the disk has.
    let big = || blobs("big", 4, 1000 << 10);
    let refused = client
        .publish(publish_request("s", big()))
        .await
        .expect_err("4 MiB do not fit in 2.5");
    assert_error(&refused, Code::Unavailable, "STORAGE_UNAVAILABLE");
    assert_eq!(
        next_status(&mut watch).await,
        ServingStatus::NotServing as i32
    );

    // Nothing was freed: the 4 MiB batch cannot fit, so health must stay
    // NOT_SERVING. Any SERVING now must mean that batch fits again.
    let next = tokio::time::timeout(std::time::Duration::from_secs(3), watch.message()).await;
    if let Ok(Ok(Some(status))) = next {
        assert_ne!(
            status.status,
            ServingStatus::Serving as i32,
            "health turned SERVING although nothing was freed; the batch that failed \
             still fails: {:?}",
            client
                .publish(publish_request("s", big()))
                .await
                .map(|_| "accepted")
                .map_err(|s| s.message().to_owned())
        );
    }
    drop(watch);
    drop(client);
    server.stop().await;
}

/// The health probe commits alone: its filler (up to 8 MiB) never shares a
/// transaction with a small publish that fits on the disk, which would
/// otherwise fail with it.
#[tokio::test]
async fn a_health_probe_never_fails_a_publish_that_fits() {
    let Some((_tmpfs, server)) = server_on_small_disk(3 << 20, |c| {
        c.health_check_interval = std::time::Duration::from_millis(5);
    })
    .await
    else {
        return;
    };
    let mut client = server.client().await;
    let big = |round: usize| blobs(&format!("big-{round}"), 6, 1000 << 10);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Small publishes never share a batch with the big one (that would fail
    // them by design): the big one is sent only while none is in flight.
    let gate = std::sync::Arc::new(tokio::sync::RwLock::new(()));
    let mut small = Vec::new();
    for task in 0..4 {
        let mut client = server.client().await;
        let stop = stop.clone();
        let gate = gate.clone();
        small.push(tokio::spawn(async move {
            let mut refused = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("small-{task}-{n}");
                let _pass = gate.read().await;
                if let Err(status) = client
                    .publish(publish_request("small", vec![event(&id)]))
                    .await
                {
                    refused.push(status.message().to_owned());
                }
                n += 1;
                drop(_pass);
                // Not a wait: it paces the small publishes into a steady
                // trickle across the probe ticks.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            refused
        }));
    }
    // Each refused big batch makes the next health ticks probe with 8 MiB.
    for round in 0..5 {
        let closed = gate.write().await;
        let refused = client
            .publish(publish_request("big", big(round)))
            .await
            .expect_err("6 MiB do not fit in 4.5");
        drop(closed);
        assert_error(&refused, Code::Unavailable, "STORAGE_UNAVAILABLE");
        // Not a wait: the time in which those 8 MiB probes (every 5 ms)
        // run beside the small publishes is the behaviour under test.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = Vec::new();
    for task in small {
        refused.extend(task.await.unwrap());
    }
    // The disk still takes small publishes: none was refused for want of space.
    client
        .publish(publish_request("small", events("after", 0..1)))
        .await
        .expect("small publishes still fit");
    assert!(
        refused.is_empty(),
        "{} small publishes that fit were refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
    drop(client);
    server.stop().await;
}
