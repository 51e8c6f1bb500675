//! The state of one write transaction: what it read (stream heads, the log
//! head, stored duplicates) and what it has yet to write (event rows,
//! counters), so the commands of a batch see each other's effects while
//! storage sees a few multi-row statements.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::command::{Appended, Command};
use super::held::GroupWrites;
use crate::model::StorageError;
use crate::model::names::StreamName;
use crate::model::records::{Position, StoredEvent, UnixMicros};
use crate::storage::{EventRow, ExistingEvent, StreamHead, WriteTx};

/// The state of one write transaction while its commands are applied.
pub(super) struct Transaction {
    pub(super) tx: Box<dyn WriteTx>,
    pub(super) now: UnixMicros,
    /// Stream heads read (and locked) so far; `None` = known not to exist.
    pub(super) heads: HashMap<StreamName, Option<StreamHead>>,
    /// Heads whose counters changed since the last flush.
    pub(super) dirty: Vec<StreamName>,
    /// The log head, once read.
    pub(super) log_head: Option<Position>,
    pub(super) log_head_dirty: bool,
    /// Rows not inserted yet; inserting them together is the point of
    /// batching.
    pub(super) rows: Vec<EventRow>,
    /// Ids appended by this transaction and not yet inserted, per stream id,
    /// so a later command in the batch sees them as duplicates.
    pub(super) unflushed_ids: HashMap<(i64, String), usize>,
    /// Streams whose stored duplicates of this batch's ids were looked up
    /// up front (see `prefetch`); valid until the first flush.
    pub(super) prefetched: HashSet<i64>,
    /// What that lookup found retained, by (stream id, event id).
    pub(super) existing: HashMap<(i64, String), Appended>,
    /// What it found among the remembered ids of removed events.
    pub(super) remembered: HashMap<(i64, String), Appended>,
    /// Every event appended, in position order.
    pub(super) appended: Vec<StoredEvent>,
    /// Events dead-lettered by group commands.
    pub(super) dead_lettered: u64,
    pub(super) limits: StreamLimits,
    /// Streams that exist, once counted (only creating one needs it).
    pub(super) stream_count: Option<u64>,
    /// Consumer groups read, and their writes held back (see `held`).
    pub(super) groups: GroupWrites,
}

/// Size limits the writer enforces (0 means none), and how long it
/// remembers removed ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamLimits {
    /// Most streams the log holds.
    pub max_streams: u64,
    /// Most retained events per stream.
    pub max_stream_events: u64,
    /// The server's dedup window for removed events' ids (a stream's own
    /// wins; `None`: as long as the stream exists).
    pub dedup_window: Option<Duration>,
}

impl Transaction {
    pub(super) fn new(tx: Box<dyn WriteTx>, now: UnixMicros, limits: StreamLimits) -> Self {
        Self {
            tx,
            now,
            heads: HashMap::new(),
            dirty: Vec::new(),
            log_head: None,
            log_head_dirty: false,
            rows: Vec::new(),
            unflushed_ids: HashMap::new(),
            prefetched: HashSet::new(),
            existing: HashMap::new(),
            remembered: HashMap::new(),
            appended: Vec::new(),
            dead_lettered: 0,
            limits,
            stream_count: None,
            groups: GroupWrites::default(),
        }
    }

