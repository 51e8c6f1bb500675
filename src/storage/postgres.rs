//! PostgreSQL backend, for several replicas sharing one database.
//!
//! Every write transaction locks the log-head row first: writers of all
//! replicas take turns, positions follow commit order, and with one lock
//! taken before all others no two writers can deadlock.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use tokio::sync::mpsc;
use tracing::warn;

use super::rows::*;
use super::transaction::PooledTx;
use super::{
    CommitFeed, Direction, EventRow, ExistingEvent, ReadFrom, Storage, StorageError,
    StorageOptions, StreamHead, TakeEnd, TrimUntil, WriteTx,
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
pub struct PostgresStorage {
    /// The writer task's connection.
    writer: PgPool,
    /// Connections for reads.
    readers: PgPool,
    /// One connection of its own for `LISTEN`, so it never starves reads.
    listener: PgPool,
    /// The schema the tables live in: commit notifications carry it, so
    /// deployments (and tests) in other schemas of the database do not wake
    /// this one.
    schema: String,
}

impl PostgresStorage {
    /// Connects, retrying while the server is not reachable yet, and
    /// applies migrations (concurrent replicas serialise on sqlx's
    /// migration lock).
    pub async fn open(url: &str, options: &StorageOptions) -> Result<Self, StorageError> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StorageError::Failure(format!("invalid PostgreSQL URL: {e}")))?;
        // Named in pg_stat_activity, unless the URL names it already.
        if connect.get_application_name().is_none() {
            connect = connect.application_name("riverlog");
        }
        if let Some(timeout) = options.statement_timeout {
            connect = connect.options([("statement_timeout", format!("{}", timeout.as_millis()))]);
        }
        // A replica cut off mid-transaction must not hold the log-head lock
        // (and so every replica's writes) until TCP notices.
        connect = connect.options([("idle_in_transaction_session_timeout", "60000")]);
        // Fail a call soon while the database is away: callers get
        // UNAVAILABLE and retry, health reports NOT_SERVING.
        let pool = |size: u32| {
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(Duration::from_secs(2))
        };
        let mut attempt = 1;
        let writer = loop {
            match pool(1).connect_with(connect.clone()).await.map_err(map_err) {
                Ok(pool) => break pool,
                Err(StorageError::Unavailable(e)) if attempt < options.connect_attempts => {
                    let pause = Duration::from_millis(200 << attempt.min(5));
                    warn!(attempt, error = %e, ?pause, "PostgreSQL not reachable yet; retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        sqlx::migrate!("migrations/postgres")
            .run(&writer)
            .await
            .map_err(|e| StorageError::Failure(format!("migrating the database: {e}")))?;
        let readers = pool(options.read_connections.max(1))
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        let listener = pool(1).connect_lazy_with(connect);
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&writer)
            .await
            .map_err(map_err)?;
        Ok(Self {
            writer,
            readers,
            listener,
            schema,
        })
    }
}

/// The channel on which commits that appended events are announced.
const COMMIT_CHANNEL: &str = "riverlog_commits";
/// How often the listener looks for commits anyway: notifications sent
/// while its connection was being re-established are lost.
const COMMIT_POLL: Duration = Duration::from_secs(1);

/// Translates sqlx errors at the boundary, by the one table in
/// [`super::errors`].
fn map_err(e: sqlx::Error) -> StorageError {
    super::errors::postgres(e)
}

row_mappers!(PgRow);

/// Appends `(?, ?, ...)` binding each sequence.
fn push_sequences(qb: &mut QueryBuilder<Postgres>, sequences: &[Sequence]) {
    qb.push("(");
    let mut list = qb.separated(", ");
    for s in sequences {
        list.push_bind(to_i64(*s));
    }
    qb.push(")");
}

impl PostgresStorage {
    /// Fills in consumers, pending totals and lag of a group.
    async fn complete_group_state(&self, group: GroupRecord) -> Result<GroupState, StorageError> {
        let rows = sqlx::query(
            "SELECT c.name, c.last_seen_at, \
             (SELECT COUNT(*) FROM group_pending p WHERE p.group_id = c.group_id AND p.consumer = c.name) \
             FROM group_consumers c WHERE c.group_id = $1 ORDER BY c.name",
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
            sqlx::query_as("SELECT COUNT(*), MIN(sequence) FROM group_pending WHERE group_id = $1")
                .bind(group.id)
                .fetch_one(&self.readers)
                .await
                .map_err(map_err)?;
        let lag: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE stream_id = $1 AND sequence > $2",
        )
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

/// Turns a `*` pattern into a LIKE pattern: `*` becomes `%`, and LIKE's
/// own metacharacters (`%`, `_`, which stream names may contain, and the
/// escape character) match themselves.
fn like_pattern(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len() + 4);
    for c in entry.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// Appends `AND (col = ? OR col GLOB ? ...)` for each non-empty filter list.
fn push_filter(qb: &mut QueryBuilder<Postgres>, filter: &EventFilter) {
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
                    .push(" LIKE ")
                    .push_bind(like_pattern(entry));
            } else {
                qb.push(column).push(" = ").push_bind(entry.clone());
            }
        }
        qb.push(")");
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StorageError> {
        let mut tx = PooledTx::begin(&self.writer, "BEGIN")
            .await
            .map_err(map_err)?;
        // The first lock of every write transaction (see the module doc).
        let floor: i64 =
            match sqlx::query_scalar("SELECT recorded_at FROM log_head WHERE id = 1 FOR UPDATE")
                .fetch_one(tx.conn())
                .await
            {
                Ok(floor) => floor,
                Err(e) => {
                    tx.rollback().await;
                    return Err(map_err(e));
                }
            };
        Ok(Box::new(PostgresWriteTx {
            tx,
            appended: false,
            recorded_floor: UnixMicros(floor),
        }))
    }

    async fn get_stream(&self, name: &StreamName) -> Result<Option<StreamInfo>, StorageError> {
        let sql = format!("{STREAM_INFO_SELECT} WHERE s.name = $1");
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
        let mut qb = QueryBuilder::<Postgres>::new(STREAM_INFO_SELECT);
        qb.push(" WHERE 1 = 1");
        if let Some(p) = pattern {
            qb.push(" AND s.name LIKE ")
                .push_bind(like_pattern(p.as_str()));
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
        let mut qb = QueryBuilder::<Postgres>::new(format!(
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
        let mut qb = QueryBuilder::<Postgres>::new(format!(
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
                    qb.push("s.name LIKE ").push_bind(like_pattern(p.as_str()))
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
            "SELECT position FROM events WHERE recorded_at < $1 \
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
             WHERE s.name = $1 AND e.sequence < $2 ORDER BY e.sequence DESC LIMIT 1",
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
             WHERE s.name = $1 AND g.name = $2"
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
             WHERE s.name = $1 ORDER BY g.name"
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
            "SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM group_pending WHERE group_id = $1",
        )
        .bind(group_id)
        .fetch_one(&self.readers)
        .await
        .map_err(map_err)?;
        let consumers: Vec<(String, i64)> = sqlx::query_as(
            "SELECT consumer, COUNT(*) FROM group_pending WHERE group_id = $1 \
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
        let mut qb = QueryBuilder::<Postgres>::new(format!(
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
             WHERE owner = $3 AND name = $1 AND stream = $2",
        )
        .bind(name.as_str())
        .bind(stream.map_or("", StreamName::as_str))
        .bind(owner.as_str())
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
        // starts_with() rather than LIKE: the prefix is matched literally.
        let rows = sqlx::query(
            "SELECT name, stream, sequence, position, committed_at, owner FROM checkpoints \
             WHERE owner = $2 AND starts_with(name, $1) ORDER BY name, stream LIMIT 10000",
        )
        .bind(prefix)
        .bind(owner.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(checkpoint_row).collect()
    }

    async fn commit_feed(&self) -> Result<Option<CommitFeed>, StorageError> {
        let mut listener = PgListener::connect_with(&self.listener)
            .await
            .map_err(map_err)?;
        listener.listen(COMMIT_CHANNEL).await.map_err(map_err)?;
        let (tx, rx) = mpsc::channel(1);
        // A full channel already holds a wake-up: wake-ups coalesce.
        let wake = |tx: &mpsc::Sender<()>| {
            !matches!(tx.try_send(()), Err(mpsc::error::TrySendError::Closed(())))
        };
        let notified = tx.clone();
        let schema = self.schema.clone();
        tokio::spawn(async move {
            loop {
                // Not under a timeout: that would cancel a reconnect in
                // progress. Ends as soon as nobody listens any more.
                let received = tokio::select! {
                    () = notified.closed() => return,
                    received = listener.try_recv() => received,
                };
                let ours = match &received {
                    Ok(Some(n)) => n.payload() == schema,
                    // Reconnected: notifications may have been missed.
                    Ok(None) => true,
                    Err(e) => {
                        warn!(error = %e, "commit listener lost its connection; retrying");
                        tokio::time::sleep(COMMIT_POLL).await;
                        true
                    }
                };
                if ours && !wake(&notified) {
                    return;
                }
            }
        });
        // Notifications sent while the listener was reconnecting are lost:
        // look anyway, now and then.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(COMMIT_POLL) => {}
                }
                if !wake(&tx) {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1 FROM log_head")
            .execute(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.listener.close().await;
        self.readers.close().await;
        self.writer.close().await;
    }
}

/// A write transaction on the single write connection.
struct PostgresWriteTx {
    tx: PooledTx<Postgres>,
    /// Whether events were appended, so commit must notify the replicas.
    appended: bool,
    /// `log_head.recorded_at`, read with the lock.
    recorded_floor: UnixMicros,
}

#[async_trait]
impl WriteTx for PostgresWriteTx {
    async fn log_head(&mut self) -> Result<Position, StorageError> {
        let head: i64 = sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1")
            .fetch_one(self.tx.conn())
            .await
            .map_err(map_err)?;
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
        sqlx::query("UPDATE log_head SET position = $1, recorded_at = GREATEST(recorded_at, $2) WHERE id = 1")
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
            let mut qb = QueryBuilder::<Postgres>::new(
                "SELECT id, name, last_sequence, last_position, event_count, created_at, \
                 last_appended_at FROM streams WHERE name IN (",
            );
            let mut list = qb.separated(", ");
            for name in chunk {
                list.push_bind(name.as_str().to_owned());
            }
            // Name order: replicas lock the same rows in the same order.
            qb.push(") ORDER BY name FOR UPDATE");
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE streams SET last_sequence = v.ls, last_position = v.lp, \
                 event_count = v.ec, last_appended_at = v.la FROM (",
            );
            qb.push_values(chunk, |mut b, h| {
                b.push_bind(h.id)
                    .push_bind(to_i64(h.last_sequence))
                    .push_bind(to_i64(h.last_position))
                    .push_bind(to_i64(h.event_count))
                    .push_bind(h.last_appended_at.map(|t| t.0));
            });
            qb.push(") AS v (id, ls, lp, ec, la) WHERE streams.id = v.id");
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
            let mut qb = QueryBuilder::<Postgres>::new(
                "SELECT e.stream_id, e.event_id, e.sequence, e.position, e.recorded_at FROM (",
            );
            qb.push_values(chunk, |mut b, (stream_id, id)| {
                b.push_bind(*stream_id).push_bind((*id).to_owned());
            });
            qb.push(
                ") AS k (stream_id, event_id) \
                 JOIN events e ON e.stream_id = k.stream_id AND e.event_id = k.event_id",
            );
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
        // One statement of fixed shape for any number of rows: each column
        // travels as one array. A VALUES list would be a new statement to
        // parse and plan for every batch size.
        let n = rows.len();
        let (mut position, mut stream_id, mut sequence) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut id, mut kind, mut source, mut subject) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut recorded_at, mut payload) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for row in rows {
            let e = &row.event;
            position.push(to_i64(e.position));
            stream_id.push(row.stream_id);
            sequence.push(to_i64(e.sequence));
            id.push(e.id.as_str());
            kind.push(e.event_type.as_str());
            source.push(e.source.as_str());
            subject.push(e.subject.as_deref());
            recorded_at.push(e.recorded_at.0);
            payload.push(e.payload.as_ref());
        }
        sqlx::query(
            "INSERT INTO events (position, stream_id, sequence, event_id, type, source, \
             subject, recorded_at, payload) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::int8[], $9::bytea[])",
        )
        .bind(position)
        .bind(stream_id)
        .bind(sequence)
        .bind(id)
        .bind(kind)
        .bind(source)
        .bind(subject)
        .bind(recorded_at)
        .bind(payload)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?;
        self.appended = true;
        Ok(())
    }

    async fn delete_stream(&mut self, stream_id: i64) -> Result<u64, StorageError> {
        for sql in [
            "DELETE FROM group_pending WHERE group_id IN (SELECT id FROM groups WHERE stream_id = $1)",
            "DELETE FROM group_consumers WHERE group_id IN (SELECT id FROM groups WHERE stream_id = $1)",
            "DELETE FROM groups WHERE stream_id = $1",
            "DELETE FROM checkpoints WHERE stream = (SELECT name FROM streams WHERE id = $1)",
        ] {
            sqlx::query(sql)
                .bind(stream_id)
                .execute(self.tx.conn())
                .await
                .map_err(map_err)?;
        }
        let removed = sqlx::query("DELETE FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?
            .rows_affected();
        sqlx::query("DELETE FROM streams WHERE id = $1")
            .bind(stream_id)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(removed)
    }

    async fn trim(&mut self, stream_id: i64, until: TrimUntil) -> Result<u64, StorageError> {
        let query = match until {
            TrimUntil::MaxEvents(keep) => sqlx::query(
                "DELETE FROM events WHERE stream_id = $1 AND sequence <= \
                 (SELECT sequence FROM events WHERE stream_id = $1 \
                  ORDER BY sequence DESC LIMIT 1 OFFSET $2)",
            )
            .bind(stream_id)
            .bind(to_i64(keep)),
            TrimUntil::BeforeSequence(s) => {
                sqlx::query("DELETE FROM events WHERE stream_id = $1 AND sequence < $2")
                    .bind(stream_id)
                    .bind(to_i64(s))
            }
            TrimUntil::BeforeTime(t) => {
                sqlx::query("DELETE FROM events WHERE stream_id = $1 AND recorded_at < $2")
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
             WHERE e.stream_id = $1 ORDER BY e.sequence {order} LIMIT $2"
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
                TakeEnd::Oldest => "DELETE FROM events WHERE stream_id = $1 AND sequence <= $2",
                TakeEnd::Newest => "DELETE FROM events WHERE stream_id = $1 AND sequence >= $2",
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
            format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.stream_id = $1 AND g.name = $2");
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
             dead_letter_stream, cursor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
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
            "DELETE FROM group_pending WHERE group_id = $1",
            "DELETE FROM group_consumers WHERE group_id = $1",
            "DELETE FROM groups WHERE id = $1",
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
        sqlx::query("UPDATE groups SET cursor = $1 WHERE id = $2")
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
            "INSERT INTO group_consumers (group_id, name, last_seen_at) VALUES ($1, $2, $3) \
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
            "UPDATE group_pending SET deliverable_at = $1 WHERE group_id = $2 AND consumer = $3",
        )
        .bind(now.0)
        .bind(group_id)
        .bind(consumer)
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?
        .rows_affected();
        sqlx::query("DELETE FROM group_consumers WHERE group_id = $1 AND name = $2")
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
             WHERE group_id = $1 AND consumer = $2 AND deliverable_at > $3",
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
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = $1 AND consumer = $2 \
             ORDER BY sequence LIMIT $3"
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
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = $1 AND deliverable_at <= $2 \
             ORDER BY deliverable_at, sequence LIMIT $3"
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
            "SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = $1 AND delivered_at <= $2 \
             ORDER BY sequence LIMIT $3"
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
            let mut qb = QueryBuilder::<Postgres>::new(format!(
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
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO group_pending (group_id, sequence, consumer, delivery_count, \
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
            qb.push(
                " ON CONFLICT (group_id, sequence) DO UPDATE SET consumer = EXCLUDED.consumer, \
                 delivery_count = EXCLUDED.delivery_count, delivered_at = EXCLUDED.delivered_at, \
                 deliverable_at = EXCLUDED.deliverable_at",
            );
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
            let mut qb =
                QueryBuilder::<Postgres>::new("DELETE FROM group_pending WHERE group_id = ");
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
            let mut qb =
                QueryBuilder::<Postgres>::new("UPDATE group_pending SET deliverable_at = ");
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
            "SELECT MIN(deliverable_at) FROM group_pending WHERE group_id = $1 AND deliverable_at > $2",
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
            let mut qb = QueryBuilder::<Postgres>::new(format!(
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
             WHERE e.stream_id = $1 AND e.sequence > $2 ORDER BY e.sequence LIMIT $3"
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
        sqlx::query("INSERT INTO write_probe (id, filler) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET filler = EXCLUDED.filler")
            .bind(filler)
            .execute(self.tx.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO checkpoints (name, stream, sequence, position, committed_at, owner) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, name, stream) DO UPDATE SET \
             sequence = EXCLUDED.sequence, position = EXCLUDED.position, \
             committed_at = EXCLUDED.committed_at",
        )
        .bind(checkpoint.name.as_str())
        .bind(checkpoint.stream.as_ref().map_or("", StreamName::as_str))
        .bind(to_i64(checkpoint.sequence))
        .bind(to_i64(checkpoint.position))
        .bind(checkpoint.committed_at.0)
        .bind(checkpoint.owner.as_str())
        .execute(self.tx.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.appended {
            // Delivered to every listener when (and only if) this commits.
            let notified = sqlx::query("SELECT pg_notify($1, current_schema())")
                .bind(COMMIT_CHANNEL)
                .execute(self.tx.conn())
                .await;
            if let Err(e) = notified {
                self.tx.rollback().await;
                return Err(map_err(e));
            }
        }
        self.tx.commit().await.map_err(map_err)
    }

    async fn rollback(self: Box<Self>) {
        self.tx.rollback().await;
    }
}
