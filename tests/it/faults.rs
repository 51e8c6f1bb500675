//! Storage faults at each step of a write batch: the batch that met the
//! fault is refused and leaves nothing behind, and the next batch commits
//! on the same server, without a restart.
//!
//! Faults are real database errors, raised by triggers this test installs
//! in its own database and arms one step at a time: the insert of events,
//! the update of stream heads, the update of the log head, and the commit
//! itself (a deferred constraint, checked only by COMMIT).

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::*;

/// The steps of a batch a fault can be armed at.
const STEPS: [&str; 4] = ["insert", "stream_head", "log_head", "commit"];

/// Installs the fault triggers, all disarmed.
pub(crate) async fn install_faults(db: &TestDb) {
    let mut sql = vec!["CREATE TABLE test_faults (step TEXT PRIMARY KEY)".to_owned()];
    if backend_is_postgres() {
        // 53100 is disk_full: the outage class clients retry.
        sql.push(
            "CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF EXISTS (SELECT 1 FROM test_faults WHERE step = TG_ARGV[0]) THEN \
                 RAISE EXCEPTION 'injected fault at %', TG_ARGV[0] USING ERRCODE = '53100'; \
               END IF; \
               RETURN NEW; \
             END $$"
                .to_owned(),
        );
        for (step, table, when) in [
            ("insert", "events", "BEFORE INSERT"),
            ("stream_head", "streams", "BEFORE UPDATE"),
            ("log_head", "log_head", "BEFORE UPDATE"),
        ] {
            sql.push(format!(
                "CREATE TRIGGER test_fault_{step} {when} ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION test_fault('{step}')"
            ));
        }
        sql.push(
            "CREATE CONSTRAINT TRIGGER test_fault_commit AFTER INSERT ON events \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fault('commit')"
                .to_owned(),
        );
    } else {
        // ABORT fails the statement and leaves the transaction open;
        // ROLLBACK also ends the transaction, as SQLite itself does on
        // SQLITE_FULL or SQLITE_IOERR (after which a ROLLBACK fails).
        for (step, table, when, raise) in [
            ("insert", "events", "BEFORE INSERT", "ABORT"),
            ("stream_head", "streams", "BEFORE UPDATE", "ROLLBACK"),
            ("log_head", "log_head", "BEFORE UPDATE", "ROLLBACK"),
        ] {
            sql.push(format!(
                "CREATE TRIGGER test_fault_{step} {when} ON {table} \
                 WHEN EXISTS (SELECT 1 FROM test_faults WHERE step = '{step}') \
                 BEGIN SELECT RAISE({raise}, 'injected fault at {step}'); END"
            ));
        }
        // A deferred foreign key is checked by COMMIT, which then fails and
        // leaves the transaction open: the state sqlx lost track of.
        sql.push(
            "CREATE TABLE test_fault_commit (stream_id INTEGER \
             REFERENCES streams (id) DEFERRABLE INITIALLY DEFERRED)"
                .to_owned(),
        );
        sql.push(
            "CREATE TRIGGER test_fault_commit AFTER INSERT ON events \
             WHEN EXISTS (SELECT 1 FROM test_faults WHERE step = 'commit') \
             BEGIN INSERT INTO test_fault_commit VALUES (-1); END"
                .to_owned(),
        );
    }
    run_sql(db, &sql).await;
}

pub(crate) async fn arm(db: &TestDb, step: &str) {
    run_sql(db, &[format!("INSERT INTO test_faults VALUES ('{step}')")]).await;
}

pub(crate) async fn disarm(db: &TestDb) {
    run_sql(db, &["DELETE FROM test_faults".to_owned()]).await;
}

#[tokio::test]
async fn a_fault_at_any_step_of_a_batch_refuses_it_and_the_next_batch_commits() {
    let server = TestServer::start().await;
    install_faults(&server.db).await;
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("first")]).await;

    let mut expected = vec!["first".to_owned()];
    for step in STEPS {
        arm(&server.db, step).await;
        let err = client
            .publish(publish_request("s", vec![event(&format!("lost-{step}"))]))
            .await
            .expect_err(step);
        // SQLite's RAISE is a constraint error; the PostgreSQL trigger
        // raises disk_full, an outage.
        if backend_is_postgres() {
            assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");
        } else {
            assert_error(&err, Code::Internal, "STORAGE_FAILURE");
        }
        disarm(&server.db).await;

        // The same server, the same write connection or its replacement:
        // the next batch commits.
        let id = format!("after-{step}");
        publish(&mut client, "s", vec![event(&id)]).await;
        expected.push(id);
    }

    let events = read_all(&mut client, "s").await;
    let ids: Vec<_> = events.iter().map(event_id).collect();
    assert_eq!(ids, expected, "refused batches left nothing behind");
    let sequences: Vec<_> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=expected.len() as u64).collect::<Vec<_>>());
    let info = client
        .get_stream(riverlog::proto::v1::GetStreamRequest { stream: "s".into() })
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.event_count, expected.len() as u64);
    assert_eq!(info.last_sequence, expected.len() as u64);
}

#[tokio::test]
async fn health_is_not_serving_while_writes_fail_and_serving_once_they_succeed() {
    let server = TestServer::start().await;
    install_faults(&server.db).await;
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);

    // Every write touches the log head: while it fails, no write can
    // succeed, though reads still do.
    arm(&server.db, "log_head").await;
    let err = client
        .publish(publish_request("s", vec![event("lost")]))
        .await
        .unwrap_err();
    if backend_is_postgres() {
        // An outage class: health must follow the writes.
        assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");
        assert_eq!(
            next_status(&mut watch).await,
            ServingStatus::NotServing as i32
        );
    } else {
        // A constraint error says nothing about the next write: health
        // stays SERVING.
        assert_error(&err, Code::Internal, "STORAGE_FAILURE");
    }
    disarm(&server.db).await;
    if backend_is_postgres() {
        // Nothing publishes: the health probe's own write finds out.
        assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    }
    publish(&mut client, "s", vec![event("kept")]).await;
    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(ids, ["kept"]);
}
