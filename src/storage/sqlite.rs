//! SQLite backend: one write connection in WAL mode, readers on their own
//! pool, so reads never wait for the group commit.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rows::*;
use super::transaction::PooledTx;
use super::{
    Direction, EventRow, ExistingEvent, ReadFrom, Storage, StorageError, StorageOptions,
    StreamHead, TakeEnd, TrimUntil, WriteTx,
};
use crate::log::filter::EventFilter;
use crate::log::groups::{
    Checkpoint, CheckpointOwner, ConsumerRecord, GroupRecord, GroupSettings, GroupState,
    PendingEntry, PendingQuery, PendingSummary,
};
use crate::log::model::{Position, Retention, Sequence, StoredEvent, StreamInfo, UnixMicros};
use crate::log::names::{Label, StreamName, StreamPattern, StreamSelector};

/// Rows per multi-row INSERT: 9 parameters each stays far below SQLite's
/// 32766-variable limit.
const INSERT_CHUNK: usize = 500;
/// Ids per dedup lookup.
const LOOKUP_CHUNK: usize = 500;

/// The SQLite storage.
pub struct SqliteStorage {
    /// The only connection that writes: SQLite allows one writer at a time
    /// anyway, and owning it avoids lock waits between our own writers.
    writer: SqlitePool,
    /// Connections for reads, which WAL lets run beside the writer.
    readers: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(url: &str, options: &StorageOptions) -> Result<Self, StorageError> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let base = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StorageError::Failure(format!("invalid SQLite URL {url:?}: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = base.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let synchronous = if options.sqlite_sync_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .synchronous(synchronous),
            )
            .await
            .map_err(map_err)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StorageError::Failure(format!("migrating the database: {e}")))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, readers })
    }
}

/// Translates sqlx errors at the boundary, by the one table in
/// [`super::errors`].
fn map_err(e: sqlx::Error) -> StorageError {
    super::errors::sqlite(e)
}

row_mappers!(SqliteRow);

/// Appends `(?, ?, ...)` binding each sequence.
fn push_sequences(qb: &mut QueryBuilder<Sqlite>, sequences: &[Sequence]) {
    qb.push("(");
    let mut list = qb.separated(", ");
    for s in sequences {
        list.push_bind(to_i64(*s));
    }
    qb.push(")");
}

