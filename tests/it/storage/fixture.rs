//! A backend under test and the few steps every scenario takes with it.

use std::sync::Arc;

use bytes::Bytes;
use riverlog::model::names::StreamName;
use riverlog::model::records::{Position, Retention, StoredEvent, UnixMicros};
use riverlog::storage::{EventRow, Storage, StorageOptions, StreamHead, WriteTx};

use crate::common::TestDb;

/// A fresh, empty database of one backend, opened as riverlog's storage.
pub struct Backend {
    pub storage: Arc<dyn Storage>,
    pub postgres: bool,
    db: TestDb,
}

impl Backend {
    /// A temporary SQLite file.
    pub async fn sqlite() -> Self {
        Self::open(TestDb::sqlite(), false).await
    }

    /// A fresh schema of the test PostgreSQL.
    pub async fn postgres() -> Self {
        Self::open(TestDb::postgres().await, true).await
    }

    async fn open(db: TestDb, postgres: bool) -> Self {
        let storage = riverlog::storage::open(&db.url, &StorageOptions::default())
            .await
            .expect("storage opens");
        Self {
            storage,
            postgres,
            db,
        }
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.db.url
    }

    /// The same database opened again, as a second process (a replica, or
    /// a second server pointed at the same SQLite file) would.
    pub async fn second_opener(&self) -> Arc<dyn Storage> {
        riverlog::storage::open(&self.db.url, &StorageOptions::default())
            .await
            .expect("storage opens twice")
    }

    /// A write transaction.
    pub async fn begin(&self) -> Box<dyn WriteTx> {
        self.storage
            .begin_write()
            .await
            .expect("transaction begins")
    }

    /// Creates a stream (with `retention`) and commits.
    pub async fn create(&self, name: &str, retention: Retention) -> StreamHead {
        let mut tx = self.begin().await;
        let head = tx
            .create_stream(&stream(name), &retention, UnixMicros(1))
            .await
            .expect("stream created");
        tx.commit().await.expect("commit");
        head
    }

    /// Appends `events` to `name` (creating it) the way the writer does,
    /// in one committed transaction; returns them as stored.
    pub async fn append(&self, name: &str, events: &[Ev]) -> Vec<StoredEvent> {
        let mut tx = self.begin().await;
        let stored = append_in(tx.as_mut(), name, events).await;
        tx.commit().await.expect("commit");
        stored
    }

    /// The head of one stream, read in a transaction of its own.
    pub async fn head(&self, name: &str) -> StreamHead {
        let mut tx = self.begin().await;
        let mut heads = tx.stream_heads(&[stream(name)]).await.expect("heads");
        tx.rollback().await;
        heads.pop().expect("the stream exists")
    }
}

/// The writer's steps for one append, inside `tx`.
pub async fn append_in(tx: &mut dyn WriteTx, name: &str, events: &[Ev]) -> Vec<StoredEvent> {
    let name = stream(name);
    let mut position = tx.log_head().await.expect("log head");
    let floor = tx.recorded_floor().await.expect("floor");
    let mut heads = tx
        .stream_heads(std::slice::from_ref(&name))
        .await
        .expect("heads");
    let mut head = match heads.pop() {
        Some(h) => h,
        None => tx
            .create_stream(&name, &Retention::default(), UnixMicros(1))
            .await
            .expect("create"),
    };
    let mut rows = Vec::new();
    for e in events {
        position += 1;
        head.last_sequence += 1;
        rows.push(EventRow {
            stream_id: head.id,
            event: StoredEvent {
                stream: name.clone(),
                sequence: head.last_sequence,
                position,
                recorded_at: UnixMicros(e.at.max(floor.0)),
                id: e.id.clone(),
                event_type: e.event_type.clone(),
                source: e.source.clone(),
                subject: e.subject.clone(),
                payload: e.payload.clone(),
            },
        });
    }
    let last_at = rows.last().map(|r| r.event.recorded_at);
    head.last_position = position;
    head.event_count += rows.len() as u64;
    head.last_appended_at = last_at.or(head.last_appended_at);
    tx.insert_events(&rows).await.expect("insert");
    tx.save_stream_heads(&[head]).await.expect("save heads");
    tx.save_log_head(position, last_at.unwrap_or(UnixMicros(0)))
        .await
        .expect("save log head");
    rows.into_iter().map(|r| r.event).collect()
}

/// A stream name known to be valid.
pub fn stream(name: &str) -> StreamName {
    StreamName::parse(name).expect("valid stream name")
}

/// An event to append; recorded at `at` microseconds.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: String,
    pub event_type: String,
    pub source: String,
    pub subject: Option<String>,
    pub at: i64,
    pub payload: Bytes,
}

/// An event with id `id`, type `t.created`, recorded at `at`.
pub fn ev(id: &str, at: i64) -> Ev {
    Ev {
        id: id.to_owned(),
        event_type: "t.created".to_owned(),
        source: "/test".to_owned(),
        subject: None,
        at,
        payload: Bytes::from(format!("payload of {id}")),
    }
}

impl Ev {
    pub fn typed(mut self, event_type: &str) -> Self {
        self.event_type = event_type.to_owned();
        self
    }
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }
    pub fn sized(mut self, bytes: usize) -> Self {
        self.payload = Bytes::from(vec![b'x'; bytes]);
        self
    }
}

/// Events `prefix-1` ... `prefix-n`, the i-th recorded at `i`.
pub fn evs(prefix: &str, n: usize) -> Vec<Ev> {
    (1..=n)
        .map(|i| ev(&format!("{prefix}-{i}"), i as i64))
        .collect()
}

/// The sequences of events, in order.
pub fn sequences(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.sequence).collect()
}

/// The positions of events, in order.
pub fn positions(events: &[StoredEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}
