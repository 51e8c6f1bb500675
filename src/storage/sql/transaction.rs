//! A write transaction on a pooled connection that is never handed back in
//! an unknown state.
//!
//! sqlx's own `Transaction` tracks nesting depth beside the database's real
//! state, and the two drift apart when a statement or the `COMMIT` itself
//! fails: SQLite rolls the whole transaction back on `SQLITE_FULL` or
//! `SQLITE_IOERR`, after which sqlx's `ROLLBACK` fails and its depth stays
//! at 1, so every later `BEGIN` on that connection is refused ("attempted to
//! call begin_with at non-zero transaction depth") until a restart. Here the
//! rule is simpler: a transaction ends in `COMMIT` or `ROLLBACK`, and a
//! connection on which either failed, or whose transaction was dropped
//! half-way, is closed and replaced by the pool instead of being reused.

use sqlx::Pool;
use sqlx::pool::PoolConnection;
use tracing::warn;

use super::driver::SqlDb;

/// An open transaction holding one pooled connection.
pub(super) struct PooledTx<DB: SqlDb> {
    /// `None` once committed or rolled back.
    conn: Option<PoolConnection<DB>>,
}

impl<DB: SqlDb> PooledTx<DB> {
    /// Takes a connection from `pool` and runs `begin` (`BEGIN IMMEDIATE`,
    /// `BEGIN`) on it.
    ///
    /// # Errors
    /// The pool's or the database's error; a connection whose `BEGIN` failed
    /// is discarded, as its state is not known.
    pub(super) async fn begin(pool: &Pool<DB>, begin: &'static str) -> Result<Self, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        if let Err(e) = DB::raw(&mut *conn, begin).await {
            conn.close_on_drop();
            return Err(e);
        }
        Ok(Self { conn: Some(conn) })
    }

    /// The connection, to run the transaction's statements on.
    pub(super) fn conn(&mut self) -> &mut DB::Connection {
        // `conn` is only taken by `commit` and `rollback`, which consume self.
        self.conn
            .as_deref_mut()
            .expect("a PooledTx is used only while open")
    }

    /// Commits. On failure the transaction is rolled back (or its
    /// connection discarded) before the error is returned, so the pool only
    /// ever holds connections outside any transaction.
    ///
    /// # Errors
    /// The database's error for `COMMIT`; nothing of the transaction is
    /// visible afterwards unless the commit was cut off after the database
    /// made it durable (a lost connection), which no client can tell apart.
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        // The connection stays in `self` until COMMIT answered: a future
        // dropped half-way leaves it to `Drop`, which discards it.
        let Some(conn) = self.conn.as_deref_mut() else {
            return Ok(());
        };
        match DB::raw(conn, "COMMIT").await {
            Ok(_) => {
                self.conn = None;
                Ok(())
            }
            Err(e) => {
                self.roll_back_or_discard().await;
                Err(e)
            }
        }
    }

    /// Rolls back; a connection on which that fails is discarded.
    pub(super) async fn rollback(mut self) {
        self.roll_back_or_discard().await;
    }

    async fn roll_back_or_discard(&mut self) {
        let Some(conn) = self.conn.as_deref_mut() else {
            return;
        };
        // SQLite may already have rolled back by itself (then ROLLBACK fails
        // with "no transaction is active"); either way the connection's
        // state is only certain after a ROLLBACK succeeded.
        match DB::raw(conn, "ROLLBACK").await {
            // Back to the pool, outside any transaction.
            Ok(_) => self.conn = None,
            // Left in `self`: `Drop` discards it.
            Err(e) => warn!(error = %e, "rollback failed; replacing the write connection"),
        }
    }
}

impl<DB: SqlDb> Drop for PooledTx<DB> {
    fn drop(&mut self) {
        // Dropped while open (a cancelled future, a panic): a ROLLBACK cannot
        // be awaited here, and closing the connection rolls back for sure.
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}
