//! PostgreSQL backend, for several replicas sharing one database. Only
//! what PostgreSQL does its own way is here; the SQL is in `storage/sql/`.
//!
//! Every write transaction locks the log-head row first: writers of all
//! replicas take turns, positions follow commit order, and with one lock
//! taken before all others no two writers can deadlock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgQueryResult,
};
use tokio::sync::mpsc;
use tracing::warn;

use super::sql::{
    Dialect, Driver, IdsOf, LockedLogHead, Sql, SqlStorage, existing_event, get, to_i64, to_u64,
};
use super::{CommitFeed, EventRow, ExistingEvent, GroupFeed, StorageError, StorageOptions};
use crate::model::names::{GroupName, StreamName};
use crate::model::records::UnixMicros;

/// The PostgreSQL storage.
pub type PostgresStorage = SqlStorage<PostgresDialect>;

/// PostgreSQL's side of the shared SQL: the commit listener's state.
pub struct PostgresDialect {
    /// One connection of its own for `LISTEN`, so it never starves reads.
    listener: PgPool,
    /// The schema the tables live in: commit notifications carry it, so
    /// deployments (and tests) in other schemas of the database do not wake
    /// this one.
    schema: String,
    /// The group wake-ups [`Dialect::commit_feed`]'s listener receives,
    /// until [`Dialect::group_feed`] takes them.
    group_feed: std::sync::Mutex<Option<GroupFeed>>,
}

/// The channel on which commits that appended events are announced.
const COMMIT_CHANNEL: &str = "riverlog_commits";
/// The channel on which commits that changed a group's work are announced:
/// payload `schema \t stream \t group` (names never hold a tab).
const GROUP_CHANNEL: &str = "riverlog_groups";
/// Announces groups on [`GROUP_CHANNEL`] ($1): one notification per
/// (stream, group) of the arrays $2 and $3.
const ANNOUNCE_GROUPS: &str = "SELECT pg_notify($1, current_schema() || chr(9) || s || chr(9) || g) \
     FROM UNNEST($2::text[], $3::text[]) AS a (s, g)";
/// Group wake-ups queued for the log; past that, new ones are dropped (the
/// consumers' heartbeats and due times still bring them back).
const GROUP_FEED_QUEUE: usize = 1024;

/// The (stream, group) of a [`GROUP_CHANNEL`] payload of `schema`.
fn group_of(payload: &str, schema: &str) -> Option<(StreamName, GroupName)> {
    let mut parts = payload.split('\t');
    if parts.next()? != schema {
        return None;
    }
    let stream = StreamName::parse(parts.next()?).ok()?;
    let group = GroupName::parse(parts.next()?).ok()?;
    Some((stream, group))
}

/// The rows of `$table` with the keys of two arrays ($1 stream ids, $2
/// event ids): see [`PostgresDialect::find_events`](Dialect::find_events).
macro_rules! find_ids_in {
    ($table:literal) => {
        concat!(
            "SELECT e.stream_id, e.event_id, e.sequence, e.position, e.recorded_at \
             FROM UNNEST($1::int8[], $2::text[]) AS k (stream_id, event_id) \
             CROSS JOIN LATERAL (SELECT stream_id, event_id, sequence, position, recorded_at \
               FROM ",
            $table,
            " WHERE stream_id = k.stream_id AND event_id = k.event_id LIMIT 1) e"
        )
    };
}
/// How often the listener looks for commits anyway: notifications sent
/// while its connection was being re-established are lost.
const COMMIT_POLL: Duration = Duration::from_secs(1);

