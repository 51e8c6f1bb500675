//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer).
//!
//! Not API: hidden from the docs and free to change with the fuzz targets.
//! It exists because some of what the server parses from untrusted input is
//! private to its module (the HTTP binary-mode parser, the SSE
//! `Last-Event-ID` header), and because the publish path is a sequence of
//! steps spread over the gRPC adapter and the domain: a fuzz target must
//! drive the very code a request drives, not a copy of it. Each wrapper
//! here calls that code and nothing else.

use bytes::Bytes;
use http::HeaderMap;

use crate::auth::Principal;
use crate::http::Problem;
use crate::log::{Limits, NewEvent};
use crate::proto::v1::PublishRequest;
use crate::proto::{CloudEvent, EventPayload};
use crate::service::admission::admit_events;
use crate::service::admission::{CallLimits, PublishRate, PublishStreamLimits, SubscriptionSlots};
use crate::service::trace_context::TraceContext;

/// What the gRPC `Publish` call does with one event of a request, from its
/// bytes on the wire to the event the writer appends: the bytes as the one
/// event of a `PublishRequest`, decoded as tonic decodes the request (each
/// event an `EventPayload`), then [`admit`].
///
/// Returns the payload as decoded from the request (`Err` when the request
/// does not decode) and the outcome of admission.
pub fn publish_event(
    event: &[u8],
    trace: Option<&TraceContext>,
) -> Result<(EventPayload, Result<NewEvent, String>), String> {
    use prost::Message;
    use prost::encoding::{WireType, encode_key, encode_varint};
    // `repeated CloudEvent events = 2;`
    let mut wire = Vec::with_capacity(event.len() + 12);
    encode_key(2, WireType::LengthDelimited, &mut wire);
    encode_varint(event.len() as u64, &mut wire);
    wire.extend_from_slice(event);
    let request = PublishRequest::decode(wire.as_slice()).map_err(|e| e.to_string())?;
    let [payload] = <[EventPayload; 1]>::try_from(request.events)
        .map_err(|events| format!("{} events decoded from one", events.len()))?;
    let admitted = admit(payload.clone(), trace);
    Ok((payload, admitted))
}

/// What happens to a published event once decoded, on gRPC and HTTP alike:
/// `admit_events` (decoded as a CloudEvent, the call's trace context
/// attached where the event has none), then the per-event size check and
/// CloudEvents validation of `EventLog::publish`, with the default limits
/// and no publish rate.
pub fn admit(payload: EventPayload, trace: Option<&TraceContext>) -> Result<NewEvent, String> {
    let limits = Limits::default();
    let call_limits = CallLimits {
        slots: SubscriptionSlots::new(1, 1),
        publish_streams: PublishStreamLimits::new(1, 1),
        publish_rate: PublishRate::new(0, 0),
        max_event_size: limits.max_event_size,
    };
    let mut admitted = admit_events(&call_limits, &Principal::open(), vec![payload], trace)
        .map_err(|f| format!("{f:?}"))?;
    let (attrs, payload) = admitted.pop().ok_or("no event admitted")?;
    if payload.len() > limits.max_event_size {
        return Err(format!("event of {} bytes is too large", payload.len()));
    }
    NewEvent::validate(attrs, payload)
}

/// The CloudEvents HTTP binary-mode parser of `POST .../events`: `ce-*`
/// headers and the body to a CloudEvent (private to `http::publish`).
pub fn http_binary_event(headers: &HeaderMap, body: Bytes) -> Result<CloudEvent, Problem> {
    crate::http::publish::binary_event(headers, body)
}

/// The SSE `Last-Event-ID` header of a reconnecting subscriber (private to
/// `http::sse`).
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    crate::http::sse::last_event_id(headers)
}
