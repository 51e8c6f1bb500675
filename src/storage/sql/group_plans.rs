//! The plans of the dead-letter pass's statements, on both backends: a
//! group whose consumers are gone has a large backlog of due entries, few
//! of them on their last allowed delivery. Both statements must probe the
//! `group_pending_exhausted` index rather than walk every due entry (the
//! writer's statement runs inside the write transaction, which holds up
//! every publisher while it runs).

use super::driver::{Sql, get};
use super::reads::GROUPS_WITH_EXHAUSTED;
use super::rows::PENDING_COLUMNS;
use super::writes::EXHAUSTED_PENDING;
use super::{Dialect, SqlStorage};
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{StorageOptions, testing};

/// Due entries of the abandoned group (group 1).
const BACKLOG: i64 = 50_000;

/// One stream, 20 groups: group 1 with [`BACKLOG`] due entries delivered
/// once, every 10,000th on its fifth (last) delivery; 19 others with 1,000
/// entries each, none due.
async fn fill<D: Dialect>(storage: &SqlStorage<D>) {
    let mut conn = storage.writer.acquire().await.expect("writer connection");
    for sql in [
        "INSERT INTO streams (name, created_at) VALUES ('s', 0)".to_owned(),
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) \
         INSERT INTO groups (stream_id, name, ack_timeout_us, max_deliveries, \
         dead_letter_stream, cursor, created_at) \
         SELECT (SELECT id FROM streams), 'g' || i, 1000, 5, 's:dlq', 0, 0 FROM n"
            .to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BACKLOG}) \
             INSERT INTO group_pending \
             (group_id, sequence, consumer, delivery_count, delivered_at, deliverable_at) \
             SELECT (SELECT MIN(id) FROM groups), i, 'gone', \
             CASE WHEN i % 10000 = 0 THEN 5 ELSE 1 END, 0, 0 FROM n"
        ),
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
         INSERT INTO group_pending \
         (group_id, sequence, consumer, delivery_count, delivered_at, deliverable_at) \
         SELECT g.id, n.i, 'c', 1, 0, 1000000 FROM n, groups g \
         WHERE g.id > (SELECT MIN(id) FROM groups)"
            .to_owned(),
    ] {
        Sql::<D::DB>::new(sql)
            .execute(&mut conn)
            .await
            .expect("filled");
    }
}

/// Checks both statements' plans name the index.
async fn check<D: Dialect>(
    backend: &str,
    explain: &str,
    conn: &mut <D::DB as sqlx::Database>::Connection,
) {
    let column = if explain.contains("QUERY PLAN") { 3 } else { 0 };
    let pass = Sql::<D::DB>::query(&format!("{explain}{GROUPS_WITH_EXHAUSTED}"), (10_i64,));
    let mut page = Sql::<D::DB>::new(format!(
        "{explain}SELECT {PENDING_COLUMNS} FROM group_pending WHERE group_id = "
    ));
    page.bind(1_i64);
    page.append(EXHAUSTED_PENDING, (5_i64, 10_i64, 500_i64));
    for (name, mut q) in [("the pass's query", pass), ("the writer's page", page)] {
        let plan = q
            .fetch_all(conn)
            .await
            .expect("EXPLAIN runs")
            .iter()
            .map(|r| get::<D::DB, String>(r, column).expect("plan text"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            plan.contains("group_pending_exhausted"),
            "{backend}: {name} does not use group_pending_exhausted:\n{plan}"
        );
    }
}

#[tokio::test]
async fn sqlite_finds_exhausted_entries_through_their_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("plans.db").display());
    let storage = SqliteStorage::open(&url, &StorageOptions::default())
        .await
        .expect("opens");
    fill(&storage).await;
    let mut conn = storage.readers.acquire().await.expect("reader");
    check::<crate::storage::sqlite::SqliteDialect>("SQLite", "EXPLAIN QUERY PLAN ", &mut conn)
        .await;
}

#[tokio::test]
async fn postgres_finds_exhausted_entries_through_their_index() {
    let schema = testing::fresh_postgres_schema().await;
    let url = schema.url();
    let storage = PostgresStorage::open(url, &StorageOptions::default())
        .await
        .expect("opens");
    fill(&storage).await;
    let mut conn = storage.writer.acquire().await.expect("writer");
    // Its own tables only: a bare ANALYZE analyzes every table of the
    // database, other tests' schemas included (it gave the plans test
    // statistics of half-filled tables).
    Sql::<sqlx::Postgres>::new("ANALYZE streams, groups, group_pending")
        .execute(&mut conn)
        .await
        .expect("ANALYZE");
    check::<crate::storage::postgres::PostgresDialect>("PostgreSQL", "EXPLAIN ", &mut conn).await;
}
