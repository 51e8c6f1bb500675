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

/// A schema of the test PostgreSQL made by [`fresh_postgres_schema`],
/// dropped (with everything in it) when the last handle goes: at the end
/// of the test that made it, whether it passed or panicked. Clones share
/// the one schema (a replica's server uses it too).
///
/// Only a test process killed before its handles drop leaves its schema
/// behind; the test command drops the `rl_t_<pid>_...` schemas of pids
/// that are gone, and never those of a process still running.
#[derive(Clone)]
pub struct PostgresSchema(Arc<SchemaOwner>);

struct SchemaOwner {
    /// `rl_t_<pid>_<nanos>_<n>`: the pid says which process may drop it.
    name: String,
    /// Where it was made (the test database's URL, without the schema).
    base: String,
    /// `base` with the schema as `search_path` and `application_name`.
    url: String,
}

impl PostgresSchema {
    /// A URL whose connections use the schema (`search_path`) and are
    /// named after it (`application_name`).
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The schema's name, `rl_t_<pid>_<nanos>_<n>`.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl Drop for SchemaOwner {
    /// Ends the schema's own connections (found by their `application_name`;
    /// a server the test left running may still hold one, maybe inside a
    /// transaction whose locks `DROP SCHEMA` would wait for) and drops it.
    /// Drop may run inside the test's runtime, which it must not block on:
    /// a thread with a runtime of its own does the work. Never panics (it
    /// may run while a failed test unwinds); a failure is reported on
    /// stderr and the schema is left to the test command's sweep.
    fn drop(&mut self) {
        let (name, base) = (self.name.clone(), self.base.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_schema(&base, &name))
        })
        .join();
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => "the dropping thread panicked".to_owned(),
        };
        eprintln!("test schema {} was NOT dropped: {error}", self.name);
    }
}

/// `pg_terminate_backend` of the schema's connections, then `DROP SCHEMA`.
async fn drop_schema(base: &str, name: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .map_err(|e| format!("connecting to {base}: {e}"))?;
    // Bounded waits: a stuck drop fails (and says so) instead of hanging.
    for statement in [
        "SET lock_timeout = '30s'".to_owned(),
        "SET client_min_messages = warning".to_owned(),
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{name}' AND pid <> pg_backend_pid()"
        ),
        format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Creates a new, empty schema `rl_t_<pid>_<nanos>_<n>` in the test
/// PostgreSQL, dropped when the returned handle (and its clones) go, so
/// tests run in parallel without seeing each other and leave nothing
/// behind. With `RIVERLOG_TEST_RUN` set, the schema's comment is its value.
///
/// # Panics
/// When the test PostgreSQL is unreachable: a test that needs it fails.
pub async fn fresh_postgres_schema() -> PostgresSchema {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("rl_t_{}_{}_{}", std::process::id(), nanos, n);
    let base = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("test PostgreSQL at {base} unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating schema {name}: {e}"));
    // The test command names its run here, so that it can find, once its
    // tests are done, the schemas its own tests left (and no others).
    if let Ok(run) = std::env::var("RIVERLOG_TEST_RUN") {
        let comment = format!("COMMENT ON SCHEMA {name} IS '{}'", run.replace('\'', "''"));
        sqlx::query(sqlx::AssertSqlSafe(comment))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("naming the run of schema {name}: {e}"));
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={name}&application_name={name}");
    PostgresSchema(Arc::new(SchemaOwner { name, base, url }))
}

/// Storage on a fresh PostgreSQL schema, and the schema's handle: keep it
/// until the storage is no longer used.
///
/// # Panics
/// When the test PostgreSQL is unreachable or the migrations fail.
pub async fn open_postgres() -> (Arc<dyn Storage>, PostgresSchema) {
    let schema = fresh_postgres_schema().await;
    let storage = super::open(schema.url(), &StorageOptions::default())
        .await
        .expect("test PostgreSQL storage opens");
    (storage, schema)
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
                    let (storage, _schema) = $crate::storage::testing::open_postgres().await;
                    super::$case(storage).await;
                }
            )*
        }
    };
}
#[cfg(test)]
pub(crate) use on_each_backend;
