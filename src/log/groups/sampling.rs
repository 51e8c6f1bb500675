//! Sampling every group's lag and pending count for the metrics gauges, in
//! the background.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::log::EventLog;
use crate::log::error::LogError;
use crate::metrics::GroupSample;
use crate::model::records::UnixMicros;

/// Most consumer groups the lag and pending gauges report.
const MAX_GROUP_SAMPLES: usize = 1000;

impl EventLog {
    /// Lag and pending count of every consumer group (at most `limit`),
    /// for the metrics.
    pub async fn group_samples(&self, limit: usize) -> Result<Vec<GroupSample>, LogError> {
        let mut samples = Vec::new();
        let mut pages = self.stream_pages();
        while let Some(page) = pages.next_page().await? {
            for stream in page.iter().filter(|s| s.group_count > 0) {
                for state in self.storage.list_group_states(&stream.name).await? {
                    if samples.len() >= limit {
                        return Ok(samples);
                    }
                    samples.push(GroupSample {
                        stream: stream.name.to_string(),
                        group: state.group.name.to_string(),
                        lag: state.lag,
                        pending: state.pending,
                    });
                }
            }
        }
        Ok(samples)
    }
}

/// Refreshes the consumer-group gauges every `every` until `shutdown`.
pub(crate) async fn sample_metrics(log: EventLog, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // A sample in progress stops with the server, so joining this task
        // never waits out a slow listing.
        let samples = tokio::select! {
            () = shutdown.cancelled() => return,
            samples = log.group_samples(MAX_GROUP_SAMPLES) => samples,
        };
        match samples {
            Ok(samples) => {
                log.history.record_backlog(UnixMicros::now(), &samples);
                log.metrics.set_groups(samples);
            }
            Err(e) => debug!(error = %e, "cannot sample consumer groups"),
        }
    }
}
