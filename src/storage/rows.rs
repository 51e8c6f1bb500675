//! What the SQL backends share: column lists, value conversions, and the
//! mapping of result rows to records (a macro, instantiated per backend
//! row type, so the two backends cannot drift apart).

use std::time::Duration;

use super::StorageError;
use crate::log::names::{Label, StreamName};

pub(super) const EVENT_COLUMNS: &str = "e.stream_id, s.name, e.sequence, e.position, e.recorded_at, \
     e.event_id, e.type, e.source, e.subject, e.payload";

pub(super) const STREAM_INFO_SELECT: &str = "SELECT s.id, s.name, s.created_at, s.last_sequence, \
     s.last_position, s.event_count, s.last_appended_at, s.max_events, s.max_age_us, s.ttl_us, \
     COALESCE((SELECT MIN(e.sequence) FROM events e WHERE e.stream_id = s.id), 0) AS first_sequence, \
     (SELECT COUNT(*) FROM groups g WHERE g.stream_id = s.id) AS group_count \
     FROM streams s";

pub(super) const GROUP_COLUMNS: &str = "g.id, g.stream_id, g.name, g.ack_timeout_us, g.max_deliveries, \
     g.dead_letter_stream, g.cursor, g.created_at";

pub(super) const PENDING_COLUMNS: &str =
    "sequence, consumer, delivery_count, delivered_at, deliverable_at";

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn micros_to_duration(v: Option<i64>) -> Option<Duration> {
    v.map(|us| Duration::from_micros(to_u64(us)))
}

pub(super) fn duration_to_micros(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) fn parse_name(name: &str) -> Result<StreamName, StorageError> {
    StreamName::parse(name)
        .map_err(|e| StorageError::Failure(format!("stored stream name {name:?} is invalid: {e}")))
}

pub(super) fn parse_label(label: &str) -> Result<Label, StorageError> {
    Label::parse(label)
        .map_err(|e| StorageError::Failure(format!("stored name {label:?} is invalid: {e}")))
}

/// Defines `stream_info`, `stored_events`, `group_record`, `pending_entry`
/// and `checkpoint_row` for a backend's row type. Expects `map_err` (the
/// backend's error translation) in scope.
macro_rules! row_mappers {
    ($row:ty) => {
        fn stream_info(row: &$row) -> Result<StreamInfo, StorageError> {
            let name: String = row.try_get("name").map_err(map_err)?;
            Ok(StreamInfo {
                name: parse_name(&name)?,
                event_count: to_u64(row.try_get("event_count").map_err(map_err)?),
                first_sequence: to_u64(row.try_get("first_sequence").map_err(map_err)?),
                last_sequence: to_u64(row.try_get("last_sequence").map_err(map_err)?),
                last_position: to_u64(row.try_get("last_position").map_err(map_err)?),
                created_at: UnixMicros(row.try_get("created_at").map_err(map_err)?),
                last_appended_at: row
                    .try_get::<Option<i64>, _>("last_appended_at")
                    .map_err(map_err)?
                    .map(UnixMicros),
                retention: Retention {
                    max_events: row
                        .try_get::<Option<i64>, _>("max_events")
                        .map_err(map_err)?
                        .map(to_u64),
                    max_age: micros_to_duration(row.try_get("max_age_us").map_err(map_err)?),
                    ttl: micros_to_duration(row.try_get("ttl_us").map_err(map_err)?),
                },
                group_count: u32::try_from(row.try_get::<i64, _>("group_count").map_err(map_err)?)
                    .unwrap_or(u32::MAX),
            })
        }

        /// Decodes event rows, parsing each distinct stream name once.
        fn stored_events(rows: Vec<$row>) -> Result<Vec<StoredEvent>, StorageError> {
            let mut names: HashMap<i64, StreamName> = HashMap::new();
            rows.into_iter()
                .map(|row| {
                    let stream_id: i64 = row.try_get(0).map_err(map_err)?;
                    let stream = match names.get(&stream_id) {
                        Some(n) => n.clone(),
                        None => {
                            let n = parse_name(row.try_get::<&str, _>(1).map_err(map_err)?)?;
                            names.insert(stream_id, n.clone());
                            n
                        }
                    };
                    let payload: Vec<u8> = row.try_get(9).map_err(map_err)?;
                    Ok(StoredEvent {
                        stream,
                        sequence: to_u64(row.try_get(2).map_err(map_err)?),
                        position: to_u64(row.try_get(3).map_err(map_err)?),
                        recorded_at: UnixMicros(row.try_get(4).map_err(map_err)?),
                        id: row.try_get(5).map_err(map_err)?,
                        event_type: row.try_get(6).map_err(map_err)?,
                        source: row.try_get(7).map_err(map_err)?,
                        subject: row.try_get(8).map_err(map_err)?,
                        payload: Bytes::from(payload),
                    })
                })
                .collect()
        }

        /// A group row (selected with `GROUP_COLUMNS`) of `stream`.
        fn group_record(row: &$row, stream: StreamName) -> Result<GroupRecord, StorageError> {
            let dead_letter: String = row.try_get(5).map_err(map_err)?;
            Ok(GroupRecord {
                id: row.try_get(0).map_err(map_err)?,
                stream_id: row.try_get(1).map_err(map_err)?,
                stream,
                name: parse_label(row.try_get::<&str, _>(2).map_err(map_err)?)?,
                ack_timeout: Duration::from_micros(to_u64(row.try_get(3).map_err(map_err)?)),
                max_deliveries: u32::try_from(row.try_get::<i64, _>(4).map_err(map_err)?)
                    .unwrap_or(u32::MAX),
                dead_letter_stream: parse_name(&dead_letter)?,
                cursor: to_u64(row.try_get(6).map_err(map_err)?),
                created_at: UnixMicros(row.try_get(7).map_err(map_err)?),
            })
        }

        /// A pending row (selected with `PENDING_COLUMNS`).
        fn pending_entry(row: &$row) -> Result<PendingEntry, StorageError> {
            Ok(PendingEntry {
                sequence: to_u64(row.try_get(0).map_err(map_err)?),
                consumer: row.try_get(1).map_err(map_err)?,
                delivery_count: u32::try_from(row.try_get::<i64, _>(2).map_err(map_err)?)
                    .unwrap_or(u32::MAX),
                delivered_at: UnixMicros(row.try_get(3).map_err(map_err)?),
                deliverable_at: UnixMicros(row.try_get(4).map_err(map_err)?),
            })
        }

        fn checkpoint_row(row: &$row) -> Result<Checkpoint, StorageError> {
            let stream: String = row.try_get(1).map_err(map_err)?;
            let owner: &str = row.try_get(5).map_err(map_err)?;
            Ok(Checkpoint {
                owner: CheckpointOwner::token(owner),
                name: parse_label(row.try_get::<&str, _>(0).map_err(map_err)?)?,
                stream: if stream.is_empty() {
                    None
                } else {
                    Some(parse_name(&stream)?)
                },
                sequence: to_u64(row.try_get(2).map_err(map_err)?),
                position: to_u64(row.try_get(3).map_err(map_err)?),
                committed_at: UnixMicros(row.try_get(4).map_err(map_err)?),
            })
        }
    };
}

pub(super) use row_mappers;
