//! `POST /api/v1/streams/{stream}/events`: the CloudEvents HTTP protocol
//! binding (v1.0.2). Structured mode (`application/cloudevents+json`, or
//! `application/cloudevents+protobuf`), batched mode
//! (`application/cloudevents-batch+json` or `-batch+protobuf`, atomic like
//! gRPC Publish) and binary mode (`ce-*` headers, the body is the data).
//! Any other `application/cloudevents...` type is refused with 415; any
//! other Content-Type (or none) is binary mode.
//!
//! Optimistic concurrency: the `expected_last_sequence` query parameter
//! (or the `Riverlog-Expected-Last-Sequence` header) works as on gRPC.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use prost::Message as _;
use serde::Deserialize;
use serde_json::Value;

use super::HttpState;
use super::caller::Caller;
use super::problem::{Params, Problem, bad_request, body_problem};
use crate::auth::Principal;
use crate::log::{Expectation, PublishBatch, parse};
use crate::proto::cloudevent::cloud_event::Data;
use crate::proto::json::{declares_json, from_json};
use crate::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue, EventPayload};
use crate::service::admission::admit_events;
use crate::service::failure::Failure;
use crate::service::trace_context::TraceContext;

/// Structured mode, the JSON format.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json";
/// Batched mode, the JSON batch format.
pub const BATCH_JSON: &str = "application/cloudevents-batch+json";
/// Structured mode, the Protobuf format (`io.cloudevents.v1.CloudEvent`,
/// whose field numbers riverlog's `CloudEvent` shares).
pub const STRUCTURED_PROTOBUF: &str = "application/cloudevents+protobuf";
/// Batched mode, the Protobuf format's `CloudEventBatch`.
pub const BATCH_PROTOBUF: &str = "application/cloudevents-batch+protobuf";

/// `io.cloudevents.v1.CloudEventBatch` of the CloudEvents Protobuf format
/// (v1.0.2): `repeated CloudEvent events = 1`.
#[derive(Clone, PartialEq, prost::Message)]
struct CloudEventBatch {
    #[prost(message, repeated, tag = "1")]
    events: Vec<CloudEvent>,
}

/// Header alternative to the `expected_last_sequence` query parameter.
pub const EXPECTED_HEADER: &str = "riverlog-expected-last-sequence";

/// Query of a publish.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishParams {
    /// Fail with 412 unless the stream's last sequence is this (0: no
    /// event yet); the `Riverlog-Expected-Last-Sequence` header does the
    /// same.
    expected_last_sequence: Option<u64>,
}

/// The request's Content-Type, if any; one that is not text is refused.
fn content_type(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| bad_request("headers", "Content-Type is not printable ASCII"))
        })
        .transpose()
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
    essence.starts_with("text/") || essence == "application/xml" || essence.ends_with("+xml")
}