impl SqliteStorage {
    /// Fills in consumers, pending totals and lag of a group.
    async fn complete_group_state(&self, group: GroupRecord) -> Result<GroupState, StorageError> {
        let rows = sqlx::query(
            "SELECT c.name, c.last_seen_at, \
             (SELECT COUNT(*) FROM group_pending p WHERE p.group_id = c.group_id AND p.consumer = c.name) \
             FROM group_consumers c WHERE c.group_id = ? ORDER BY c.name",
        )
        .bind(group.id)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        let consumers = rows
            .iter()
            .map(|row| {
                Ok(ConsumerRecord {
                    name: row.try_get(0).map_err(map_err)?,
                    last_seen_at: UnixMicros(row.try_get(1).map_err(map_err)?),
                    pending: to_u64(row.try_get(2).map_err(map_err)?),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let (pending, lowest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(sequence) FROM group_pending WHERE group_id = ?")
                .bind(group.id)
                .fetch_one(&self.readers)
                .await
                .map_err(map_err)?;
        let lag: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE stream_id = ? AND sequence > ?")
                .bind(group.stream_id)
                .bind(to_i64(group.cursor))
                .fetch_one(&self.readers)
                .await
                .map_err(map_err)?;
        Ok(GroupState {
            group,
            consumers,
            pending: to_u64(pending),
            lowest_pending: lowest.map(to_u64),
            lag: to_u64(lag),
        })
    }
}

/// Escapes GLOB metacharacters other than `*`, which keeps its meaning.
fn glob_pattern(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len() + 4);
    for c in entry.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// Appends `AND (col = ? OR col GLOB ? ...)` for each non-empty filter list.
fn push_filter(qb: &mut QueryBuilder<Sqlite>, filter: &EventFilter) {
    for (column, list) in [
        ("e.type", &filter.types),
        ("e.source", &filter.sources),
        ("e.subject", &filter.subjects),
    ] {
        if list.is_empty() {
            continue;
        }
        qb.push(" AND (");
        for (i, entry) in list.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            if entry.contains('*') {
                qb.push(column)
                    .push(" GLOB ")
                    .push_bind(glob_pattern(entry));
            } else {
                qb.push(column).push(" = ").push_bind(entry.clone());
            }
        }
        qb.push(")");
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StorageError> {
        // IMMEDIATE takes the write lock now, not at the first write, so a
        // busy database fails here rather than half-way through a batch.
        let tx = PooledTx::begin(&self.writer, "BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        Ok(Box::new(SqliteWriteTx { tx }))
    }

    async fn get_stream(&self, name: &StreamName) -> Result<Option<StreamInfo>, StorageError> {
        let sql = format!("{STREAM_INFO_SELECT} WHERE s.name = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.as_str())
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.as_ref().map(stream_info).transpose()
    }

    async fn list_streams(
        &self,
        pattern: Option<&StreamPattern>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StreamInfo>, StorageError> {
        let mut qb = QueryBuilder::<Sqlite>::new(STREAM_INFO_SELECT);
        qb.push(" WHERE 1 = 1");
        if let Some(p) = pattern {
            qb.push(" AND s.name GLOB ")
                .push_bind(p.as_str().to_owned());
        }
        if let Some(a) = after {
            qb.push(" AND s.name > ").push_bind(a.to_owned());
        }
        qb.push(" ORDER BY s.name LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.readers).await.map_err(map_err)?;
        rows.iter().map(stream_info).collect()
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN streams s ON s.id = e.stream_id \
             WHERE s.name = "
        ));
        qb.push_bind(stream.as_str().to_owned());
        let (cmp, order) = match direction {
            Direction::Forward => (">=", "ASC"),
            Direction::Backward => ("<=", "DESC"),
        };
        match from {
            ReadFrom::End => {}
            ReadFrom::Sequence(s) => {
                qb.push(format!(" AND e.sequence {cmp} "))
                    .push_bind(to_i64(s));
            }
            ReadFrom::Time(t) => {
                qb.push(format!(" AND e.recorded_at {cmp} ")).push_bind(t.0);
            }
        }
        push_filter(&mut qb, filter);
        qb.push(format!(" ORDER BY e.sequence {order} LIMIT "))
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.readers).await.map_err(map_err)?;
        stored_events(rows)
    }

    async fn read_log(
        &self,
        after: Position,
        selectors: &[StreamSelector],
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN streams s ON s.id = e.stream_id \
             WHERE e.position > "
        ));
        qb.push_bind(to_i64(after));
        qb.push(" AND (");
        for (i, selector) in selectors.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            match selector {
                StreamSelector::Name(n) => qb.push("s.name = ").push_bind(n.as_str().to_owned()),
                StreamSelector::Pattern(p) => {
                    qb.push("s.name GLOB ").push_bind(p.as_str().to_owned())
                }
            };
        }
        if selectors.is_empty() {
            qb.push("1 = 0");
        }
        qb.push(")");
        push_filter(&mut qb, filter);
        qb.push(" ORDER BY e.position LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.readers).await.map_err(map_err)?;
        stored_events(rows)
    }

    async fn head_position(&self) -> Result<Position, StorageError> {
        let head: i64 = sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1")
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(to_u64(head))
    }

    async fn position_before_time(&self, time: UnixMicros) -> Result<Position, StorageError> {
        // recorded_at never decreases along positions, so the newest event
        // before `time` by the time index is also the one with the highest
        // position.
        let pos: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM events WHERE recorded_at < ? \
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
        )
        .bind(time.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(pos.map_or(0, to_u64))
    }

    async fn position_before_sequence(
        &self,
        stream: &StreamName,
        sequence: Sequence,
    ) -> Result<Position, StorageError> {
        let pos: Option<i64> = sqlx::query_scalar(
            "SELECT e.position FROM events e JOIN streams s ON s.id = e.stream_id \
             WHERE s.name = ? AND e.sequence < ? ORDER BY e.sequence DESC LIMIT 1",
        )
        .bind(stream.as_str())
        .bind(to_i64(sequence))
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(pos.map_or(0, to_u64))
    }

    async fn last_recorded_at(&self) -> Result<Option<UnixMicros>, StorageError> {
        let t: Option<i64> = sqlx::query_scalar("SELECT MAX(recorded_at) FROM events")
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(t.map(UnixMicros))
    }

    async fn group_state(
        &self,
        stream: &StreamName,
        group: &Label,
    ) -> Result<Option<GroupState>, StorageError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups g JOIN streams s ON s.id = g.stream_id \
             WHERE s.name = ? AND g.name = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.as_str())
            .bind(group.as_str())
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let record = group_record(&row, stream.clone())?;
                Ok(Some(self.complete_group_state(record).await?))
            }
        }
    }

