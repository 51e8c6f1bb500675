//! The scenarios, each taking a constructor of a fresh backend.

use std::time::Duration;

use riverlog::log::groups::{
    Checkpoint, CheckpointOwner, GroupSettings, GroupStart, PendingEntry, PendingQuery,
};
use riverlog::model::StorageError;
use riverlog::model::filter::EventFilter;
use riverlog::model::names::{
    CheckpointName, GroupName, StreamPattern, StreamSelector, glob_match,
};
use riverlog::model::query::{Direction, ReadFrom, TakeEnd, TrimUntil};
use riverlog::model::records::{Retention, RetentionPolicy, UnixMicros};

use super::fixture::{Backend, Ev, append_in, ev, evs, positions, sequences, stream};
use crate::common::{PATIENCE, within};

fn group_name(s: &str) -> GroupName {
    GroupName::parse(s).expect("valid group name")
}

fn checkpoint_name(s: &str) -> CheckpointName {
    CheckpointName::parse(s).expect("valid checkpoint name")
}

fn all() -> EventFilter {
    EventFilter::default()
}

fn types(list: &[&str]) -> EventFilter {
    EventFilter {
        types: list.iter().map(|s| (*s).to_owned()).collect(),
        ..EventFilter::default()
    }
}

pub async fn streams_are_created_counted_described_and_listed(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let kept = Retention {
        max_events: Some(10),
        max_age: Some(Duration::from_secs(60)),
        ttl: None,
        policy: RetentionPolicy::WorkQueue,
        dedup_window: Some(Duration::from_secs(7)),
    };
    for name in ["orders", "orders.eu", "payments"] {
        b.create(name, kept.clone()).await;
    }
    let mut tx = b.begin().await;
    assert_eq!(tx.count_streams().await.unwrap(), 3);
    tx.rollback().await;

    let info = b
        .storage
        .get_stream(&stream("orders"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.name.as_str(), "orders");
    assert_eq!(info.retention, kept);
    assert_eq!(
        (
            info.event_count,
            info.first_sequence,
            info.last_sequence,
            info.group_count
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(info.created_at, UnixMicros(1));
    assert_eq!(info.last_appended_at, None);
    assert!(
        b.storage
            .get_stream(&stream("nope"))
            .await
            .unwrap()
            .is_none()
    );

    let names = async |pattern: Option<&str>, after: Option<&str>, limit| {
        let pattern = pattern.map(|p| StreamPattern::parse(p).unwrap());
        let listed = b
            .storage
            .list_streams(pattern.as_ref(), after, limit)
            .await
            .unwrap();
        listed
            .into_iter()
            .map(|s| s.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(None, None, 10).await,
        ["orders", "orders.eu", "payments"]
    );
    assert_eq!(
        names(None, Some("orders"), 10).await,
        ["orders.eu", "payments"]
    );
    assert_eq!(names(None, None, 1).await, ["orders"]);
    assert_eq!(
        names(Some("orders*"), None, 10).await,
        ["orders", "orders.eu"]
    );
    assert_eq!(names(Some("*s"), Some("orders"), 10).await, ["payments"]);
}

pub async fn appends_read_back_by_stream_and_across_the_log(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let a = b
        .append(
            "a",
            &[
                ev("e1", 10).typed("t.a").subject("s1"),
                ev("e2", 20).typed("t.b"),
                ev("e3", 30).typed("t.a").subject("s2"),
            ],
        )
        .await;
    let other = b.append("b", &[ev("e4", 40), ev("e5", 50)]).await;
    assert_eq!(positions(&a), [1, 2, 3]);
    assert_eq!(positions(&other), [4, 5]);

    let read = async |from, direction, filter: &EventFilter, limit| {
        b.storage
            .read_stream(&stream("a"), from, direction, filter, limit)
            .await
            .unwrap()
    };
    // Every field comes back as written.
    assert_eq!(read(ReadFrom::End, Direction::Forward, &all(), 10).await, a);
    let backward = read(ReadFrom::End, Direction::Backward, &all(), 10).await;
    assert_eq!(sequences(&backward), [3, 2, 1]);
    let from_2 = ReadFrom::Sequence(2);
    assert_eq!(
        sequences(&read(from_2, Direction::Forward, &all(), 10).await),
        [2, 3]
    );
    assert_eq!(
        sequences(&read(from_2, Direction::Backward, &all(), 10).await),
        [2, 1]
    );
    let at_20 = ReadFrom::Time(UnixMicros(20));
    assert_eq!(
        sequences(&read(at_20, Direction::Forward, &all(), 10).await),
        [2, 3]
    );
    assert_eq!(
        sequences(&read(at_20, Direction::Backward, &all(), 10).await),
        [2, 1]
    );
    assert_eq!(
        sequences(&read(ReadFrom::End, Direction::Forward, &all(), 2).await),
        [1, 2]
    );
    let t_a = types(&["t.a"]);
    assert_eq!(
        sequences(&read(ReadFrom::End, Direction::Forward, &t_a, 10).await),
        [1, 3]
    );
    let subjects = EventFilter {
        subjects: vec!["s*".to_owned()],
        ..EventFilter::default()
    };
    // An event without a subject never matches a subject filter.
    assert_eq!(
        sequences(&read(ReadFrom::End, Direction::Forward, &subjects, 10).await),
        [1, 3]
    );
    assert!(
        b.storage
            .read_stream(
                &stream("nope"),
                ReadFrom::End,
                Direction::Forward,
                &all(),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );

    let log = async |after, selectors: &[StreamSelector], filter: &EventFilter| {
        b.storage
            .read_log(after, selectors, filter, 10)
            .await
            .unwrap()
    };
    let both = [
        StreamSelector::parse("a").unwrap(),
        StreamSelector::parse("b").unwrap(),
    ];
    assert_eq!(positions(&log(0, &both, &all()).await), [1, 2, 3, 4, 5]);
    let any = [StreamSelector::parse("*").unwrap()];
    assert_eq!(positions(&log(2, &any, &all()).await), [3, 4, 5]);
    assert_eq!(positions(&log(0, &any, &t_a).await), [1, 3]);
    assert!(log(0, &[], &all()).await.is_empty());
    assert_eq!(
        log(3, &any, &all())
            .await
            .iter()
            .map(|e| e.stream.as_str())
            .collect::<Vec<_>>(),
        ["b", "b"]
    );

    assert_eq!(b.storage.head_position().await.unwrap(), 5);
    assert_eq!(
        b.storage.last_recorded_at().await.unwrap(),
        Some(UnixMicros(50))
    );
    assert_eq!(
        b.storage
            .position_before_time(UnixMicros(40))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        b.storage
            .position_before_time(UnixMicros(10))
            .await
            .unwrap(),
        0
    );
    let a_name = stream("a");
    assert_eq!(
        b.storage
            .position_before_sequence(&a_name, 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        b.storage
            .position_before_sequence(&a_name, 1)
            .await
            .unwrap(),
        0
    );

    let info = b.storage.get_stream(&a_name).await.unwrap().unwrap();
    assert_eq!(
        (
            info.event_count,
            info.first_sequence,
            info.last_sequence,
            info.last_position
        ),
        (3, 1, 3, 3)
    );
    assert_eq!(info.last_appended_at, Some(UnixMicros(30)));
}

pub async fn dedup_lookup_finds_ids_per_stream_and_a_duplicate_fails_whole(
    open: impl AsyncFn() -> Backend,
) {
    let b = open().await;
    let a = b.append("a", &[ev("x", 1), ev("y", 2)]).await;
    let other = b.append("b", &[ev("x", 3)]).await;
    let (a_id, b_id) = (b.head("a").await.id, b.head("b").await.id);

    let mut tx = b.begin().await;
    let mut found = tx
        .find_events(&[(a_id, "x"), (a_id, "z"), (b_id, "x"), (b_id, "y")])
        .await
        .unwrap();
    tx.rollback().await;
    found.sort_by_key(|e| e.position);
    let seen: Vec<_> = found
        .iter()
        .map(|e| {
            (
                e.stream_id,
                e.id.as_str(),
                e.sequence,
                e.position,
                e.recorded_at,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (a_id, "x", 1, a[0].position, a[0].recorded_at),
            (b_id, "x", 1, other[0].position, other[0].recorded_at),
        ]
    );

    // An id the stream already holds is refused by the database itself, and
    // nothing of that transaction remains.
    let mut tx = b.begin().await;
    let before = b.storage.head_position().await.unwrap();
    let rows = vec![riverlog::storage::EventRow {
        stream_id: a_id,
        event: riverlog::model::records::StoredEvent {
            sequence: 3,
            position: before + 1,
            ..a[0].clone()
        },
    }];
    let inserted = tx.insert_events(&rows).await;
    assert!(
        matches!(inserted, Err(StorageError::Failure(_))),
        "{inserted:?}"
    );
    tx.rollback().await;
    assert_eq!(b.storage.head_position().await.unwrap(), before);
    let read = b
        .storage
        .read_stream(&stream("a"), ReadFrom::End, Direction::Forward, &all(), 10)
        .await
        .unwrap();
    assert_eq!(read, a);
}

pub async fn the_log_head_and_recorded_floor_never_go_back(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let mut tx = b.begin().await;
    assert_eq!(tx.log_head().await.unwrap(), 0);
    tx.save_log_head(7, UnixMicros(100)).await.unwrap();
    assert_eq!(tx.log_head().await.unwrap(), 7);
    tx.commit().await.unwrap();
    assert_eq!(b.storage.head_position().await.unwrap(), 7);

    // A replica whose clock is behind saves an older time: the floor keeps
    // the newer one.
    let mut tx = b.begin().await;
    tx.save_log_head(8, UnixMicros(50)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = b.begin().await;
    let floor = tx.recorded_floor().await.unwrap();
    tx.rollback().await;
    // SQLite has one writer process, whose own clock is the floor.
    let expected = if b.postgres { 100 } else { 0 };
    assert_eq!(floor, UnixMicros(expected));
    assert_eq!(b.storage.head_position().await.unwrap(), 8);
}

pub async fn trim_removes_by_count_sequence_and_time(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    b.append("s", &evs("e", 10)).await;
    let id = b.head("s").await.id;
    let trim = async |until| {
        let mut tx = b.begin().await;
        let removed = match tx.trim_cutoff(id, until).await.unwrap() {
            Some(last) => tx.trim_through(id, last).await.unwrap(),
            None => 0,
        };
        tx.commit().await.unwrap();
        removed
    };
    assert_eq!(trim(TrimUntil::MaxEvents(7)).await, 3);
    assert_eq!(trim(TrimUntil::MaxEvents(7)).await, 0);
    assert_eq!(trim(TrimUntil::MaxEvents(100)).await, 0);
    assert_eq!(trim(TrimUntil::BeforeSequence(6)).await, 2);
    assert_eq!(trim(TrimUntil::BeforeTime(UnixMicros(8))).await, 2);
    let left = b
        .storage
        .read_stream(&stream("s"), ReadFrom::End, Direction::Forward, &all(), 20)
        .await
        .unwrap();
    assert_eq!(sequences(&left), [8, 9, 10]);
    let info = b.storage.get_stream(&stream("s")).await.unwrap().unwrap();
    assert_eq!(info.first_sequence, 8);
}

pub async fn take_removes_from_either_end_within_a_byte_budget(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let stored = b
        .append(
            "q",
            &evs("e", 6)
                .into_iter()
                .map(|e| e.sized(100))
                .collect::<Vec<_>>(),
        )
        .await;
    let take = async |end, limit, max_bytes| {
        let head = b.head("q").await;
        let mut tx = b.begin().await;
        let taken = tx.take(&head, end, limit, max_bytes).await.unwrap();
        tx.commit().await.unwrap();
        taken
    };
    assert_eq!(take(TakeEnd::Oldest, 2, 1 << 20).await, stored[0..2]);
    assert_eq!(sequences(&take(TakeEnd::Newest, 2, 1 << 20).await), [6, 5]);
    // The budget stops before the payloads exceed it, but one always goes.
    assert_eq!(sequences(&take(TakeEnd::Oldest, 10, 150).await), [3]);
    assert_eq!(sequences(&take(TakeEnd::Newest, 10, 0).await), [4]);
    assert!(take(TakeEnd::Oldest, 10, 1 << 20).await.is_empty());
}

pub async fn events_are_found_by_sequence_and_after_a_sequence(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let stored = b.append("s", &evs("e", 4)).await;
    let id = b.head("s").await.id;
    let mut tx = b.begin().await;
    assert_eq!(
        tx.events_by_sequence(id, &[3, 1, 99]).await.unwrap(),
        [stored[0].clone(), stored[2].clone()]
    );
    assert_eq!(sequences(&tx.events_after(id, 1, 2).await.unwrap()), [2, 3]);
    assert!(tx.events_after(id, 4, 10).await.unwrap().is_empty());
    // More sequences than one statement binds.
    let many: Vec<u64> = (1..=1200).collect();
    assert_eq!(
        sequences(&tx.events_by_sequence(id, &many).await.unwrap()),
        [1, 2, 3, 4]
    );
    tx.rollback().await;
}

fn settings(dead_letters: &str) -> GroupSettings {
    GroupSettings {
        start: GroupStart::Earliest,
        ack_timeout: Duration::from_secs(30),
        max_deliveries: 3,
        dead_letter_stream: stream(dead_letters),
    }
}

/// Creates group `g` of `head` in `tx`: cursor 0, created at `at`, dead
/// letters to `<stream>:dlq`.
async fn group_g(
    tx: &mut dyn riverlog::storage::WriteTx,
    head: &riverlog::storage::StreamHead,
    at: i64,
) -> riverlog::model::groups::GroupRecord {
    let dead_letters = format!("{}:dlq", head.name);
    tx.create_group(
        head,
        &group_name("g"),
        &settings(&dead_letters),
        0,
        UnixMicros(at),
    )
    .await
    .unwrap()
}

fn entry(sequence: u64, consumer: &str, delivered_at: i64, deliverable_at: i64) -> PendingEntry {
    PendingEntry {
        sequence,
        consumer: consumer.to_owned(),
        delivery_count: 1,
        delivered_at: UnixMicros(delivered_at),
        deliverable_at: UnixMicros(deliverable_at),
    }
}

fn checkpoint(owner: &CheckpointOwner, name: &str, on: Option<&str>, sequence: u64) -> Checkpoint {
    Checkpoint {
        owner: owner.clone(),
        name: checkpoint_name(name),
        stream: on.map(stream),
        sequence,
        position: sequence + 100,
        committed_at: UnixMicros(5),
    }
}

pub async fn delete_stream_removes_its_events_groups_and_checkpoints(
    open: impl AsyncFn() -> Backend,
) {
    let b = open().await;
    b.append("a", &evs("a", 3)).await;
    b.append("b", &evs("b", 1)).await;
    let head = b.head("a").await;
    let shared = CheckpointOwner::shared();
    let mut tx = b.begin().await;
    let group = group_g(tx.as_mut(), &head, 1).await;
    tx.touch_consumers(group.id, &["c"], UnixMicros(1))
        .await
        .unwrap();
    tx.save_pending(group.id, &[entry(1, "c", 1, 10)])
        .await
        .unwrap();
    tx.save_checkpoint(&checkpoint(&shared, "cp", Some("a"), 1))
        .await
        .unwrap();
    tx.save_checkpoint(&checkpoint(&shared, "cp", Some("b"), 1))
        .await
        .unwrap();
    assert_eq!(tx.delete_stream(head.id).await.unwrap(), 3);
    tx.commit().await.unwrap();

    assert!(b.storage.get_stream(&stream("a")).await.unwrap().is_none());
    assert!(
        b.storage
            .group_state(&stream("a"), &group_name("g"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.storage.pending_summary(group.id).await.unwrap().count, 0);
    let cp = checkpoint_name("cp");
    assert!(
        b.storage
            .checkpoint(&shared, &cp, Some(&stream("a")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.storage
            .checkpoint(&shared, &cp, Some(&stream("b")))
            .await
            .unwrap()
            .is_some()
    );
    let any = [StreamSelector::parse("*").unwrap()];
    let left = b.storage.read_log(0, &any, &all(), 10).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

pub async fn groups_keep_cursor_consumers_and_pending_entries(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    b.append("s", &evs("e", 5)).await;
    let head = b.head("s").await;
    let mut tx = b.begin().await;
    let g = group_g(tx.as_mut(), &head, 7).await;
    assert_eq!(
        (g.stream.as_str(), g.name.as_str(), g.cursor, g.created_at),
        ("s", "g", 0, UnixMicros(7))
    );
    assert_eq!(
        tx.group(&head, &group_name("g")).await.unwrap(),
        Some(g.clone())
    );
    assert_eq!(tx.group(&head, &group_name("nope")).await.unwrap(), None);
    tx.create_group(
        &head,
        &group_name("a"),
        &settings("s:dlq"),
        5,
        UnixMicros(7),
    )
    .await
    .unwrap();
    tx.touch_consumers(g.id, &["c1"], UnixMicros(10))
        .await
        .unwrap();
    tx.touch_consumers(g.id, &["c1"], UnixMicros(20))
        .await
        .unwrap();
    tx.touch_consumers(g.id, &["c2"], UnixMicros(15))
        .await
        .unwrap();
    tx.save_pending(
        g.id,
        &[
            entry(1, "c1", 10, 1000),
            entry(2, "c1", 12, 1000),
            entry(3, "c2", 14, 50),
        ],
    )
    .await
    .unwrap();
    tx.save_group_cursor(g.id, 3).await.unwrap();
    tx.commit().await.unwrap();

    let state = b
        .storage
        .group_state(&stream("s"), &group_name("g"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.group,
        riverlog::log::groups::GroupRecord {
            cursor: 3,
            ..g.clone()
        }
    );
    let consumers: Vec<_> = state
        .consumers
        .iter()
        .map(|c| (c.name.as_str(), c.pending, c.last_seen_at))
        .collect();
    assert_eq!(
        consumers,
        [("c1", 2, UnixMicros(20)), ("c2", 1, UnixMicros(15))]
    );
    assert_eq!(
        (state.pending, state.lowest_pending, state.lag),
        (3, Some(1), 2)
    );
    let listed = b.storage.list_group_states(&stream("s")).await.unwrap();
    let names: Vec<_> = listed.iter().map(|s| s.group.name.as_str()).collect();
    assert_eq!(names, ["a", "g"]);
    assert_eq!((listed[0].pending, listed[0].lag), (0, 0));
    let info = b.storage.get_stream(&stream("s")).await.unwrap().unwrap();
    assert_eq!(info.group_count, 2);

    let summary = b.storage.pending_summary(g.id).await.unwrap();
    assert_eq!(
        (summary.count, summary.lowest, summary.highest),
        (3, Some(1), Some(3))
    );
    assert_eq!(
        summary.consumers,
        [("c1".to_owned(), 2), ("c2".to_owned(), 1)]
    );
    let list = async |query: PendingQuery| {
        let listed = b.storage.list_pending(g.id, &query).await.unwrap();
        listed.iter().map(|e| e.sequence).collect::<Vec<_>>()
    };
    let page = PendingQuery {
        limit: 10,
        ..PendingQuery::default()
    };
    assert_eq!(list(page.clone()).await, [1, 2, 3]);
    assert_eq!(
        list(PendingQuery {
            consumer: Some("c2".into()),
            ..page.clone()
        })
        .await,
        [3]
    );
    assert_eq!(
        list(PendingQuery {
            after_sequence: 1,
            ..page.clone()
        })
        .await,
        [2, 3]
    );
    let before_12 = Some(UnixMicros(12));
    assert_eq!(
        list(PendingQuery {
            delivered_before: before_12,
            ..page.clone()
        })
        .await,
        [1, 2]
    );
    assert_eq!(list(PendingQuery { limit: 1, ..page }).await, [1]);

    let mut tx = b.begin().await;
    tx.delete_group(g.id).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        b.storage
            .group_state(&stream("s"), &group_name("g"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.storage.pending_summary(g.id).await.unwrap().count, 0);
}

pub async fn pending_entries_are_settled_deferred_and_released(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    b.append("s", &evs("e", 6)).await;
    let head = b.head("s").await;
    let mut tx = b.begin().await;
    let g = group_g(tx.as_mut(), &head, 1).await;
    tx.touch_consumers(g.id, &["c1", "c2"], UnixMicros(1))
        .await
        .unwrap();
    // Now is 100: 1 and 2 are in flight at c1, 3 and 4 are due (4 longest).
    tx.save_pending(
        g.id,
        &[
            entry(1, "c1", 90, 200),
            entry(2, "c1", 95, 300),
            entry(3, "c2", 50, 80),
            entry(4, "c2", 40, 60),
        ],
    )
    .await
    .unwrap();
    let now = UnixMicros(100);
    let seqs = |entries: Vec<PendingEntry>| entries.iter().map(|e| e.sequence).collect::<Vec<_>>();
    assert_eq!(tx.consumer_in_flight(g.id, "c1", now).await.unwrap(), 2);
    assert_eq!(tx.consumer_in_flight(g.id, "c2", now).await.unwrap(), 0);
    assert_eq!(
        seqs(tx.pending_of_consumer(g.id, "c1", 10).await.unwrap()),
        [1, 2]
    );
    assert_eq!(
        seqs(tx.pending_of_consumer(g.id, "c1", 1).await.unwrap()),
        [1]
    );
    assert_eq!(seqs(tx.due_pending(g.id, now, 10).await.unwrap()), [4, 3]);
    assert_eq!(seqs(tx.due_pending(g.id, now, 1).await.unwrap()), [4]);
    assert_eq!(
        seqs(tx.idle_pending(g.id, UnixMicros(50), 10).await.unwrap()),
        [3, 4]
    );
    assert_eq!(
        seqs(tx.pending_entries(g.id, &[2, 3, 9]).await.unwrap()),
        [2, 3]
    );
    assert_eq!(tx.next_due(g.id, now).await.unwrap(), Some(UnixMicros(200)));

    // Saving again replaces an entry.
    let redelivered = PendingEntry {
        delivery_count: 2,
        ..entry(4, "c1", 100, 400)
    };
    tx.save_pending(g.id, std::slice::from_ref(&redelivered))
        .await
        .unwrap();
    assert_eq!(tx.pending_entries(g.id, &[4]).await.unwrap(), [redelivered]);

    // Deferral only touches the holder's entries when a holder is named.
    assert!(
        tx.defer_pending(g.id, &[1, 2], Some("c2"), now)
            .await
            .unwrap()
            .is_empty()
    );
    let mut deferred = tx
        .defer_pending(g.id, &[1, 2, 9], Some("c1"), UnixMicros(500))
        .await
        .unwrap();
    deferred.sort_unstable();
    assert_eq!(deferred, [1, 2]);
    assert_eq!(
        tx.defer_pending(g.id, &[3], None, UnixMicros(500))
            .await
            .unwrap(),
        [3]
    );
    assert_eq!(tx.next_due(g.id, now).await.unwrap(), Some(UnixMicros(400)));

    let mut removed = tx.remove_pending(g.id, &[1, 99]).await.unwrap();
    removed.sort_unstable();
    assert_eq!(removed, [1]);
    // More sequences than one statement binds.
    let many: Vec<u64> = (100..1300).collect();
    assert!(tx.remove_pending(g.id, &many).await.unwrap().is_empty());

    // c1 holds 2 and 4: released, they are due now and c1 is gone.
    assert_eq!(tx.release_consumer(g.id, "c1", now).await.unwrap(), 2);
    assert_eq!(seqs(tx.due_pending(g.id, now, 10).await.unwrap()), [2, 4]);
    tx.commit().await.unwrap();
    let state = b
        .storage
        .group_state(&stream("s"), &group_name("g"))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = state.consumers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["c2"]);
    assert_eq!(state.pending, 3);
}

pub async fn checkpoints_belong_to_owners_and_list_by_literal_prefix(
    open: impl AsyncFn() -> Backend,
) {
    let b = open().await;
    b.append("s", &evs("e", 1)).await;
    let (shared, tenant) = (CheckpointOwner::shared(), CheckpointOwner::token("t1"));
    let mut tx = b.begin().await;
    for cp in [
        checkpoint(&shared, "app.a", Some("s"), 3),
        checkpoint(&shared, "app.a", None, 0),
        checkpoint(&tenant, "app.a", Some("s"), 5),
        checkpoint(&shared, "app_b", Some("s"), 1),
        checkpoint(&shared, "apple", Some("s"), 1),
        checkpoint(&shared, "appXa", Some("s"), 1),
    ] {
        tx.save_checkpoint(&cp).await.unwrap();
    }
    tx.commit().await.unwrap();
    let get = async |owner, on: Option<&str>| {
        let on = on.map(stream);
        b.storage
            .checkpoint(owner, &checkpoint_name("app.a"), on.as_ref())
            .await
            .unwrap()
    };
    assert_eq!(
        get(&shared, Some("s")).await,
        Some(checkpoint(&shared, "app.a", Some("s"), 3))
    );
    assert_eq!(
        get(&tenant, Some("s")).await,
        Some(checkpoint(&tenant, "app.a", Some("s"), 5))
    );
    assert_eq!(
        get(&shared, None).await,
        Some(checkpoint(&shared, "app.a", None, 0))
    );
    let stranger = CheckpointOwner::token("t2");
    assert_eq!(get(&stranger, Some("s")).await, None);

    // Saving again moves it.
    let mut tx = b.begin().await;
    tx.save_checkpoint(&checkpoint(&shared, "app.a", Some("s"), 4))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(get(&shared, Some("s")).await.map(|c| c.sequence), Some(4));

    let list = async |owner, prefix| {
        let listed = b.storage.list_checkpoints(owner, prefix).await.unwrap();
        listed
            .iter()
            .map(|c| {
                format!(
                    "{}@{}",
                    c.name,
                    c.stream.as_ref().map_or("", |s| s.as_str())
                )
            })
            .collect::<Vec<_>>()
    };
    // Byte order of names, the whole-subscription checkpoint first.
    assert_eq!(
        list(&shared, "").await,
        ["app.a@", "app.a@s", "appXa@s", "app_b@s", "apple@s"]
    );
    // `.` and `_` are literal characters of the prefix, not wildcards.
    assert_eq!(list(&shared, "app.").await, ["app.a@", "app.a@s"]);
    assert_eq!(list(&shared, "app_").await, ["app_b@s"]);
    assert_eq!(list(&tenant, "app").await, ["app.a@s"]);
}

pub async fn the_write_probe_changes_nothing_else(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    b.append("s", &evs("e", 2)).await;
    for filler in [vec![7u8; 64 << 10], Vec::new()] {
        let mut tx = b.begin().await;
        tx.write_probe(&filler).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(b.storage.head_position().await.unwrap(), 2);
    let info = b.storage.get_stream(&stream("s")).await.unwrap().unwrap();
    assert_eq!(info.event_count, 2);
    b.storage.ping().await.unwrap();
}

pub async fn a_rolled_back_or_dropped_transaction_leaves_no_trace(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let mut tx = b.begin().await;
    append_in(tx.as_mut(), "s", &evs("e", 3)).await;
    tx.rollback().await;
    // Dropped half-way, as a cancelled request would.
    let mut tx = b.begin().await;
    append_in(tx.as_mut(), "s", &evs("e", 3)).await;
    drop(tx);
    assert!(b.storage.get_stream(&stream("s")).await.unwrap().is_none());
    assert_eq!(b.storage.head_position().await.unwrap(), 0);
    // The next transaction starts clean on a working connection.
    let stored = b.append("s", &evs("e", 2)).await;
    assert_eq!(positions(&stored), [1, 2]);
}

pub async fn reads_see_only_committed_data(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    b.append("s", &evs("e", 1)).await;
    let mut tx = b.begin().await;
    append_in(tx.as_mut(), "s", &[ev("late", 5)]).await;
    let read = async || {
        b.storage
            .read_stream(&stream("s"), ReadFrom::End, Direction::Forward, &all(), 10)
            .await
            .unwrap()
    };
    assert_eq!(sequences(&read().await), [1]);
    assert_eq!(b.storage.head_position().await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(sequences(&read().await), [1, 2]);
    assert_eq!(b.storage.head_position().await.unwrap(), 2);
}

pub async fn writers_take_turns_so_positions_follow_commit_order(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    // A second opener of the database: another replica, or a second server
    // on the same SQLite file. Its writer must wait for ours.
    let other = b.second_opener().await;
    let mut first = b.begin().await;
    append_in(first.as_mut(), "s", &evs("first", 3)).await;
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let second = tokio::spawn(async move {
        started_tx.send(()).ok();
        let mut tx = other.begin_write().await.expect("second writer begins");
        let stored = append_in(tx.as_mut(), "t", &evs("second", 2)).await;
        tx.commit().await.expect("second commits");
        other.close().await;
        stored
    });
    started.await.unwrap();
    // Give the second writer every chance to run ahead; with the log-head
    // lock it cannot, whatever this pause.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !second.is_finished(),
        "the second writer waits for the first"
    );
    first.commit().await.unwrap();
    let second = within(second).await.unwrap();
    assert_eq!(positions(&second), [4, 5]);
    assert_eq!(sequences(&second), [1, 2]);
    let any = [StreamSelector::parse("*").unwrap()];
    let log = b.storage.read_log(0, &any, &all(), 10).await.unwrap();
    assert_eq!(positions(&log), [1, 2, 3, 4, 5]);
}

pub async fn commits_that_append_wake_the_commit_feed(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let feed = b.storage.commit_feed().await.unwrap();
    if !b.postgres {
        // One process owns a SQLite file; its writer feeds the hub itself.
        assert!(feed.is_none());
        return;
    }
    let mut feed = feed.expect("PostgreSQL announces commits");
    // The announcement itself, not the listener's periodic look: a raw
    // LISTEN on the channel sees the notification this commit sends.
    let mut raw = sqlx::postgres::PgListener::connect(b.url()).await.unwrap();
    raw.listen("riverlog_commits").await.unwrap();
    let other = b.second_opener().await;
    let mut tx = other.begin_write().await.unwrap();
    append_in(tx.as_mut(), "s", &evs("e", 1)).await;
    tx.commit().await.unwrap();
    // Other tests' schemas announce on the same channel: wait for ours.
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    within(async { while raw.recv().await.unwrap().payload() != schema {} }).await;
    tokio::time::timeout(PATIENCE, feed.recv())
        .await
        .expect("a wake-up arrives")
        .expect("the feed is open");
    other.close().await;
}

/// Names and `*` patterns whose matches riverlog defines (byte-wise, `*`
/// any run, everything else literal) and both databases must agree on.
const STREAM_NAMES: &[&str] = &[
    "orders",
    "orders.eu",
    "orders_eu",
    "ordersXeu",
    "Orders",
    "a/b:c-d",
    "a",
    "ab",
    "b_a",
];
const STREAM_PATTERNS: &[&str] = &[
    "orders*", "orders.*", "orders_*", "*eu", "*", "o*s*u", "orders", "*_*", "a*", "*a", "a*b*",
    "**", "O*",
];

pub async fn stream_patterns_match_as_riverlog_defines_them(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    for name in STREAM_NAMES {
        b.append(name, &[ev(&format!("in-{name}"), 1)]).await;
    }
    for pattern in STREAM_PATTERNS {
        let parsed = StreamPattern::parse(pattern).unwrap();
        let mut expected: Vec<_> = STREAM_NAMES
            .iter()
            .filter(|n| parsed.matches(n))
            .map(|n| (*n).to_owned())
            .collect();
        expected.sort();
        let listed = b
            .storage
            .list_streams(Some(&parsed), None, 100)
            .await
            .unwrap();
        let names: Vec<_> = listed.iter().map(|s| s.name.as_str().to_owned()).collect();
        assert_eq!(names, expected, "list_streams with {pattern:?}");
        let selected = b
            .storage
            .read_log(0, &[StreamSelector::Pattern(parsed.clone())], &all(), 100)
            .await
            .unwrap();
        let mut streams: Vec<_> = selected
            .iter()
            .map(|e| e.stream.as_str().to_owned())
            .collect();
        streams.sort();
        assert_eq!(streams, expected, "read_log with {pattern:?}");
    }
}

/// Event types with every metacharacter of GLOB and LIKE.
const EVENT_TYPES: &[&str] = &[
    "a%b",
    "a_b",
    "a?b",
    "a[b]",
    "a\\b",
    "axb",
    "A_B",
    "ünï.code",
    "a*b",
    "ab",
    "",
];
const TYPE_PATTERNS: &[&str] = &[
    "a%*", "a_*", "a?*", "a[*", "a\\*", "*b", "a*b", "*_*", "*%*", "*?*", "*[*", "*\\*", "*]",
    "ü*", "*.code", "a*", "*", "a_b", "a%b", "a[b]",
];

pub async fn filter_patterns_match_as_riverlog_defines_them(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    let events: Vec<Ev> = EVENT_TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| ev(&format!("e{i}"), i as i64 + 1).typed(t))
        .collect();
    let stored = b.append("s", &events).await;
    for pattern in TYPE_PATTERNS {
        let filter = types(&[pattern]);
        let expected: Vec<u64> = stored
            .iter()
            .filter(|e| {
                assert_eq!(
                    filter.matches(e),
                    glob_match(pattern, &e.event_type),
                    "the filter is the glob"
                );
                filter.matches(e)
            })
            .map(|e| e.sequence)
            .collect();
        let read = b
            .storage
            .read_stream(
                &stream("s"),
                ReadFrom::End,
                Direction::Forward,
                &filter,
                100,
            )
            .await
            .unwrap();
        assert_eq!(sequences(&read), expected, "type filter {pattern:?}");
        let any = [StreamSelector::parse("*").unwrap()];
        let logged = b.storage.read_log(0, &any, &filter, 100).await.unwrap();
        assert_eq!(
            sequences(&logged),
            expected,
            "type filter {pattern:?} across the log"
        );
    }
}

pub async fn batches_larger_than_one_statement_are_written_and_found_whole(
    open: impl AsyncFn() -> Backend,
) {
    let b = open().await;
    // More rows than one multi-row statement takes (500).
    let n = 1_200;
    let stored = b.append("big", &evs("e", n)).await;
    assert_eq!(positions(&stored), (1..=n as u64).collect::<Vec<_>>());
    let head = b.head("big").await;
    let id = head.id;
    let mut tx = b.begin().await;
    let keys: Vec<(i64, &str)> = stored.iter().map(|e| (id, e.id.as_str())).collect();
    assert_eq!(tx.find_events(&keys).await.unwrap().len(), n);
    let all_sequences: Vec<u64> = (1..=n as u64).collect();
    assert_eq!(
        tx.events_by_sequence(id, &all_sequences).await.unwrap(),
        stored
    );
    let g = group_g(tx.as_mut(), &head, 1).await;
    let entries: Vec<_> = all_sequences.iter().map(|&s| entry(s, "c", 1, 2)).collect();
    tx.save_pending(g.id, &entries).await.unwrap();
    assert_eq!(
        tx.pending_entries(g.id, &all_sequences).await.unwrap(),
        entries
    );
    let mut deferred = tx
        .defer_pending(g.id, &all_sequences, Some("c"), UnixMicros(9))
        .await
        .unwrap();
    deferred.sort_unstable();
    assert_eq!(deferred, all_sequences);
    let mut removed = tx.remove_pending(g.id, &all_sequences).await.unwrap();
    removed.sort_unstable();
    assert_eq!(removed, all_sequences);
    tx.commit().await.unwrap();
}

pub async fn stream_heads_are_read_and_saved_many_at_a_time(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    for name in ["c", "a", "b"] {
        b.create(name, Retention::default()).await;
    }
    let mut tx = b.begin().await;
    let names = [stream("c"), stream("missing"), stream("a"), stream("b")];
    let mut heads = tx.stream_heads(&names).await.unwrap();
    let found: Vec<_> = heads.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(found, ["a", "b", "c"], "the existing ones, in name order");
    for (i, head) in heads.iter_mut().enumerate() {
        head.last_sequence = 10 + i as u64;
        head.last_position = 20 + i as u64;
        head.event_count = 30 + i as u64;
        // One head keeps no append time: NULL and set values side by side.
        head.last_appended_at = (i != 1).then_some(UnixMicros(40 + i as i64));
    }
    tx.save_stream_heads(&heads).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = b.begin().await;
    let reread = tx.stream_heads(&names).await.unwrap();
    tx.rollback().await;
    assert_eq!(reread, heads);
}

pub async fn removed_ids_are_remembered_until_forgotten(open: impl AsyncFn() -> Backend) {
    let b = open().await;
    // e-1..e-4 at sequences 1..4, recorded at 1..4; "t" holds its own e-1.
    let stored = b.append("s", &evs("e", 4)).await;
    b.append("t", &evs("e", 1)).await;
    let (s, t) = (b.head("s").await, b.head("t").await);
    let keys = |ids: &[&'static str]| ids.iter().map(|&i| (s.id, i)).collect::<Vec<_>>();
    let remembered = async |keys: Vec<(i64, &str)>| {
        let mut tx = b.begin().await;
        let mut found = tx.find_removed_events(&keys).await.unwrap();
        tx.rollback().await;
        found.sort_by_key(|f| f.sequence);
        found
            .into_iter()
            .map(|f| (f.stream_id, f.id, f.sequence, f.position, f.recorded_at))
            .collect::<Vec<_>>()
    };
    let as_removed = |i: usize| {
        let e = &stored[i];
        (s.id, e.id.clone(), e.sequence, e.position, e.recorded_at)
    };

    let mut tx = b.begin().await;
    assert_eq!(tx.trim_through(s.id, 1).await.unwrap(), 1);
    let taken = tx.take(&s, TakeEnd::Newest, 1, usize::MAX).await.unwrap();
    assert_eq!(sequences(&taken), [4]);
    // Redrive's removal of dead-letter copies remembers nothing.
    assert_eq!(tx.remove_events(&s, &[3]).await.unwrap(), 1);
    tx.commit().await.unwrap();

    let mut all = keys(&["e-1", "e-2", "e-3", "e-4"]);
    all.push((t.id, "e-1"));
    assert_eq!(
        remembered(all.clone()).await,
        [as_removed(0), as_removed(3)]
    );

    // Forgetting goes by recorded time, per stream.
    let mut tx = b.begin().await;
    assert_eq!(
        tx.forget_removed_ids(t.id, UnixMicros(100)).await.unwrap(),
        0
    );
    assert_eq!(tx.forget_removed_ids(s.id, UnixMicros(2)).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(remembered(all.clone()).await, [as_removed(3)]);

    // An id still remembered, appended again and removed again, names its
    // newer event.
    let newer = b.append("s", &[ev("e-4", 9)]).await;
    let mut tx = b.begin().await;
    assert_eq!(tx.trim_through(s.id, newer[0].sequence).await.unwrap(), 2);
    tx.commit().await.unwrap();
    let found = remembered(keys(&["e-2", "e-4"])).await;
    assert_eq!(
        found,
        [
            as_removed(1),
            (
                s.id,
                "e-4".into(),
                newer[0].sequence,
                newer[0].position,
                newer[0].recorded_at
            )
        ]
    );

    // A deleted stream forgets all of its ids.
    let mut tx = b.begin().await;
    tx.delete_stream(s.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(remembered(all).await, []);
}