/// A binary-mode event (HTTP binding §3.1): attributes in `ce-*` headers
/// (names case-insensitive, values unquoted then percent-decoded, §3.1.3),
/// `datacontenttype` in `Content-Type` (a `ce-datacontenttype` header is
/// refused, §3.1.1), data in the body. A body with a JSON content type
/// must be JSON (it is kept as sent, as `text_data`); other text types
/// valid as UTF-8 are kept as `text_data`; anything else as
/// `binary_data`. An empty body is no data.
pub(crate) fn binary_event(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, Problem> {
    let mut event = CloudEvent::default();
    // `HeaderMap` names are lowercase whatever the client sent.
    for name in headers.keys() {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if attr == "datacontenttype" {
            return Err(bad_request(
                "headers",
                "ce-datacontenttype must not be sent in binary mode: Content-Type is the \
                 datacontenttype (CloudEvents HTTP binding 3.1.1)",
            ));
        }
        let mut values = headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(bad_request(
                "headers",
                format!("{name} appears more than once: an attribute has one value"),
            ));
        };
        let value = header_value(name.as_str(), value)?;
        match attr {
            "id" => event.id = value,
            "source" => event.source = value,
            "specversion" => event.spec_version = value,
            "type" => event.r#type = value,
            _ => {
                let attr_value = match attr {
                    // prost keeps nanoseconds and takes any offset.
                    "time" => AttributeValue::CeTimestamp(value.parse().map_err(|_| {
                        bad_request("ce-time", format!("{value:?} is not an RFC 3339 time"))
                    })?),
                    "dataschema" => AttributeValue::CeUri(value),
                    _ => AttributeValue::CeString(value),
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
    // An empty Content-Type says nothing: no datacontenttype.
    let content_type = content_type(headers)?.filter(|t| !t.is_empty());
    if let Some(content_type) = &content_type {
        event.attributes.insert(
            "datacontenttype".into(),
            CloudEventAttributeValue {
                attr: Some(AttributeValue::CeString(content_type.clone())),
            },
        );
    }
    if body.is_empty() {
        return Ok(event);
    }
    let content_type = content_type.unwrap_or_default();
    event.data = Some(if declares_json(&content_type) {
        // JSON is UTF-8 (RFC 8259 8.1); serde_json does not check the
        // inside of strings it skips, so UTF-8 is checked first.
        let text = String::from_utf8(body.to_vec())
            .ok()
            .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        let Some(text) = text else {
            return Err(bad_request(
                "body",
                format!("Content-Type {content_type:?} declares JSON but the body is not JSON"),
            ));
        };
        Data::TextData(text)
    } else if is_text(&essence(&content_type)) {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => Data::TextData(text),
            // Another charset: the bytes as they are.
            Err(e) => Data::BinaryData(e.into_bytes()),
        }
    } else {
        Data::BinaryData(body.to_vec())
    });
    Ok(event)
}

/// A `ce-*` header's value as the HTTP binding decodes it (§3.1.3.2):
/// a double-quoted string is unquoted first (backslash escapes, RFC 7230
/// 3.2.6), then one round of percent-decoding; `%` must start `%XX` (either
/// case), and bytes that are not UTF-8 (overlong forms too) are refused.
fn header_value(name: &str, value: &HeaderValue) -> Result<String, Problem> {
    let refuse = |why: &str| bad_request("headers", format!("{name}: {why}"));
    let text = value
        .to_str()
        .map_err(|_| refuse("not printable ASCII: percent-encode it (HTTP binding 3.1.3.2)"))?
        .trim();
    let unquoted = match text.strip_prefix('"') {
        Some(rest) => {
            let mut out = String::with_capacity(rest.len());
            let mut chars = rest.chars();
            loop {
                match chars.next() {
                    Some('"') if chars.as_str().is_empty() => break,
                    Some('"') => return Err(refuse("text after the closing double quote")),
                    Some('\\') => match chars.next() {
                        Some(c) => out.push(c),
                        None => return Err(refuse("unterminated double-quoted string")),
                    },
                    Some(c) => out.push(c),
                    None => return Err(refuse("unterminated double-quoted string")),
                }
            }
            out
        }
        None => text.to_owned(),
    };
    let bytes = unquoted.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| refuse("a % must start a %XX escape"))?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| refuse("percent-decodes to bytes that are not UTF-8"))
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
    let events = match essence(&content_type(headers)?.unwrap_or_default()).as_str() {
        STRUCTURED_JSON => vec![structured(&parse_json(&body)?, None)?],
        BATCH_JSON => match parse_json(&body)? {
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
        STRUCTURED_PROTOBUF => vec![
            CloudEvent::decode(body)
                .map_err(|e| Problem(Failure::malformed_request(format_args!("{e}"))))?,
        ],
        BATCH_PROTOBUF => {
            CloudEventBatch::decode(body)
                .map_err(|e| Problem(Failure::malformed_request(format_args!("{e}"))))?
                .events
        }
        other if other.starts_with("application/cloudevents") => {
            return Err(Problem(Failure::new(
                tonic::Code::InvalidArgument,
                super::problem::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{other} is not an event format riverlog reads: use {STRUCTURED_JSON}, \
                     {BATCH_JSON}, {STRUCTURED_PROTOBUF}, {BATCH_PROTOBUF} or binary mode"
                ),
                Default::default(),
            )));
        }
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
        (Vec<u8> = "application/cloudevents+protobuf"),
        (Vec<u8> = "application/cloudevents-batch+protobuf"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses((status = 201, body = super::bodies::PublishResult),
              (status = 400, description = "Not a CloudEvent, or an unknown query parameter",
               body = super::bodies::ProblemJson, content_type = "application/problem+json"),
              (status = 415, description = "An event format riverlog does not read",
               body = super::bodies::ProblemJson, content_type = "application/problem+json"),
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
