//! The query plans of the read statements, checked on a table filled the
//! way users fill it: many streams whose events interleave, so one
//! stream's events are spread over the whole position range.
//!
//! A read of one stream must walk that stream's index in order and stop at
//! the limit. A plan that fetches every event past the position and sorts
//! them reads the rest of the stream for each page: a catch-up becomes
//! quadratic in the stream's length (PostgreSQL did this, at 0.6 s per
//! 512-event page on 65,000 events, while the results looked right).

use super::clauses::Selected;
use super::driver::{Sql, get};
use super::reads::{read_log_statement, read_stream_statement};
use super::{Dialect, SqlStorage};
use crate::model::filter::EventFilter;
use crate::model::names::{StreamName, StreamPattern, StreamSelector};
use crate::model::query::{Direction, ReadFrom};
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{StorageOptions, testing};

/// Events in the filled table.
const EVENTS: i64 = 100_000;

/// Writes one statement into an `Sql` (after `EXPLAIN`).
type Statement<D> = Box<dyn Fn(&mut Sql<<D as Dialect>::DB>)>;

/// A check of one statement's plan.
struct Case<D: Dialect> {
    name: &'static str,
    statement: Statement<D>,
    /// Sorting is wrong: it would read every event past the position.
    must_not_sort: bool,
    /// The index the plan must use, when walking another would pass many
    /// events for each one it returns.
    index: Option<&'static str>,
}

/// The statements checked, on the streams [`fill`] made.
fn cases<D: Dialect>(big: i64, rare: i64) -> Vec<Case<D>> {
    let none = EventFilter::default();
    let typed = EventFilter {
        types: vec!["t.*".to_owned()],
        ..EventFilter::default()
    };
    let middle = (EVENTS / 2) as u64;
    let pattern = [StreamSelector::Pattern(
        StreamPattern::parse("s1*").expect("valid pattern"),
    )];
    vec![
        Case {
            name: "catch-up page of a big stream",
            statement: Box::new({
                let none = none.clone();
                move |q| read_log_statement::<D>(q, middle, Selected::One(big), &none, 512)
            }),
            must_not_sort: true,
            index: None,
        },
        Case {
            name: "catch-up page of a big stream, filtered by type",
            statement: Box::new(move |q| {
                read_log_statement::<D>(q, middle, Selected::One(big), &typed, 512)
            }),
            must_not_sort: true,
            index: None,
        },
        Case {
            name: "catch-up page of a rare stream",
            statement: Box::new({
                let none = none.clone();
                move |q| read_log_statement::<D>(q, middle, Selected::One(rare), &none, 512)
            }),
            must_not_sort: false,
            index: Some("events_stream_position"),
        },
        Case {
            name: "catch-up page of a pattern",
            statement: Box::new({
                let none = none.clone();
                move |q| read_log_statement::<D>(q, middle, Selected::Any(&pattern), &none, 512)
            }),
            must_not_sort: true,
            index: None,
        },
        Case {
            name: "catch-up page of every stream",
            statement: Box::new({
                let none = none.clone();
                let every = [StreamSelector::Pattern(
                    StreamPattern::parse("*").expect("valid pattern"),
                )];
                move |q| read_log_statement::<D>(q, middle, Selected::Any(&every), &none, 512)
            }),
            must_not_sort: true,
            index: None,
        },
        Case {
            name: "history page of a big stream, forward from a sequence",
            statement: Box::new({
                let none = none.clone();
                move |q| {
                    let from = ReadFrom::Sequence(100);
                    read_stream_statement::<D>(q, big, from, Direction::Forward, &none, 101)
                }
            }),
            must_not_sort: true,
            index: Some("events_stream_sequence"),
        },
        Case {
            name: "history page of a big stream, backward from the end",
            statement: Box::new(move |q| {
                read_stream_statement::<D>(q, big, ReadFrom::End, Direction::Backward, &none, 101)
            }),
            must_not_sort: true,
            index: Some("events_stream_sequence"),
        },
    ]
}

/// Fills `streams` and `events` as interleaved appends would, skewed as
/// real logs are: every other event belongs to stream `big`, every
/// 1000th to `rare`, the rest to 200 small streams `s0`..`s199`. Returns
/// the ids of `big` and `rare`.
async fn fill<D: Dialect>(storage: &SqlStorage<D>) -> (i64, i64) {
    let mut conn = storage.writer.acquire().await.expect("writer connection");
    let names = ["big".to_owned(), "rare".to_owned()]
        .into_iter()
        .chain((0..200).map(|s| format!("s{s}")));
    for name in names {
        Sql::<D::DB>::query(
            "INSERT INTO streams (name, created_at) VALUES (?, 0)",
            (name.as_str(),),
        )
        .execute(&mut conn)
        .await
        .expect("stream inserted");
    }
    Sql::<D::DB>::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?), \
         o(i, name) AS (SELECT i, CASE WHEN i % 1000 = 0 THEN 'rare' \
           WHEN i % 2 = 0 THEN 'big' ELSE 's' || (i % 200) END FROM n) \
         INSERT INTO events \
         (position, stream_id, sequence, event_id, type, source, subject, recorded_at, payload) \
         SELECT i, (SELECT id FROM streams WHERE name = o.name), \
         ROW_NUMBER() OVER (PARTITION BY o.name ORDER BY i), \
         'id-' || i, 't.x', '/src', NULL, i, ? FROM o",
        (EVENTS, &[0u8; 256][..]),
    )
    .execute(&mut conn)
    .await
    .expect("events inserted");
    let big = SqlStorage::<D>::stream_id(&mut conn, &StreamName::parse("big").expect("name"))
        .await
        .expect("looked up")
        .expect("big exists");
    let rare = SqlStorage::<D>::stream_id(&mut conn, &StreamName::parse("rare").expect("name"))
        .await
        .expect("looked up")
        .expect("rare exists");
    (big, rare)
}

