//! Feeds the hub from storage when several processes write one database.
//!
//! Each process's writer then sees only its own commits, so the hub is fed
//! by this task instead: woken by the storage's commit feed (PostgreSQL
//! `LISTEN`/`NOTIFY`), it reads every event past its cursor in position
//! order and publishes it. Positions follow commit order across writers
//! (the storage contract), so reading past the cursor never skips an event
//! that commits later, and every replica's hub sees the same sequence.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::hub::Hub;
use crate::model::filter::EventFilter;
use crate::model::names::{StreamPattern, StreamSelector};
use crate::model::records::Position;
use crate::storage::{CommitFeed, Storage};

/// Events read per storage query.
const PAGE: u32 = 1000;

/// Runs until the feed closes or `shutdown` is cancelled.
pub(super) async fn run(
    storage: Arc<dyn Storage>,
    hub: Hub,
    mut feed: CommitFeed,
    mut cursor: Position,
    shutdown: CancellationToken,
) {
    let everything = match StreamPattern::parse("*") {
        Ok(p) => vec![StreamSelector::Pattern(p)],
        Err(e) => {
            warn!(error = %e, "cannot build the match-all pattern; live fan-out is off");
            return;
        }
    };
    let no_filter = EventFilter::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            woken = feed.recv() => if woken.is_none() { return },
        }
        loop {
            match storage
                .read_log(cursor, &everything, &no_filter, PAGE)
                .await
            {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    cursor = page.last().map_or(cursor, |e| e.position);
                    let full = page.len() == PAGE as usize;
                    hub.publish(Arc::new(page.into_iter().map(Arc::new).collect()));
                    if !full {
                        break;
                    }
                }
                // Subscribers keep their place; the next wake-up (at the
                // latest the feed's periodic one) tries again.
                Err(e) => {
                    warn!(error = %e, "reading new events for live subscribers failed");
                    break;
                }
            }
        }
    }
}
