//! The storage contract and its backends.
//!
//! The domain (`crate::log`) talks to storage only through [`Storage`] and
//! [`WriteTx`]; storage imports nothing of the domain, only
//! [`crate::model`]. The SQL is written once in `sql/`; `sqlite.rs` and
//! `postgres.rs` hold what each database does its own way and how it is
//! opened. Backends translate their own errors into [`StorageError`] at
//! this boundary (`errors.rs`), so no database error text leaks further.
//!
//! # Concurrency contract
//! - All mutations happen inside a [`WriteTx`]; nothing is visible to readers
//!   before [`WriteTx::commit`] returns, and a dropped transaction leaves no
//!   trace. A commit that returns `Ok` is durable.
//! - From [`Storage::begin_write`] to commit the transaction holds the
//!   log-head lock: concurrent write transactions (other processes sharing
//!   the database) wait for it, so positions are assigned in commit order.
//! - [`WriteTx::stream_heads`] locks the streams' rows for the transaction.
//! - Reads see only committed data, each call a consistent snapshot.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::filter::EventFilter;
use crate::model::groups::{
    Checkpoint, CheckpointOwner, GroupRecord, GroupSettings, GroupState, PendingEntry,
    PendingQuery, PendingSummary,
};
use crate::model::names::{CheckpointName, GroupName, StreamName, StreamPattern, StreamSelector};
use crate::model::records::{
    Position, Retention, RetentionPolicy, Sequence, StoredEvent, StreamInfo, UnixMicros,
};

use crate::model::StorageError;
use crate::model::query::{Direction, ReadFrom, TakeEnd, TrimUntil};

pub mod errors;
pub mod postgres;
mod sql;
pub mod sqlite;
mod sqlite_events;
#[doc(hidden)]
pub mod testing;

/// Wake-ups from [`Storage::commit_feed`]: each message means "new events may
/// have been committed"; several commits may share one.
pub type CommitFeed = tokio::sync::mpsc::Receiver<()>;

/// Wake-ups for groups whose work changed in a commit of any process
/// sharing this database (an ack freeing credit, a nack, a seek, a redrive,
/// a dead-lettering): each message names (stream, group).
pub type GroupFeed = tokio::sync::mpsc::Receiver<(StreamName, GroupName)>;

/// The write-side state of a stream, as locked by a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    /// Backend row id.
    pub id: i64,
    /// Stream name.
    pub name: StreamName,
    /// Last sequence assigned, 0 if none.
    pub last_sequence: Sequence,
    /// Position of the last appended event, 0 if none.
    pub last_position: Position,
    /// Retained events.
    pub event_count: u64,
    /// When the stream was created.
    pub created_at: UnixMicros,
    /// Time of the last append.
    pub last_appended_at: Option<UnixMicros>,
    /// The stream's retention policy.
    pub policy: RetentionPolicy,
    /// The stream's own dedup window (`None`: the server's).
    pub dedup_window: Option<Duration>,
}

/// An event row to insert.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Row id of the stream.
    pub stream_id: i64,
    /// The event, with sequence, position and time assigned.
    pub event: StoredEvent,
}

/// An event the stream already holds, found by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingEvent {
    /// Row id of its stream.
    pub stream_id: i64,
    /// CloudEvent id.
    pub id: String,
    /// Its sequence.
    pub sequence: Sequence,
    /// Its position.
    pub position: Position,
    /// When it was recorded.
    pub recorded_at: UnixMicros,
}

