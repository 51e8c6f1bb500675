//! The JSON API under `/api/v1`: streams, history, groups, pending, acks.
//! Every handler calls the same domain methods as the gRPC services, which
//! check the caller's permissions. Stream names go in the path percent-encoded (a `/` in
//! a name is `%2F`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::HttpState;
use super::bodies::{
    AckResult, ConsumerPending, DeleteResult, EventsPage, GroupsList, PendingPage, ProblemJson,
    RedriveResult, SeekResult, StreamsPage, TrimResult,
};
use super::caller::Caller;
use super::problem::{JsonBody, NoQuery, Params, Problem, bad_request};
use crate::log::{EventFilter, ListPending, LogError, ReadQuery, Retention, UnixMicros, parse};
use crate::model::groups::RedriveSelection;
use crate::model::query::{Direction, ReadFrom, TrimUntil};
use crate::proto::views::{GroupView, PendingView, StreamView, event_json};
use crate::service::convert;
use crate::service::failure::Failure;

type Reply = Result<axum::response::Response, Problem>;

fn parse_duration(field: &'static str, s: &str) -> Result<std::time::Duration, Problem> {
    humantime::parse_duration(s).map_err(|e| bad_request(field, format!("{s:?}: {e}")))
}

/// An RFC 3339 time (any offset) as a log time.
pub fn parse_time(field: &'static str, s: &str) -> Result<UnixMicros, Problem> {
    UnixMicros::parse_rfc3339(s)
        .ok_or_else(|| bad_request(field, format!("{s:?} is not an RFC 3339 time")))
}

fn stream_view(info: &crate::log::StreamInfo) -> StreamView {
    StreamView::from(&convert::stream_info(info))
}

/// Query of a stream listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListStreams {
    /// Only names matching this pattern (`*` matches any run).
    #[serde(default)]
    pattern: String,
    /// Streams per page (default 100, at most 1000).
    #[serde(default)]
    page_size: u32,
    /// `next_page_token` of the previous page.
    #[serde(default)]
    page_token: String,
}

/// List streams.
#[utoipa::path(get, path = "/api/v1/streams", params(ListStreams), tag = "streams",
    responses((status = 200, body = StreamsPage),
              (status = 400, description = "A bad or unknown query parameter", body = ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn list_streams(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(q): Params<ListStreams>,
) -> Reply {
    let (streams, next) = state
        .log
        .list_streams(&caller, &q.pattern, q.page_size, &q.page_token)
        .await?;
    Ok(Json(StreamsPage {
        streams: streams.iter().map(stream_view).collect(),
        next_page_token: next,
    })
    .into_response())
}

/// Retention rules of a new stream; absent means no limit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionBody {
    /// Keep at most this many events.
    max_events: Option<u64>,
    /// Remove events older than this, like `7d`.
    max_age: Option<String>,
    /// Delete the stream after this long without appends.
    ttl: Option<String>,
    /// `limits` (default), `interest` or `work_queue`.
    policy: Option<String>,
    /// How long a removed event's id still answers a republish as
    /// duplicate, like `24h` (default: the server's; unset: forever).
    dedup_window: Option<String>,
}

/// A stream to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateStream {
    /// The name: 1-256 of `A-Z a-z 0-9 _ - . : /`.
    stream: String,
    /// Retention rules.
    #[serde(default)]
    retention: RetentionBody,
}

/// Create an empty stream.
#[utoipa::path(post, path = "/api/v1/streams", request_body = CreateStream, tag = "streams",
    responses((status = 201, body = StreamView),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn create_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    JsonBody(body): JsonBody<CreateStream>,
) -> Reply {
    let stream = parse::stream(&body.stream)?;
    let r = &body.retention;
    // Zero means unset, as over gRPC.
    let retention = Retention {
        max_events: r.max_events.filter(|&n| n > 0),
        max_age: r
            .max_age
            .as_deref()
            .map(|s| parse_duration("retention.max_age", s))
            .transpose()?
            .filter(|d| !d.is_zero()),
        ttl: r
            .ttl
            .as_deref()
            .map(|s| parse_duration("retention.ttl", s))
            .transpose()?
            .filter(|d| !d.is_zero()),
        policy: r
            .policy
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|e| LogError::invalid("retention.policy", e))
            })
            .transpose()?
            .unwrap_or_default(),
        dedup_window: r
            .dedup_window
            .as_deref()
            .map(|s| parse_duration("retention.dedup_window", s))
            .transpose()?
            .filter(|d| !d.is_zero()),
    };
    let info = state.log.create_stream(&caller, stream, retention).await?;
    Ok((StatusCode::CREATED, Json(stream_view(&info))).into_response())
}

