//! The SQL of both backends, written once.
//!
//! [`SqlStorage`] implements [`Storage`](super::Storage) and its
//! transactions implement [`WriteTx`](super::WriteTx) for any sqlx database
//! whose backend implements [`Dialect`]. Statements are built with sqlx's
//! `QueryBuilder`, which writes each backend's placeholders (`?` or `$N`);
//! what SQLite and PostgreSQL really do differently sits behind the few
//! methods of [`Dialect`], implemented in `storage/sqlite.rs` and
//! `storage/postgres.rs` beside their opening code.
//!
//! sqlx's `Any` driver is not used: it would lose PostgreSQL's array
//! parameters (the `UNNEST` insert) and `LISTEN`/`NOTIFY`.
//!
//! # Files
//! - `reads.rs`: the read side ([`Storage`](super::Storage)), on the reader pool.
//! - `writes.rs`: write transactions ([`WriteTx`](super::WriteTx)).
//! - `clauses.rs`: `WHERE` fragments shared by both (filters, stream selectors).
//! - `rows.rs`: column lists and the mapping of rows to records.
//! - `driver.rs`: the values bound, the columns decoded and the statement
//!   type the shared code is written against.
//! - `transaction.rs`: a transaction that never hands a connection back in
//!   an unknown state.

use std::future::Future;

use sqlx::{Database, Pool};

use super::{CommitFeed, EventRow, ExistingEvent, GroupFeed, StorageError};
use crate::model::records::{Position, StoredEvent, UnixMicros};
pub(super) use rows::to_i64;

mod clauses;
mod driver;
#[cfg(test)]
mod gap_backfill;
#[cfg(test)]
mod group_plans;
#[cfg(test)]
mod plans;
mod reads;
mod rows;
mod transaction;
mod writes;

pub(super) use driver::get;
pub use driver::{Driver, Sql, SqlDb, Value};
pub(super) use rows::{existing_event, parse_name, stored_events, to_u64};

/// What [`Dialect::lock_log_head`] read of the log head while locking it.
#[derive(Debug, Clone, Copy)]
pub struct LockedLogHead {
    /// The highest position assigned so far, where the lock read it (one
    /// statement fewer per commit); `None`: read on first use.
    pub position: Option<Position>,
    /// The `recorded_at` floor that other writers sharing the database
    /// left (0 where only this process writes).
    pub recorded_floor: UnixMicros,
}

/// Whose ids a duplicate lookup searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdsOf {
    /// The stored events.
    Retained,
    /// The removed events whose ids are remembered.
    Removed,
}

impl IdsOf {
    /// The table holding them, with the columns of
    /// [`rows::EXISTING_EVENT_COLUMNS`].
    pub fn table(self) -> &'static str {
        match self {
            Self::Retained => "events",
            Self::Removed => "removed_event_ids",
        }
    }
}

