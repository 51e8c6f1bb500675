//! Write transactions: [`WriteTx`] on the write connection.

use async_trait::async_trait;
use sqlx::Pool;

use super::driver::{Driver, Sql, get};
use super::reads::sequences_at_positions;
use super::rows::*;
use super::transaction::PooledTx;
use super::{CHUNK, Dialect, IdsOf};
use crate::model::StorageError;
use crate::model::groups::{Checkpoint, GroupRecord, GroupSettings, PendingEntry};
use crate::model::names::{GroupName, StreamName};
use crate::model::query::{TakeEnd, TrimUntil};
use crate::model::records::{Position, Retention, Sequence, StoredEvent, UnixMicros};
use crate::storage::{EventRow, ExistingEvent, StreamHead, WriteTx};

/// A write transaction on the write connection.
pub(super) struct SqlWriteTx<D: Dialect> {
    tx: PooledTx<D::DB>,
    /// Whether events were appended: the dialect may announce the commit.
    appended: bool,
    /// `log_head.recorded_at` as the log-head lock found it.
    recorded_floor: UnixMicros,
    /// The log head's position as this transaction last read or saved it.
    head: Option<Position>,
    /// Groups whose work changed: announced to other replicas at commit.
    announced: std::collections::BTreeSet<(String, String)>,
}

impl<D: Dialect> SqlWriteTx<D> {
    /// Begins a transaction and takes the log-head lock (see the concurrency
    /// contract on [`crate::storage`]).
    pub(super) async fn begin(writer: &Pool<D::DB>) -> Result<Self, StorageError> {
        let mut tx = PooledTx::begin(writer, D::BEGIN)
            .await
            .map_err(D::DB::classify)?;
        match D::lock_log_head(tx.conn()).await {
            Ok(locked) => Ok(Self {
                tx,
                appended: false,
                recorded_floor: locked.recorded_floor,
                head: locked.position,
                announced: std::collections::BTreeSet::new(),
            }),
            Err(e) => {
                tx.rollback().await;
                Err(e)
            }
        }
    }

    fn conn(&mut self) -> &mut <D::DB as sqlx::Database>::Connection {
        self.tx.conn()
    }

    /// Events of a stream selected by `rest` (`WHERE e.stream_id = ? ...`),
    /// read the dialect's cheapest way (deliveries read a page of events
    /// per consumer in every write batch, as reads do).
    async fn events_where(
        &mut self,
        stream_id: i64,
        rest: impl FnOnce(&mut Sql<D::DB>),
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut q = Sql::<D::DB>::recording(format!(
            "{EVENTS_SELECT} \
             WHERE e.stream_id = "
        ));
        q.bind(stream_id);
        rest(&mut q);
        D::fetch_events(self.conn(), &mut q).await
    }

    /// Pending entries of a group selected by `rest` (`WHERE group_id = ? ...`).
    async fn pending_where(
        &mut self,
        group_id: i64,
        rest: impl FnOnce(&mut Sql<D::DB>),
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let mut q = Sql::<D::DB>::new(format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = "
        ));
        q.bind(group_id);
        rest(&mut q);
        let rows = q.fetch_all(self.conn()).await?;
        rows.iter().map(pending_entry::<D::DB>).collect()
    }

    /// Runs a statement ending in `RETURNING sequence` per chunk of
    /// `sequences` (`build` writes it around the bound list) and collects
    /// the sequences returned.
    async fn sequences_returned(
        &mut self,
        sequences: &[Sequence],
        build: impl Fn(&mut Sql<D::DB>, &[Sequence]),
    ) -> Result<Vec<Sequence>, StorageError> {
        let mut returned = Vec::new();
        for chunk in sequences.chunks(CHUNK) {
            let mut q = Sql::<D::DB>::new("");
            build(&mut q, chunk);
            for row in q.push(" RETURNING sequence").fetch_all(self.conn()).await? {
                returned.push(to_u64(get::<D::DB, _>(&row, 0)?));
            }
        }
        Ok(returned)
    }
}