/// Describe a stream.
#[utoipa::path(get, path = "/api/v1/streams/{stream}", tag = "streams",
    params(("stream" = String, Path, description = "Stream name, percent-encoded")),
    responses((status = 200, body = StreamView),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn get_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path(stream): Path<String>,
) -> Reply {
    let stream = parse::stream(&stream)?;
    let info = state.log.get_stream(&caller, &stream).await?;
    Ok(Json(stream_view(&info)).into_response())
}

/// Delete a stream with its events, groups and checkpoints.
#[utoipa::path(delete, path = "/api/v1/streams/{stream}", tag = "streams",
    params(("stream" = String, Path, description = "Stream name, percent-encoded")),
    responses((status = 200, body = DeleteResult),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn delete_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path(stream): Path<String>,
) -> Reply {
    let name = parse::stream(&stream)?;
    let events_deleted = state.log.delete_stream(&caller, name).await?;
    Ok(Json(DeleteResult {
        stream,
        events_deleted,
    })
    .into_response())
}

/// What to trim: exactly one rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Trim {
    /// Keep only the newest N events.
    max_events: Option<u64>,
    /// Remove events below this sequence.
    before_sequence: Option<u64>,
    /// Remove events recorded before this RFC 3339 time.
    before_time: Option<String>,
}

/// Remove old events.
#[utoipa::path(post, path = "/api/v1/streams/{stream}/trim", request_body = Trim, tag = "streams",
    params(("stream" = String, Path, description = "Stream name, percent-encoded")),
    responses((status = 200, body = TrimResult),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn trim(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path(stream): Path<String>,
    JsonBody(body): JsonBody<Trim>,
) -> Reply {
    let name = parse::stream(&stream)?;
    let until = match (body.max_events, body.before_sequence, body.before_time) {
        (Some(n), None, None) => TrimUntil::MaxEvents(n),
        (None, Some(s), None) => TrimUntil::BeforeSequence(s),
        (None, None, Some(t)) => TrimUntil::BeforeTime(parse_time("before_time", &t)?),
        _ => {
            return Err(bad_request(
                "until",
                "give exactly one of max_events, before_sequence, before_time",
            ));
        }
    };
    let removed = state.log.trim(&caller, name, until).await?;
    Ok(Json(TrimResult { stream, removed }).into_response())
}

/// Query of a history read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadParams {
    /// First sequence (forward) or last (backward); default: the start or
    /// the end.
    from: Option<u64>,
    /// Start at the first event recorded at or after this RFC 3339 time.
    from_time: Option<String>,
    /// Events per page (default 100, at most 1000).
    #[serde(default)]
    limit: u32,
    /// `forward` (default) or `backward`.
    direction: Option<String>,
    /// Only these CloudEvent types (`*` wildcards); repeatable.
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    types: Vec<String>,
    /// Only these sources; repeatable.
    #[serde(default, rename = "source")]
    #[param(rename = "source")]
    sources: Vec<String>,
    /// Only these subjects; repeatable.
    #[serde(default, rename = "subject")]
    #[param(rename = "subject")]
    subjects: Vec<String>,
}

/// The media types a history read answers in, the default first.
const READ_MEDIA: &[&str] = &["application/json", super::publish::BATCH_JSON];
/// With the batch answer: where the next page starts (`from`).
pub const NEXT_SEQUENCE_HEADER: &str = "riverlog-next-sequence";
/// With the batch answer: `true` when no further event exists in this
/// direction now.
pub const END_OF_STREAM_HEADER: &str = "riverlog-end-of-stream";

