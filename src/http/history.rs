//! The history endpoints: a stream's throughput and a consumer group's
//! backlog over the last hour, as the domain keeps them
//! ([`crate::log::history`]), for the console's charts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;

use super::HttpState;
use super::bodies::{
    BacklogPointView, GroupHistory, ProblemJson, StreamHistory, ThroughputPointView,
};
use super::caller::Caller;
use super::problem::{NoQuery, Params, Problem};
use crate::log::history::BUCKET;
use crate::log::parse;
use crate::proto::json::rfc3339;

/// A stream's throughput over the last hour.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/history", tag = "streams",
    params(("stream" = String, Path, description = "Stream name, percent-encoded")),
    responses((status = 200, body = StreamHistory),
              (status = 400, description = "An unknown query parameter", body = ProblemJson, content_type = "application/problem+json"),
              (status = 404, description = "No such stream", body = ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn stream_history(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path(stream): Path<String>,
) -> Result<axum::response::Response, Problem> {
    let name = parse::stream(&stream)?;
    let throughput = state.log.stream_history(&caller, &name).await?;
    Ok(Json(StreamHistory {
        stream,
        interval_seconds: BUCKET.as_secs(),
        tracked: throughput.tracked,
        points: throughput
            .points
            .iter()
            .map(|p| ThroughputPointView {
                time: rfc3339(p.start),
                events: p.events,
                events_per_second: p.per_second,
            })
            .collect(),
    })
    .into_response())
}

/// A consumer group's lag and pending count over the last hour.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/groups/{group}/history", tag = "groups",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"),
           ("group" = String, Path, description = "Group name")),
    responses((status = 200, body = GroupHistory),
              (status = 400, description = "An unknown query parameter", body = ProblemJson, content_type = "application/problem+json"),
              (status = 404, description = "No such stream or group", body = ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn group_history(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Params(NoQuery {}): Params<NoQuery>,
    Path((stream, group)): Path<(String, String)>,
) -> Result<axum::response::Response, Problem> {
    let (name, group_name) = (parse::stream(&stream)?, parse::group(&group)?);
    let points = state.log.group_history(&caller, &name, &group_name).await?;
    Ok(Json(GroupHistory {
        stream,
        group,
        interval_seconds: BUCKET.as_secs(),
        points: points
            .iter()
            .map(|p| BacklogPointView {
                time: rfc3339(p.time),
                lag: p.lag,
                pending: p.pending,
            })
            .collect(),
    })
    .into_response())
}
