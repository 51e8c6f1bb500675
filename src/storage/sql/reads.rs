//! The read side of [`Storage`], on the reader pool; beginning a write
//! transaction, the commit feed and closing are here too, as the trait
//! puts them.

use async_trait::async_trait;
use sqlx::pool::PoolConnection;

use super::clauses::{Selected, push_filter, push_name_pattern, push_selected};
use super::driver::{Driver, Sql, get};
use super::rows::*;
use super::transaction::PooledTx;
use super::writes::SqlWriteTx;
use super::{Dialect, SqlStorage};
use crate::model::StorageError;
use crate::model::filter::EventFilter;
use crate::model::groups::{
    Checkpoint, CheckpointOwner, ConsumerRecord, GroupRecord, GroupState, PendingEntry,
    PendingQuery, PendingSummary,
};
use crate::model::names::{CheckpointName, GroupName, StreamName, StreamPattern, StreamSelector};
use crate::model::query::{Direction, ReadFrom};
use crate::model::records::{Position, Sequence, StoredEvent, StreamInfo, UnixMicros};
use crate::storage::{CommitFeed, GroupFeed, Storage, WriteTx};

/// Most checkpoints one listing returns.
const MAX_CHECKPOINTS_LISTED: i64 = 10_000;

impl<D: Dialect> SqlStorage<D> {
    /// A read-only transaction on a reader connection: the statements of
    /// one call see one snapshot. It ends with `rollback`.
    async fn snapshot(&self) -> Result<PooledTx<D::DB>, StorageError> {
        PooledTx::begin(&self.readers, D::BEGIN_READ)
            .await
            .map_err(D::DB::classify)
    }

    /// A reader connection.
    async fn reader(&self) -> Result<PoolConnection<D::DB>, StorageError> {
        self.readers.acquire().await.map_err(D::DB::classify)
    }

