//! Column lists and the mapping of result rows to records.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use super::driver::{SqlDb, get};
use crate::model::StorageError;
use crate::model::groups::{Checkpoint, CheckpointOwner, GroupRecord, PendingEntry};
use crate::model::names::{CheckpointName, GroupName, NameError, StreamName};
use crate::model::records::{Retention, RetentionPolicy, StoredEvent, StreamInfo, UnixMicros};
use crate::storage::{ExistingEvent, StreamHead};

/// `SELECT`s what [`stored_events`] decodes, `FROM events e`. The stream
/// name is a subquery by primary key rather than a join: with no join the
/// planner has one table to order, so it walks an index of `events` in
/// order instead of joining first and sorting after (which PostgreSQL
/// chose whenever it expected few rows).
pub(super) const EVENTS_SELECT: &str = "SELECT e.stream_id, \
     (SELECT name FROM streams WHERE id = e.stream_id), e.sequence, e.position, e.recorded_at, \
     e.event_id, e.type, e.source, e.subject, e.payload FROM events e";

/// `SELECT`s what [`stream_info`] decodes, `FROM streams s`.
pub(super) const STREAM_INFO_SELECT: &str = "SELECT s.id, s.name, s.created_at, s.last_sequence, \
     s.last_position, s.event_count, s.last_appended_at, s.max_events, s.max_age_us, s.ttl_us, \
     COALESCE((SELECT MIN(e.sequence) FROM events e WHERE e.stream_id = s.id), 0) AS first_sequence, \
     (SELECT COUNT(*) FROM groups g WHERE g.stream_id = s.id) AS group_count, \
     s.retention_policy, s.dedup_window_us \
     FROM streams s";

/// The columns [`stream_head`] decodes, of `streams`.
pub(super) const STREAM_HEAD_COLUMNS: &str = "id, name, last_sequence, last_position, \
     event_count, created_at, last_appended_at, retention_policy, dedup_window_us";

/// The columns [`group_record`] decodes, of `groups g`.
pub(super) const GROUP_COLUMNS: &str = "g.id, g.stream_id, g.name, g.ack_timeout_us, g.max_deliveries, \
     g.dead_letter_stream, g.cursor, g.created_at";

/// The columns [`pending_entry`] decodes, of `group_pending`.
pub(super) const PENDING_COLUMNS: &str =
    "sequence, consumer, delivery_count, delivered_at, deliverable_at";

/// The columns [`checkpoint`] decodes, of `checkpoints`.
pub(super) const CHECKPOINT_COLUMNS: &str = "name, stream, sequence, position, committed_at, owner";

/// The columns [`existing_event`] decodes, of `events e`.
pub(super) const EXISTING_EVENT_COLUMNS: &str =
    "e.stream_id, e.event_id, e.sequence, e.position, e.recorded_at";

/// Sequences, positions and counts are `u64` in riverlog and `BIGINT` in
/// the database; values beyond `i64::MAX` cannot occur and saturate.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The other way: a negative value cannot occur and reads as 0.
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A stored count that must fit a `u32` (deliveries, groups).
fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A duration column in microseconds.
pub(super) fn micros_to_duration(v: Option<i64>) -> Option<Duration> {
    v.map(|us| Duration::from_micros(to_u64(us)))
}

