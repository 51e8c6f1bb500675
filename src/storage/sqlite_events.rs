//! Event pages read through SQLite's own statement API.
//!
//! Through sqlx, each row of a page crossed from its SQLite worker thread
//! to the reading task on its own (a channel message, often a thread
//! wake-up), carrying a heap copy of every column, decoded again on the
//! other side: about half the server's CPU time in a catch-up read. Here
//! the reading task locks the connection once per page and steps the
//! statement itself, building each event straight from the column
//! pointers: one copy of the payload, nothing else per column.
//!
//! The statement is the shared SQL (`storage/sql/reads.rs`), run with the
//! values sqlx would have bound.

use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use bytes::Bytes;
use libsqlite3_sys as ffi;

use super::errors::sqlite_code_is_unavailable;
use super::sql::{Value, parse_name, to_u64};
use crate::model::StorageError;
use crate::model::names::StreamName;
use crate::model::records::{StoredEvent, UnixMicros};

/// A prepared statement, finalized when dropped.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: *mut ffi::sqlite3_stmt,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` came from sqlite3_prepare_v3 on `db` and is
        // finalized exactly once, here.
        unsafe {
            ffi::sqlite3_finalize(self.raw);
        }
    }
}

/// The error SQLite holds for `db` after result `code`, classified as
/// `storage/errors.rs` classifies sqlx's.
fn error(db: NonNull<ffi::sqlite3>, code: c_int) -> StorageError {
    // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by the
    // connection, valid until its next call; it is copied at once.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    let text = format!("(code: {code}) {message}");
    if sqlite_code_is_unavailable(code) {
        StorageError::Unavailable(text)
    } else {
        StorageError::Failure(text)
    }
}

impl Statement {
    /// Prepares `sql` on `db` and binds `values` to its parameters.
    ///
    /// # Safety
    /// `db` must be an open connection no other thread uses until the
    /// statement is dropped (sqlx's `LockedSqliteHandle` guarantees it).
    unsafe fn prepare(
        db: NonNull<ffi::sqlite3>,
        sql: &str,
        values: &[Value],
    ) -> Result<Self, StorageError> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| StorageError::Failure("statement too long".into()))?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes; SQLite copies what it
        // needs. The statement is finalized by `Drop`, also on errors below.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                0,
                &mut raw,
                std::ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(error(db, code));
        }
        let statement = Self { db, raw };
        for (i, value) in values.iter().enumerate() {
            let index = c_int::try_from(i + 1)
                .map_err(|_| StorageError::Failure("too many parameters".into()))?;
            // SAFETY: `raw` is a live statement; text and bytes are copied
            // by SQLite (SQLITE_TRANSIENT) before the call returns.
            let code = unsafe {
                match value {
                    Value::Int(Some(v)) => ffi::sqlite3_bind_int64(raw, index, *v),
                    Value::Int(None) | Value::Text(None) => ffi::sqlite3_bind_null(raw, index),
                    Value::Text(Some(t)) => ffi::sqlite3_bind_text64(
                        raw,
                        index,
                        t.as_ptr().cast(),
                        t.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Value::Bytes(b) => ffi::sqlite3_bind_blob64(
                        raw,
                        index,
                        b.as_ptr().cast(),
                        b.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                }
            };
            if code != ffi::SQLITE_OK {
                return Err(error(db, code));
            }
        }
        Ok(statement)
    }

    /// Steps to the next row: `Ok(true)` on a row, `Ok(false)` when done.
    fn step(&mut self) -> Result<bool, StorageError> {
        // SAFETY: a live statement, used by this thread only.
        match unsafe { ffi::sqlite3_step(self.raw) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            code => Err(error(self.db, code)),
        }
    }

    fn int(&self, i: c_int) -> i64 {
        // SAFETY: a live statement positioned on a row.
        unsafe { ffi::sqlite3_column_int64(self.raw, i) }
    }

    fn is_null(&self, i: c_int) -> bool {
        // SAFETY: a live statement positioned on a row.
        unsafe { ffi::sqlite3_column_type(self.raw, i) == ffi::SQLITE_NULL }
    }

    /// Column `i` as bytes, borrowed until the next step.
    fn bytes(&self, i: c_int) -> &[u8] {
        // SAFETY: a live statement positioned on a row. The pointer is
        // fetched before the length, as SQLite's documentation asks; both
        // stay valid until the next step or finalize, which need `&mut`.
        unsafe {
            let ptr = ffi::sqlite3_column_blob(self.raw, i);
            let len = ffi::sqlite3_column_bytes(self.raw, i);
            if ptr.is_null() || len <= 0 {
                return &[];
            }
            std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize)
        }
    }

    /// Column `i` as text, borrowed until the next step.
    fn text(&self, i: c_int) -> Result<&str, StorageError> {
        // SAFETY: as for `bytes`; sqlite3_column_text yields UTF-8, checked
        // here anyway since the file is outside Rust's control.
        let bytes = unsafe {
            let ptr = ffi::sqlite3_column_text(self.raw, i);
            let len = ffi::sqlite3_column_bytes(self.raw, i);
            if ptr.is_null() || len <= 0 {
                return Ok("");
            }
            std::slice::from_raw_parts(ptr, len as usize)
        };
        std::str::from_utf8(bytes)
            .map_err(|e| StorageError::Failure(format!("stored text is not UTF-8: {e}")))
    }
}