impl<D: Dialect> SqlWriteTx<D> {
    /// Copies the ids of a stream's events matching `condition` (on
    /// `sequence`, one bound value) to `removed_event_ids`, before they are
    /// deleted. An id remembered before (removed, forgotten by the window
    /// meanwhile, published again) now names the newer event.
    async fn remember_removed_ids(
        &mut self,
        stream_id: i64,
        condition: &str,
        bound: i64,
    ) -> Result<(), StorageError> {
        // `WHERE` before `ON CONFLICT`: SQLite's parser needs it to tell
        // the upsert clause from a join constraint.
        let sql = format!(
            "INSERT INTO removed_event_ids (stream_id, event_id, sequence, position, recorded_at) \
             SELECT stream_id, event_id, sequence, position, recorded_at FROM events \
             WHERE stream_id = ? AND {condition} \
             ON CONFLICT (stream_id, event_id) DO UPDATE SET sequence = excluded.sequence, \
             position = excluded.position, recorded_at = excluded.recorded_at"
        );
        Sql::<D::DB>::query(&sql, (stream_id, bound))
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records that every sequence from `from` to the stream's last one
    /// has no event any more (a Take of the newest events).
    async fn record_gap_to_top(
        &mut self,
        stream: &StreamHead,
        from: Sequence,
    ) -> Result<(), StorageError> {
        self.record_gaps(stream.id, &[(from, stream.last_sequence)])
            .await
    }

    /// Records that the sequences of `runs` (ascending, disjoint, each
    /// `(first, last)`) have no event any more, joined with the gaps that
    /// touch them (see the `stream_gaps` migration). Gaps never overlap:
    /// the ones that may touch are the one starting last below the runs and
    /// those starting within them (or right after the last); they are read
    /// in two statements, merged here, and written back in one delete and
    /// a few multi-row inserts, however many runs there are.
    async fn record_gaps(
        &mut self,
        stream_id: i64,
        runs: &[(Sequence, Sequence)],
    ) -> Result<(), StorageError> {
        let (Some(&(lo, _)), Some(&(_, hi))) = (runs.first(), runs.last()) else {
            return Ok(());
        };
        let (lo, hi) = (to_i64(lo), to_i64(hi));
        let pair = |row: &<D::DB as sqlx::Database>::Row| -> Result<(i64, i64), StorageError> {
            Ok((get::<D::DB, _>(row, 0)?, get::<D::DB, _>(row, 1)?))
        };
        let mut intervals: Vec<(i64, i64)> = runs
            .iter()
            .map(|&(first, last)| (to_i64(first), to_i64(last)))
            .collect();
        let mut window_lo = lo;
        // The gap starting last below the runs counts if it reaches them.
        if let Some(row) = Sql::<D::DB>::query(
            "SELECT first_sequence, last_sequence FROM stream_gaps \
             WHERE stream_id = ? AND first_sequence < ? ORDER BY first_sequence DESC LIMIT 1",
            (stream_id, lo),
        )
        .fetch_optional(self.conn())
        .await?
        {
            let below = pair(&row)?;
            if below.1 >= lo - 1 {
                window_lo = below.0;
                intervals.push(below);
            }
        }
        for row in Sql::<D::DB>::query(
            "SELECT first_sequence, last_sequence FROM stream_gaps \
             WHERE stream_id = ? AND first_sequence >= ? AND first_sequence <= ?",
            (stream_id, lo, hi + 1),
        )
        .fetch_all(self.conn())
        .await?
        .iter()
        {
            intervals.push(pair(row)?);
        }
        intervals.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
        for (first, last) in intervals {
            match merged.last_mut() {
                Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        Sql::<D::DB>::query(
            "DELETE FROM stream_gaps WHERE stream_id = ? AND first_sequence >= ? AND first_sequence <= ?",
            (stream_id, window_lo, hi + 1),
        )
        .execute(self.conn())
        .await?;
        for chunk in merged.chunks(CHUNK) {
            Sql::<D::DB>::new(
                "INSERT INTO stream_gaps (stream_id, first_sequence, last_sequence) ",
            )
            .values(chunk, |&(first, last)| (stream_id, first, last))
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// The one sequence (or `NULL`) `q` selects, if any.
    async fn sequence_of(&mut self, mut q: Sql<D::DB>) -> Result<Option<Sequence>, StorageError> {
        let row = q.fetch_optional(self.conn()).await?;
        Ok(row
            .map(|r| get::<D::DB, Option<i64>>(&r, 0))
            .transpose()?
            .flatten()
            .map(to_u64))
    }

    /// Drops the gaps below a stream's oldest retained event after a
    /// removal from the front: they no longer lie inside its range.
    async fn forget_gaps_below_oldest(&mut self, stream_id: i64) -> Result<(), StorageError> {
        Sql::<D::DB>::query(
            "DELETE FROM stream_gaps WHERE stream_id = ? AND last_sequence < \
             (SELECT MIN(sequence) FROM events WHERE stream_id = ?)",
            (stream_id, stream_id),
        )
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

/// After `WHERE group_id = ?`: a group's entries on or past their last
/// allowed delivery (`?`) that are due (`?`), a page (`?`); a range of the
/// `group_pending_exhausted` index (checked by `group_plans`). No `ORDER
/// BY`: with one, SQLite walked the primary key in sequence order through
/// every entry of the group instead.
pub(super) const EXHAUSTED_PENDING: &str =
    " AND delivery_count >= ? AND deliverable_at <= ? LIMIT ?";

/// `sequences` (any order, repeats allowed) as runs of consecutive
/// sequences, `(first, last)`, ascending.
fn runs(sequences: &[Sequence]) -> Vec<(Sequence, Sequence)> {
    let mut sorted = sequences.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(Sequence, Sequence)> = Vec::new();
    for s in sorted {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(s) => *last = s,
            _ => runs.push((s, s)),
        }
    }
    runs
}

/// Binds a list of sequences.
fn sequence_list(chunk: &[Sequence]) -> impl Iterator<Item = i64> + '_ {
    chunk.iter().map(|s| to_i64(*s))
}

#[async_trait]
impl<D: Dialect> WriteTx for SqlWriteTx<D> {
    async fn log_head(&mut self) -> Result<Position, StorageError> {
        if let Some(head) = self.head {
            return Ok(head);
        }
        let head: i64 = Sql::<D::DB>::new("SELECT position FROM log_head WHERE id = 1")
            .fetch_scalar(self.conn())
            .await?;
        self.head = Some(to_u64(head));
        Ok(to_u64(head))
    }

    async fn recorded_floor(&mut self) -> Result<UnixMicros, StorageError> {
        Ok(self.recorded_floor)
    }

    async fn save_log_head(
        &mut self,
        head: Position,
        recorded_at: UnixMicros,
    ) -> Result<(), StorageError> {
        let sql = format!(
            "UPDATE log_head SET position = ?, recorded_at = {}(recorded_at, ?) WHERE id = 1",
            D::GREATEST
        );
        Sql::<D::DB>::query(&sql, (to_i64(head), recorded_at.0))
            .execute(self.conn())
            .await?;
        self.head = Some(head);
        Ok(())
    }

    async fn stream_heads(
        &mut self,
        names: &[StreamName],
    ) -> Result<Vec<StreamHead>, StorageError> {
        let mut heads = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            // Name order: replicas lock the same rows in the same order.
            let rows = Sql::<D::DB>::new(format!(
                "SELECT {STREAM_HEAD_COLUMNS} FROM streams WHERE name IN "
            ))
            .bind_list(chunk.iter().map(StreamName::as_str))
            .push(" ORDER BY name ")
            .push(D::LOCK_ROWS)
            .fetch_all(self.conn())
            .await?;
            for row in &rows {
                heads.push(stream_head::<D::DB>(row)?);
            }
        }
        Ok(heads)
    }

    async fn count_streams(&mut self) -> Result<u64, StorageError> {
        let n: i64 = Sql::<D::DB>::new("SELECT COUNT(*) FROM streams")
            .fetch_scalar(self.conn())
            .await?;
        Ok(to_u64(n))
    }

    async fn create_stream(
        &mut self,
        name: &StreamName,
        retention: &Retention,
        now: UnixMicros,
    ) -> Result<StreamHead, StorageError> {
        let id: i64 = Sql::<D::DB>::query(
            "INSERT INTO streams \
             (name, created_at, max_events, max_age_us, ttl_us, retention_policy, dedup_window_us) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                name.as_str(),
                now.0,
                retention.max_events.map(to_i64),
                duration_to_micros(retention.max_age),
                duration_to_micros(retention.ttl),
                retention.policy.as_str(),
                duration_to_micros(retention.dedup_window),
            ),
        )
        .fetch_scalar(self.conn())
        .await?;
        Ok(StreamHead {
            id,
            name: name.clone(),
            last_sequence: 0,
            last_position: 0,
            event_count: 0,
            created_at: now,
            last_appended_at: None,
            policy: retention.policy,
            dedup_window: retention.dedup_window,
        })
    }

    async fn save_stream_heads(&mut self, heads: &[StreamHead]) -> Result<(), StorageError> {
        for chunk in heads.chunks(CHUNK) {
            Sql::<D::DB>::new("WITH v (id, ls, lp, ec, la) AS (")
                .values(chunk, |h| {
                    (
                        h.id,
                        to_i64(h.last_sequence),
                        to_i64(h.last_position),
                        to_i64(h.event_count),
                        h.last_appended_at.map(|t| t.0),
                    )
                })
                .push(
                    ") UPDATE streams SET last_sequence = v.ls, last_position = v.lp, \
                     event_count = v.ec, last_appended_at = v.la FROM v WHERE streams.id = v.id",
                )
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    async fn find_events(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<ExistingEvent>, StorageError> {
        D::find_events(self.conn(), keys, IdsOf::Retained).await
    }

    async fn find_removed_events(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<ExistingEvent>, StorageError> {
        D::find_events(self.conn(), keys, IdsOf::Removed).await
    }

    async fn forget_removed_ids(
        &mut self,
        stream_id: i64,
        before: UnixMicros,
    ) -> Result<u64, StorageError> {
        Sql::<D::DB>::query(
            "DELETE FROM removed_event_ids WHERE stream_id = ? AND recorded_at < ?",
            (stream_id, before.0),
        )
        .execute(self.conn())
        .await
    }

    async fn insert_events(&mut self, rows: &[EventRow]) -> Result<(), StorageError> {
        D::insert_events(self.conn(), rows).await?;
        self.appended = true;
        Ok(())
    }

    async fn delete_stream(&mut self, stream_id: i64) -> Result<u64, StorageError> {
        for sql in [
            "DELETE FROM group_pending WHERE group_id IN (SELECT id FROM groups WHERE stream_id = ?)",
            "DELETE FROM group_consumers WHERE group_id IN (SELECT id FROM groups WHERE stream_id = ?)",
            "DELETE FROM checkpoints WHERE stream = (SELECT name FROM streams WHERE id = ?)",
            "DELETE FROM groups WHERE stream_id = ?",
        ] {
            Sql::<D::DB>::query(sql, (stream_id,))
                .execute(self.conn())
                .await?;
        }
        let removed = Sql::<D::DB>::query("DELETE FROM events WHERE stream_id = ?", (stream_id,))
            .execute(self.conn())
            .await?;
        for sql in [
            "DELETE FROM stream_gaps WHERE stream_id = ?",
            "DELETE FROM removed_event_ids WHERE stream_id = ?",
        ] {
            Sql::<D::DB>::query(sql, (stream_id,))
                .execute(self.conn())
                .await?;
        }
        Sql::<D::DB>::query("DELETE FROM streams WHERE id = ?", (stream_id,))
            .execute(self.conn())
            .await?;
        Ok(removed)
    }

    async fn trim_through(&mut self, stream_id: i64, last: Sequence) -> Result<u64, StorageError> {
        self.remember_removed_ids(stream_id, "sequence <= ?", to_i64(last))
            .await?;
        let removed = Sql::<D::DB>::query(
            "DELETE FROM events WHERE stream_id = ? AND sequence <= ?",
            (stream_id, to_i64(last)),
        )
        .execute(self.conn())
        .await?;
        if removed > 0 {
            self.forget_gaps_below_oldest(stream_id).await?;
        }
        Ok(removed)
    }

    async fn trim_cutoff(
        &mut self,
        stream_id: i64,
        until: TrimUntil,
    ) -> Result<Option<Sequence>, StorageError> {
        let cutoff = match until {
            // The (keep + 1)-th newest, walking the sequence index backwards:
            // none when the stream holds at most `keep`.
            TrimUntil::MaxEvents(keep) => {
                return self
                    .sequence_of(Sql::query(
                        "SELECT sequence FROM events WHERE stream_id = ? \
                         ORDER BY sequence DESC LIMIT 1 OFFSET ?",
                        (stream_id, to_i64(keep)),
                    ))
                    .await;
            }
            TrimUntil::BeforeSequence(s) => s.saturating_sub(1),
            // recorded_at never decreases along a stream's sequences: walk
            // them from the oldest to the first one kept.
            TrimUntil::BeforeTime(t) => {
                let first_kept = self
                    .sequence_of(Sql::query(
                        "SELECT sequence FROM events WHERE stream_id = ? AND recorded_at >= ? \
                         ORDER BY sequence LIMIT 1",
                        (stream_id, t.0),
                    ))
                    .await?;
                match first_kept {
                    Some(first_kept) => first_kept.saturating_sub(1),
                    // None kept: all go.
                    None => {
                        return self
                            .sequence_of(Sql::query(
                                "SELECT MAX(sequence) FROM events WHERE stream_id = ?",
                                (stream_id,),
                            ))
                            .await;
                    }
                }
            }
        };
        // Nothing retained at or below it (trimmed before): nothing to do,
        // which is what a retention pass finds for most streams.
        let oldest = self
            .sequence_of(Sql::query(
                "SELECT MIN(sequence) FROM events WHERE stream_id = ?",
                (stream_id,),
            ))
            .await?;
        Ok(oldest.filter(|&o| o <= cutoff).map(|_| cutoff))
    }

    async fn stream_groups(
        &mut self,
        stream: &StreamHead,
    ) -> Result<Vec<GroupRecord>, StorageError> {
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.stream_id = ? ORDER BY g.name");
        let rows = Sql::<D::DB>::query(&sql, (stream.id,))
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|r| group_record::<D::DB>(r, stream.name.clone()))
            .collect()
    }

    async fn lowest_pending(&mut self, group_id: i64) -> Result<Option<Sequence>, StorageError> {
        self.sequence_of(Sql::query(
            "SELECT MIN(sequence) FROM group_pending WHERE group_id = ?",
            (group_id,),
        ))
        .await
    }

    async fn pending_through(
        &mut self,
        group_id: i64,
        last: Sequence,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        self.pending_where(group_id, |q| {
            q.append(" AND sequence <= ? ORDER BY sequence", (to_i64(last),));
        })
        .await
    }

    async fn take(
        &mut self,
        stream: &StreamHead,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let (order, beyond) = match end {
            TakeEnd::Oldest => ("ASC", "<="),
            TakeEnd::Newest => ("DESC", ">="),
        };
        let mut events = self
            .events_where(stream.id, |q| {
                q.append(
                    &format!(" ORDER BY e.sequence {order} LIMIT ?"),
                    (i64::from(limit),),
                );
            })
            .await?;
        events.truncate(crate::model::records::fitting(&events, max_bytes));
        if let Some(last) = events.last() {
            // The taken events are exactly those up to (or down to) the last
            // one read, so one range delete removes them.
            self.remember_removed_ids(
                stream.id,
                &format!("sequence {beyond} ?"),
                to_i64(last.sequence),
            )
            .await?;
            let sql = format!("DELETE FROM events WHERE stream_id = ? AND sequence {beyond} ?");
            Sql::<D::DB>::query(&sql, (stream.id, to_i64(last.sequence)))
                .execute(self.conn())
                .await?;
            match end {
                TakeEnd::Oldest => self.forget_gaps_below_oldest(stream.id).await?,
                TakeEnd::Newest => {
                    self.record_gap_to_top(stream, last.sequence).await?;
                }
            }
        }
        Ok(events)
    }

    async fn group(
        &mut self,
        stream: &StreamHead,
        name: &GroupName,
    ) -> Result<Option<GroupRecord>, StorageError> {
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.stream_id = ? AND g.name = ?");
        let row = Sql::<D::DB>::query(&sql, (stream.id, name.as_str()))
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| group_record::<D::DB>(&r, stream.name.clone()))
            .transpose()
    }

    async fn create_group(
        &mut self,
        stream: &StreamHead,
        name: &GroupName,
        settings: &GroupSettings,
        cursor: Sequence,
        now: UnixMicros,
    ) -> Result<GroupRecord, StorageError> {
        let id: i64 = Sql::<D::DB>::query(
            "INSERT INTO groups (stream_id, name, ack_timeout_us, max_deliveries, \
             dead_letter_stream, cursor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                stream.id,
                name.as_str(),
                duration_to_micros(Some(settings.ack_timeout)),
                i64::from(settings.max_deliveries),
                settings.dead_letter_stream.as_str(),
                to_i64(cursor),
                now.0,
            ),
        )
        .fetch_scalar(self.conn())
        .await?;
        Ok(GroupRecord {
            id,
            stream_id: stream.id,
            stream: stream.name.clone(),
            name: name.clone(),
            ack_timeout: settings.ack_timeout,
            max_deliveries: settings.max_deliveries,
            dead_letter_stream: settings.dead_letter_stream.clone(),
            cursor,
            created_at: now,
        })
    }

    async fn delete_group(&mut self, group_id: i64) -> Result<(), StorageError> {
        for sql in [
            "DELETE FROM group_pending WHERE group_id = ?",
            "DELETE FROM group_consumers WHERE group_id = ?",
            "DELETE FROM groups WHERE id = ?",
        ] {
            Sql::<D::DB>::query(sql, (group_id,))
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    async fn sequence_before_time(
        &mut self,
        stream_id: i64,
        time: UnixMicros,
    ) -> Result<Sequence, StorageError> {
        // recorded_at never decreases along positions: the log's newest
        // event before `time` (time index) bounds the stream's, found on
        // its (stream_id, position) index without reading its events.
        let row = Sql::<D::DB>::query(
            "SELECT sequence FROM events WHERE stream_id = ? AND position <= \
             (SELECT position FROM events WHERE recorded_at < ? \
              ORDER BY recorded_at DESC, position DESC LIMIT 1) \
             ORDER BY position DESC LIMIT 1",
            (stream_id, time.0),
        )
        .fetch_optional(self.conn())
        .await?;
        row.map_or(Ok(0), |r| Ok(to_u64(get::<D::DB, _>(&r, 0)?)))
    }

    async fn clear_pending(&mut self, group_id: i64) -> Result<u64, StorageError> {
        let removed =
            Sql::<D::DB>::query("DELETE FROM group_pending WHERE group_id = ?", (group_id,))
                .execute(self.conn())
                .await?;
        Ok(removed)
    }

    async fn save_group_cursor(
        &mut self,
        group_id: i64,
        cursor: Sequence,
    ) -> Result<(), StorageError> {
        Sql::<D::DB>::query(
            "UPDATE groups SET cursor = ? WHERE id = ?",
            (to_i64(cursor), group_id),
        )
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn touch_consumers(
        &mut self,
        group_id: i64,
        consumers: &[&str],
        now: UnixMicros,
    ) -> Result<(), StorageError> {
        for chunk in consumers.chunks(CHUNK) {
            Sql::<D::DB>::new("INSERT INTO group_consumers (group_id, name, last_seen_at) ")
                .values(chunk, |c| (group_id, *c, now.0))
                .push(
                    " ON CONFLICT (group_id, name) DO UPDATE \
                     SET last_seen_at = excluded.last_seen_at",
                )
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    async fn release_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError> {
        let released = Sql::<D::DB>::query(
            "UPDATE group_pending SET deliverable_at = ? WHERE group_id = ? AND consumer = ?",
            (now.0, group_id, consumer),
        )
        .execute(self.conn())
        .await?;
        Sql::<D::DB>::query(
            "DELETE FROM group_consumers WHERE group_id = ? AND name = ?",
            (group_id, consumer),
        )
        .execute(self.conn())
        .await?;
        Ok(released)
    }

    async fn consumer_in_flight(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError> {
        let n: i64 = Sql::<D::DB>::query(
            "SELECT COUNT(*) FROM group_pending \
             WHERE group_id = ? AND consumer = ? AND deliverable_at > ?",
            (group_id, consumer, now.0),
        )
        .fetch_scalar(self.conn())
        .await?;
        Ok(to_u64(n))
    }

    async fn pending_of_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        self.pending_where(group_id, |q| {
            q.append(
                " AND consumer = ? ORDER BY sequence LIMIT ?",
                (consumer, i64::from(limit)),
            );
        })
        .await
    }

    async fn due_pending(
        &mut self,
        group_id: i64,
        now: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        self.pending_where(group_id, |q| {
            q.append(
                " AND deliverable_at <= ? ORDER BY deliverable_at, sequence LIMIT ?",
                (now.0, i64::from(limit)),
            );
        })
        .await
    }

    async fn exhausted_pending(
        &mut self,
        group_id: i64,
        max_deliveries: u32,
        now: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let mut page = self
            .pending_where(group_id, |q| {
                q.append(
                    EXHAUSTED_PENDING,
                    (i64::from(max_deliveries), now.0, i64::from(limit)),
                );
            })
            .await?;
        page.sort_unstable_by_key(|e| e.sequence);
        Ok(page)
    }

    async fn idle_pending(
        &mut self,
        group_id: i64,
        delivered_before: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        self.pending_where(group_id, |q| {
            q.append(
                " AND delivered_at <= ? ORDER BY sequence LIMIT ?",
                (delivered_before.0, i64::from(limit)),
            );
        })
        .await
    }

    async fn pending_entries(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let mut found = Vec::new();
        for chunk in sequences.chunks(CHUNK) {
            found.extend(
                self.pending_where(group_id, |q| {
                    q.push(" AND sequence IN ")
                        .bind_list(sequence_list(chunk))
                        .push(" ORDER BY sequence");
                })
                .await?,
            );
        }
        Ok(found)
    }

    async fn save_pending(
        &mut self,
        group_id: i64,
        entries: &[PendingEntry],
    ) -> Result<(), StorageError> {
        for chunk in entries.chunks(CHUNK) {
            Sql::<D::DB>::new(format!(
                "INSERT INTO group_pending (group_id, {PENDING_COLUMNS}) "
            ))
            .values(chunk, |e| {
                (
                    group_id,
                    to_i64(e.sequence),
                    e.consumer.as_str(),
                    i64::from(e.delivery_count),
                    e.delivered_at.0,
                    e.deliverable_at.0,
                )
            })
            .push(
                " ON CONFLICT (group_id, sequence) DO UPDATE SET consumer = excluded.consumer, \
                     delivery_count = excluded.delivery_count, \
                     delivered_at = excluded.delivered_at, \
                     deliverable_at = excluded.deliverable_at",
            )
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    async fn remove_pending(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<Sequence>, StorageError> {
        // By runs of consecutive sequences (what a consumer acks mostly
        // is what it was handed, consecutive): one range of the primary
        // key each. PostgreSQL then always walks the primary key; given a
        // list of single values it chose to walk every entry of the group
        // in another index instead, once the group had few live entries,
        // and with them every entry removed since the last vacuum (2.9 ms
        // per 200-row delete after 100,000 acks, growing with each ack).
        let runs = runs(sequences);
        let mut removed = Vec::new();
        for chunk in runs.chunks(CHUNK) {
            let ranges = |q: &mut Sql<D::DB>| {
                q.append(" WHERE group_id = ? AND (", (group_id,));
                for (i, (first, last)) in chunk.iter().enumerate() {
                    let or = if i == 0 { "" } else { " OR " };
                    q.push(or)
                        .append("sequence BETWEEN ? AND ?", (to_i64(*first), to_i64(*last)));
                }
                q.push(")");
            };
            // Usually every entry named is pending (acks of what was
            // handed out): a count tells, and the delete then returns
            // nothing, instead of a row per entry.
            let named: u64 = chunk.iter().map(|(first, last)| last - first + 1).sum();
            let mut count = Sql::<D::DB>::new("SELECT COUNT(*) FROM group_pending");
            ranges(&mut count);
            let pending = to_u64(count.fetch_scalar::<i64>(self.conn()).await?);
            if pending == 0 {
                continue;
            }
            let mut delete = Sql::<D::DB>::new("DELETE FROM group_pending");
            ranges(&mut delete);
            if pending == named {
                delete.execute(self.conn()).await?;
                removed.extend(chunk.iter().flat_map(|&(first, last)| first..=last));
                continue;
            }
            for row in delete
                .push(" RETURNING sequence")
                .fetch_all(self.conn())
                .await?
            {
                removed.push(to_u64(get::<D::DB, _>(&row, 0)?));
            }
        }
        Ok(removed)
    }

    async fn defer_pending(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
        holder: Option<&str>,
        at: UnixMicros,
    ) -> Result<Vec<Sequence>, StorageError> {
        self.sequences_returned(sequences, |q, chunk| {
            q.append(
                "UPDATE group_pending SET deliverable_at = ? WHERE group_id = ?",
                (at.0, group_id),
            );
            if let Some(consumer) = holder {
                q.append(" AND consumer = ?", (consumer,));
            }
            q.push(" AND sequence IN ").bind_list(sequence_list(chunk));
        })
        .await
    }

    async fn next_due(
        &mut self,
        group_id: i64,
        now: UnixMicros,
    ) -> Result<Option<UnixMicros>, StorageError> {
        let t: Option<i64> = Sql::<D::DB>::query(
            "SELECT MIN(deliverable_at) FROM group_pending WHERE group_id = ? AND deliverable_at > ?",
            (group_id, now.0),
        )
        .fetch_scalar(self.conn())
        .await?;
        Ok(t.map(UnixMicros))
    }

    async fn events_by_sequence(
        &mut self,
        stream_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut found = Vec::new();
        for chunk in sequences.chunks(CHUNK) {
            found.extend(
                self.events_where(stream_id, |q| {
                    q.push(" AND e.sequence IN ")
                        .bind_list(sequence_list(chunk))
                        .push(" ORDER BY e.sequence");
                })
                .await?,
            );
        }
        Ok(found)
    }

    async fn sequences_at_positions(
        &mut self,
        stream_id: i64,
        positions: &[Position],
    ) -> Result<Vec<(Position, Sequence)>, StorageError> {
        sequences_at_positions::<D>(self.conn(), stream_id, positions).await
    }

    async fn remove_events(
        &mut self,
        stream: &StreamHead,
        sequences: &[Sequence],
    ) -> Result<u64, StorageError> {
        let mut removed = 0;
        for chunk in sequences.chunks(CHUNK) {
            removed += Sql::<D::DB>::query(
                "DELETE FROM events WHERE stream_id = ? AND sequence IN ",
                (stream.id,),
            )
            .bind_list(sequence_list(chunk))
            .execute(self.conn())
            .await?;
        }
        self.record_gaps(stream.id, &runs(sequences)).await?;
        self.forget_gaps_below_oldest(stream.id).await?;
        Ok(removed)
    }

    async fn events_after(
        &mut self,
        stream_id: i64,
        after: Sequence,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        self.events_where(stream_id, |q| {
            q.append(
                " AND e.sequence > ? ORDER BY e.sequence LIMIT ?",
                (to_i64(after), i64::from(limit)),
            );
        })
        .await
    }

    async fn write_probe(&mut self, filler: &[u8]) -> Result<(), StorageError> {
        Sql::<D::DB>::query(
            "INSERT INTO write_probe (id, filler) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET filler = excluded.filler",
            (filler,),
        )
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        Sql::<D::DB>::new(format!("INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) "))
            .values(std::slice::from_ref(checkpoint), |c| {
                (
                    c.name.as_str(),
                    c.stream.as_ref().map_or("", StreamName::as_str),
                    to_i64(c.sequence),
                    to_i64(c.position),
                    c.committed_at.0,
                    c.owner.as_str(),
                )
            })
            .push(
                " ON CONFLICT (owner, name, stream) DO UPDATE SET sequence = excluded.sequence, \
                 position = excluded.position, committed_at = excluded.committed_at",
            )
            .execute(self.conn())
            .await?;
        Ok(())
    }

    fn announce_group(&mut self, stream: &StreamName, group: &GroupName) {
        self.announced
            .insert((stream.to_string(), group.to_string()));
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.appended {
            if let Err(e) = D::before_commit(self.tx.conn()).await {
                self.tx.rollback().await;
                return Err(e);
            }
        }
        if !self.announced.is_empty() {
            let groups: Vec<(String, String)> =
                std::mem::take(&mut self.announced).into_iter().collect();
            if let Err(e) = D::announce_groups(self.tx.conn(), &groups).await {
                self.tx.rollback().await;
                return Err(e);
            }
        }
        self.tx.commit().await.map_err(D::DB::classify)
    }

    async fn rollback(self: Box<Self>) {
        self.tx.rollback().await;
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn sequences_become_ascending_runs_of_consecutive_ones() {
        assert_eq!(runs(&[]), []);
        assert_eq!(runs(&[7, 3, 4, 5, 5, 9, 8, 1]), [(1, 1), (3, 5), (7, 9)]);
        assert_eq!(runs(&[u64::MAX, u64::MAX - 1]), [(u64::MAX - 1, u64::MAX)]);
    }
}
