//! `POST /api/v1/streams/{stream}/events`: the CloudEvents HTTP protocol
//! binding. Structured mode (`application/cloudevents+json`), batched mode
//! (`application/cloudevents-batch+json`, atomic like gRPC Publish) and
//! binary mode (`ce-*` headers, the body is the data).
//!
//! Optimistic concurrency: the `expected_last_sequence` query parameter
//! (or the `Riverlog-Expected-Last-Sequence` header) works as on gRPC.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use super::HttpState;
use super::caller::Caller;
use super::problem::{Params, Problem, bad_request, body_problem};
use crate::auth::Principal;
use crate::log::{Expectation, PublishBatch, parse};
use crate::proto::cloudevent::cloud_event::Data;
use crate::proto::json::from_json;
use crate::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue, EventPayload};
use crate::service::admission::admit_events;
use crate::service::failure::Failure;
use crate::service::trace_context::TraceContext;

/// Header alternative to the `expected_last_sequence` query parameter.
pub const EXPECTED_HEADER: &str = "riverlog-expected-last-sequence";

/// Query of a publish.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PublishParams {
    /// Fail with 412 unless the stream's last sequence is this (0: no
    /// event yet); the `Riverlog-Expected-Last-Sequence` header does the
    /// same.
    expected_last_sequence: Option<u64>,
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/xml"
        || essence.ends_with("+xml")
}

/// A binary-mode event: attributes in `ce-*` headers, data in the body.
pub(crate) fn binary_event(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, Problem> {
    let mut event = CloudEvent::default();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = value
            .to_str()
            .map_err(|_| bad_request("headers", format!("{name} is not text")))?;
        // Header values are percent-encoded per the binding's rules.
        let value = percent_decode(name.as_str(), value)?;
        match attr {
            "id" => event.id = value,
            "source" => event.source = value,
            "specversion" => event.spec_version = value,
            "type" => event.r#type = value,
            _ => {
                let attr_value = if attr == "time" {
                    let t = super::rest::parse_time("ce-time", &value)?;
                    let (seconds, nanos) = t.to_parts();
                    AttributeValue::CeTimestamp(prost_types::Timestamp { seconds, nanos })
                } else {
                    AttributeValue::CeString(value)
                };
                event.attributes.insert(
                    attr.to_owned(),
                    CloudEventAttributeValue {
                        attr: Some(attr_value),
                    },
                );
            }
        }
    }
    for (field, value) in [
        ("ce-id", &event.id),
        ("ce-source", &event.source),
        ("ce-specversion", &event.spec_version),
        ("ce-type", &event.r#type),
    ] {
        if value.is_empty() {
            return Err(bad_request(
                "headers",
                format!(
                    "binary mode needs the {field} header (or send application/cloudevents+json)"
                ),
            ));
        }
    }
    let content_type = content_type(headers);
    if !content_type.is_empty() {
        event.attributes.insert(
            "datacontenttype".into(),
            CloudEventAttributeValue {
                attr: Some(AttributeValue::CeString(content_type.clone())),
            },
        );
    }
    if !body.is_empty() {
        event.data = Some(if is_text(&essence(&content_type)) {
            Data::TextData(
                String::from_utf8(body.to_vec())
                    .map_err(|_| bad_request("body", "text data must be UTF-8"))?,
            )
        } else {
            Data::BinaryData(body.to_vec())
        });
    }
    Ok(event)
}

/// Decodes a percent-encoded header value; one that does not decode to
/// UTF-8 is refused rather than kept raw.
fn percent_decode(field: &str, value: &str) -> Result<String, Problem> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| bad_request("headers", format!("{field} is not percent-encoded UTF-8")))
}

fn structured(value: &Value, index: Option<usize>) -> Result<CloudEvent, Problem> {
    from_json(value).map_err(|e| {
        let at = index.map(|i| format!("event {i}: ")).unwrap_or_default();
        Problem::from(crate::log::LogError::InvalidEvent {
            index: index.unwrap_or(0),
            reason: format!("{at}{e}"),
        })
    })
}

fn parse_json(body: &Bytes) -> Result<Value, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem(Failure::malformed_request(format_args!("not JSON: {e}"))))
}

/// The rest of a publish, decoded and admitted once the caller may
/// publish to its stream (see `EventLog::publish`): the condition, the
/// events in whichever binding the body uses, within the caller's rate.
fn publish_batch(
    state: &HttpState,
    caller: &Principal,
    params: &PublishParams,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<PublishBatch, Problem> {
    let body = body.map_err(|e| body_problem(e.status(), e.body_text()))?;
    let header_expected = headers
        .get(EXPECTED_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad_request("expected_last_sequence", "must be a whole number"))
        })
        .transpose()?;
    let expected = match (params.expected_last_sequence, header_expected) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad_request(
                "expected_last_sequence",
                "the query parameter and the header disagree",
            ));
        }
        (Some(s), _) | (None, Some(s)) => Expectation::LastSequence(s),
        (None, None) => Expectation::Any,
    };
    let events = match essence(&content_type(headers)).as_str() {
        "application/cloudevents+json" => vec![structured(&parse_json(&body)?, None)?],
        "application/cloudevents-batch+json" => match parse_json(&body)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| structured(v, Some(i)))
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(bad_request(
                    "body",
                    "a batch is a JSON array of CloudEvents",
                ));
            }
        },
        _ => vec![binary_event(headers, body)?],
    };
    let events = admit_events(
        &state.limits,
        caller,
        events.iter().map(EventPayload::from_event).collect(),
        TraceContext::from_headers(headers).as_ref(),
    )?;
    Ok(PublishBatch { events, expected })
}

/// Publish events with the CloudEvents HTTP binding: structured
/// (`application/cloudevents+json`), batched (`application/cloudevents-batch+json`,
/// atomic) or binary (`ce-*` headers; the body is the data).
#[utoipa::path(post, path = "/api/v1/streams/{stream}/events", tag = "events",
    params(("stream" = String, Path, description = "Stream name, percent-encoded"), PublishParams),
    request_body(content(
        (super::bodies::CloudEventJson = "application/cloudevents+json"),
        (Vec<super::bodies::CloudEventJson> = "application/cloudevents-batch+json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses((status = 201, body = super::bodies::PublishResult),
              (status = "default", body = super::bodies::ProblemJson, content_type = "application/problem+json")))]
pub(super) async fn publish(
    State(state): State<Arc<HttpState>>,
    Caller(caller): Caller,
    Path(stream): Path<String>,
    Params(params): Params<PublishParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, Problem> {
    let name = parse::stream(&stream)?;
    let admit = || publish_batch(&state, &caller, &params, &headers, body);
    let appended = state.log.publish(&caller, name, admit).await?;
    let positions = appended
        .iter()
        .map(|a| super::bodies::PositionView {
            id: a.id.clone(),
            sequence: a.sequence,
            position: a.position,
            duplicate: a.duplicate,
            recorded_at: crate::proto::json::rfc3339(a.recorded_at),
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(super::bodies::PublishResult { stream, positions }),
    )
        .into_response())
}