/// The plan of `statement`, one line per node (PostgreSQL) or step
/// (SQLite's `EXPLAIN QUERY PLAN`, whose detail is the fourth column).
async fn plan<D: Dialect>(
    conn: &mut <D::DB as sqlx::Database>::Connection,
    explain: &str,
    statement: &dyn Fn(&mut Sql<D::DB>),
) -> String {
    let mut q = Sql::<D::DB>::new(explain);
    statement(&mut q);
    let rows = q.fetch_all(conn).await.expect("EXPLAIN runs");
    let column = if explain.contains("QUERY PLAN") { 3 } else { 0 };
    rows.iter()
        .map(|r| get::<D::DB, String>(r, column).expect("plan text"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn check_all<D: Dialect>(
    backend: &str,
    stage: &str,
    explain: &str,
    conn: &mut <D::DB as sqlx::Database>::Connection,
    (big, rare): (i64, i64),
) {
    for case in cases::<D>(big, rare) {
        let plan = plan::<D>(conn, explain, &case.statement).await;
        let name = case.name;
        if case.must_not_sort {
            assert!(
                !["Sort", "TEMP B-TREE"].iter().any(|s| plan.contains(s)),
                "{backend} ({stage}): {name} sorts instead of walking an index in order:\n{plan}"
            );
        }
        if let Some(index) = case.index {
            assert!(
                plan.contains(index),
                "{backend} ({stage}): {name} does not use {index}:\n{plan}"
            );
        }
    }
}

#[tokio::test]
async fn sqlite_reads_walk_an_index_in_order() {
    type Lite = crate::storage::sqlite::SqliteDialect;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("plans.db").display());
    let storage = SqliteStorage::open(&url, &StorageOptions::default())
        .await
        .expect("opens");
    let streams = fill(&storage).await;
    let mut conn = storage.readers.acquire().await.expect("reader");
    let explain = "EXPLAIN QUERY PLAN ";
    check_all::<Lite>("SQLite", "no statistics", explain, &mut conn, streams).await;
    Sql::<sqlx::Sqlite>::new("ANALYZE")
        .execute(&mut *storage.writer.acquire().await.expect("writer"))
        .await
        .expect("ANALYZE");
    check_all::<Lite>("SQLite", "analyzed", explain, &mut conn, streams).await;
}

#[tokio::test]
async fn postgres_reads_walk_an_index_in_order() {
    type Pg = crate::storage::postgres::PostgresDialect;
    let schema = testing::fresh_postgres_schema().await;
    let url = schema.url();
    let storage = PostgresStorage::open(url, &StorageOptions::default())
        .await
        .expect("opens");
    // "No statistics" must mean none: autovacuum may otherwise analyze a
    // table between the fill and the EXPLAIN. Other tests must not either:
    // a bare ANALYZE in a test running beside this one analyzed these
    // tables before their fill committed, as empty, and the rare stream's
    // page then walked the primary key.
    for table in ["streams", "events"] {
        Sql::<sqlx::Postgres>::new(format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(&mut *storage.writer.acquire().await.expect("writer"))
        .await
        .expect("autovacuum off for the test's tables");
    }
    let streams = fill(&storage).await;
    let mut conn = storage.readers.acquire().await.expect("reader");
    // EXPLAIN plans with the values given; the statements themselves do
    // too only because reader connections never use generic plans.
    let mode: String = Sql::<sqlx::Postgres>::new("SHOW plan_cache_mode")
        .fetch_scalar(&mut conn)
        .await
        .expect("SHOW runs");
    assert_eq!(mode, "force_custom_plan");
    // A new user's table has no statistics until autovacuum analyzes it.
    check_all::<Pg>(
        "PostgreSQL",
        "no statistics",
        "EXPLAIN ",
        &mut conn,
        streams,
    )
    .await;
    // Its own tables only: a bare ANALYZE would analyze every schema's.
    Sql::<sqlx::Postgres>::new("ANALYZE streams, events")
        .execute(&mut conn)
        .await
        .expect("ANALYZE");
    check_all::<Pg>("PostgreSQL", "analyzed", "EXPLAIN ", &mut conn, streams).await;
}
