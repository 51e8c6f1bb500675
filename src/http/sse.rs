//! Server-Sent Events: a live subscription (`/api/v1/subscribe`) and a
//! consumer-group member (`/api/v1/groups/{group}/consume`), served by the
//! very subscription and delivery machinery gRPC uses.
//!
//! Each subscription message has `id:` = the event's global position,
//! `event:` = its CloudEvent type and `data:` = the CloudEvent JSON on one
//! line. Heartbeats are `id:`-only messages: they advance the browser's
//! `Last-Event-ID` past filtered-out events without dispatching anything,
//! so a reconnect resumes exactly where the stream was, with no gap and no
//! duplicate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Query;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::HttpState;
use super::caller::Caller;
use super::problem::{Problem, bad_request};
use crate::api::convert;
use crate::api::guard;
use crate::auth::Permission;
use crate::log::{ConsumeItem, EventFilter, Start, SubscribeQuery, SubscriptionItem};
use crate::proto::views::event_json;

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

/// Query parameters of `/api/v1/subscribe`.
#[derive(Debug, Deserialize)]
pub(super) struct SubscribeParams {
    #[serde(default)]
    stream: Vec<String>,
    #[serde(default)]
    pattern: Vec<String>,
    #[serde(default, rename = "type")]
    types: Vec<String>,
    #[serde(default, rename = "source")]
    sources: Vec<String>,
    #[serde(default, rename = "subject")]
    subjects: Vec<String>,
    /// `earliest` (default), `latest`, `seq:N`, `pos:N`, `time:RFC3339`,
    /// `checkpoint:NAME`; `Last-Event-ID` wins over it.
    from: Option<String>,
    /// Heartbeat interval like `15s`.
    heartbeat: Option<String>,
}

fn parse_from(s: &str) -> Result<Start, Problem> {
    let number = |n: &str| {
        n.parse::<u64>()
            .map_err(|_| bad_request("from", format!("{s:?}: not a whole number")))
    };
    Ok(match s.split_once(':') {
        None if s == "earliest" => Start::Earliest,
        None if s == "latest" => Start::Latest,
        Some(("seq", n)) => Start::Sequence(number(n)?),
        Some(("pos", n)) => Start::Position(number(n)?),
        Some(("time", t)) => Start::Time(super::rest::parse_time("from", t)?),
        Some(("checkpoint", name)) => Start::Checkpoint(name.to_owned()),
        _ => {
            return Err(bad_request(
                "from",
                format!(
                    "{s:?}: use earliest, latest, seq:N, pos:N, time:RFC3339 or checkpoint:NAME"
                ),
            ));
        }
    })
}

/// Where a reconnecting `EventSource` left off.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad_request("Last-Event-ID", "not an id this server sent"))
        })
        .transpose()
}

fn sse(stream: impl Stream<Item = Event> + Send + 'static) -> Response {
    let opening =
        futures::stream::once(async { Event::default().retry(RETRY).comment("riverlog") });
    Sse::new(opening.chain(stream).map(Ok::<_, Infallible>)).into_response()
}

pub(super) async fn subscribe(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    ConnectInfo(connection): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<SubscribeParams>,
) -> Result<Response, Problem> {
    for name in &q.stream {
        guard::require(&caller, Permission::Subscribe, name)?;
    }
    for pattern in &q.pattern {
        caller.require_pattern(pattern)?;
    }
    let slot = state.limits.slots.acquire(Some(connection))?;
    let start = match last_event_id(&headers)? {
        Some(id) => Start::Position(id.saturating_add(1)),
        None => q
            .from
            .as_deref()
            .map(parse_from)
            .transpose()?
            .unwrap_or_default(),
    };
    let heartbeat = match q.heartbeat.as_deref() {
        Some(h) => humantime::parse_duration(h)
            .map_err(|e| bad_request("heartbeat", format!("{h:?}: {e}")))?,
        None => state.sse_heartbeat,
    };
    let items = state
        .log
        .subscribe(SubscribeQuery {
            streams: q.stream.into_iter().chain(q.pattern).collect(),
            start,
            filter: EventFilter::new(q.types, q.sources, q.subjects)?,
            heartbeat: Some(heartbeat),
            readable: caller.readable(),
        })
        .await?;
    let events = items
        // An error (shutdown, storage) ends the stream; the browser
        // reconnects with Last-Event-ID.
        .take_while(|item| std::future::ready(item.is_ok()))
        .filter_map(move |item| {
            let _open = &slot;
            std::future::ready(item.ok().map(|item| {
                match item {
                    SubscriptionItem::Event(e) => {
                        let json = event_json(&convert::recorded_event(&e));
                        let kind = json["type"].as_str().unwrap_or("event").to_owned();
                        Event::default()
                            .id(e.position.to_string())
                            .event(kind)
                            .data(json.to_string())
                    }
                    SubscriptionItem::Heartbeat { position, .. } => Event::default()
                        .id(position.to_string())
                        .comment("heartbeat"),
                    SubscriptionItem::CaughtUp { position } => Event::default()
                        .id(position.to_string())
                        .comment("caught-up"),
                }
            }))
        });
    Ok(sse(events))
}

/// Query parameters of `/api/v1/groups/{group}/consume`.
#[derive(Debug, Deserialize)]
pub(super) struct ConsumeParams {
    stream: String,
    consumer: String,
    #[serde(default)]
    max_in_flight: u32,
    heartbeat: Option<String>,
}

pub(super) async fn consume(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    ConnectInfo(connection): ConnectInfo<SocketAddr>,
    Path(group): Path<String>,
    Query(q): Query<ConsumeParams>,
) -> Result<Response, Problem> {
    guard::require(&caller, Permission::Subscribe, &q.stream)?;
    let slot = state.limits.slots.acquire(Some(connection))?;
    let heartbeat = q
        .heartbeat
        .as_deref()
        .map(|h| {
            humantime::parse_duration(h)
                .map_err(|e| bad_request("heartbeat", format!("{h:?}: {e}")))
        })
        .transpose()?
        .or(Some(state.sse_heartbeat));
    let items = state
        .log
        .consume(&q.stream, &group, &q.consumer, q.max_in_flight, heartbeat)
        .await?;
    let events = items
        .take_while(|item| std::future::ready(item.is_ok()))
        .filter_map(move |item| {
            let _open = &slot;
            std::future::ready(item.ok().map(|item| match item {
                ConsumeItem::Delivery(d) => {
                    let mut json = event_json(&convert::recorded_event(&d.event));
                    json["rldeliverycount"] = Value::from(d.delivery_count);
                    let kind = json["type"].as_str().unwrap_or("event").to_owned();
                    Event::default()
                        .id(d.event.sequence.to_string())
                        .event(kind)
                        .data(json.to_string())
                }
                ConsumeItem::Heartbeat(_) => Event::default().comment("heartbeat"),
            }))
        });
    Ok(sse(events))
}
