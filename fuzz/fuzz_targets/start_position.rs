//! Where a subscription starts, from text: `log::Start::parse` (the HTTP
//! `from` parameter and the CLI), the SSE `Last-Event-ID` header
//! (`src/http/sse.rs`) and the RFC 3339 parser under both
//! (`UnixMicros::parse_rfc3339`, `src/log/model.rs`).
//!
//! Input: text, given whole to each parser.
//!
//! Checked, as the code documents it:
//! - `Start::parse` takes `latest`, `earliest`, `seq:N`, `pos:N`,
//!   `time:RFC3339` or `checkpoint:NAME`, and what it returns survives the
//!   trip to the gRPC `StartPosition` and back;
//! - a parsed time has nanoseconds within a second, and one the formatter
//!   `rfc3339` can write (1970 to 9999) reads back from what it writes;
//! - `Last-Event-ID` is a whole number, surrounding blanks allowed.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use riverlog::fuzzing::last_event_id;
use riverlog::log::{Start, UnixMicros};
use riverlog::proto::json::rfc3339;
use riverlog::proto::v1::StartPosition;
use riverlog::service::convert;

/// 10000-01-01T00:00:00Z in microseconds: RFC 3339 years have 4 digits.
const YEAR_10000: i64 = 253_402_300_800_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();

    if let Ok(start) = Start::parse(s) {
        match &start {
            Start::Latest => assert_eq!(s, "latest"),
            Start::Earliest => assert_eq!(s, "earliest"),
            Start::Sequence(n) => assert_eq!(s.strip_prefix("seq:").map(str::parse), Some(Ok(*n))),
            Start::Position(n) => assert_eq!(s.strip_prefix("pos:").map(str::parse), Some(Ok(*n))),
            Start::Time(t) => {
                let rest = s.strip_prefix("time:").expect("time:");
                assert_eq!(UnixMicros::parse_rfc3339(rest), Some(*t));
            }
            Start::Checkpoint(name) => {
                assert_eq!(s.strip_prefix("checkpoint:"), Some(name.as_str()))
            }
        }
        let wire = StartPosition {
            start: Some(convert::start_position(&start)),
        };
        assert_eq!(convert::start(Some(wire)).ok(), Some(start), "{s:?}");
    }

    if let Some(t) = UnixMicros::parse_rfc3339(s) {
        let (_, nanos) = t.to_parts();
        assert!((0..1_000_000_000).contains(&nanos));
        let written = rfc3339(t);
        if (0..YEAR_10000).contains(&t.0) {
            assert_eq!(
                UnixMicros::parse_rfc3339(&written),
                Some(t),
                "{s:?} -> {written:?}"
            );
        }
    }

    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", value);
        // Header values are visible ASCII, blanks and tabs (and obs-text,
        // which is not text).
        let expected = std::str::from_utf8(data)
            .ok()
            .filter(|v| v.is_ascii())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match last_event_id(&headers) {
            Ok(id) => assert_eq!(id, Some(expected.expect("accepted a non-number"))),
            Err(_) => assert_eq!(expected, None, "refused {s:?}"),
        }
    }
    assert!(matches!(last_event_id(&HeaderMap::new()), Ok(None)));
});
