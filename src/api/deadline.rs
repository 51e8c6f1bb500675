//! The caller's deadline, from the `grpc-timeout` request header.
//!
//! A call that waits on the server's side (Fetch with `block_ms`) must
//! answer before its caller gives up: an answer that arrives after the
//! deadline is thrown away, and with it whatever it handed out.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// Longest time kept back from a deadline for the answer's way back.
const MAX_ALLOWANCE: Duration = Duration::from_secs(1);

/// The caller's timeout (`grpc-timeout`, measured from when the call was
/// sent), or `None` when there is none or it does not parse. The format is
/// gRPC's (PROTOCOL-HTTP2.md): 1 to 8 ASCII digits and a unit, `H` hours,
/// `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n`
/// nanoseconds.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at_checked(unit_at)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 8 digits: no overflow below.
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long a call may wait on the server's side within a caller timeout:
/// the timeout less a fifth of it (at most `MAX_ALLOWANCE`) for
/// decoding, answering and the way back.
pub fn wait_within(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 5).min(MAX_ALLOWANCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse("300000u"), Some(Duration::from_millis(300)));
        assert_eq!(parse("1n"), Some(Duration::from_nanos(1)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(
            parse("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse("0m"), Some(Duration::ZERO));
    }

    #[test]
    fn malformed_grpc_timeouts_are_ignored() {
        for bad in [
            "",
            "m",
            "300",
            "300x",
            "123456789m",
            "-1m",
            "+1m",
            "1.5S",
            "1 m",
            "１m",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let mut metadata = MetadataMap::new();
        assert_eq!(grpc_timeout(&metadata), None);
        metadata.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(grpc_timeout(&metadata), Some(Duration::from_millis(250)));
    }

    #[test]
    fn the_wait_ends_before_the_deadline() {
        assert_eq!(
            wait_within(Duration::from_millis(300)),
            Duration::from_millis(240)
        );
        assert_eq!(
            wait_within(Duration::from_secs(60)),
            Duration::from_secs(59)
        );
        assert_eq!(wait_within(Duration::ZERO), Duration::ZERO);
    }
}
