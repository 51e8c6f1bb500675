//! The `stream_gaps` migration's backfill, checked on both backends: on a
//! log written before the table existed (rows inserted directly, with
//! holes from Takes of the newest events), it finds exactly the missing
//! sequences between each stream's oldest event and its last sequence.

use sqlx::{Connection, Executor};

use crate::storage::StorageOptions;
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::testing;

/// The migration's statements after its `CREATE TABLE`.
fn backfill(migration: &str) -> String {
    let (_, after) = migration
        .split_once(");\n")
        .expect("the migration creates its table first");
    after.to_owned()
}

/// Streams 1 (sequences 1-3, 6, 9-10 of last 12), 2 (4-5 of last 5: the
/// front trimmed, no gap) and 3 (no events, last 7).
const ROWS: &str = "
    INSERT INTO streams (id, name, created_at, last_sequence, last_position, event_count) VALUES
        (1, 'a', 0, 12, 8, 6), (2, 'b', 0, 5, 8, 2), (3, 'c', 0, 7, 0, 0);
    INSERT INTO events (position, stream_id, sequence, event_id, type, source, recorded_at, payload) VALUES
        (1, 1, 1, 'a1', 't', 's', 1, ''), (2, 1, 2, 'a2', 't', 's', 2, ''),
        (3, 1, 3, 'a3', 't', 's', 3, ''), (4, 2, 4, 'b4', 't', 's', 4, ''),
        (5, 1, 6, 'a6', 't', 's', 5, ''), (6, 2, 5, 'b5', 't', 's', 6, ''),
        (7, 1, 9, 'a9', 't', 's', 7, ''), (8, 1, 10, 'a10', 't', 's', 8, '');
";

const EXPECTED: [(i64, i64, i64); 3] = [(1, 4, 5), (1, 7, 8), (1, 11, 12)];

const GAPS: &str = "SELECT stream_id, first_sequence, last_sequence FROM stream_gaps ORDER BY stream_id, first_sequence";

#[tokio::test]
async fn the_backfill_finds_every_gap_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("gaps.db").display());
    SqliteStorage::open(&url, &StorageOptions::default())
        .await
        .expect("opens");
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connects");
    conn.execute(ROWS).await.expect("rows");
    let sql = backfill(include_str!(
        "../../../migrations/sqlite/20261203000002_stream_gaps.sql"
    ));
    conn.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("backfill");
    let gaps: Vec<(i64, i64, i64)> = sqlx::query_as(GAPS).fetch_all(&mut conn).await.unwrap();
    assert_eq!(gaps, EXPECTED);
}

#[tokio::test]
async fn the_backfill_finds_every_gap_on_postgres() {
    let schema = testing::fresh_postgres_schema().await;
    let url = schema.url();
    PostgresStorage::open(url, &StorageOptions::default())
        .await
        .expect("opens");
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connects");
    conn.execute("ALTER TABLE streams ALTER COLUMN id DROP IDENTITY")
        .await
        .expect("ids given");
    conn.execute(ROWS).await.expect("rows");
    let sql = backfill(include_str!(
        "../../../migrations/postgres/20261203000002_stream_gaps.sql"
    ));
    conn.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("backfill");
    let gaps: Vec<(i64, i64, i64)> = sqlx::query_as(GAPS).fetch_all(&mut conn).await.unwrap();
    assert_eq!(gaps, EXPECTED);
}