/// Runs `sql`, which selects `storage::sql::rows::EVENTS_SELECT`'s
/// columns, with `values`, and decodes its events.
///
/// # Safety
/// `db` must be an open connection that no other thread uses until this
/// returns (hold sqlx's `LockedSqliteHandle` around the call).
pub(super) unsafe fn read_events(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    values: &[Value],
) -> Result<Vec<StoredEvent>, StorageError> {
    // SAFETY: the caller's contract.
    let mut statement = unsafe { Statement::prepare(db, sql, values)? };
    let mut names: HashMap<i64, StreamName> = HashMap::new();
    let mut events = Vec::new();
    while statement.step()? {
        let stream_id = statement.int(0);
        let stream = match names.get(&stream_id) {
            Some(name) => name.clone(),
            None => {
                let name = parse_name(statement.text(1)?)?;
                names.insert(stream_id, name.clone());
                name
            }
        };
        events.push(StoredEvent {
            stream,
            sequence: to_u64(statement.int(2)),
            position: to_u64(statement.int(3)),
            recorded_at: UnixMicros(statement.int(4)),
            id: statement.text(5)?.to_owned(),
            event_type: statement.text(6)?.to_owned(),
            source: statement.text(7)?.to_owned(),
            subject: if statement.is_null(8) {
                None
            } else {
                Some(statement.text(8)?.to_owned())
            },
            payload: Bytes::copy_from_slice(statement.bytes(9)),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use sqlx::Sqlite;

    use super::*;
    use crate::storage::StorageOptions;
    use crate::storage::sql::{Dialect, Sql, stored_events};
    use crate::storage::sqlite::{SqliteDialect, SqliteStorage};

    const SELECT: &str = "SELECT e.stream_id, (SELECT name FROM streams WHERE id = e.stream_id), \
         e.sequence, e.position, e.recorded_at, e.event_id, e.type, e.source, e.subject, \
         e.payload FROM events e WHERE e.position > ? ORDER BY e.position";

    async fn storage_with(rows: &str) -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let storage = SqliteStorage::open(&url, &StorageOptions::default())
            .await
            .expect("opens");
        let mut conn = storage.writer_for_tests().await;
        for statement in [
            "INSERT INTO streams (id, name, created_at) VALUES (1, 'orders', 0), (2, 'billing.eu', 0)",
            rows,
        ] {
            Sql::<Sqlite>::new(statement)
                .execute(&mut conn)
                .await
                .expect("fixture rows");
        }
        (dir, storage)
    }

    async fn read(storage: &SqliteStorage, sql: &str) -> Result<Vec<StoredEvent>, StorageError> {
        let mut conn = storage.reader_for_tests().await;
        let mut q = Sql::<Sqlite>::recording("");
        q.append(sql, (0_i64,));
        SqliteDialect::fetch_events(&mut conn, &mut q).await
    }

    #[tokio::test]
    async fn decodes_what_sqlx_decodes() {
        let (_dir, storage) = storage_with(
            "INSERT INTO events (position, stream_id, sequence, event_id, type, source, subject, \
             recorded_at, payload) VALUES \
             (1, 1, 1, 'a', 't.x', '/s', NULL, 10, X''), \
             (2, 2, 1, 'ü', 'тип', '/σ', 'subj', 11, X'00ff10'), \
             (3, 1, 2, 'c', 't.y', '/s', '', 12, zeroblob(70000))",
        )
        .await;
        let direct = read(&storage, SELECT).await.expect("reads");
        let mut conn = storage.reader_for_tests().await;
        let via_sqlx = stored_events::<Sqlite>(
            Sql::<Sqlite>::query(SELECT, (0_i64,))
                .fetch_all(&mut conn)
                .await
                .expect("sqlx reads"),
        )
        .expect("sqlx decodes");
        assert_eq!(direct.len(), 3);
        assert_eq!(direct, via_sqlx);
        assert_eq!(direct[0].subject, None);
        assert_eq!(direct[2].subject.as_deref(), Some(""));
        assert_eq!(direct[2].payload.len(), 70_000);
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_a_failure_not_a_panic() {
        let (_dir, storage) = storage_with(
            "INSERT INTO events (position, stream_id, sequence, event_id, type, source, subject, \
             recorded_at, payload) VALUES (1, 1, 1, CAST(X'ff' AS TEXT), 't', '/s', NULL, 1, X'')",
        )
        .await;
        let err = read(&storage, SELECT).await.expect_err("refused");
        assert!(
            matches!(err, StorageError::Failure(ref m) if m.contains("UTF-8")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_statement_is_classified_and_leaves_the_connection_usable() {
        let (_dir, storage) = storage_with("SELECT 1").await;
        let err = read(&storage, "SELECT nonsense FROM events WHERE position > ?")
            .await
            .expect_err("refused");
        assert!(
            matches!(err, StorageError::Failure(ref m) if m.contains("nonsense")),
            "{err:?}"
        );
        assert_eq!(read(&storage, SELECT).await.expect("still reads"), vec![]);
    }
}
