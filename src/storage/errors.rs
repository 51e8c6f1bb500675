//! Which database errors are outages: one table per backend, in one place.
//!
//! An outage becomes [`StorageError::Unavailable`] (UNAVAILABLE
//! `STORAGE_UNAVAILABLE` on the wire, which clients retry); everything else
//! is [`StorageError::Failure`] (INTERNAL `STORAGE_FAILURE`, not retried).
//! When in doubt between the two, a condition that another attempt a moment
//! later (or on another connection) can get past is an outage.

use super::StorageError;

/// sqlx error kinds that mean the database could not be reached or the
/// connection broke, whatever the backend.
fn is_connection_loss(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            // A connection cut mid-message reads as a protocol error.
            | sqlx::Error::Protocol(_)
    )
}

/// PostgreSQL SQLSTATEs (classes or single codes) that mean an outage, with
/// why. Source: PostgreSQL's "Appendix A. PostgreSQL Error Codes".
pub const POSTGRES_UNAVAILABLE: &[(&str, &str)] = &[
    ("08", "connection exception"),
    (
        "53",
        "insufficient resources: disk full, out of memory, too many connections",
    ),
    ("58", "system error: I/O error outside PostgreSQL"),
    ("57P01", "admin shutdown"),
    ("57P02", "crash shutdown"),
    ("57P03", "cannot connect now: starting up or shutting down"),
    ("57P04", "database dropped"),
    ("57P05", "idle session timeout"),
    (
        "57014",
        "query cancelled: statement_timeout, e.g. waiting for another replica's lock",
    ),
    (
        "25P03",
        "idle-in-transaction timeout: the session was ended",
    ),
    (
        "40003",
        "statement completion unknown: the connection was lost mid-statement",
    ),
    (
        "55000",
        "object not in prerequisite state: database not accepting connections",
    ),
    ("55P03", "lock not available"),
    ("3D000", "unknown database (dropped, or not created yet)"),
    (
        "28000",
        "invalid authorization (pg_hba.conf refuses for now)",
    ),
    ("28P01", "failed authentication (credentials being rotated)"),
    ("25006", "read-only transaction: a standby after failover"),
    ("40001", "serialization failure"),
    ("40P01", "deadlock detected"),
];

/// Whether a PostgreSQL SQLSTATE is an outage (see [`POSTGRES_UNAVAILABLE`]).
pub fn postgres_code_is_unavailable(code: &str) -> bool {
    POSTGRES_UNAVAILABLE
        .iter()
        .any(|(prefix, _)| code.starts_with(prefix))
}

/// SQLite primary result codes that mean an outage: the disk or another
/// process is in the way, not the request. Source: sqlite.org/rescode.html.
pub const SQLITE_UNAVAILABLE: &[(i32, &str)] = &[
    (5, "SQLITE_BUSY"),
    (6, "SQLITE_LOCKED"),
    (7, "SQLITE_NOMEM"),
    (8, "SQLITE_READONLY"),
    (9, "SQLITE_INTERRUPT"),
    (10, "SQLITE_IOERR"),
    (13, "SQLITE_FULL"),
    (14, "SQLITE_CANTOPEN"),
    (
        15,
        "SQLITE_PROTOCOL: a WAL lock race, retried by SQLite and then given up",
    ),
];

/// Whether a SQLite result code (primary or extended) is an outage.
pub fn sqlite_code_is_unavailable(code: i32) -> bool {
    let primary = code & 0xff;
    SQLITE_UNAVAILABLE.iter().any(|(c, _)| *c == primary)
}

/// Classifies a PostgreSQL error.
pub(super) fn postgres(e: sqlx::Error) -> StorageError {
    let unavailable = is_connection_loss(&e)
        || matches!(&e, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| postgres_code_is_unavailable(&c)));
    classify(e, unavailable)
}

/// Classifies a SQLite error.
pub(super) fn sqlite(e: sqlx::Error) -> StorageError {
    let unavailable = is_connection_loss(&e)
        || matches!(&e, sqlx::Error::Database(db)
            if db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(sqlite_code_is_unavailable));
    classify(e, unavailable)
}