/// Read a page of a stream's history as CloudEvents JSON: an `EventsPage`
/// (`application/json`, the default) or, when `Accept` asks for it, the
/// events alone as a JSON batch (`application/cloudevents-batch+json`, JSON
/// format §4) with the paging in `Riverlog-Next-Sequence` and
/// `Riverlog-End-Of-Stream`. An `Accept` that allows neither: 406.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/events", tag = "events",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"), ReadParams),
    responses((status = 200, content(
                  (EventsPage = "application/json"),
                  (Vec<super::bodies::CloudEventJson> = "application/cloudevents-batch+json")),
               headers(
                  ("Riverlog-Next-Sequence" = u64, description = "Batch answer only: where the next page starts"),
                  ("Riverlog-End-Of-Stream" = bool, description = "Batch answer only: no further event now"))),
              (status = 400, description = "A bad or unknown query parameter", body = ProblemJson, content_type = "application/problem+json"),
              (status = 406, description = "Accept allows neither answer", body = ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn read(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
    Params(q): Params<ReadParams>,
    headers: HeaderMap,
) -> Reply {
    let media = super::accept::negotiate(&headers, READ_MEDIA).ok_or_else(|| {
        Problem(Failure::new(
            tonic::Code::InvalidArgument,
            super::problem::NOT_ACCEPTABLE,
            format!("Accept allows none of {}", READ_MEDIA.join(", ")),
            Default::default(),
        ))
    })?;
    let name = parse::stream(&stream)?;
    let from = match (q.from, &q.from_time) {
        (Some(_), Some(_)) => return Err(bad_request("from", "give from or from_time, not both")),
        (None | Some(0), None) => ReadFrom::End,
        (Some(s), None) => ReadFrom::Sequence(s),
        (None, Some(t)) => ReadFrom::Time(parse_time("from_time", t)?),
    };
    let direction = match q.direction.as_deref() {
        None | Some("forward") => Direction::Forward,
        Some("backward") => Direction::Backward,
        Some(other) => {
            return Err(bad_request(
                "direction",
                format!("{other:?}: use forward or backward"),
            ));
        }
    };
    let page = state
        .log
        .read(
            &caller,
            ReadQuery {
                stream: name,
                from,
                direction,
                limit: q.limit,
                filter: EventFilter::new(q.types, q.sources, q.subjects).map_err(LogError::from)?,
            },
        )
        .await?;
    let events: Vec<_> = page
        .events
        .iter()
        .map(|e| event_json(&convert::recorded_event(e)))
        .collect();
    let mut response = if media == super::publish::BATCH_JSON {
        let mut response = Json(events).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::publish::BATCH_JSON),
        );
        h.insert(NEXT_SEQUENCE_HEADER, HeaderValue::from(page.next_sequence));
        h.insert(
            END_OF_STREAM_HEADER,
            HeaderValue::from_static(if page.end_of_stream { "true" } else { "false" }),
        );
        response
    } else {
        Json(EventsPage {
            stream,
            events,
            next_sequence: page.next_sequence,
            end_of_stream: page.end_of_stream,
        })
        .into_response()
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

/// List a stream's consumer groups.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/groups", tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded")),
    responses((status = 200, body = GroupsList),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn list_groups(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path(stream): Path<String>,
) -> Reply {
    let stream = parse::stream(&stream)?;
    let groups = state.log.list_groups(&caller, &stream).await?;
    Ok(Json(GroupsList {
        groups: groups
            .iter()
            .map(|g| GroupView::from(&convert::group_info(g)))
            .collect(),
    })
    .into_response())
}

/// Query of a pending listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct PendingParams {
    /// Only this consumer's entries.
    #[serde(default)]
    consumer: String,
    /// Entries per page (default 100, at most 1000).
    #[serde(default)]
    limit: u32,
    /// Entries after this sequence (paging).
    #[serde(default)]
    after_sequence: u64,
}

/// List a group's pending entries.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/groups/{group}/pending", tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"),
           ("group" = String, Path, description = "Group name"), PendingParams),
    responses((status = 200, body = PendingPage),
              (status = 400, description = "A bad or unknown query parameter", body = ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn list_pending(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path((stream, group)): Path<(String, String)>,
    Params(q): Params<PendingParams>,
) -> Reply {
    let query = ListPending {
        stream: parse::stream(&stream)?,
        group: parse::group(&group)?,
        consumer: parse::optional_consumer(&q.consumer)?,
        min_idle: None,
        limit: q.limit,
        after_sequence: q.after_sequence,
    };
    let (summary, entries) = state.log.list_pending(&caller, query).await?;
    let now = UnixMicros::now();
    Ok(Json(PendingPage {
        count: summary.count,
        lowest_sequence: summary.lowest,
        highest_sequence: summary.highest,
        consumers: summary
            .consumers
            .into_iter()
            .map(|(consumer, count)| ConsumerPending { consumer, count })
            .collect(),
        entries: entries
            .iter()
            .map(|e| PendingView::from(&convert::pending_entry(e, now)))
            .collect(),
    })
    .into_response())
}

/// Where a group goes on from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Seek {
    /// `earliest`, `latest`, a sequence number (the first event to deliver)
    /// or an RFC 3339 time (the first event recorded at or after it).
    to: String,
}

/// Move a group's cursor: afterwards the group is as if every event up to
/// it had been acked and none after it delivered (its pending entries are
/// removed; the events after it are delivered again).
#[utoipa::path(post, path = "/api/v1/streams/{stream}/groups/{group}/seek", request_body = Seek, tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"),
           ("group" = String, Path, description = "Group name")),
    responses((status = 200, body = SeekResult),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn seek(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path((stream, group)): Path<(String, String)>,
    JsonBody(body): JsonBody<Seek>,
) -> Reply {
    let (stream, group) = (parse::stream(&stream)?, parse::group(&group)?);
    let start = body.to.parse().map_err(|e| bad_request("to", e))?;
    let (info, pending_removed) = state.log.seek_group(&caller, stream, group, start).await?;
    Ok(Json(SeekResult {
        group: GroupView::from(&convert::group_info(&info)),
        pending_removed,
    })
    .into_response())
}

/// Which of a group's dead letters to give back: exactly one of `all`,
/// `dead_letter_sequences` or `filter`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Redrive {
    /// All of them (`true`).
    #[serde(default)]
    all: bool,
    /// Those at these sequences of the dead-letter stream, both included.
    #[serde(default)]
    dead_letter_sequences: Option<SequenceRange>,
    /// Those whose type, source and subject (the original event's) match.
    #[serde(default)]
    filter: Option<RedriveFilter>,
}

/// A range of sequences, both ends included.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SequenceRange {
    /// The first.
    first: u64,
    /// The last.
    last: u64,
}