    /// Fills in consumers, pending totals and lag of a group.
    async fn complete_group_state(
        conn: &mut <D::DB as sqlx::Database>::Connection,
        group: GroupRecord,
    ) -> Result<GroupState, StorageError> {
        let rows = Sql::<D::DB>::query(
            "SELECT c.name, c.last_seen_at, \
             (SELECT COUNT(*) FROM group_pending p WHERE p.group_id = c.group_id AND p.consumer = c.name) \
             FROM group_consumers c WHERE c.group_id = ? ORDER BY c.name",
            (group.id,),
        )
        .fetch_all(conn)
        .await?;
        let consumers = rows
            .iter()
            .map(|row| {
                Ok(ConsumerRecord {
                    name: get::<D::DB, _>(row, 0)?,
                    last_seen_at: UnixMicros(get::<D::DB, _>(row, 1)?),
                    pending: to_u64(get::<D::DB, _>(row, 2)?),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let totals = Sql::<D::DB>::query(
            "SELECT COUNT(*), MIN(sequence) FROM group_pending WHERE group_id = ?",
            (group.id,),
        )
        .fetch_one(conn)
        .await?;
        let (pending, lowest): (i64, Option<i64>) =
            (get::<D::DB, _>(&totals, 0)?, get::<D::DB, _>(&totals, 1)?);
        let lag = Self::lag(conn, group.stream_id, group.cursor).await?;
        Ok(GroupState {
            group,
            consumers,
            pending: to_u64(pending),
            lowest_pending: lowest.map(to_u64),
            lag,
        })
    }

    /// How many retained events of a stream lie past `cursor`, exactly,
    /// without counting them: the sequences from past the cursor (or from
    /// the oldest retained event) to the last one, less those in gaps (see
    /// the `stream_gaps` migration). A few index probes plus one row per
    /// gap past the cursor (usually none), whatever the lag.
    async fn lag(
        conn: &mut <D::DB as sqlx::Database>::Connection,
        stream_id: i64,
        cursor: Sequence,
    ) -> Result<u64, StorageError> {
        let row = Sql::<D::DB>::query(
            "SELECT s.last_sequence, (SELECT MIN(sequence) FROM events WHERE stream_id = s.id) \
             FROM streams s WHERE s.id = ?",
            (stream_id,),
        )
        .fetch_one(conn)
        .await?;
        let last = to_u64(get::<D::DB, i64>(&row, 0)?);
        let Some(oldest) = get::<D::DB, Option<i64>>(&row, 1)? else {
            return Ok(0);
        };
        let base = cursor.max(to_u64(oldest).saturating_sub(1));
        if base >= last {
            return Ok(0);
        }
        // Gaps never overlap: those starting past `base` count whole (a
        // range of the primary key), and at most one starts at or below it
        // and reaches past it.
        let whole: i64 = Sql::<D::DB>::query(
            "SELECT CAST(COALESCE(SUM(last_sequence - first_sequence + 1), 0) AS BIGINT) \
             FROM stream_gaps WHERE stream_id = ? AND first_sequence > ?",
            (stream_id, to_i64(base)),
        )
        .fetch_scalar(&mut *conn)
        .await?;
        let straddling: Option<i64> = Sql::<D::DB>::query(
            "SELECT last_sequence FROM stream_gaps WHERE stream_id = ? AND first_sequence <= ? \
             ORDER BY first_sequence DESC LIMIT 1",
            (stream_id, to_i64(base)),
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| get::<D::DB, i64>(&row, 0))
        .transpose()?;
        let missing = to_u64(whole) + straddling.map_or(0, |l| to_u64(l).saturating_sub(base));
        Ok((last - base).saturating_sub(missing))
    }

    /// Groups of `stream` (one when `name` is given), completed.
    async fn group_states(
        &self,
        stream: &StreamName,
        name: Option<&GroupName>,
    ) -> Result<Vec<GroupState>, StorageError> {
        // One snapshot: consumers, totals and lag agree with each other.
        let mut snapshot = self.snapshot().await?;
        let conn = snapshot.conn();
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups g JOIN streams s ON s.id = g.stream_id \
             WHERE s.name = ?"
        );
        let mut q = Sql::<D::DB>::query(&sql, (stream.as_str(),));
        if let Some(name) = name {
            q.append(" AND g.name = ?", (name.as_str(),));
        }
        let rows = q.push(" ORDER BY g.name").fetch_all(conn).await?;
        let mut states = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = group_record::<D::DB>(row, stream.clone())?;
            states.push(Self::complete_group_state(conn, record).await?);
        }
        snapshot.rollback().await;
        Ok(states)
    }
}

/// The statement of [`Storage::read_stream`]: the events of stream
/// `stream_id` from `from` in `direction`, in sequence order.
///
/// The stream is given by id, looked up first, rather than by name: a
/// literal id is what lets PostgreSQL plan with that stream's own
/// statistics (see [`Selected`]).
pub(super) fn read_stream_statement<D: Dialect>(
    q: &mut Sql<D::DB>,
    stream_id: i64,
    from: ReadFrom,
    direction: Direction,
    filter: &EventFilter,
    limit: u32,
) {
    q.append(
        &format!("{EVENTS_SELECT} WHERE e.stream_id = ?"),
        (stream_id,),
    );
    let (cmp, order) = match direction {
        Direction::Forward => (">=", "ASC"),
        Direction::Backward => ("<=", "DESC"),
    };
    match from {
        ReadFrom::End => {}
        ReadFrom::Sequence(s) => {
            q.push(format!(" AND e.sequence {cmp} ")).bind(to_i64(s));
        }
        ReadFrom::Time(t) => {
            q.push(format!(" AND e.recorded_at {cmp} ")).bind(t.0);
        }
    }
    push_filter::<D>(q, filter);
    q.push(format!(" ORDER BY e.sequence {order} LIMIT "))
        .bind(i64::from(limit));
}

/// The statement of [`Storage::read_log`]: events of the `selected`
/// streams past `after`, in position order.
pub(super) fn read_log_statement<D: Dialect>(
    q: &mut Sql<D::DB>,
    after: Position,
    selected: Selected<'_>,
    filter: &EventFilter,
    limit: u32,
) {
    q.append(
        &format!("{EVENTS_SELECT} WHERE e.position > ?"),
        (to_i64(after),),
    );
    push_selected::<D>(q, selected);
    push_filter::<D>(q, filter);
    q.append(" ORDER BY e.position LIMIT ?", (i64::from(limit),));
}

impl<D: Dialect> SqlStorage<D> {
    /// The id of stream `name`, if it exists.
    pub(super) async fn stream_id(
        conn: &mut <D::DB as sqlx::Database>::Connection,
        name: &StreamName,
    ) -> Result<Option<i64>, StorageError> {
        let row = Sql::<D::DB>::query("SELECT id FROM streams WHERE name = ?", (name.as_str(),))
            .fetch_optional(conn)
            .await?;
        row.map(|r| get::<D::DB, i64>(&r, 0)).transpose()
    }
}

/// The (position, sequence) of each retained event of stream `stream_id`
/// at one of `positions`: for redrive, on a reader to choose and in the
/// write transaction to re-check.
pub(super) async fn sequences_at_positions<D: Dialect>(
    conn: &mut <D::DB as sqlx::Database>::Connection,
    stream_id: i64,
    positions: &[Position],
) -> Result<Vec<(Position, Sequence)>, StorageError> {
    let mut found = Vec::new();
    for chunk in positions.chunks(super::CHUNK) {
        let rows = Sql::<D::DB>::query(
            "SELECT position, sequence FROM events WHERE stream_id = ? AND position IN ",
            (stream_id,),
        )
        .bind_list(chunk.iter().map(|p| to_i64(*p)))
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            found.push((
                to_u64(get::<D::DB, _>(row, 0)?),
                to_u64(get::<D::DB, _>(row, 1)?),
            ));
        }
    }
    Ok(found)
}

/// The groups holding an entry due at `?` on or past its last allowed
/// delivery: per group, a probe of the `group_pending_exhausted` index
/// (checked by `group_plans`), however many entries are due.
pub(super) const GROUPS_WITH_EXHAUSTED: &str = "SELECT s.name, g.name FROM groups g JOIN streams s ON s.id = g.stream_id \
     WHERE EXISTS (SELECT 1 FROM group_pending p WHERE p.group_id = g.id \
     AND p.delivery_count >= g.max_deliveries AND p.deliverable_at <= ?) \
     ORDER BY s.name, g.name";

#[async_trait]
impl<D: Dialect> Storage for SqlStorage<D> {
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StorageError> {
        Ok(Box::new(SqlWriteTx::<D>::begin(&self.writer).await?))
    }

