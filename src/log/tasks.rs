//! The log's own tasks and how they end.
//!
//! Besides the writer, a few tasks work on storage by themselves: the
//! tailer (when several processes write one database), retention, and the
//! group-metric sampler. Storage must not close under them, so they run in
//! one [`TaskTracker`] and [`LogTasks::finish`] waits for them before it
//! lets the writer drain its queue; storage may close after that.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::writer::WriterTask;
use super::{EventLog, groups, retention};
use crate::model::records::Retention;

/// The writer and the background tasks of one [`EventLog`].
pub struct LogTasks {
    /// Background tasks; each stops once `shutdown` is cancelled.
    pub(super) background: TaskTracker,
    /// Finished last: background tasks may queue writes until they stop.
    pub(super) writer: WriterTask,
    /// The log's shutdown token, which the background tasks watch.
    pub(super) shutdown: CancellationToken,
}

impl LogTasks {
    /// Enforces retention every `every` (each stream's own rules, else
    /// `defaults`) until shutdown.
    pub fn spawn_retention(&self, log: &EventLog, defaults: Retention, every: Duration) {
        self.background.spawn(retention::run(
            log.clone(),
            defaults,
            every,
            self.shutdown.clone(),
        ));
    }

    /// Refreshes the consumer-group lag and pending gauges every `every`
    /// until shutdown.
    pub fn spawn_group_metrics(&self, log: &EventLog, every: Duration) {
        self.background.spawn(groups::sample_metrics(
            log.clone(),
            every,
            self.shutdown.clone(),
        ));
    }

    /// Runs the dead-letter pass every `every` until shutdown: entries
    /// whose last allowed delivery timed out go to their group's
    /// dead-letter stream whether or not a consumer asks for work.
    pub fn spawn_dead_letters(&self, log: &EventLog, every: Duration) {
        self.background.spawn(groups::dead_letters::run(
            log.clone(),
            every,
            self.shutdown.clone(),
        ));
    }

    /// Stops the background tasks (cancelling the log's shutdown token,
    /// which also ends subscriptions) and waits up to `grace` for them,
    /// then lets the writer commit what is queued, again within `grace`.
    /// Storage may close once this returns.
    pub async fn finish(self, grace: Duration) {
        self.shutdown.cancel();
        self.background.close();
        if tokio::time::timeout(grace, self.background.wait())
            .await
            .is_err()
        {
            warn!(
                tasks = self.background.len(),
                "background tasks did not stop within the grace period"
            );
        }
        self.writer.finish(grace).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::log::{Limits, LogError};
    use crate::metrics::Metrics;
    use crate::storage::{StorageOptions, sqlite::SqliteStorage};

    #[tokio::test]
    async fn finishing_waits_for_every_background_task_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let storage = SqliteStorage::open(&url, &StorageOptions::default())
            .await
            .unwrap();
        let (log, tasks) = EventLog::start(
            Arc::new(storage),
            Limits::default(),
            CancellationToken::new(),
            Arc::new(Metrics::new().unwrap()),
        )
        .await
        .unwrap();
        let every = Duration::from_millis(1);
        tasks.spawn_retention(&log, Retention::default(), every);
        tasks.spawn_group_metrics(&log, every);
        tasks.spawn_dead_letters(&log, every);
        // One that takes a while to stop, as a retention pass waiting on
        // storage would: storage must not close before it is done.
        let stopped = Arc::new(AtomicBool::new(false));
        let (shutdown, flag) = (tasks.shutdown.clone(), stopped.clone());
        tasks.background.spawn(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::Release);
        });
        let background = tasks.background.clone();
        assert_eq!(background.len(), 4);

        tasks.finish(Duration::from_secs(30)).await;
        assert!(stopped.load(Ordering::Acquire));
        assert!(background.is_closed() && background.is_empty());
        assert!(matches!(
            log.create_stream(
                &crate::auth::Principal::open(),
                crate::log::parse::stream("s").unwrap(),
                Retention::default()
            )
            .await,
            Err(LogError::ShuttingDown)
        ));
    }
}
