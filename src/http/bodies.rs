//! The JSON bodies of the HTTP API (responses, and the CloudEvents JSON
//! its publish endpoint takes), with their OpenAPI schemas.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::proto::views::{GroupView, PendingView, StreamView};

/// A page of streams.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamsPage {
    /// Streams in name order.
    pub streams: Vec<StreamView>,
    /// Pass back as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

/// A CloudEvent in the JSON format, with what the log assigned as
/// extension attributes. Other attributes (`subject`, `time`, extensions)
/// appear as further properties.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CloudEventJson {
    /// CloudEvents version, `1.0`.
    specversion: String,
    /// Event id, unique within its stream.
    id: String,
    /// Event source.
    source: String,
    /// Event type.
    #[schema(rename = "type")]
    kind: String,
    /// The stream (recorded events only).
    rlstream: Option<String>,
    /// Sequence in the stream (recorded events only).
    rlsequence: Option<u64>,
    /// Global position (recorded events only).
    rlposition: Option<u64>,
    /// When the log recorded it, RFC 3339 (recorded events only).
    rlrecordedtime: Option<String>,
    /// JSON or text data.
    data: Option<Value>,
    /// Binary data, base64.
    data_base64: Option<String>,
}

/// A page of a stream's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// The stream.
    pub stream: String,
    /// Events in reading order.
    #[schema(value_type = Vec<CloudEventJson>)]
    pub events: Vec<Value>,
    /// Where the next page starts (`from`).
    pub next_sequence: u64,
    /// No further event exists in this direction now.
    pub end_of_stream: bool,
}

/// Where a published event went.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    /// Event id.
    pub id: String,
    /// Sequence in the stream.
    pub sequence: u64,
    /// Global position.
    pub position: u64,
    /// The id was already in the stream: this is the original.
    pub duplicate: bool,
    /// Recording time, RFC 3339.
    pub recorded_at: String,
}

/// The result of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResult {
    /// The stream.
    pub stream: String,
    /// One per event, in order.
    pub positions: Vec<PositionView>,
}

/// A stream's consumer groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsList {
    /// Groups in name order.
    pub groups: Vec<GroupView>,
}

/// Pending entries held by one consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerPending {
    /// The consumer.
    pub consumer: String,
    /// Entries it holds.
    pub count: u64,
}

/// A group's pending entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingPage {
    /// All pending entries of the group.
    pub count: u64,
    /// Lowest pending sequence.
    pub lowest_sequence: Option<u64>,
    /// Highest pending sequence.
    pub highest_sequence: Option<u64>,
    /// Per consumer.
    pub consumers: Vec<ConsumerPending>,
    /// A page of entries, in sequence order.
    pub entries: Vec<PendingView>,
}

/// The result of an ack.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckResult {
    /// Entries acked.
    pub acked: u64,
    /// Sequences that were not pending.
    pub not_pending: Vec<u64>,
}

/// The result of a seek.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeekResult {
    /// The group after the seek.
    pub group: GroupView,
    /// Pending entries the seek removed.
    pub pending_removed: u64,
}

/// The result of a redrive.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedriveResult {
    /// Dead letters given back to the group.
    pub redriven: u64,
    /// Dead-letter sequences whose original event is gone: kept.
    pub origin_gone: Vec<u64>,
    /// More of the selection remain: call again.
    pub more: bool,
}

/// The result of a trim.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrimResult {
    /// The stream.
    pub stream: String,
    /// Events removed.
    pub removed: u64,
}

/// The result of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResult {
    /// The stream.
    pub stream: String,
    /// Events removed with it.
    pub events_deleted: u64,
}

/// An error (RFC 9457 problem details).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ProblemJson {
    /// A URI naming the kind of problem.
    #[schema(rename = "type")]
    kind: String,
    /// The HTTP status's phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for humans.
    detail: String,
    /// Stable code, the same as gRPC's `ErrorInfo.reason`.
    reason: String,
    /// Facts about the error (`stream`, `limit`, ...).
    metadata: Option<HashMap<String, String>>,
}

/// Events appended to a stream in one bucket of its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThroughputPointView {
    /// When the bucket starts, RFC 3339.
    pub time: String,
    /// Events committed in it.
    pub events: u64,
    /// Events per second over the bucket (the current one: over its part
    /// elapsed, at least one second).
    pub events_per_second: f64,
}

/// A stream's throughput over the last hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamHistory {
    /// The stream.
    pub stream: String,
    /// Length of a bucket, in seconds (10).
    pub interval_seconds: u64,
    /// Whether the server keeps this stream's throughput: false when its
    /// limit of streams active within the hour was reached before the
    /// stream first appended (its points are then zero).
    pub tracked: bool,
    /// One point per bucket over the hour (360), oldest first; the last is
    /// the current bucket, still filling.
    pub points: Vec<ThroughputPointView>,
}

/// A consumer group's backlog at one time.
#[derive(Debug, Serialize, ToSchema)]
pub struct BacklogPointView {
    /// When it was sampled, RFC 3339.
    pub time: String,
    /// Retained events not yet delivered to the group.
    pub lag: u64,
    /// Delivered, not yet acked.
    pub pending: u64,
}

/// A consumer group's backlog over the last hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupHistory {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// Seconds between the server's samples (`group_metrics_interval`)
    /// are at least this: at most one sample per bucket is kept.
    pub interval_seconds: u64,
    /// Samples oldest first, at most one per bucket; the last is read at
    /// the request.
    pub points: Vec<BacklogPointView>,
}