impl Driver for Postgres {
    fn classify(e: sqlx::Error) -> StorageError {
        super::errors::postgres(e)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for PostgresDialect {
    type DB = Postgres;

    const BEGIN: &'static str = "BEGIN";
    // Name order in the statement that uses it: replicas lock the same
    // stream rows in the same order.
    const LOCK_ROWS: &'static str = "FOR UPDATE";
    const BEGIN_READ: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    const GREATEST: &'static str = "GREATEST";
    const MATCH: &'static str = "LIKE";

    /// `*` becomes `%`; LIKE's own metacharacters (`%`, `_`, which stream
    /// names may contain, and the escape character `\`) match themselves
    /// (https://www.postgresql.org/docs/current/functions-matching.html).
    fn pattern(entry: &str) -> String {
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

    async fn lock_log_head(conn: &mut PgConnection) -> Result<LockedLogHead, StorageError> {
        // The first lock of every write transaction (see the module doc).
        // The position comes along: every append needs it, and a round
        // trip to the server is a tenth of a small commit's statements.
        let row = Sql::<Postgres>::new(
            "SELECT position, recorded_at FROM log_head WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(conn)
        .await?;
        let position: i64 = get::<Postgres, _>(&row, 0)?;
        let floor: i64 = get::<Postgres, _>(&row, 1)?;
        Ok(LockedLogHead {
            position: Some(to_u64(position)),
            recorded_floor: UnixMicros(floor),
        })
    }

    async fn find_events(
        conn: &mut PgConnection,
        keys: &[(i64, &str)],
        among: IdsOf,
    ) -> Result<Vec<ExistingEvent>, StorageError> {
        // As with inserts, one statement of fixed shape: a VALUES list of
        // each batch's size was a new statement, and planning it took ten
        // times as long as running it (0.4 ms against 0.03 ms, EXPLAIN
        // ANALYZE, for every commit). Each key is one probe of the unique
        // (stream_id, event_id) index: the LIMIT keeps the planner from
        // turning the lookups into a hash join over the whole table, which
        // it chose for batches of hundreds of keys (W2 on PostgreSQL fell
        // from 63k to 15k events/s as the table grew).
        let (stream_ids, ids): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        // Constant strings (the table names of `IdsOf::table`), so each
        // is prepared once per connection.
        let sql = match among {
            IdsOf::Retained => find_ids_in!("events"),
            IdsOf::Removed => find_ids_in!("removed_event_ids"),
        };
        let rows = sqlx::query(sql)
            .bind(stream_ids)
            .bind(ids)
            .fetch_all(conn)
            .await
            .map_err(Postgres::classify)?;
        rows.iter().map(existing_event::<Postgres>).collect()
    }

    async fn insert_events(conn: &mut PgConnection, rows: &[EventRow]) -> Result<(), StorageError> {
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
        .execute(conn)
        .await
        .map_err(Postgres::classify)?;
        Ok(())
    }

    async fn before_commit(conn: &mut PgConnection) -> Result<(), StorageError> {
        // Delivered to every listener when (and only if) this commits.
        Sql::<Postgres>::new("SELECT pg_notify(")
            .bind(COMMIT_CHANNEL)
            .push(", current_schema())")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn announce_groups(
        conn: &mut PgConnection,
        groups: &[(String, String)],
    ) -> Result<(), StorageError> {
        // Delivered when (and only if) this commits; one statement however
        // many groups the batch touched (an ack batch is on the hot path).
        let (streams, names): (Vec<&str>, Vec<&str>) = groups
            .iter()
            .map(|(stream, group)| (stream.as_str(), group.as_str()))
            .unzip();
        sqlx::query(ANNOUNCE_GROUPS)
            .bind(GROUP_CHANNEL)
            .bind(streams)
            .bind(names)
            .execute(conn)
            .await
            .map_err(Postgres::classify)?;
        Ok(())
    }

    fn group_feed(&self) -> Option<GroupFeed> {
        self.group_feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    async fn commit_feed(&self) -> Result<Option<CommitFeed>, StorageError> {
        let mut listener = PgListener::connect_with(&self.listener)
            .await
            .map_err(Postgres::classify)?;
        listener
            .listen_all([COMMIT_CHANNEL, GROUP_CHANNEL])
            .await
            .map_err(Postgres::classify)?;
        let (groups_tx, groups_rx) = mpsc::channel(GROUP_FEED_QUEUE);
        *self
            .group_feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(groups_rx);
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
                    Ok(Some(n)) if n.channel() == GROUP_CHANNEL => {
                        if let Some(woken) = group_of(n.payload(), &schema) {
                            // Full or gone: heartbeats and due times remain.
                            let _ = groups_tx.try_send(woken);
                        }
                        continue;
                    }
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

    async fn close(&self) {
        self.listener.close().await;
    }
}

impl PostgresStorage {
    /// Connects, retrying while the server is not reachable yet, and
    /// applies migrations (concurrent replicas serialise on sqlx's
    /// migration lock).
    ///
    /// # Errors
    /// [`StorageError::Failure`] for an invalid URL or a failed migration,
    /// [`StorageError::Unavailable`] when the server stays unreachable for
    /// `options.connect_attempts` attempts.
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
            match pool(1)
                .connect_with(connect.clone())
                .await
                .map_err(Postgres::classify)
            {
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
        // Every read riverlog makes is a page: a limit in the order of an
        // index. Reader connections make PostgreSQL keep to that order:
        // - Plans for the values given: a generic plan (which a prepared
        //   statement may switch to after five runs) plans for an average
        //   stream, and an average stream among many is tiny.
        // - No sort where an index gives the order. Expecting few rows
        //   (no statistics yet, or a selective filter), PostgreSQL would
        //   fetch every event of a stream past the position and sort
        //   them, for each page: a catch-up quadratic in the stream's
        //   length. A sort only costs more to the planner, so it still
        //   sorts where no index has the order.
        // storage::sql::plans checks the plans this gives.
        let readers = pool(options.read_connections.max(1))
            .connect_with(connect.clone().options([
                ("plan_cache_mode", "force_custom_plan"),
                ("enable_sort", "off"),
            ]))
            .await
            .map_err(Postgres::classify)?;
        let listener = pool(1).connect_lazy_with(connect);
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&writer)
            .await
            .map_err(Postgres::classify)?;
        let dialect = PostgresDialect {
            listener,
            schema,
            group_feed: std::sync::Mutex::new(None),
        };
        Ok(SqlStorage::new(writer, readers, dialect))
    }
}
