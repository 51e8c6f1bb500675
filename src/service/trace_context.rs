//! W3C trace context of a publish, kept with its events as the CloudEvents
//! distributed-tracing extension (`traceparent`, `tracestate`), so a
//! consumer can continue the producer's trace.

use bytes::Bytes;
use http::HeaderMap;

use crate::log::{AttributeValue, EventAttributes};
use crate::proto::append_string_attribute;

/// Longest `tracestate` kept (the W3C limit is 32 entries of ~256 bytes).
const MAX_TRACESTATE: usize = 8192;

/// A valid `traceparent` and optional `tracestate` from call metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

/// Whether `value` is a W3C version-00 `traceparent` with non-zero ids.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
            && nonzero(trace) && nonzero(parent))
}

impl TraceContext {
    /// The call's trace context; malformed headers are ignored, as
    /// tracing must never fail a publish.
    pub fn from_headers(metadata: &HeaderMap) -> Option<Self> {
        let traceparent = metadata.get("traceparent")?.to_str().ok()?.trim();
        if !valid_traceparent(traceparent) {
            return None;
        }
        let tracestate = metadata
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_TRACESTATE)
            .map(str::to_owned);
        Some(Self {
            traceparent: traceparent.to_owned(),
            tracestate,
        })
    }

    /// Adds the context to an event that does not carry its own (a
    /// producer that set `traceparent` on the event itself knows best), as
    /// long as the event stays within `max_size` bytes: tracing never makes
    /// a publish fail.
    pub fn attach(&self, (attrs, payload): &mut (EventAttributes, Bytes), max_size: usize) {
        let has = |name: &str| attrs.extensions.iter().any(|(n, _)| n == name);
        if has("traceparent") {
            return;
        }
        let mut extended = append_string_attribute(payload, "traceparent", &self.traceparent);
        let mut added = vec![("traceparent", &self.traceparent)];
        if let Some(state) = self.tracestate.as_ref().filter(|_| !has("tracestate")) {
            extended = append_string_attribute(&extended, "tracestate", state);
            added.push(("tracestate", state));
        }
        if extended.len() > max_size {
            return;
        }
        *payload = extended;
        for (name, value) in added {
            attrs
                .extensions
                .push((name.into(), AttributeValue::String(value.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_kept() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!valid_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent("garbage"));
    }
}