/// Read access to the log, shared by every request.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Starts a write transaction.
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StorageError>;

    /// Describes one stream.
    async fn get_stream(&self, name: &StreamName) -> Result<Option<StreamInfo>, StorageError>;

    /// Streams in name order, after `after`, optionally matching a pattern.
    async fn list_streams(
        &self,
        pattern: Option<&StreamPattern>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StreamInfo>, StorageError>;

    /// Up to `limit` events of one stream matching `filter`, in `direction`.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError>;

    /// Up to `limit` events with a position above `after` in any selected
    /// stream, matching `filter`, in position order.
    async fn read_log(
        &self,
        after: Position,
        selectors: &[StreamSelector],
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError>;

    /// The highest position ever assigned (0 for an empty log).
    async fn head_position(&self) -> Result<Position, StorageError>;

    /// The highest retained position recorded before `time` (0 if none):
    /// a subscription starting at `time` resumes after it.
    async fn position_before_time(&self, time: UnixMicros) -> Result<Position, StorageError>;

    /// The highest retained position of `stream` whose sequence is below
    /// `sequence` (0 if none).
    async fn position_before_sequence(
        &self,
        stream: &StreamName,
        sequence: Sequence,
    ) -> Result<Position, StorageError>;

    /// The latest `recorded_at` in the log, to keep the clock monotonic
    /// across restarts.
    async fn last_recorded_at(&self) -> Result<Option<UnixMicros>, StorageError>;

    /// A group with its consumers, pending totals and lag.
    async fn group_state(
        &self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<Option<GroupState>, StorageError>;

    /// Every group of a stream, in name order.
    async fn list_group_states(&self, stream: &StreamName)
    -> Result<Vec<GroupState>, StorageError>;

    /// The groups (stream, group) holding an entry that is due at `now`
    /// but has used up its deliveries: work for the dead-letter pass.
    async fn groups_with_exhausted_entries(
        &self,
        now: UnixMicros,
    ) -> Result<Vec<(StreamName, GroupName)>, StorageError>;

    /// Which of `positions` hold a retained event of `stream`.
    async fn retained_positions(
        &self,
        stream: &StreamName,
        positions: &[Position],
    ) -> Result<Vec<Position>, StorageError>;

    /// Totals of a group's pending entries.
    async fn pending_summary(&self, group_id: i64) -> Result<PendingSummary, StorageError>;

    /// A group's pending entries in sequence order.
    async fn list_pending(
        &self,
        group_id: i64,
        query: &PendingQuery,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// A committed checkpoint of `owner`.
    async fn checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &CheckpointName,
        stream: Option<&StreamName>,
    ) -> Result<Option<Checkpoint>, StorageError>;

    /// `owner`'s checkpoints whose names start with `prefix`, by name then
    /// stream.
    async fn list_checkpoints(
        &self,
        owner: &CheckpointOwner,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, StorageError>;

    /// Wake-ups for commits that appended events, made by any process
    /// sharing this database, this one included; `None` when only this
    /// process writes (SQLite), whose writer then feeds the hub itself.
    async fn commit_feed(&self) -> Result<Option<CommitFeed>, StorageError>;

    /// Wake-ups for groups whose work changed in a commit of another
    /// process sharing this database; `None` when only this process writes
    /// (SQLite). Available once, after [`Storage::commit_feed`].
    async fn group_feed(&self) -> Option<GroupFeed>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StorageError>;

    /// Closes every connection, waiting for them to finish.
    async fn close(&self);
}

/// One write transaction. It ends with [`WriteTx::commit`] or
/// [`WriteTx::rollback`]; dropping it without either also rolls everything
/// back, but by closing its connection, which then has to be reopened.
#[async_trait]
pub trait WriteTx: Send {
    /// The highest position assigned so far (the transaction holds the
    /// log-head lock since it began).
    async fn log_head(&mut self) -> Result<Position, StorageError>;

    /// The `recorded_at` of the last append by any writer sharing the
    /// database: the floor for this transaction's, so recording times never
    /// go backwards along positions even across replicas and their clocks.
    async fn recorded_floor(&mut self) -> Result<UnixMicros, StorageError>;

    /// Stores the new highest position and the time it was recorded at.
    async fn save_log_head(
        &mut self,
        head: Position,
        recorded_at: UnixMicros,
    ) -> Result<(), StorageError>;

    /// The heads of those of `names` that exist, locked for this
    /// transaction. One call serves a whole batch: the statements a
    /// transaction runs do not grow with the number of callers in it.
    async fn stream_heads(&mut self, names: &[StreamName])
    -> Result<Vec<StreamHead>, StorageError>;

    /// How many streams exist.
    async fn count_streams(&mut self) -> Result<u64, StorageError>;

    /// Creates a stream that does not exist.
    async fn create_stream(
        &mut self,
        name: &StreamName,
        retention: &Retention,
        now: UnixMicros,
    ) -> Result<StreamHead, StorageError>;

    /// Stores stream heads' counters.
    async fn save_stream_heads(&mut self, heads: &[StreamHead]) -> Result<(), StorageError>;

    /// The events that exist among `keys` (stream row id, event id).
    async fn find_events(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<ExistingEvent>, StorageError>;

    /// The removed events whose ids are remembered among `keys` (stream
    /// row id, event id), as they were when removed: trims, retention and
    /// takes remember ids so a producer's retry still finds its original.
    /// Entries past a dedup window may still be here until
    /// [`forget_removed_ids`](Self::forget_removed_ids) runs; the caller
    /// applies the window.
    async fn find_removed_events(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<ExistingEvent>, StorageError>;

    /// Forgets a stream's removed ids of events recorded before `before`;
    /// returns how many were forgotten.
    async fn forget_removed_ids(
        &mut self,
        stream_id: i64,
        before: UnixMicros,
    ) -> Result<u64, StorageError>;

    /// Inserts events.
    async fn insert_events(&mut self, rows: &[EventRow]) -> Result<(), StorageError>;

    /// Deletes a stream with its events, groups, checkpoints and
    /// remembered ids; returns how many events went.
    async fn delete_stream(&mut self, stream_id: i64) -> Result<u64, StorageError>;

    /// Removes a stream's events up to sequence `last` (a trim: from the
    /// front), remembering their ids; returns how many went.
    async fn trim_through(&mut self, stream_id: i64, last: Sequence) -> Result<u64, StorageError>;

    /// The highest sequence a trim `until` removes now: trims remove from
    /// the front, so exactly the retained events up to it. `None` when it
    /// removes nothing.
    async fn trim_cutoff(
        &mut self,
        stream_id: i64,
        until: TrimUntil,
    ) -> Result<Option<Sequence>, StorageError>;

    /// The groups of a stream.
    async fn stream_groups(
        &mut self,
        stream: &StreamHead,
    ) -> Result<Vec<GroupRecord>, StorageError>;

    /// A group's pending entries with a sequence up to `last`, in sequence
    /// order.
    async fn pending_through(
        &mut self,
        group_id: i64,
        last: Sequence,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// The lowest sequence pending in a group, if any.
    async fn lowest_pending(&mut self, group_id: i64) -> Result<Option<Sequence>, StorageError>;

    /// Removes and returns up to `limit` events from one end of a stream,
    /// stopping before the payloads exceed `max_bytes` (but taking at least
    /// one event), remembering their ids.
    async fn take(
        &mut self,
        stream: &StreamHead,
        end: TakeEnd,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StorageError>;

    /// A group of a stream.
    async fn group(
        &mut self,
        stream: &StreamHead,
        name: &GroupName,
    ) -> Result<Option<GroupRecord>, StorageError>;

    /// Creates a group with its cursor.
    async fn create_group(
        &mut self,
        stream: &StreamHead,
        name: &GroupName,
        settings: &GroupSettings,
        cursor: Sequence,
        now: UnixMicros,
    ) -> Result<GroupRecord, StorageError>;

    /// Deletes a group with its consumers and pending entries.
    async fn delete_group(&mut self, group_id: i64) -> Result<(), StorageError>;

    /// Moves a group's cursor.
    async fn save_group_cursor(
        &mut self,
        group_id: i64,
        cursor: Sequence,
    ) -> Result<(), StorageError>;

    /// The sequence of a stream's newest retained event recorded before
    /// `time` (0 if none): a group moved there goes on from the first
    /// event recorded at or after `time`.
    async fn sequence_before_time(
        &mut self,
        stream_id: i64,
        time: UnixMicros,
    ) -> Result<Sequence, StorageError>;

    /// Removes every pending entry of a group; returns how many went.
    async fn clear_pending(&mut self, group_id: i64) -> Result<u64, StorageError>;

    /// Records that consumers (distinct names) were active now, creating
    /// those that are new.
    async fn touch_consumers(
        &mut self,
        group_id: i64,
        consumers: &[&str],
        now: UnixMicros,
    ) -> Result<(), StorageError>;

    /// Removes a consumer; its pending entries become due at `now`. Returns
    /// how many it held.
    async fn release_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError>;

    /// How many entries a consumer holds that are not due yet (entries
    /// past their ack timeout are up for redelivery and no longer count).
    async fn consumer_in_flight(
        &mut self,
        group_id: i64,
        consumer: &str,
        now: UnixMicros,
    ) -> Result<u64, StorageError>;

    /// A consumer's own entries, in sequence order.
    async fn pending_of_consumer(
        &mut self,
        group_id: i64,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// Entries due at `now`, longest-due first.
    async fn due_pending(
        &mut self,
        group_id: i64,
        now: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// Up to `limit` entries due at `now` that were delivered at least
    /// `max_deliveries` times (any of them when there are more), in
    /// sequence order.
    async fn exhausted_pending(
        &mut self,
        group_id: i64,
        max_deliveries: u32,
        now: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// Entries delivered at or before `delivered_before`, in sequence order.
    async fn idle_pending(
        &mut self,
        group_id: i64,
        delivered_before: UnixMicros,
        limit: u32,
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// The pending entries among `sequences`.
    async fn pending_entries(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<PendingEntry>, StorageError>;

    /// Inserts or replaces pending entries.
    async fn save_pending(
        &mut self,
        group_id: i64,
        entries: &[PendingEntry],
    ) -> Result<(), StorageError>;

    /// Removes pending entries; returns the sequences that were pending.
    async fn remove_pending(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<Sequence>, StorageError>;

    /// Makes pending entries due at `at` (only those `holder` holds, when
    /// given); returns the sequences changed.
    async fn defer_pending(
        &mut self,
        group_id: i64,
        sequences: &[Sequence],
        holder: Option<&str>,
        at: UnixMicros,
    ) -> Result<Vec<Sequence>, StorageError>;

    /// The earliest time after `now` at which an entry becomes due.
    async fn next_due(
        &mut self,
        group_id: i64,
        now: UnixMicros,
    ) -> Result<Option<UnixMicros>, StorageError>;

    /// The retained events of a stream among `sequences`.
    async fn events_by_sequence(
        &mut self,
        stream_id: i64,
        sequences: &[Sequence],
    ) -> Result<Vec<StoredEvent>, StorageError>;

    /// The sequences of a stream's retained events at these positions, as
    /// (position, sequence); positions not retained in it are left out.
    async fn sequences_at_positions(
        &mut self,
        stream_id: i64,
        positions: &[Position],
    ) -> Result<Vec<(Position, Sequence)>, StorageError>;

    /// Removes these events of a stream (any of its sequences), recording
    /// the holes they leave; returns how many were removed. Their ids are
    /// not remembered: redrive removes dead-letter copies this way, whose
    /// ids are derived from the origin, and the same event dead-lettered
    /// again must not be taken for a retry.
    async fn remove_events(
        &mut self,
        stream: &StreamHead,
        sequences: &[Sequence],
    ) -> Result<u64, StorageError>;

    /// Up to `limit` events of a stream with a sequence above `after`.
    async fn events_after(
        &mut self,
        stream_id: i64,
        after: Sequence,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError>;

    /// Replaces the health probe's scratch row with `filler` (empty to
    /// free its space): a write of that many bytes that changes nothing
    /// else.
    async fn write_probe(&mut self, filler: &[u8]) -> Result<(), StorageError>;

    /// Stores a checkpoint, replacing the previous one of that name.
    async fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StorageError>;

    /// Tells the other processes sharing the database, if the transaction
    /// commits, that the work of this group changed: their consumers of it
    /// look again.
    fn announce_group(&mut self, stream: &StreamName, group: &GroupName);

    /// Makes everything durable and visible. When it fails, nothing of the
    /// transaction is visible and the connection was rolled back or
    /// replaced, so the next transaction starts clean.
    async fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Abandons the transaction after an error: rolls back, or replaces the
    /// connection when even that fails. Never fails itself; the next
    /// transaction starts on a connection outside any transaction.
    async fn rollback(self: Box<Self>);
}

/// Backend-independent options.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// SQLite: fsync on every commit (`synchronous=FULL`) rather than only
    /// at WAL checkpoints (`NORMAL`, which may lose the last commits on
    /// power loss but not on a process crash).
    pub sqlite_sync_full: bool,
    /// Connections used for reads.
    pub read_connections: u32,
    /// PostgreSQL: longest a statement may run before the server cancels
    /// it (`statement_timeout`); `None` for no limit.
    pub statement_timeout: Option<std::time::Duration>,
    /// PostgreSQL: attempts to connect at start-up before giving up, with
    /// growing pauses (a database that starts after riverlog is normal in
    /// orchestrated deployments).
    pub connect_attempts: u32,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            sqlite_sync_full: true,
            read_connections: 4,
            statement_timeout: Some(std::time::Duration::from_secs(30)),
            connect_attempts: 10,
        }
    }
}

/// Opens the storage a database URL names: `postgres://...` (or
/// `postgresql://`) selects PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a
/// bare file path select SQLite.
pub async fn open(url: &str, options: &StorageOptions) -> Result<Arc<dyn Storage>, StorageError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let storage = postgres::PostgresStorage::open(url, options).await?;
        return Ok(Arc::new(storage));
    }
    let storage = sqlite::SqliteStorage::open(url, options).await?;
    Ok(Arc::new(storage))
}