/// What one SQL backend does its own way. Everything else is shared.
pub trait Dialect: Send + Sync + Sized + 'static {
    /// The sqlx database type.
    type DB: SqlDb;

    /// Opens a write transaction: SQLite's `BEGIN IMMEDIATE` takes the
    /// write lock at once, so a busy database fails here rather than
    /// half-way through a batch; PostgreSQL's `BEGIN` is followed by
    /// [`Dialect::lock_log_head`].
    const BEGIN: &'static str;

    /// Opens a read-only transaction whose statements share one snapshot.
    const BEGIN_READ: &'static str;

    /// The SQL function giving the larger of two values (`MAX`, `GREATEST`).
    const GREATEST: &'static str;

    /// Appended to a `SELECT` whose rows the transaction must hold until it
    /// ends (`FOR UPDATE`; empty where the whole database is locked).
    const LOCK_ROWS: &'static str;

    /// The operator that matches a column against [`Dialect::pattern`]'s
    /// output (`GLOB`, `LIKE`).
    const MATCH: &'static str;

    /// Turns a riverlog `*` pattern into the backend's match pattern, with
    /// the backend's other metacharacters matching themselves.
    fn pattern(entry: &str) -> String;

    /// Runs first in every write transaction, right after
    /// [`Dialect::BEGIN`]: takes the log-head lock where the database does
    /// not lock as a whole, and returns what it read of the log head.
    fn lock_log_head(
        conn: &mut <Self::DB as Database>::Connection,
    ) -> impl Future<Output = Result<LockedLogHead, StorageError>> + Send;

    /// Inserts event rows (any number; chunking is the dialect's business).
    fn insert_events<'c>(
        conn: &'c mut <Self::DB as Database>::Connection,
        rows: &'c [EventRow],
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'c;

    /// The events with these (stream id, event id) keys among the stored
    /// ones or the remembered ids of removed ones (`among`): the duplicate
    /// check of a batch. The shared way joins the keys as a `VALUES`
    /// table, 500 at a time: one indexed lookup per key.
    fn find_events<'c>(
        conn: &'c mut <Self::DB as Database>::Connection,
        keys: &'c [(i64, &str)],
        among: IdsOf,
    ) -> impl Future<Output = Result<Vec<ExistingEvent>, StorageError>> + Send + 'c {
        async move {
            let mut found = Vec::new();
            for chunk in keys.chunks(CHUNK) {
                let rows = Sql::<Self::DB>::new("WITH k (stream_id, event_id) AS (")
                    .values(chunk, |&(stream_id, id)| (stream_id, id))
                    .push(format!(
                        ") SELECT {} FROM k \
                         JOIN {} e ON e.stream_id = k.stream_id AND e.event_id = k.event_id",
                        rows::EXISTING_EVENT_COLUMNS,
                        among.table()
                    ))
                    .fetch_all(&mut *conn)
                    .await?;
                for row in &rows {
                    found.push(rows::existing_event::<Self::DB>(row)?);
                }
            }
            Ok(found)
        }
    }

    /// Runs last before `COMMIT` of a transaction that appended events:
    /// PostgreSQL announces the commit to other replicas here.
    fn before_commit(
        conn: &mut <Self::DB as Database>::Connection,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Runs before `COMMIT` of a transaction that changed the work of
    /// these groups ((stream, group) names): PostgreSQL announces them to
    /// other replicas here. The shared way does nothing.
    fn announce_groups<'c>(
        conn: &'c mut <Self::DB as Database>::Connection,
        groups: &'c [(String, String)],
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'c {
        let _ = (conn, groups);
        async { Ok(()) }
    }

    /// See [`Storage::commit_feed`](super::Storage::commit_feed).
    fn commit_feed(&self) -> impl Future<Output = Result<Option<CommitFeed>, StorageError>> + Send;

    /// See [`Storage::group_feed`](super::Storage::group_feed).
    fn group_feed(&self) -> Option<GroupFeed> {
        None
    }

    /// Runs `q`, a [recording](Sql::recording) statement selecting
    /// [`rows::EVENTS_SELECT`]'s columns, and decodes its events. The
    /// shared way goes through sqlx's rows; a dialect may read them
    /// through its driver's own API where that is much cheaper.
    fn fetch_events<'c>(
        conn: &'c mut <Self::DB as Database>::Connection,
        q: &'c mut Sql<Self::DB>,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StorageError>> + Send + 'c {
        async move { rows::stored_events::<Self::DB>(q.fetch_all(conn).await?) }
    }

    /// Closes what the dialect opened beside the two pools.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A SQL database as riverlog's storage.
pub struct SqlStorage<D: Dialect> {
    /// The write transactions' connection (one: writers take turns anyway,
    /// and owning it avoids lock waits between our own writers).
    writer: Pool<D::DB>,
    /// Connections for reads, which never wait for the writer.
    readers: Pool<D::DB>,
    /// The backend's own state (PostgreSQL's listener).
    dialect: D,
}

impl<D: Dialect> SqlStorage<D> {
    /// Storage on opened, migrated pools.
    pub(super) fn new(writer: Pool<D::DB>, readers: Pool<D::DB>, dialect: D) -> Self {
        Self {
            writer,
            readers,
            dialect,
        }
    }

    /// The write connection, for tests that set up rows by hand.
    #[cfg(test)]
    pub(crate) async fn writer_for_tests(&self) -> sqlx::pool::PoolConnection<D::DB> {
        self.writer.acquire().await.expect("writer connection")
    }

    /// A reader connection, for tests of the read statements.
    #[cfg(test)]
    pub(crate) async fn reader_for_tests(&self) -> sqlx::pool::PoolConnection<D::DB> {
        self.readers.acquire().await.expect("reader connection")
    }
}

/// Rows per multi-row statement: 9 parameters each stays far below SQLite's
/// 32766-variable limit, and PostgreSQL's 65535.
pub(super) const CHUNK: usize = 500;

/// The portable multi-row insert of a chunk of event rows.
pub(super) fn insert_events_statement<DB: SqlDb>(rows: &[EventRow]) -> Sql<DB> {
    let mut q = Sql::new(
        "INSERT INTO events (position, stream_id, sequence, event_id, type, source, \
         subject, recorded_at, payload) ",
    );
    q.values(rows, |row| {
        let e = &row.event;
        (
            to_i64(e.position),
            row.stream_id,
            to_i64(e.sequence),
            e.id.as_str(),
            e.event_type.as_str(),
            e.source.as_str(),
            e.subject.as_deref(),
            e.recorded_at.0,
            e.payload.as_ref(),
        )
    });
    q
}
