//! Every test's PostgreSQL schema is dropped by the test that made it, when
//! its last `TestDb` goes: after a pass, while a failing test unwinds, and
//! while a server the test left running still holds a transaction open on
//! it. Each test here looks only at the schemas it made itself, by name,
//! so tests running beside it (in this process or another run) cannot
//! change its outcome. The test command's PostgreSQL pass then checks that
//! the whole suite left no schema behind (scripts/test.sh).

use sqlx::Connection;

use crate::common::*;

/// Whether the test PostgreSQL has a schema called `name`.
async fn schema_exists(name: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(&postgres_url())
        .await
        .expect("the test PostgreSQL answers");
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(name)
    .fetch_one(&mut conn)
    .await
    .expect("information_schema answers")
}

#[tokio::test]
async fn a_schema_is_dropped_with_its_database_even_while_a_server_holds_it_in_a_transaction() {
    let db = TestDb::postgres().await;
    let name = db.schema().to_owned();
    assert!(
        name.starts_with(&format!("rl_t_{}_", std::process::id())),
        "{name}: the test command's sweep relies on rl_t_<pid>_"
    );
    assert!(schema_exists(&name).await);
    let server = TestServer::start_in(db, |_| {}).await;
    publish(&mut server.client().await, "s", vec![event("e")]).await;
    // A session on the schema inside a transaction that holds a lock on
    // its events table, as a server's writer can at any moment: DROP
    // SCHEMA alone would wait for it for ever.
    let mut holder = sqlx::PgConnection::connect(&server.db.url)
        .await
        .expect("connects");
    sqlx::raw_sql("BEGIN; LOCK TABLE events IN ACCESS SHARE MODE")
        .execute(&mut holder)
        .await
        .expect("a transaction holding a lock");

    // The server is dropped without being stopped: its tasks still run.
    drop(server);

    assert!(!schema_exists(&name).await, "{name} outlived its database");
    let after = sqlx::query("SELECT 1").execute(&mut holder).await;
    assert!(after.is_err(), "the session holding the lock was ended");
}

#[tokio::test]
async fn a_failing_test_drops_its_schema_as_it_unwinds() {
    let (made, schema) = tokio::sync::oneshot::channel();
    let test = tokio::spawn(async move {
        let db = TestDb::postgres().await;
        let server = TestServer::start_in(db, |_| {}).await;
        made.send(server.db.schema().to_owned()).expect("sent");
        panic!("a test fails with its server running");
    });
    let name = schema.await.expect("the schema was made");
    let failed = within(test).await.expect_err("the test panicked");
    assert!(failed.is_panic());
    assert!(!schema_exists(&name).await, "{name} outlived a failed test");
}

#[tokio::test]
async fn a_replica_keeps_the_schema_until_the_last_database_handle_goes() {
    let db = TestDb::postgres().await;
    let name = db.schema().to_owned();
    let replica = db.replica();
    drop(db);
    assert!(schema_exists(&name).await, "dropped under a replica");
    // A URL through a proxy owns nothing: dropping it drops nothing.
    drop(TestDb::with_url(replica.url.clone()));
    assert!(schema_exists(&name).await, "dropped by a stand-in");
    drop(replica);
    assert!(
        !schema_exists(&name).await,
        "{name} outlived its last handle"
    );
}
