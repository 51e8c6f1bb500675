//! The JSON API under `/api/v1`: streams, history, groups, pending, acks.
//! Every handler calls the same domain methods and permission checks as
//! the gRPC services. Stream names go in the path percent-encoded (a `/` in
//! a name is `%2F`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HttpState;
use super::caller::Caller;
use super::problem::{Problem, bad_request};
use crate::api::convert;
use crate::api::guard;
use crate::auth::Permission;
use crate::log::{EventFilter, ReadQuery, Retention, UnixMicros};
use crate::proto::views::{event_json, group_json, pending_json, stream_json};
use crate::storage::{Direction, ReadFrom, TrimUntil};

type Reply = Result<axum::response::Response, Problem>;

fn parse_duration(field: &'static str, s: &str) -> Result<std::time::Duration, Problem> {
    humantime::parse_duration(s).map_err(|e| bad_request(field, format!("{s:?}: {e}")))
}

/// An RFC 3339 time as a log time.
pub fn parse_time(field: &'static str, s: &str) -> Result<UnixMicros, Problem> {
    let t =
        humantime::parse_rfc3339_weak(s).map_err(|e| bad_request(field, format!("{s:?}: {e}")))?;
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad_request(field, "before 1970"))?;
    Ok(UnixMicros(
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct ListStreams {
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    page_token: String,
}

pub(super) async fn list_streams(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Query(q): Query<ListStreams>,
) -> Reply {
    caller.require_some(Permission::Subscribe)?;
    let readable = caller.readable();
    let (streams, next) = state
        .log
        .list_streams(&q.pattern, q.page_size, &q.page_token, readable.as_deref())
        .await?;
    let streams: Vec<Value> = streams
        .iter()
        .map(|s| stream_json(&convert::stream_info(s)))
        .collect();
    Ok(Json(json!({"streams": streams, "next_page_token": next})).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionBody {
    max_events: Option<u64>,
    max_age: Option<String>,
    ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateStream {
    stream: String,
    #[serde(default)]
    retention: RetentionBody,
}

pub(super) async fn create_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    body: Result<Json<CreateStream>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(|e| bad_request("body", e.body_text()))?;
    guard::require(&caller, Permission::Admin, &body.stream)?;
    let r = &body.retention;
    let retention = Retention {
        max_events: r.max_events.filter(|&n| n > 0),
        max_age: r
            .max_age
            .as_deref()
            .map(|s| parse_duration("retention.max_age", s))
            .transpose()?,
        ttl: r
            .ttl
            .as_deref()
            .map(|s| parse_duration("retention.ttl", s))
            .transpose()?,
    };
    let info = state.log.create_stream(&body.stream, retention).await?;
    Ok((
        StatusCode::CREATED,
        Json(stream_json(&convert::stream_info(&info))),
    )
        .into_response())
}

pub(super) async fn get_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
) -> Reply {
    guard::require(&caller, Permission::Subscribe, &stream)?;
    let info = state.log.get_stream(&stream).await?;
    Ok(Json(stream_json(&convert::stream_info(&info))).into_response())
}

pub(super) async fn delete_stream(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
) -> Reply {
    guard::require(&caller, Permission::Admin, &stream)?;
    let deleted = state.log.delete_stream(&stream).await?;
    Ok(Json(json!({"stream": stream, "events_deleted": deleted})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Trim {
    max_events: Option<u64>,
    before_sequence: Option<u64>,
    before_time: Option<String>,
}

pub(super) async fn trim(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
    body: Result<Json<Trim>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(|e| bad_request("body", e.body_text()))?;
    guard::require(&caller, Permission::Admin, &stream)?;
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
    let removed = state.log.trim(&stream, until).await?;
    Ok(Json(json!({"stream": stream, "removed": removed})).into_response())
}

/// Query parameters of a history read.
#[derive(Debug, Deserialize)]
pub(super) struct ReadParams {
    /// First sequence (forward) or last (backward); default: the start or
    /// the end.
    from: Option<u64>,
    /// Start at the first event recorded at or after this RFC 3339 time.
    from_time: Option<String>,
    #[serde(default)]
    limit: u32,
    /// `forward` (default) or `backward`.
    direction: Option<String>,
    #[serde(default, rename = "type")]
    types: Vec<String>,
    #[serde(default, rename = "source")]
    sources: Vec<String>,
    #[serde(default, rename = "subject")]
    subjects: Vec<String>,
}

pub(super) async fn read(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
    Query(q): Query<ReadParams>,
) -> Reply {
    guard::require(&caller, Permission::Subscribe, &stream)?;
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
        .read(ReadQuery {
            stream: stream.clone(),
            from,
            direction,
            limit: q.limit,
            filter: EventFilter::new(q.types, q.sources, q.subjects)?,
        })
        .await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| event_json(&convert::recorded_event(e)))
        .collect();
    Ok(Json(json!({
        "stream": stream,
        "events": events,
        "next_sequence": page.next_sequence,
        "end_of_stream": page.end_of_stream,
    }))
    .into_response())
}

pub(super) async fn list_groups(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
) -> Reply {
    guard::require(&caller, Permission::Subscribe, &stream)?;
    let groups: Vec<Value> = state
        .log
        .list_groups(&stream)
        .await?
        .iter()
        .map(|g| group_json(&convert::group_info(g)))
        .collect();
    Ok(Json(json!({"groups": groups})).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct PendingParams {
    #[serde(default)]
    consumer: String,
    #[serde(default)]
    limit: u32,
    #[serde(default)]
    after_sequence: u64,
}

pub(super) async fn list_pending(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path((stream, group)): Path<(String, String)>,
    Query(q): Query<PendingParams>,
) -> Reply {
    guard::require(&caller, Permission::Subscribe, &stream)?;
    let (summary, entries) = state
        .log
        .list_pending(
            &stream,
            &group,
            &q.consumer,
            None,
            q.limit,
            q.after_sequence,
        )
        .await?;
    let now = UnixMicros::now();
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| pending_json(&convert::pending_entry(e, now)))
        .collect();
    Ok(Json(json!({
        "count": summary.count,
        "lowest_sequence": summary.lowest,
        "highest_sequence": summary.highest,
        "consumers": summary.consumers.into_iter().map(|(c, n)| json!({"consumer": c, "count": n})).collect::<Vec<_>>(),
        "entries": entries,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ack {
    sequences: Vec<u64>,
}

pub(super) async fn ack(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path((stream, group)): Path<(String, String)>,
    body: Result<Json<Ack>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(|e| bad_request("body", e.body_text()))?;
    guard::require(&caller, Permission::Subscribe, &stream)?;
    let settled = state.log.ack(&stream, &group, body.sequences).await?;
    Ok(Json(json!({"acked": settled.settled, "not_pending": settled.not_pending})).into_response())
}
