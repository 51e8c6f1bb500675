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

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::HttpState;
use super::caller::Caller;
use super::problem::{Params, Problem, bad_request};
use crate::log::{
    ConsumeItem, EventFilter, LogError, Start, SubscribeQuery, SubscriptionItem, parse,
};
use crate::proto::views::event_json;
use crate::service::convert;
use crate::service::failure::Failure;

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

/// One SSE message.
#[derive(Debug, Default)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<&'static str>,
    retry: Option<Duration>,
}

impl Event {
    fn id(self, id: String) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }
    fn event(self, event: String) -> Self {
        Self {
            event: Some(event),
            ..self
        }
    }
    fn data(self, data: String) -> Self {
        Self {
            data: Some(data),
            ..self
        }
    }
    fn comment(self, comment: &'static str) -> Self {
        Self {
            comment: Some(comment),
            ..self
        }
    }
    fn retry(self, retry: Duration) -> Self {
        Self {
            retry: Some(retry),
            ..self
        }
    }

    /// The message in the `text/event-stream` format. Data and names are
    /// single-line (compact JSON, CloudEvent types), so one `data:` line
    /// suffices.
    fn frame(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.comment {
            out.push_str(&format!(": {c}\n"));
        }
        if let Some(r) = self.retry {
            out.push_str(&format!("retry: {}\n", r.as_millis()));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {id}\n"));
        }
        // A CloudEvent type may hold line breaks; written out they would
        // let a publisher forge fields (an `id:`, say) in everyone's
        // stream. Such an event goes out unnamed (a plain "message").
        if let Some(e) = self.event.as_ref().filter(|e| !e.contains(['\r', '\n'])) {
            out.push_str(&format!("event: {e}\n"));
        }
        if let Some(d) = &self.data {
            out.push_str(&format!("data: {d}\n"));
        }
        out.push('\n');
        out
    }
}

/// Compresses a stream of messages, flushing after each one so a live
/// event is never held back in the compressor (general-purpose response
/// compression would buffer it, which is why it leaves SSE alone).
enum Encoder {
    Identity,
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// The encoding the client accepts, preferring zstd, then gzip.
    fn negotiate(headers: &HeaderMap) -> Self {
        let accepted: Vec<String> = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|e| {
                let mut parts = e.split(';');
                let name = parts.next()?.trim().to_ascii_lowercase();
                let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
                (!refused).then_some(name)
            })
            .collect();
        if accepted.iter().any(|e| e == "zstd") {
            if let Ok(encoder) = zstd::stream::write::Encoder::new(Vec::new(), 3) {
                return Self::Zstd(encoder);
            }
        }
        if accepted.iter().any(|e| e == "gzip") {
            return Self::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
        }
        Self::Identity
    }

    fn content_encoding(&self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip(_) => Some("gzip"),
            Self::Zstd(_) => Some("zstd"),
        }
    }

    fn chunk(&mut self, message: &Event) -> Bytes {
        use std::io::Write;
        let frame = message.frame();
        // Writing into a Vec cannot fail; if it did, this message's bytes
        // would be lost, never the stream blocked.
        let out = match self {
            Self::Identity => return Bytes::from(frame),
            Self::Gzip(e) => {
                let _ = e.write_all(frame.as_bytes()).and_then(|()| e.flush());
                std::mem::take(e.get_mut())
            }
            Self::Zstd(e) => {
                let _ = e.write_all(frame.as_bytes()).and_then(|()| e.flush());
                std::mem::take(e.get_mut())
            }
        };
        Bytes::from(out)
    }

    /// Ends the compressed stream (gzip trailer, zstd end of frame), so a
    /// stream the server ends reads as complete, not truncated.
    fn finish(&mut self) -> Bytes {
        let out = match self {
            Self::Identity => return Bytes::new(),
            Self::Gzip(e) => {
                let _ = e.try_finish();
                std::mem::take(e.get_mut())
            }
            Self::Zstd(e) => {
                let _ = e.do_finish();
                std::mem::take(e.get_mut())
            }
        };
        Bytes::from(out)
    }
}

/// Query parameters of `/api/v1/subscribe`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscribeParams {
    /// Stream names; repeatable.
    #[serde(default)]
    stream: Vec<String>,
    /// Stream patterns (`*` matches any run); repeatable.
    #[serde(default)]
    pattern: Vec<String>,
    /// Only these CloudEvent types; repeatable.
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
    /// `earliest` (default), `latest`, `seq:N`, `pos:N`, `time:RFC3339`,
    /// `checkpoint:NAME`; `Last-Event-ID` wins over it. `N` beyond the
    /// next position or sequence to be assigned: 400 `START_BEYOND_HEAD`.
    from: Option<String>,
    /// Heartbeat interval like `15s`.
    heartbeat: Option<String>,
}

/// Where a reconnecting `EventSource` left off.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
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

