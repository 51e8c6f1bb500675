//! Sampling every group's lag and pending count for the metrics gauges.

use crate::log::error::LogError;
use crate::log::{EventLog, MAX_PAGE_SIZE};
use crate::metrics::GroupSample;

impl EventLog {
    /// Lag and pending count of every consumer group (at most `limit`),
    /// for the metrics.
    pub async fn group_samples(&self, limit: usize) -> Result<Vec<GroupSample>, LogError> {
        let mut samples = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage
                .list_streams(None, after.as_deref(), MAX_PAGE_SIZE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.to_string());
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
            if page.len() < MAX_PAGE_SIZE as usize {
                break;
            }
        }
        Ok(samples)
    }
}
