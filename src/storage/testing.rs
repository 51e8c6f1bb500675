//! Fresh, empty databases for riverlog's own tests (unit and integration):
//! not part of the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

use super::{Storage, StorageOptions};

/// The PostgreSQL tests use: `RIVERLOG_TEST_DATABASE_URL`, else the local
/// `test` database.
pub fn postgres_url() -> String {
    std::env::var("RIVERLOG_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a new, empty schema `rl_t_<pid>_<nanos>_<n>` in the test
/// PostgreSQL and returns a URL whose connections use it (`search_path`)
/// and are named after it (`application_name`), so tests run in parallel
/// without seeing each other and a test can find its own connections.
///
/// # Panics
/// When the test PostgreSQL is unreachable: a test that needs it fails.
pub async fn fresh_postgres_schema() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!("rl_t_{}_{}_{}", std::process::id(), nanos, n);
    let base = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("test PostgreSQL at {base} unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={schema}&application_name={schema}")
}

/// Storage on a fresh PostgreSQL schema.
///
/// # Panics
/// When the test PostgreSQL is unreachable or the migrations fail.
pub async fn open_postgres() -> Arc<dyn Storage> {
    let url = fresh_postgres_schema().await;
    super::open(&url, &StorageOptions::default())
        .await
        .expect("test PostgreSQL storage opens")
}

/// Storage on a new SQLite file in `dir`.
///
/// # Panics
/// When the file cannot be created.
pub async fn open_sqlite(dir: &std::path::Path) -> Arc<dyn Storage> {
    let url = format!("sqlite://{}", dir.join("riverlog.db").display());
    super::open(&url, &StorageOptions::default())
        .await
        .expect("test SQLite storage opens")
}

/// Defines, for each `case` (an `async fn(Arc<dyn Storage>)` in scope), a
/// test on SQLite (`sqlite::case`) and one on PostgreSQL
/// (`postgres::case`, which the test command runs in its PostgreSQL pass).
#[cfg(test)]
macro_rules! on_each_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    super::$case($crate::storage::testing::open_sqlite(dir.path()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::storage::testing::open_postgres().await).await;
                }
            )*
        }
    };
}
#[cfg(test)]
pub(crate) use on_each_backend;