    async fn list_group_states(
        &self,
        stream: &StreamName,
    ) -> Result<Vec<GroupState>, StorageError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups g JOIN streams s ON s.id = g.stream_id \
             WHERE s.name = ? ORDER BY g.name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.as_str())
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        let mut states = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = group_record(row, stream.clone())?;
            states.push(self.complete_group_state(record).await?);
        }
        Ok(states)
    }

    async fn pending_summary(&self, group_id: i64) -> Result<PendingSummary, StorageError> {
        let (count, lowest, highest): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM group_pending WHERE group_id = ?",
        )
        .bind(group_id)
        .fetch_one(&self.readers)
        .await
        .map_err(map_err)?;
        let consumers: Vec<(String, i64)> = sqlx::query_as(
            "SELECT consumer, COUNT(*) FROM group_pending WHERE group_id = ? \
             GROUP BY consumer ORDER BY consumer",
        )
        .bind(group_id)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(PendingSummary {
            count: to_u64(count),
            lowest: lowest.map(to_u64),
            highest: highest.map(to_u64),
            consumers: consumers.into_iter().map(|(c, n)| (c, to_u64(n))).collect(),
        })
    }

    async fn list_pending(
        &self,
        group_id: i64,
        query: &PendingQuery,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = "
        ));
        qb.push_bind(group_id);
        qb.push(" AND sequence > ")
            .push_bind(to_i64(query.after_sequence));
        if let Some(c) = &query.consumer {
            qb.push(" AND consumer = ").push_bind(c.clone());
        }
        if let Some(t) = query.delivered_before {
            qb.push(" AND delivered_at <= ").push_bind(t.0);
        }
        qb.push(" ORDER BY sequence LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows = qb.build().fetch_all(&self.readers).await.map_err(map_err)?;
        rows.iter().map(pending_entry).collect()
    }

    async fn checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &Label,
        stream: Option<&StreamName>,
    ) -> Result<Option<Checkpoint>, StorageError> {
        let row = sqlx::query(
            "SELECT name, stream, sequence, position, committed_at, owner FROM checkpoints \
             WHERE owner = ? AND name = ? AND stream = ?",
        )
        .bind(owner.as_str())
        .bind(name.as_str())
        .bind(stream.map_or("", StreamName::as_str))
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.as_ref().map(checkpoint_row).transpose()
    }

    async fn list_checkpoints(
        &self,
        owner: &CheckpointOwner,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, StorageError> {
        // substr() rather than LIKE/GLOB: the prefix is matched literally.
        let rows = sqlx::query(
            "SELECT name, stream, sequence, position, committed_at, owner FROM checkpoints \
             WHERE owner = ?2 AND substr(name, 1, length(?1)) = ?1 \
             ORDER BY name, stream LIMIT 10000",
        )
        .bind(prefix)
        .bind(owner.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(checkpoint_row).collect()
    }

    async fn commit_feed(&self) -> Result<Option<super::CommitFeed>, StorageError> {
        // One process owns the file: its writer feeds the hub directly.
        Ok(None)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1 FROM log_head")
            .execute(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

/// A write transaction on the single write connection.
struct SqliteWriteTx {
    tx: PooledTx<Sqlite>,
}

#[async_trait]
impl WriteTx for SqliteWriteTx {
    async fn log_head(&mut self) -> Result<Position, StorageError> {
        let head: i64 = sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1")
            .fetch_one(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(to_u64(head))
    }

    async fn recorded_floor(&mut self) -> Result<UnixMicros, StorageError> {
        // One writer process owns the file; its own clock (floored by the
        // log's latest time at start-up) is already monotonic.
        Ok(UnixMicros(0))
    }

    async fn save_log_head(
        &mut self,
        head: Position,
        recorded_at: UnixMicros,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE log_head SET position = ?, recorded_at = MAX(recorded_at, ?) WHERE id = 1",
        )
        .bind(to_i64(head))
        .bind(recorded_at.0)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn stream_heads(
        &mut self,
        names: &[StreamName],
    ) -> Result<Vec<StreamHead>, StorageError> {
        let mut heads = Vec::with_capacity(names.len());
        for chunk in names.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT id, name, last_sequence, last_position, event_count, created_at, \
                 last_appended_at FROM streams WHERE name IN (",
            );
            let mut list = qb.separated(", ");
            for name in chunk {
                list.push_bind(name.as_str().to_owned());
            }
            qb.push(")");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            for row in rows {
                let name: String = row.try_get(1).map_err(map_err)?;
                heads.push(StreamHead {
                    id: row.try_get(0).map_err(map_err)?,
                    name: parse_name(&name)?,
                    last_sequence: to_u64(row.try_get(2).map_err(map_err)?),
                    last_position: to_u64(row.try_get(3).map_err(map_err)?),
                    event_count: to_u64(row.try_get(4).map_err(map_err)?),
                    created_at: UnixMicros(row.try_get(5).map_err(map_err)?),
                    last_appended_at: row
                        .try_get::<Option<i64>, _>(6)
                        .map_err(map_err)?
                        .map(UnixMicros),
                });
            }
        }
        Ok(heads)
    }

    async fn count_streams(&mut self) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM streams")
            .fetch_one(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(to_u64(n))
    }

    async fn create_stream(
        &mut self,
        name: &StreamName,
        retention: &Retention,
        now: UnixMicros,
    ) -> Result<StreamHead, StorageError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO streams (name, created_at, max_events, max_age_us, ttl_us) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name.as_str())
        .bind(now.0)
        .bind(retention.max_events.map(to_i64))
        .bind(duration_to_micros(retention.max_age))
        .bind(duration_to_micros(retention.ttl))
        .fetch_one(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(StreamHead {
            id,
            name: name.clone(),
            last_sequence: 0,
            last_position: 0,
            event_count: 0,
            created_at: now,
            last_appended_at: None,
        })
    }

    async fn save_stream_heads(&mut self, heads: &[StreamHead]) -> Result<(), StorageError> {
        for chunk in heads.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE streams SET last_sequence = v.column2, last_position = v.column3, \
                 event_count = v.column4, last_appended_at = v.column5 FROM (",
            );
            qb.push_values(chunk, |mut b, h| {
                b.push_bind(h.id)
                    .push_bind(to_i64(h.last_sequence))
                    .push_bind(to_i64(h.last_position))
                    .push_bind(to_i64(h.event_count))
                    .push_bind(h.last_appended_at.map(|t| t.0));
            });
            qb.push(") AS v WHERE streams.id = v.column1");
            qb.build().execute(self.tx.conn()).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn find_events(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<ExistingEvent>, StorageError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            // A join with the keys as a VALUES table: one indexed lookup per
            // key on (stream_id, event_id), in one statement.
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT e.stream_id, e.event_id, e.sequence, e.position, e.recorded_at FROM (",
            );
            qb.push_values(chunk, |mut b, (stream_id, id)| {
                b.push_bind(*stream_id).push_bind((*id).to_owned());
            });
            qb.push(") AS k JOIN events e ON e.stream_id = k.column1 AND e.event_id = k.column2");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            for row in rows {
                found.push(ExistingEvent {
                    stream_id: row.try_get(0).map_err(map_err)?,
                    id: row.try_get(1).map_err(map_err)?,
                    sequence: to_u64(row.try_get(2).map_err(map_err)?),
                    position: to_u64(row.try_get(3).map_err(map_err)?),
                    recorded_at: UnixMicros(row.try_get(4).map_err(map_err)?),
                });
            }
        }
        Ok(found)
    }

    async fn insert_events(&mut self, rows: &[EventRow]) -> Result<(), StorageError> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (position, stream_id, sequence, event_id, type, source, \
                 subject, recorded_at, payload) ",
            );
            qb.push_values(chunk, |mut b, row| {
                let e = &row.event;
                b.push_bind(to_i64(e.position))
                    .push_bind(row.stream_id)
                    .push_bind(to_i64(e.sequence))
                    .push_bind(e.id.clone())
                    .push_bind(e.event_type.clone())
                    .push_bind(e.source.clone())
                    .push_bind(e.subject.clone())
                    .push_bind(e.recorded_at.0)
                    .push_bind(e.payload.to_vec());
            });
            qb.build().execute(self.tx.conn()).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn delete_stream(&mut self, stream_id: i64) -> Result<u64, StorageError> {
        for sql in [
            "DELETE FROM group_pending WHERE group_id IN (SELECT id FROM groups WHERE stream_id = ?)",
            "DELETE FROM group_consumers WHERE group_id IN (SELECT id FROM groups WHERE stream_id = ?)",
            "DELETE FROM groups WHERE stream_id = ?",
            "DELETE FROM checkpoints WHERE stream = (SELECT name FROM streams WHERE id = ?)",
        ] {
            sqlx::query(sql)
                .bind(stream_id)
                .execute(self.tx.conn())
                .await
                .map_err(map_err)?;
        }
        let removed = sqlx::query("DELETE FROM events WHERE stream_id = ?")
            .bind(stream_id)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?
            .rows_affected();
        sqlx::query("DELETE FROM streams WHERE id = ?")
            .bind(stream_id)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(removed)
    }

    async fn trim(&mut self, stream_id: i64, until: TrimUntil) -> Result<u64, StorageError> {
        let query = match until {
            TrimUntil::MaxEvents(keep) => sqlx::query(
                "DELETE FROM events WHERE stream_id = ?1 AND sequence <= \
                 (SELECT sequence FROM events WHERE stream_id = ?1 \
                  ORDER BY sequence DESC LIMIT 1 OFFSET ?2)",
            )
            .bind(stream_id)
            .bind(to_i64(keep)),
            TrimUntil::BeforeSequence(s) => {
                sqlx::query("DELETE FROM events WHERE stream_id = ? AND sequence < ?")
                    .bind(stream_id)
                    .bind(to_i64(s))
            }
            TrimUntil::BeforeTime(t) => {
                sqlx::query("DELETE FROM events WHERE stream_id = ? AND recorded_at < ?")
                    .bind(stream_id)
                    .bind(t.0)
            }
        };
        let removed = query
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(removed)
    }

    async fn take(
        &mut self,
        stream: &StreamHead,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let order = match end {
            TakeEnd::Oldest => "ASC",
            TakeEnd::Newest => "DESC",
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN streams s ON s.id = e.stream_id \
             WHERE e.stream_id = ? ORDER BY e.sequence {order} LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.id)
            .bind(i64::from(limit))
            .fetch_all(self.tx.conn())
            .await
            .map_err(map_err)?;
        let mut events = stored_events(rows)?;
        events.truncate(crate::log::model::fitting(&events, max_bytes));
        if let Some(last) = events.last() {
            // The taken events are exactly those up to (or down to) the last
            // one read, so one range delete removes them.
            let delete = match end {
                TakeEnd::Oldest => "DELETE FROM events WHERE stream_id = ? AND sequence <= ?",
                TakeEnd::Newest => "DELETE FROM events WHERE stream_id = ? AND sequence >= ?",
            };
            sqlx::query(delete)
                .bind(stream.id)
                .bind(to_i64(last.sequence))
                .execute(self.tx.conn())
                .await
                .map_err(map_err)?;
        }
        Ok(events)
    }

    async fn group(
        &mut self,
        stream: &StreamHead,
        name: &Label,
    ) -> Result<Option<GroupRecord>, StorageError> {
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.stream_id = ? AND g.name = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.id)
            .bind(name.as_str())
            .fetch_optional(self.tx.conn())
            .await
            .map_err(map_err)?;
        row.map(|r| group_record(&r, stream.name.clone()))
            .transpose()
    }

    async fn create_group(
        &mut self,
        stream: &StreamHead,
        name: &Label,
        settings: &GroupSettings,
        cursor: Sequence,
        now: UnixMicros,
    ) -> Result<GroupRecord, StorageError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (stream_id, name, ack_timeout_us, max_deliveries, \
             dead_letter_stream, cursor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(stream.id)
        .bind(name.as_str())
        .bind(duration_to_micros(Some(settings.ack_timeout)))
        .bind(i64::from(settings.max_deliveries))
        .bind(settings.dead_letter_stream.as_str())
        .bind(to_i64(cursor))
        .bind(now.0)
        .fetch_one(self.tx.conn())
        .await
        .map_err(map_err)?;
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
            sqlx::query(sql)
                .bind(group_id)
                .execute(self.tx.conn())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn save_group_cursor(
        &mut self,
        group_id: i64,
        cursor: Sequence,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE groups SET cursor = ? WHERE id = ?")
            .bind(to_i64(cursor))
            .bind(group_id)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn touch_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO group_consumers (group_id, name, last_seen_at) VALUES (?, ?, ?) \
             ON CONFLICT (group_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(group_id)
        .bind(consumer)
        .bind(now.0)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn release_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError> {
        let released = sqlx::query(
            "UPDATE group_pending SET deliverable_at = ? WHERE group_id = ? AND consumer = ?",
        )
        .bind(now.0)
        .bind(group_id)
        .bind(consumer)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?
        .rows_affected();
        sqlx::query("DELETE FROM group_consumers WHERE group_id = ? AND name = ?")
            .bind(group_id)
            .bind(consumer)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(released)
    }

    async fn consumer_in_flight(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM group_pending \
             WHERE group_id = ? AND consumer = ? AND deliverable_at > ?",
        )
        .bind(group_id)
        .bind(consumer)
        .bind(now.0)
        .fetch_one(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(to_u64(n))
    }

    async fn pending_of_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = ? AND consumer = ? \
             ORDER BY sequence LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(group_id)
            .bind(consumer)
            .bind(i64::from(limit))
            .fetch_all(self.tx.conn())
            .await
            .map_err(map_err)?;
        rows.iter().map(pending_entry).collect()
    }

    async fn due_pending(
        &mut self,
        group_id: i64,
        now: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = ? AND deliverable_at <= ? \
             ORDER BY deliverable_at, sequence LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(group_id)
            .bind(now.0)
            .bind(i64::from(limit))
            .fetch_all(self.tx.conn())
            .await
            .map_err(map_err)?;
        rows.iter().map(pending_entry).collect()
    }

    async fn idle_pending(
        &mut self,
        group_id: i64,
        delivered_before: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = ? AND delivered_at <= ? \
             ORDER BY sequence LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(group_id)
            .bind(delivered_before.0)
            .bind(i64::from(limit))
            .fetch_all(self.tx.conn())
            .await
            .map_err(map_err)?;
        rows.iter().map(pending_entry).collect()
    }

    async fn pending_entries(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<PendingEntry>, StorageError> {
        let mut found = Vec::new();
        for chunk in sequences.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = "
            ));
            qb.push_bind(group_id).push(" AND sequence IN ");
            push_sequences(&mut qb, chunk);
            qb.push(" ORDER BY sequence");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            for row in &rows {
                found.push(pending_entry(row)?);
            }
        }
        Ok(found)
    }

    async fn save_pending(
        &mut self,
        group_id: i64,
        entries: &[PendingEntry],
    ) -> Result<(), StorageError> {
        for chunk in entries.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO group_pending (group_id, sequence, consumer, delivery_count, \
                 delivered_at, deliverable_at) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(group_id)
                    .push_bind(to_i64(e.sequence))
                    .push_bind(e.consumer.clone())
                    .push_bind(i64::from(e.delivery_count))
                    .push_bind(e.delivered_at.0)
                    .push_bind(e.deliverable_at.0);
            });
            qb.build().execute(self.tx.conn()).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn remove_pending(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<Sequence>, StorageError> {
        let mut removed = Vec::new();
        for chunk in sequences.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM group_pending WHERE group_id = ");
            qb.push_bind(group_id).push(" AND sequence IN ");
            push_sequences(&mut qb, chunk);
            qb.push(" RETURNING sequence");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            for row in &rows {
                removed.push(to_u64(row.try_get(0).map_err(map_err)?));
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
        let mut deferred = Vec::new();
        for chunk in sequences.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("UPDATE group_pending SET deliverable_at = ");
            qb.push_bind(at.0)
                .push(" WHERE group_id = ")
                .push_bind(group_id);
            if let Some(consumer) = holder {
                qb.push(" AND consumer = ").push_bind(consumer.to_owned());
            }
            qb.push(" AND sequence IN ");
            push_sequences(&mut qb, chunk);
            qb.push(" RETURNING sequence");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            for row in &rows {
                deferred.push(to_u64(row.try_get(0).map_err(map_err)?));
            }
        }
        Ok(deferred)
    }

    async fn next_due(
        &mut self,
        group_id: i64,
        now: UnixMicros,
    ) -> Result<Option<UnixMicros>, StorageError> {
        let t: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(deliverable_at) FROM group_pending WHERE group_id = ? AND deliverable_at > ?",
        )
        .bind(group_id)
        .bind(now.0)
        .fetch_one(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(t.map(UnixMicros))
    }

    async fn events_by_sequence(
        &mut self,
        stream_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut found = Vec::new();
        for chunk in sequences.chunks(LOOKUP_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {EVENT_COLUMNS} FROM events e JOIN streams s ON s.id = e.stream_id \
                 WHERE e.stream_id = "
            ));
            qb.push_bind(stream_id).push(" AND e.sequence IN ");
            push_sequences(&mut qb, chunk);
            qb.push(" ORDER BY e.sequence");
            let rows = qb
                .build()
                .fetch_all(self.tx.conn())
                .await
                .map_err(map_err)?;
            found.extend(stored_events(rows)?);
        }
        Ok(found)
    }

    async fn events_after(
        &mut self,
        stream_id: i64,
        after: Sequence,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN streams s ON s.id = e.stream_id \
             WHERE e.stream_id = ? AND e.sequence > ? ORDER BY e.sequence LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream_id)
            .bind(to_i64(after))
            .bind(i64::from(limit))
            .fetch_all(self.tx.conn())
            .await
            .map_err(map_err)?;
        stored_events(rows)
    }

    async fn write_probe(&mut self, filler: &[u8]) -> Result<(), StorageError> {
        sqlx::query("INSERT OR REPLACE INTO write_probe (id, filler) VALUES (1, ?)")
            .bind(filler)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT OR REPLACE INTO checkpoints \
             (owner, name, stream, sequence, position, committed_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(checkpoint.owner.as_str())
        .bind(checkpoint.name.as_str())
        .bind(checkpoint.stream.as_ref().map_or("", StreamName::as_str))
        .bind(to_i64(checkpoint.sequence))
        .bind(to_i64(checkpoint.position))
        .bind(checkpoint.committed_at.0)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.tx.commit().await.map_err(map_err)
    }

    async fn rollback(self: Box<Self>) {
        self.tx.rollback().await;
    }
}
