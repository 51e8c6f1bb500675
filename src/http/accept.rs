//! Content negotiation: which of an endpoint's media types the client's
//! `Accept` header asks for (RFC 9110 §12.5.1).

use axum::http::{HeaderMap, header};

/// One media range of an `Accept` header with its weight.
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: f32,
}

impl Range<'_> {
    /// How specifically this range names `media` (`type/subtype`): 3 for
    /// the type itself, 2 for `type/*`, 1 for `*/*`, none if it does not.
    fn specificity(&self, media: &str) -> Option<u8> {
        let (kind, subtype) = media.split_once('/')?;
        match (self.kind, self.subtype) {
            ("*", "*") => Some(1),
            (k, "*") if k.eq_ignore_ascii_case(kind) => Some(2),
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => Some(3),
            _ => None,
        }
    }
}

/// Parses `Accept` headers leniently: a range that does not parse, or a
/// `q` that is not a number in 0-1, is skipped (as if not sent).
fn ranges(headers: &HeaderMap) -> Vec<Range<'_>> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let (kind, subtype) = parts.next()?.trim().split_once('/')?;
            let mut q = 1.0;
            for param in parts {
                if let Some((name, value)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = value
                            .trim()
                            .parse()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))?;
                    }
                }
            }
            Some(Range {
                kind: kind.trim(),
                subtype: subtype.trim(),
                q,
            })
        })
        .collect()
}

/// The media type to answer with: of `offered` (in the server's order of
/// preference), the one the most specific matching range weighs highest,
/// ties to the earlier. With no `Accept` header (or only unreadable
/// ranges), the first offered; `None` when every offered type is refused
/// (`q=0`) or matches no range: a 406.
pub fn negotiate(headers: &HeaderMap, offered: &[&'static str]) -> Option<&'static str> {
    let ranges = ranges(headers);
    if ranges.is_empty() {
        return offered.first().copied();
    }
    let mut best: Option<(&'static str, f32)> = None;
    for &media in offered {
        let weight = ranges
            .iter()
            .filter_map(|r| r.specificity(media).map(|s| (s, r.q)))
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
            .map(|(_, q)| q);
        if let Some(q) = weight.filter(|&q| q > 0.0) {
            if best.is_none_or(|(_, b)| q > b) {
                best = Some((media, q));
            }
        }
    }
    best.map(|(media, _)| media)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const OFFERED: &[&str] = &["application/json", "application/cloudevents-batch+json"];

    fn pick(accept: &[&'static str]) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        for a in accept {
            headers.append(header::ACCEPT, HeaderValue::from_static(a));
        }
        negotiate(&headers, OFFERED)
    }

    #[test]
    fn the_best_weighted_most_specific_range_wins() {
        assert_eq!(pick(&[]), Some("application/json"));
        assert_eq!(pick(&["*/*"]), Some("application/json"));
        assert_eq!(
            pick(&["application/cloudevents-batch+json"]),
            Some("application/cloudevents-batch+json")
        );
        assert_eq!(
            pick(&["application/json;q=0.5, application/cloudevents-batch+json"]),
            Some("application/cloudevents-batch+json")
        );
        assert_eq!(
            pick(&["application/*;q=0.2", "Application/JSON"]),
            Some("application/json")
        );
        // The specific q=0 refuses JSON although */* would take it.
        assert_eq!(
            pick(&["*/*", "application/json;q=0"]),
            Some("application/cloudevents-batch+json")
        );
    }

    #[test]
    fn nothing_acceptable_is_none() {
        assert_eq!(pick(&["text/html"]), None);
        assert_eq!(
            pick(&["application/json;q=0, application/cloudevents-batch+json;q=0"]),
            None
        );
        // An unreadable header counts as none.
        assert_eq!(pick(&["nonsense"]), Some("application/json"));
    }
}
