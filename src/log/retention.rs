//! Retention in the background: each stream keeps at most `max_events`,
//! nothing older than `max_age`, and expires after `ttl` without appends;
//! under the `interest` and `work_queue` policies it also drops what every
//! group acked; and ids of removed events are forgotten once past the
//! dedup window. A stream's own rules (from CreateStream) win over the
//! server defaults.
//!
//! Enforcement goes through the writer like any trim or delete, so it
//! shares group commits with publishes and an expiry re-checks idleness
//! inside the transaction: a stream appended to meanwhile survives.

use std::time::Duration;

use opentelemetry::KeyValue;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{EventLog, LogError};
use crate::model::query::TrimUntil;
use crate::model::records::{Retention, RetentionPolicy, StreamInfo, UnixMicros};

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPass {
    /// Events removed by `max_events`.
    pub over_count: u64,
    /// Events removed by `max_age`.
    pub too_old: u64,
    /// Streams deleted by `ttl`.
    pub streams_expired: u64,
    /// Events those streams held.
    pub expired_events: u64,
    /// Events removed because every group acked them (`interest`,
    /// `work_queue`).
    pub consumed: u64,
    /// Removed events' ids forgotten past their dedup window.
    pub ids_forgotten: u64,
}

/// The rules that apply to a stream: its own, else the defaults.
pub fn effective(own: &Retention, defaults: &Retention) -> Retention {
    Retention {
        max_events: own.max_events.or(defaults.max_events),
        max_age: own.max_age.or(defaults.max_age),
        ttl: own.ttl.or(defaults.ttl),
        policy: own.policy,
        dedup_window: own.dedup_window.or(defaults.dedup_window),
    }
}

fn before(now: UnixMicros, age: Duration) -> UnixMicros {
    now.saturating_sub(age)
}

impl EventLog {
    /// Applies retention to every stream once.
    pub async fn enforce_retention(&self, defaults: &Retention) -> Result<RetentionPass, LogError> {
        let mut pass = RetentionPass::default();
        let mut pages = self.stream_pages();
        while let Some(page) = pages.next_page().await? {
            for stream in &page {
                self.retain(stream, &effective(&stream.retention, defaults), &mut pass)
                    .await?;
            }
        }
        let removed = &self.metrics.retention_removed;
        for (rule, n) in [
            ("max_events", pass.over_count),
            ("max_age", pass.too_old),
            ("ttl", pass.expired_events),
            ("consumed", pass.consumed),
        ] {
            if n > 0 {
                removed.add(n, &[KeyValue::new("rule", rule)]);
            }
        }
        Ok(pass)
    }

    async fn retain(
        &self,
        stream: &StreamInfo,
        rules: &Retention,
        pass: &mut RetentionPass,
    ) -> Result<(), LogError> {
        let now = UnixMicros::now();
        if let Some(ttl) = rules.ttl {
            let idle_since = stream.last_appended_at.unwrap_or(stream.created_at);
            let cutoff = before(now, ttl);
            if idle_since < cutoff {
                match self.writer.expire(stream.name.clone(), cutoff).await {
                    Ok(Some(events)) => {
                        self.forget_stream(&stream.name);
                        info!(stream = %stream.name, events, "stream expired (ttl)");
                        pass.streams_expired += 1;
                        pass.expired_events += events;
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if rules.policy != RetentionPolicy::Limits && stream.event_count > 0 {
            pass.consumed += self
                .quietly(self.writer.trim_consumed(stream.name.clone()))
                .await?;
        }
        // Only a stream that lost events has ids to forget.
        if let Some(window) = rules.dedup_window
            && stream.event_count < stream.last_sequence
        {
            pass.ids_forgotten += self
                .quietly(
                    self.writer
                        .forget_removed_ids(stream.name.clone(), before(now, window)),
                )
                .await?;
        }
        if stream.event_count == 0 {
            return Ok(());
        }
        if let Some(max) = rules.max_events.filter(|&m| stream.event_count > m) {
            pass.over_count += self.trim_quietly(stream, TrimUntil::MaxEvents(max)).await?;
        }
        if let Some(age) = rules.max_age {
            pass.too_old += self
                .trim_quietly(stream, TrimUntil::BeforeTime(before(now, age)))
                .await?;
        }
        Ok(())
    }

    /// Trims; a stream deleted meanwhile is not an error.
    async fn trim_quietly(&self, stream: &StreamInfo, until: TrimUntil) -> Result<u64, LogError> {
        self.quietly(self.writer.trim(stream.name.clone(), until))
            .await
    }

    /// A writer command's count; a stream deleted meanwhile counts 0.
    async fn quietly(
        &self,
        command: impl Future<Output = Result<u64, LogError>>,
    ) -> Result<u64, LogError> {
        match command.await {
            Ok(n) => Ok(n),
            Err(LogError::StreamNotFound(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Enforces retention every `every` until `shutdown`.
pub(crate) async fn run(
    log: EventLog,
    defaults: Retention,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // A pass in progress stops with the server, so joining this task
        // never waits out a long pass; what it already queued commits.
        let pass = tokio::select! {
            () = shutdown.cancelled() => return,
            pass = log.enforce_retention(&defaults) => pass,
        };
        match pass {
            Ok(pass) if pass != RetentionPass::default() => debug!(?pass, "retention pass"),
            Ok(_) => {}
            Err(LogError::ShuttingDown) => return,
            Err(e) => warn!(error = %e, "retention pass failed; retrying next interval"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streams_own_rules_win_over_the_defaults() {
        let defaults = Retention {
            max_events: Some(10),
            max_age: Some(Duration::from_secs(60)),
            ttl: None,
            policy: RetentionPolicy::Limits,
            dedup_window: Some(Duration::from_secs(3600)),
        };
        let own = Retention {
            max_events: Some(3),
            max_age: None,
            ttl: Some(Duration::from_secs(5)),
            policy: RetentionPolicy::Interest,
            dedup_window: None,
        };
        assert_eq!(
            effective(&own, &defaults),
            Retention {
                max_events: Some(3),
                max_age: Some(Duration::from_secs(60)),
                ttl: Some(Duration::from_secs(5)),
                policy: RetentionPolicy::Interest,
                dedup_window: Some(Duration::from_secs(3600)),
            }
        );
    }
}
