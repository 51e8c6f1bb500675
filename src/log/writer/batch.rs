//! The writer's loop: take everything queued (bounded by count and bytes),
//! apply it in one transaction, commit once, then answer every caller and
//! hand the committed events to the hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::answer::Answer;
use super::command::Command;
use super::transaction::{Committed, StreamLimits, Transaction};
use crate::log::history::History;
use crate::log::hub::Hub;
use crate::metrics::Metrics;
use crate::model::StorageError;
use crate::model::records::{StoredEvent, UnixMicros};
use crate::storage::Storage;

/// Most commands applied in one transaction.
const MAX_BATCH_COMMANDS: usize = 1024;
/// Most payload bytes applied in one transaction (a single larger command
/// still goes through, alone).
const MAX_BATCH_BYTES: usize = 32 << 20;

/// What the last write transaction showed about storage.
#[derive(Default)]
pub(super) struct WriteOutcome {
    /// Set when a batch failed because storage was unavailable, cleared by
    /// the next commit.
    pub(super) failing: AtomicBool,
    /// Payload bytes of the last batch that failed so.
    pub(super) failed_bytes: AtomicUsize,
}

/// What the writer task owns.
pub(super) struct Writer {
    pub(super) storage: Arc<dyn Storage>,
    /// Where committed events go; `None` when the tailer feeds the hub.
    pub(super) hub: Option<Hub>,
    pub(super) limits: StreamLimits,
    pub(super) metrics: Arc<Metrics>,
    /// Counts each commit's events per stream, before the callers hear.
    pub(super) history: Arc<History>,
    /// Shared with the handles, which report it to the health probe.
    pub(super) outcome: Arc<WriteOutcome>,
}