fn classify(e: sqlx::Error, unavailable: bool) -> StorageError {
    if unavailable {
        StorageError::Unavailable(e.to_string())
    } else {
        StorageError::Failure(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_outage_classes_are_unavailable() {
        for (code, why) in [
            ("08006", "connection failure"),
            ("08001", "cannot establish a connection"),
            ("08P01", "protocol violation"),
            ("53100", "disk full"),
            ("53200", "out of memory"),
            ("53300", "too many connections"),
            ("58030", "I/O error"),
            ("57P01", "admin shutdown (pg_terminate_backend)"),
            ("57P02", "crash shutdown"),
            ("57P03", "cannot connect now"),
            ("57014", "statement timeout"),
            (
                "55000",
                "database not accepting connections (ALLOW_CONNECTIONS false)",
            ),
            ("55P03", "lock not available"),
            ("3D000", "unknown database"),
            ("28000", "invalid authorization specification"),
            ("28P01", "invalid password"),
            ("25006", "read-only transaction"),
            ("40001", "serialization failure"),
            ("40P01", "deadlock"),
            ("25P03", "idle-in-transaction session timeout"),
            ("40003", "statement completion unknown"),
        ] {
            assert!(postgres_code_is_unavailable(code), "{code} ({why})");
        }
    }

    #[test]
    fn postgres_request_and_schema_errors_are_failures() {
        for (code, why) in [
            ("23505", "unique violation"),
            ("23503", "foreign key violation"),
            ("42P01", "undefined table (a broken migration)"),
            ("42601", "syntax error"),
            ("22001", "string too long"),
            ("P0001", "raise exception"),
            ("XX000", "internal error"),
            ("57000", "operator intervention, other than the listed ones"),
        ] {
            assert!(!postgres_code_is_unavailable(code), "{code} ({why})");
        }
    }

    #[test]
    fn sqlite_outage_codes_are_unavailable_with_their_extended_codes() {
        for (code, why) in [
            (5, "SQLITE_BUSY"),
            (517, "SQLITE_BUSY_SNAPSHOT"),
            (6, "SQLITE_LOCKED"),
            (7, "SQLITE_NOMEM"),
            (8, "SQLITE_READONLY"),
            (9, "SQLITE_INTERRUPT"),
            (10, "SQLITE_IOERR"),
            (266, "SQLITE_IOERR_READ"),
            (778, "SQLITE_IOERR_WRITE"),
            (13, "SQLITE_FULL"),
            (14, "SQLITE_CANTOPEN"),
            (7, "SQLITE_NOMEM"),
            (9, "SQLITE_INTERRUPT"),
            (15, "SQLITE_PROTOCOL"),
        ] {
            assert!(sqlite_code_is_unavailable(code), "{code} ({why})");
        }
        for (code, why) in [
            (1, "SQLITE_ERROR"),
            (11, "SQLITE_CORRUPT"),
            (19, "SQLITE_CONSTRAINT"),
            (2067, "SQLITE_CONSTRAINT_UNIQUE"),
        ] {
            assert!(!sqlite_code_is_unavailable(code), "{code} ({why})");
        }
    }

    #[test]
    fn lost_connections_and_pool_timeouts_are_unavailable_on_both_backends() {
        let lost = || {
            [
                sqlx::Error::PoolTimedOut,
                sqlx::Error::PoolClosed,
                sqlx::Error::WorkerCrashed,
                sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
                sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                sqlx::Error::Protocol("unexpected end of file".into()),
            ]
        };
        for e in lost() {
            let shown = e.to_string();
            assert!(
                matches!(postgres(e), StorageError::Unavailable(_)),
                "{shown}"
            );
        }
        for e in lost() {
            let shown = e.to_string();
            assert!(matches!(sqlite(e), StorageError::Unavailable(_)), "{shown}");
        }
        assert!(matches!(
            postgres(sqlx::Error::RowNotFound),
            StorageError::Failure(_)
        ));
        assert!(matches!(
            postgres(sqlx::Error::ColumnNotFound("x".into())),
            StorageError::Failure(_)
        ));
    }
}