    /// Reads, in one statement each, the heads of every stream the batch
    /// appends to and the stored events with the batch's ids. Per-command
    /// lookups would cost a round trip each, and round trips, not rows,
    /// are what limits a group commit.
    pub(super) async fn prefetch(&mut self, batch: &[Command]) -> Result<(), StorageError> {
        let appends = || {
            batch.iter().filter_map(|c| match c {
                Command::Append { request, .. } => Some(request),
                _ => None,
            })
        };
        let mut names: Vec<StreamName> = appends().map(|r| r.stream.clone()).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Ok(());
        }
        let found = self.tx.stream_heads(&names).await?;
        for name in names {
            self.heads.insert(name, None);
        }
        for head in found {
            self.heads.insert(head.name.clone(), Some(head));
        }
        let mut keys: Vec<(i64, &str)> = Vec::new();
        for req in appends() {
            if let Some(Some(head)) = self.heads.get(&req.stream) {
                self.prefetched.insert(head.id);
                keys.extend(req.events.iter().map(|e| (head.id, e.id.as_str())));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let (retained, removed) = self.find_originals(&keys, true).await?;
        for (found, into) in [
            (retained, &mut self.existing),
            (removed, &mut self.remembered),
        ] {
            for found in found {
                into.insert((found.stream_id, found.id.clone()), found.into());
            }
        }
        Ok(())
    }

    /// The events with these (stream id, event id) keys that a republish
    /// is a duplicate of: retained ones, and (with `removed`) removed ones
    /// whose ids are still remembered, as (retained, removed). Only streams
    /// that ever lost an event (fewer retained than sequences assigned)
    /// have removed ids, so a stream never trimmed costs no second lookup.
    pub(super) async fn find_originals(
        &mut self,
        keys: &[(i64, &str)],
        removed: bool,
    ) -> Result<(Vec<ExistingEvent>, Vec<ExistingEvent>), StorageError> {
        let found = self.tx.find_events(keys).await?;
        if !removed {
            return Ok((found, Vec::new()));
        }
        // Dedup windows of the streams that lost events, by stream id.
        let lost: HashMap<i64, Option<Duration>> = self
            .heads
            .values()
            .flatten()
            .filter(|h| h.event_count < h.last_sequence)
            .map(|h| (h.id, h.dedup_window.or(self.limits.dedup_window)))
            .collect();
        if lost.is_empty() {
            return Ok((found, Vec::new()));
        }
        let hit: HashSet<(i64, &str)> =
            found.iter().map(|f| (f.stream_id, f.id.as_str())).collect();
        let misses: Vec<(i64, &str)> = keys
            .iter()
            .filter(|k| lost.contains_key(&k.0) && !hit.contains(*k))
            .copied()
            .collect();
        drop(hit);
        if misses.is_empty() {
            return Ok((found, Vec::new()));
        }
        let now = self.now;
        let mut remembered = self.tx.find_removed_events(&misses).await?;
        remembered.retain(|r| match lost.get(&r.stream_id).copied().flatten() {
            Some(window) => r.recorded_at > now.saturating_sub(window),
            None => true,
        });
        Ok((found, remembered))
    }

    pub(super) async fn head(
        &mut self,
        name: &StreamName,
    ) -> Result<Option<StreamHead>, StorageError> {
        if let Some(head) = self.heads.get(name) {
            return Ok(head.clone());
        }
        let head = self
            .tx
            .stream_heads(std::slice::from_ref(name))
            .await?
            .pop();
        self.heads.insert(name.clone(), head.clone());
        Ok(head)
    }

    pub(super) fn set_head(&mut self, head: StreamHead) {
        if !self.dirty.contains(&head.name) {
            self.dirty.push(head.name.clone());
        }
        self.heads.insert(head.name.clone(), Some(head));
    }

    /// Writes everything held back so later statements see it.
    pub(super) async fn flush(&mut self) -> Result<(), StorageError> {
        self.flush_events().await?;
        self.flush_group_writes().await
    }

    /// Writes pending rows and counters so later statements see them.
    pub(super) async fn flush_events(&mut self) -> Result<(), StorageError> {
        // Flushed ids are in storage now, where only a fresh lookup sees
        // them (and a trim or take after this may remove stored ones).
        self.prefetched.clear();
        self.existing.clear();
        self.remembered.clear();
        if !self.rows.is_empty() {
            self.tx.insert_events(&self.rows).await?;
            self.appended
                .extend(self.rows.drain(..).map(|row| row.event));
            self.unflushed_ids.clear();
        }
        let dirty: Vec<StreamHead> = std::mem::take(&mut self.dirty)
            .iter()
            .filter_map(|name| self.heads.get(name).cloned().flatten())
            .collect();
        if !dirty.is_empty() {
            self.tx.save_stream_heads(&dirty).await?;
        }
        if self.log_head_dirty {
            if let Some(p) = self.log_head {
                self.tx.save_log_head(p, self.now).await?;
            }
            self.log_head_dirty = false;
        }
        Ok(())
    }

    /// Writes what is pending and commits; on any error the transaction is
    /// rolled back (by `commit` itself when the commit fails).
    pub(super) async fn finish(mut self) -> Result<Committed, StorageError> {
        if let Err(e) = self.flush().await {
            self.tx.rollback().await;
            return Err(e);
        }
        self.tx.commit().await?;
        Ok(Committed {
            events: self.appended,
            dead_lettered: self.dead_lettered,
        })
    }

    /// `after` from this transaction's time.
    pub(super) fn deadline(&self, after: Duration) -> UnixMicros {
        UnixMicros(
            self.now
                .0
                .saturating_add(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

/// What a committed batch did.
pub(super) struct Committed {
    /// Appended events, in position order, for the hub.
    pub(super) events: Vec<StoredEvent>,
    /// Events moved to dead-letter streams.
    pub(super) dead_lettered: u64,
}