    async fn get_stream(&self, name: &StreamName) -> Result<Option<StreamInfo>, StorageError> {
        let sql = format!("{STREAM_INFO_SELECT} WHERE s.name = ?");
        let row = Sql::<D::DB>::query(&sql, (name.as_str(),))
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(stream_info::<D::DB>).transpose()
    }

    async fn list_streams(
        &self,
        pattern: Option<&StreamPattern>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StreamInfo>, StorageError> {
        let mut q = Sql::<D::DB>::new(STREAM_INFO_SELECT);
        q.push(" WHERE 1 = 1");
        if let Some(p) = pattern {
            q.push(" AND ");
            push_name_pattern::<D>(&mut q, "s.name", p.as_str());
        }
        if let Some(a) = after {
            q.append(" AND s.name > ?", (a,));
        }
        let rows = q
            .append(" ORDER BY s.name LIMIT ?", (i64::from(limit),))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(stream_info::<D::DB>).collect()
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut conn = self.reader().await?;
        let Some(id) = Self::stream_id(&mut conn, stream).await? else {
            return Ok(Vec::new());
        };
        let mut q = Sql::<D::DB>::recording("");
        read_stream_statement::<D>(&mut q, id, from, direction, filter, limit);
        D::fetch_events(&mut conn, &mut q).await
    }

    async fn read_log(
        &self,
        after: Position,
        selectors: &[StreamSelector],
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut conn = self.reader().await?;
        // One stream by its id, looked up first (see `Selected`). Should the
        // stream be deleted and created again in between, the old id finds
        // nothing: an empty page, as a read a moment earlier could give.
        let selected = match selectors {
            [StreamSelector::Name(name)] => match Self::stream_id(&mut conn, name).await? {
                Some(id) => Selected::One(id),
                None => return Ok(Vec::new()),
            },
            several => Selected::Any(several),
        };
        let mut q = Sql::<D::DB>::recording("");
        read_log_statement::<D>(&mut q, after, selected, filter, limit);
        D::fetch_events(&mut conn, &mut q).await
    }

    async fn head_position(&self) -> Result<Position, StorageError> {
        let head: i64 = Sql::<D::DB>::new("SELECT position FROM log_head WHERE id = 1")
            .fetch_scalar(&mut *self.reader().await?)
            .await?;
        Ok(to_u64(head))
    }

    async fn position_before_time(&self, time: UnixMicros) -> Result<Position, StorageError> {
        // recorded_at never decreases along positions, so the newest event
        // before `time` by the time index is also the one with the highest
        // position.
        let row = Sql::<D::DB>::query(
            "SELECT position FROM events WHERE recorded_at < ? \
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
            (time.0,),
        )
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map_or(Ok(0), |r| Ok(to_u64(get::<D::DB, _>(&r, 0)?)))
    }

    async fn position_before_sequence(
        &self,
        stream: &StreamName,
        sequence: Sequence,
    ) -> Result<Position, StorageError> {
        let mut conn = self.reader().await?;
        let Some(id) = Self::stream_id(&mut conn, stream).await? else {
            return Ok(0);
        };
        let row = Sql::<D::DB>::query(
            "SELECT position FROM events WHERE stream_id = ? AND sequence < ? \
             ORDER BY sequence DESC LIMIT 1",
            (id, to_i64(sequence)),
        )
        .fetch_optional(&mut conn)
        .await?;
        row.map_or(Ok(0), |r| Ok(to_u64(get::<D::DB, _>(&r, 0)?)))
    }

    async fn last_recorded_at(&self) -> Result<Option<UnixMicros>, StorageError> {
        let t: Option<i64> = Sql::<D::DB>::new("SELECT MAX(recorded_at) FROM events")
            .fetch_scalar(&mut *self.reader().await?)
            .await?;
        Ok(t.map(UnixMicros))
    }

    async fn group_state(
        &self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<Option<GroupState>, StorageError> {
        Ok(self.group_states(stream, Some(group)).await?.pop())
    }

    async fn list_group_states(
        &self,
        stream: &StreamName,
    ) -> Result<Vec<GroupState>, StorageError> {
        self.group_states(stream, None).await
    }

    async fn groups_with_exhausted_entries(
        &self,
        now: UnixMicros,
    ) -> Result<Vec<(StreamName, GroupName)>, StorageError> {
        let rows = Sql::<D::DB>::query(GROUPS_WITH_EXHAUSTED, (now.0,))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter()
            .map(|row| {
                let stream: String = get::<D::DB, _>(row, 0)?;
                let group: String = get::<D::DB, _>(row, 1)?;
                Ok((parse_name(&stream)?, parse_group_name(&group)?))
            })
            .collect()
    }

    async fn retained_positions(
        &self,
        stream: &StreamName,
        positions: &[Position],
    ) -> Result<Vec<Position>, StorageError> {
        let mut conn = self.reader().await?;
        let Some(id) = Self::stream_id(&mut conn, stream).await? else {
            return Ok(Vec::new());
        };
        let found = sequences_at_positions::<D>(&mut conn, id, positions).await?;
        Ok(found.into_iter().map(|(position, _)| position).collect())
    }

    async fn pending_summary(&self, group_id: i64) -> Result<PendingSummary, StorageError> {
        let mut snapshot = self.snapshot().await?;
        let conn = snapshot.conn();
        let totals = Sql::<D::DB>::query(
            "SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM group_pending WHERE group_id = ?",
            (group_id,),
        )
        .fetch_one(conn)
        .await?;
        let (count, lowest, highest): (i64, Option<i64>, Option<i64>) = (
            get::<D::DB, _>(&totals, 0)?,
            get::<D::DB, _>(&totals, 1)?,
            get::<D::DB, _>(&totals, 2)?,
        );
        let rows = Sql::<D::DB>::query(
            "SELECT consumer, COUNT(*) FROM group_pending WHERE group_id = ? \
                 GROUP BY consumer ORDER BY consumer",
            (group_id,),
        )
        .fetch_all(conn)
        .await?;
        let consumers = rows
            .iter()
            .map(|r| Ok((get::<D::DB, String>(r, 0)?, to_u64(get::<D::DB, _>(r, 1)?))))
            .collect::<Result<_, StorageError>>()?;
        snapshot.rollback().await;
        Ok(PendingSummary {
            count: to_u64(count),
            lowest: lowest.map(to_u64),
            highest: highest.map(to_u64),
            consumers,
        })
    }

    async fn list_pending(
        &self,
        group_id: i64,
        query: &PendingQuery,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = ? AND sequence > ?"
        );
        let mut q = Sql::<D::DB>::query(&sql, (group_id, to_i64(query.after_sequence)));
        if let Some(c) = &query.consumer {
            q.append(" AND consumer = ?", (c.as_str(),));
        }
        if let Some(t) = query.delivered_before {
            q.append(" AND delivered_at <= ?", (t.0,));
        }
        let rows = q
            .append(" ORDER BY sequence LIMIT ?", (i64::from(query.limit),))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(pending_entry::<D::DB>).collect()
    }

    async fn checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &CheckpointName,
        stream: Option<&StreamName>,
    ) -> Result<Option<Checkpoint>, StorageError> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE owner = ? AND name = ? AND stream = ?"
        );
        let on = stream.map_or("", StreamName::as_str);
        let row = Sql::<D::DB>::query(&sql, (owner.as_str(), name.as_str(), on))
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(checkpoint::<D::DB>).transpose()
    }

    async fn list_checkpoints(
        &self,
        owner: &CheckpointOwner,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, StorageError> {
        // A range rather than a pattern or substr(): the prefix is matched
        // literally, and the range walks the primary key (owner, name,
        // stream). Names are ASCII, so every name starting with the prefix
        // sorts (bytewise: SQLite's BINARY, PostgreSQL's "C") below the
        // prefix followed by the highest code point.
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints \
             WHERE owner = ? AND name >= ? AND name < ? ORDER BY name, stream LIMIT ?"
        );
        let beyond = format!("{prefix}{}", char::MAX);
        let params = (
            owner.as_str(),
            prefix,
            beyond.as_str(),
            MAX_CHECKPOINTS_LISTED,
        );
        let rows = Sql::<D::DB>::query(&sql, params)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(checkpoint::<D::DB>).collect()
    }

    async fn group_feed(&self) -> Option<GroupFeed> {
        self.dialect.group_feed()
    }

    async fn commit_feed(&self) -> Result<Option<CommitFeed>, StorageError> {
        self.dialect.commit_feed().await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        Sql::<D::DB>::new("SELECT 1 FROM log_head")
            .execute(&mut *self.reader().await?)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.dialect.close().await;
        self.readers.close().await;
        self.writer.close().await;
    }
}