/// Accepted values of each attribute; empty or absent: any.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RedriveFilter {
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
}

/// Give a group's dead letters back to it, as gRPC `Redrive`: each becomes
/// a pending entry due now with a fresh delivery count, and its copy leaves
/// the dead-letter stream.
#[utoipa::path(post, path = "/api/v1/streams/{stream}/groups/{group}/redrive", request_body = Redrive, tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"),
           ("group" = String, Path, description = "Group name")),
    responses((status = 200, body = RedriveResult),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn redrive(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path((stream, group)): Path<(String, String)>,
    JsonBody(body): JsonBody<Redrive>,
) -> Reply {
    let (stream, group) = (parse::stream(&stream)?, parse::group(&group)?);
    let selection = match (body.all, body.dead_letter_sequences, body.filter) {
        (true, None, None) => RedriveSelection::All,
        (false, Some(SequenceRange { first, last }), None) => {
            RedriveSelection::DeadLetterSequences { first, last }
        }
        (false, None, Some(f)) => {
            let filter =
                EventFilter::new(f.types, f.sources, f.subjects).map_err(LogError::from)?;
            RedriveSelection::Filter(filter)
        }
        _ => {
            return Err(bad_request(
                "selection",
                "give exactly one of all (true), dead_letter_sequences or filter",
            ));
        }
    };
    let redriven = state.log.redrive(&caller, stream, group, selection).await?;
    Ok(Json(RedriveResult {
        redriven: redriven.redriven,
        origin_gone: redriven.origin_gone,
        more: redriven.more,
    })
    .into_response())
}

/// Sequences to acknowledge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Ack {
    /// Delivered sequences.
    sequences: Vec<u64>,
}

/// Acknowledge deliveries of a group.
#[utoipa::path(post, path = "/api/v1/streams/{stream}/groups/{group}/ack", request_body = Ack, tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"),
           ("group" = String, Path, description = "Group name")),
    responses((status = 200, body = AckResult),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn ack(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path((stream, group)): Path<(String, String)>,
    JsonBody(body): JsonBody<Ack>,
) -> Reply {
    let (stream, group) = (parse::stream(&stream)?, parse::group(&group)?);
    let settled = state
        .log
        .ack(&caller, stream, group, body.sequences)
        .await?;
    Ok(Json(AckResult {
        acked: settled.settled,
        not_pending: settled.not_pending,
    })
    .into_response())
}
