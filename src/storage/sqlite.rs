//! SQLite backend: one write connection in WAL mode, readers on their own
//! pool, so reads never wait for the group commit. Only what SQLite does
//! its own way is here; the SQL is in `storage/sql/`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};

use super::sql::{
    CHUNK, Dialect, Driver, LockedLogHead, Sql, SqlStorage, insert_events_statement, stored_events,
};
use super::{CommitFeed, EventRow, StorageError, StorageOptions};
use crate::model::records::{StoredEvent, UnixMicros};

/// The SQLite storage.
pub type SqliteStorage = SqlStorage<SqliteDialect>;

/// SQLite's side of the shared SQL.
pub struct SqliteDialect;

impl Driver for Sqlite {
    fn classify(e: sqlx::Error) -> StorageError {
        super::errors::sqlite(e)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for SqliteDialect {
    type DB = Sqlite;

    // IMMEDIATE takes the write lock now, not at the first write, so a busy
    // database fails here rather than half-way through a batch; with the
    // whole database locked, rows need no locks of their own.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const LOCK_ROWS: &'static str = "";
    // In WAL mode a read transaction keeps the snapshot of its first read.
    const BEGIN_READ: &'static str = "BEGIN";
    const GREATEST: &'static str = "MAX";
    const MATCH: &'static str = "GLOB";

    /// GLOB's `*` is riverlog's; `?` and `[` are escaped as one-character
    /// classes (https://sqlite.org/lang_expr.html#glob).
    fn pattern(entry: &str) -> String {
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

    async fn lock_log_head(_conn: &mut SqliteConnection) -> Result<LockedLogHead, StorageError> {
        // BEGIN IMMEDIATE locked the whole file. One writer process owns
        // it; its own clock (floored by the log's latest time at start-up)
        // is already monotonic. Many write transactions (acks) never need
        // the position, so it is read on first use.
        Ok(LockedLogHead {
            position: None,
            recorded_floor: UnixMicros(0),
        })
    }

    async fn insert_events(
        conn: &mut SqliteConnection,
        rows: &[EventRow],
    ) -> Result<(), StorageError> {
        for chunk in rows.chunks(CHUNK) {
            insert_events_statement::<Sqlite>(chunk)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    async fn before_commit(_conn: &mut SqliteConnection) -> Result<(), StorageError> {
        Ok(())
    }

    async fn commit_feed(&self) -> Result<Option<CommitFeed>, StorageError> {
        // One process owns the file: its writer feeds the hub directly.
        Ok(None)
    }

    async fn fetch_events(
        conn: &mut SqliteConnection,
        q: &mut Sql<Sqlite>,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let Some(values) = q.recorded() else {
            return stored_events::<Sqlite>(q.fetch_all(conn).await?);
        };
        let mut handle = conn.lock_handle().await.map_err(Sqlite::classify)?;
        let sql = q.text();
        let db = handle.as_raw_handle();
        // SAFETY: the handle keeps sqlx's worker thread off the
        // connection until it is dropped, after the call.
        let read = || unsafe { super::sqlite_events::read_events(db, sql.as_str(), values) };
        // Stepping runs on this task's thread. A filtered page may step
        // over many rows before it fills: let the runtime move this
        // worker's other tasks elsewhere meanwhile (only a
        // multi-threaded runtime can; unit tests run on one thread).
        let events = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(read),
            _ => read(),
        };
        drop(handle);
        events
    }

    async fn close(&self) {}
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and applies migrations.
    /// `url` is `sqlite://PATH`, `sqlite:PATH` or a bare path.
    ///
    /// # Errors
    /// [`StorageError::Failure`] for an invalid URL or a failed migration,
    /// [`StorageError::Unavailable`] when the file or its folder cannot be
    /// opened or created.
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
                    .synchronous(synchronous)
                    // A multi-row statement inside a transaction keeps a
                    // statement journal (to undo just that statement); on
                    // files, that was a temporary file created, written
                    // and unlinked for nearly every commit.
                    .pragma("temp_store", "MEMORY")
                    // Appends to many streams touch an index leaf page per
                    // stream and index, and the same pages again and again:
                    // kept in a 32 MiB cache (default 2 MiB) they are not
                    // read back, and checkpointed every 10,000 WAL pages
                    // (40 MiB; default 1,000) each is copied into the
                    // database file once for many commits, not once for
                    // every few. Crash recovery replays at most that WAL.
                    .pragma("cache_size", "-32768")
                    .pragma("wal_autocheckpoint", "10000"),
            )
            .await
            .map_err(Sqlite::classify)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StorageError::Failure(format!("migrating the database: {e}")))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(base.read_only(true))
            .await
            .map_err(Sqlite::classify)?;
        Ok(SqlStorage::new(writer, readers, SqliteDialect))
    }
}