/// A refused subscription. A `Last-Event-ID` past the head is named as
/// such: the browser sent it, not the page's `from=`, and it was never an
/// id of this log (was the log reset?). A 400 also stops `EventSource`
/// from reconnecting with it again and again.
fn subscribe_problem(err: LogError, resume_after: Option<u64>) -> Problem {
    let head = match (&err, resume_after) {
        (LogError::StartBeyondHead { next, .. }, Some(_)) => Some(next.saturating_sub(1)),
        _ => None,
    };
    let mut failure = Failure::from(err);
    if let (Some(head), Some(id)) = (head, resume_after) {
        failure.message = format!(
            "Last-Event-ID {id} is beyond the head of the log (position {head}): this log \
             never sent it; reconnect without it"
        );
        failure
            .metadata
            .insert("last_event_id".to_owned(), id.to_string());
    }
    Problem(failure)
}

fn sse(headers: &HeaderMap, stream: impl Stream<Item = Event> + Send + 'static) -> Response {
    let encoder = Encoder::negotiate(headers);
    let encoding = encoder.content_encoding();
    let opening =
        futures::stream::once(async { Event::default().retry(RETRY).comment("riverlog") });
    // The encoder goes through the messages, then ends the compressed
    // stream once they are done.
    let body = futures::stream::unfold(
        (opening.chain(stream).boxed(), Some(encoder)),
        |(mut messages, encoder)| async move {
            let mut encoder = encoder?;
            match messages.next().await {
                Some(message) => {
                    let bytes = encoder.chunk(&message);
                    Some((Ok::<_, Infallible>(bytes), (messages, Some(encoder))))
                }
                None => Some((Ok(encoder.finish()), (messages, None))),
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx must not buffer a live stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    response
}

/// Follow streams live as Server-Sent Events: `id:` is the global
/// position (send it back as `Last-Event-ID` to resume), `event:` the
/// CloudEvent type, `data:` the CloudEvent JSON.
#[utoipa::path(get, path = "/api/v1/subscribe", tag = "events", params(SubscribeParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position; beyond the head: 400 START_BEYOND_HEAD")),
    responses((status = 200, content_type = "text/event-stream", body = String),
              (status = 400, description = "A bad or unknown query parameter", body = super::bodies::ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = super::bodies::ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn subscribe(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    ConnectInfo(connection): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Params(q): Params<SubscribeParams>,
) -> Result<Response, Problem> {
    let streams = parse::selectors(q.stream.iter().chain(&q.pattern))?;
    let resume_after = last_event_id(&headers)?;
    let start = match resume_after {
        Some(id) => Start::Position(id.saturating_add(1)),
        None => q
            .from
            .as_deref()
            .map(|s| Start::parse(s).map_err(|e| bad_request("from", e)))
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
        .subscribe(
            &caller,
            SubscribeQuery {
                streams,
                start,
                filter: EventFilter::new(q.types, q.sources, q.subjects).map_err(LogError::from)?,
                heartbeat: Some(heartbeat),
            },
        )
        .await
        .map_err(|e| subscribe_problem(e, resume_after))?;
    // After the domain's checks: a refused caller never holds a slot.
    let slot = state.limits.slots.acquire(Some(connection))?;
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
    Ok(sse(&headers, events))
}

/// Query parameters of `/api/v1/groups/{group}/consume`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsumeParams {
    /// The group's stream.
    stream: String,
    /// This member's name.
    consumer: String,
    /// Most unacked deliveries at once (default 100).
    #[serde(default)]
    max_in_flight: u32,
    /// Heartbeat interval like `15s`.
    heartbeat: Option<String>,
}

/// Be a consumer-group member over Server-Sent Events: `id:` is the
/// event's sequence; ack with `POST .../groups/{group}/ack`.
#[utoipa::path(get, path = "/api/v1/groups/{group}/consume", tag = "groups",
    params(("group" = String, Path, description = "Group name"), ConsumeParams),
    responses((status = 200, content_type = "text/event-stream", body = String),
              (status = 400, description = "A bad or unknown query parameter", body = super::bodies::ProblemJson, content_type = "application/problem+json"),
              (status = "default", body = super::bodies::ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn consume(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    ConnectInfo(connection): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(group): Path<String>,
    Params(q): Params<ConsumeParams>,
) -> Result<Response, Problem> {
    let stream = parse::stream(&q.stream)?;
    let group = parse::group(&group)?;
    let consumer = parse::consumer(&q.consumer)?;
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
        .consume(&caller, stream, group, consumer, q.max_in_flight, heartbeat)
        .await?;
    // After the domain's checks: a refused caller never holds a slot.
    let slot = state.limits.slots.acquire(Some(connection))?;
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
    Ok(sse(&headers, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_in_an_event_type_cannot_forge_fields() {
        let frame = Event::default()
            .id("7".into())
            .event("order.created\nid: 999\ndata: forged".into())
            .data("{\"a\":1}".into())
            .frame();
        assert_eq!(frame, "id: 7\ndata: {\"a\":1}\n\n");
        let plain = Event::default()
            .id("8".into())
            .event("order.paid".into())
            .frame();
        assert_eq!(plain, "id: 8\nevent: order.paid\n\n");
    }
}