impl Writer {
    pub(super) async fn run(
        self,
        mut commands: mpsc::Receiver<Command>,
        mut clock: UnixMicros,
        stop: CancellationToken,
    ) {
        let Self {
            storage,
            hub,
            limits,
            metrics,
            history,
            outcome,
        } = self;
        // A probe met while a batch was being gathered: it goes next, alone.
        let mut held_back: Option<Command> = None;
        loop {
            let next = match held_back.take() {
                Some(cmd) => Some(cmd),
                None => tokio::select! {
                    biased;
                    cmd = commands.recv() => cmd,
                    () = stop.cancelled() => {
                        // Refuse new commands; what is queued still commits.
                        commands.close();
                        commands.recv().await
                    }
                },
            };
            let Some(first) = next else { break };
            let mut bytes = first.bytes();
            // A probe commits in a transaction of its own: its filler must
            // never fail a publish that would have fitted, and its failure
            // must only say something about its own size.
            let alone = first.is_probe();
            let mut batch = vec![first];
            while !alone && batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
                match commands.try_recv() {
                    Ok(cmd) if cmd.is_probe() => {
                        held_back = Some(cmd);
                        break;
                    }
                    Ok(cmd) => {
                        bytes += cmd.bytes();
                        batch.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            // recorded_at never goes backwards, even if the wall clock does, so
            // time-based starts can rely on it growing with position.
            clock = clock.max(UnixMicros::now());
            let size = batch.len();
            let started = std::time::Instant::now();
            let count = |c: &Committed| count_appended(&history, &c.events);
            match commit_batch(storage.as_ref(), batch, clock, limits, count).await {
                Ok(Committed {
                    events,
                    dead_lettered,
                }) => {
                    outcome.failing.store(false, Ordering::Release);
                    debug!(commands = size, events = events.len(), "committed");
                    metrics
                        .commit_duration
                        .record(started.elapsed().as_secs_f64(), &[]);
                    if !events.is_empty() {
                        metrics.events_appended.add(events.len() as u64, &[]);
                        metrics.append_batch_size.record(events.len() as u64, &[]);
                    }
                    if dead_lettered > 0 {
                        metrics.events_dead_lettered.add(dead_lettered, &[]);
                    }
                    if let Some(hub) = hub.as_ref().filter(|_| !events.is_empty()) {
                        hub.publish(Arc::new(events.into_iter().map(Arc::new).collect()));
                    }
                }
                Err(e) => {
                    if matches!(e, StorageError::Unavailable(_)) {
                        // What the probe must fit: the payload that did not.
                        // A probe's or an event-less batch's failure keeps it.
                        if bytes > 0 {
                            outcome.failed_bytes.store(bytes, Ordering::Release);
                        }
                        outcome.failing.store(true, Ordering::Release);
                    }
                    warn!(commands = size, error = %e, "write batch rolled back");
                }
            }
        }
        debug!("writer stopped");
    }
}

/// Adds committed events to the throughput history, one count per run of
/// events of the same stream.
fn count_appended(history: &History, events: &[StoredEvent]) {
    let runs = events.chunk_by(|a, b| a.stream == b.stream);
    history.count_appended(
        UnixMicros::now(),
        runs.map(|run| (run[0].stream.as_str(), run.len() as u64)),
    );
}

/// Applies a batch in one transaction, calls `on_commit` with what was
/// committed, then answers every caller, and returns what was committed.
/// (`on_commit` runs first so that whoever hears "done" finds the commit
/// counted.)
pub(super) async fn commit_batch(
    storage: &dyn Storage,
    batch: Vec<Command>,
    now: UnixMicros,
    limits: StreamLimits,
    on_commit: impl FnOnce(&Committed),
) -> Result<Committed, StorageError> {
    let mut tx = match storage.begin_write().await {
        Ok(tx) => tx,
        Err(e) => {
            batch.into_iter().for_each(|c| c.fail(&e));
            return Err(e);
        }
    };
    let floor = match tx.recorded_floor().await {
        Ok(floor) => floor,
        Err(e) => {
            tx.rollback().await;
            batch.into_iter().for_each(|c| c.fail(&e));
            return Err(e);
        }
    };
    // Other writers of a shared database may have recorded later times.
    let mut work = Transaction::new(tx, now.max(floor), limits);
    if let Err(e) = work.prefetch(&batch).await {
        work.tx.rollback().await;
        batch.into_iter().for_each(|c| c.fail(&e));
        return Err(e);
    }
    // Answers are held back until the commit succeeded: nobody hears "done"
    // for something that may still roll back.
    let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(batch.len());
    let mut commands = batch.into_iter();
    while let Some(cmd) = commands.next() {
        if let Err(e) = work.apply(cmd, &mut answers).await {
            work.tx.rollback().await;
            answers.into_iter().for_each(|a| a.fail(&e));
            commands.for_each(|c| c.fail(&e));
            return Err(e);
        }
    }
    match work.finish().await {
        Ok(committed) => {
            on_commit(&committed);
            answers.into_iter().for_each(|a| a.send());
            Ok(committed)
        }
        Err(e) => {
            answers.into_iter().for_each(|a| a.fail(&e));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::sync::oneshot;

    use super::*;
    use crate::log::error::{Expectation, LogError};
    use crate::log::event::NewEvent;
    use crate::log::writer::command::{AppendRequest, Appended};
    use crate::model::names::StreamName;
    use crate::model::query::TakeEnd;
    use crate::model::records::Sequence;
    use std::sync::Arc;

    use crate::storage::testing::on_each_backend;

    fn events(ids: &[&str]) -> Vec<NewEvent> {
        ids.iter()
            .map(|id| NewEvent {
                id: (*id).to_owned(),
                event_type: "t".into(),
                source: "/s".into(),
                subject: None,
                payload: Bytes::from_static(b"x"),
            })
            .collect()
    }

    fn append(
        stream: &StreamName,
        ids: &[&str],
        expected: Expectation,
    ) -> (Command, oneshot::Receiver<Result<Vec<Appended>, LogError>>) {
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: stream.clone(),
            events: events(ids),
            expected,
            auto_create: true,
            dedup_removed: true,
        };
        (Command::Append { request, reply }, answer)
    }

    fn summary(answer: Result<Vec<Appended>, LogError>) -> Vec<(String, Sequence, bool)> {
        answer
            .expect("appended")
            .into_iter()
            .map(|a| (a.id, a.sequence, a.duplicate))
            .collect()
    }

    async fn one_batch_sees_its_own_appends_rejects_alone_and_survives_a_mid_batch_flush(
        storage: Arc<dyn Storage>,
    ) {
        let storage = &*storage;
        let s = StreamName::parse("s").unwrap();
        let t = StreamName::parse("t").unwrap();

        // A stored event first, so the batch's prefetch has something to find.
        let (seed, seeded) = append(&s, &["stored"], Expectation::Any);
        commit_batch(
            storage,
            vec![seed],
            UnixMicros(1),
            StreamLimits::default(),
            |_| (),
        )
        .await
        .unwrap();
        seeded.await.unwrap().unwrap();

        let (a1, r1) = append(&s, &["a", "stored"], Expectation::Any);
        let (a2, r2) = append(&s, &["a", "b"], Expectation::Any);
        let (a3, r3) = append(&s, &["c"], Expectation::LastSequence(99));
        let (a4, r4) = append(&t, &["x"], Expectation::NoStream);
        let (take_reply, r5) = oneshot::channel();
        let take = Command::Take {
            stream: s.clone(),
            end: TakeEnd::Oldest,
            limit: 1,
            max_bytes: usize::MAX,
            reply: take_reply,
        };
        let (a6, r6) = append(&s, &["b", "stored", "d"], Expectation::Any);
        let events = commit_batch(
            storage,
            vec![a1, a2, a3, a4, take, a6],
            UnixMicros(2),
            StreamLimits::default(),
            |_| (),
        )
        .await
        .unwrap()
        .events;

        assert_eq!(
            summary(r1.await.unwrap()),
            [("a".into(), 2, false), ("stored".into(), 1, true)]
        );
        assert_eq!(
            summary(r2.await.unwrap()),
            [("a".into(), 2, true), ("b".into(), 3, false)]
        );
        assert!(matches!(
            r3.await.unwrap(),
            Err(LogError::WrongExpectedSequence {
                actual: Some(3),
                ..
            })
        ));
        assert_eq!(summary(r4.await.unwrap()), [("x".into(), 1, false)]);
        let taken = r5.await.unwrap().unwrap();
        assert_eq!(
            taken.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["stored"]
        );
        // After the take flushed the batch: "b" is still found in storage,
        // and the taken "stored" by its remembered id, as the original.
        assert_eq!(
            summary(r6.await.unwrap()),
            [
                ("b".into(), 3, true),
                ("stored".into(), 1, true),
                ("d".into(), 4, false)
            ]
        );
        let positions: Vec<_> = events.iter().map(|e| e.position).collect();
        assert_eq!(positions, [2, 3, 4, 5], "positions follow commit order");
    }

    async fn what_was_committed_is_reported_before_any_caller_hears(storage: Arc<dyn Storage>) {
        let s = StreamName::parse("s").unwrap();
        let (cmd, mut answer) = append(&s, &["a", "b", "a"], Expectation::Any);
        let mut reported = None;
        commit_batch(
            &*storage,
            vec![cmd],
            UnixMicros(1),
            StreamLimits::default(),
            |c| reported = Some((c.events.len(), answer.try_recv().is_err())),
        )
        .await
        .unwrap();
        assert_eq!(
            reported,
            Some((2, true)),
            "two events, caller not answered yet"
        );
        assert_eq!(summary(answer.await.unwrap()).len(), 3);
    }

    on_each_backend!(
        one_batch_sees_its_own_appends_rejects_alone_and_survives_a_mid_batch_flush,
        what_was_committed_is_reported_before_any_caller_hears,
    );
}