/// A duration as a microseconds column.
pub(super) fn duration_to_micros(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A stored stream name, parsed: one that does not parse means the
/// database was changed behind riverlog's back.
pub(crate) fn parse_name(name: &str) -> Result<StreamName, StorageError> {
    StreamName::parse(name)
        .map_err(|e| StorageError::Failure(format!("stored stream name {name:?} is invalid: {e}")))
}

/// A stored group name, parsed.
pub(crate) fn parse_group_name(name: &str) -> Result<GroupName, StorageError> {
    parse_label(name, GroupName::parse)
}

/// A stored group or checkpoint name, parsed.
fn parse_label<N>(
    label: &str,
    parse: impl FnOnce(&str) -> Result<N, NameError>,
) -> Result<N, StorageError> {
    parse(label)
        .map_err(|e| StorageError::Failure(format!("stored name {label:?} is invalid: {e}")))
}

fn str_at<DB: SqlDb>(row: &DB::Row, i: usize) -> Result<&str, StorageError> {
    DB::get_str(row, i).map_err(DB::classify)
}

/// A row selected with [`STREAM_INFO_SELECT`].
pub(super) fn stream_info<DB: SqlDb>(row: &DB::Row) -> Result<StreamInfo, StorageError> {
    Ok(StreamInfo {
        name: parse_name(str_at::<DB>(row, 1)?)?,
        created_at: UnixMicros(get::<DB, _>(row, 2)?),
        last_sequence: to_u64(get::<DB, _>(row, 3)?),
        last_position: to_u64(get::<DB, _>(row, 4)?),
        event_count: to_u64(get::<DB, _>(row, 5)?),
        last_appended_at: get::<DB, Option<i64>>(row, 6)?.map(UnixMicros),
        retention: Retention {
            max_events: get::<DB, Option<i64>>(row, 7)?.map(to_u64),
            max_age: micros_to_duration(get::<DB, _>(row, 8)?),
            ttl: micros_to_duration(get::<DB, _>(row, 9)?),
            policy: parse_policy(str_at::<DB>(row, 12)?)?,
            dedup_window: micros_to_duration(get::<DB, _>(row, 13)?),
        },
        first_sequence: to_u64(get::<DB, _>(row, 10)?),
        group_count: to_u32(get::<DB, _>(row, 11)?),
    })
}

/// Rows selected with [`EVENTS_SELECT`], parsing each distinct stream name
/// once.
pub(crate) fn stored_events<DB: SqlDb>(
    rows: Vec<DB::Row>,
) -> Result<Vec<StoredEvent>, StorageError> {
    let mut names: HashMap<i64, StreamName> = HashMap::new();
    rows.iter()
        .map(|row| {
            let stream_id: i64 = get::<DB, _>(row, 0)?;
            let stream = match names.get(&stream_id) {
                Some(n) => n.clone(),
                None => {
                    let n = parse_name(str_at::<DB>(row, 1)?)?;
                    names.insert(stream_id, n.clone());
                    n
                }
            };
            Ok(StoredEvent {
                stream,
                sequence: to_u64(get::<DB, _>(row, 2)?),
                position: to_u64(get::<DB, _>(row, 3)?),
                recorded_at: UnixMicros(get::<DB, _>(row, 4)?),
                id: get::<DB, _>(row, 5)?,
                event_type: get::<DB, _>(row, 6)?,
                source: get::<DB, _>(row, 7)?,
                subject: get::<DB, _>(row, 8)?,
                payload: Bytes::from(get::<DB, Vec<u8>>(row, 9)?),
            })
        })
        .collect()
}

/// A row selected with [`STREAM_HEAD_COLUMNS`].
pub(super) fn stream_head<DB: SqlDb>(row: &DB::Row) -> Result<StreamHead, StorageError> {
    Ok(StreamHead {
        id: get::<DB, _>(row, 0)?,
        name: parse_name(str_at::<DB>(row, 1)?)?,
        last_sequence: to_u64(get::<DB, _>(row, 2)?),
        last_position: to_u64(get::<DB, _>(row, 3)?),
        event_count: to_u64(get::<DB, _>(row, 4)?),
        created_at: UnixMicros(get::<DB, _>(row, 5)?),
        last_appended_at: get::<DB, Option<i64>>(row, 6)?.map(UnixMicros),
        policy: parse_policy(str_at::<DB>(row, 7)?)?,
        dedup_window: micros_to_duration(get::<DB, _>(row, 8)?),
    })
}

/// A stored retention policy (the migration's CHECK admits only these).
fn parse_policy(policy: &str) -> Result<RetentionPolicy, StorageError> {
    policy.parse().map_err(StorageError::Failure)
}

/// A row selected with [`GROUP_COLUMNS`], of `stream`.
pub(super) fn group_record<DB: SqlDb>(
    row: &DB::Row,
    stream: StreamName,
) -> Result<GroupRecord, StorageError> {
    Ok(GroupRecord {
        id: get::<DB, _>(row, 0)?,
        stream_id: get::<DB, _>(row, 1)?,
        stream,
        name: parse_label(str_at::<DB>(row, 2)?, GroupName::parse)?,
        ack_timeout: Duration::from_micros(to_u64(get::<DB, _>(row, 3)?)),
        max_deliveries: to_u32(get::<DB, _>(row, 4)?),
        dead_letter_stream: parse_name(str_at::<DB>(row, 5)?)?,
        cursor: to_u64(get::<DB, _>(row, 6)?),
        created_at: UnixMicros(get::<DB, _>(row, 7)?),
    })
}

/// A row selected with [`PENDING_COLUMNS`].
pub(super) fn pending_entry<DB: SqlDb>(row: &DB::Row) -> Result<PendingEntry, StorageError> {
    Ok(PendingEntry {
        sequence: to_u64(get::<DB, _>(row, 0)?),
        consumer: get::<DB, _>(row, 1)?,
        delivery_count: to_u32(get::<DB, _>(row, 2)?),
        delivered_at: UnixMicros(get::<DB, _>(row, 3)?),
        deliverable_at: UnixMicros(get::<DB, _>(row, 4)?),
    })
}

/// A row selected with [`CHECKPOINT_COLUMNS`]; the empty stream stands for
/// a checkpoint of a whole subscription.
pub(super) fn checkpoint<DB: SqlDb>(row: &DB::Row) -> Result<Checkpoint, StorageError> {
    let stream = str_at::<DB>(row, 1)?;
    Ok(Checkpoint {
        name: parse_label(str_at::<DB>(row, 0)?, CheckpointName::parse)?,
        stream: if stream.is_empty() {
            None
        } else {
            Some(parse_name(stream)?)
        },
        sequence: to_u64(get::<DB, _>(row, 2)?),
        position: to_u64(get::<DB, _>(row, 3)?),
        committed_at: UnixMicros(get::<DB, _>(row, 4)?),
        owner: CheckpointOwner::token(str_at::<DB>(row, 5)?),
    })
}

/// A row selected with [`EXISTING_EVENT_COLUMNS`].
pub(crate) fn existing_event<DB: SqlDb>(row: &DB::Row) -> Result<ExistingEvent, StorageError> {
    Ok(ExistingEvent {
        stream_id: get::<DB, _>(row, 0)?,
        id: get::<DB, _>(row, 1)?,
        sequence: to_u64(get::<DB, _>(row, 2)?),
        position: to_u64(get::<DB, _>(row, 3)?),
        recorded_at: UnixMicros(get::<DB, _>(row, 4)?),
    })
}
