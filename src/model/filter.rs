//! Server-side event filters by CloudEvent attributes.

use super::names::glob_match;
use super::records::StoredEvent;

/// A filter over its size limits: which list (`filter.types`, ...) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidFilter {
    /// The request field, as the API names it.
    pub field: &'static str,
    /// For humans.
    pub reason: String,
}

/// Most entries accepted per filter list.
pub const MAX_FILTER_ENTRIES: usize = 64;
/// Longest filter entry accepted.
pub const MAX_FILTER_ENTRY_LEN: usize = 1024;

/// Selects events by `type`, `source` and `subject`. Within a list any entry
/// may match, across lists all must; an empty list matches everything.
/// Entries match exactly except that `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Accepted types.
    pub types: Vec<String>,
    /// Accepted sources.
    pub sources: Vec<String>,
    /// Accepted subjects.
    pub subjects: Vec<String>,
}

impl EventFilter {
    /// Checks the filter's size limits.
    pub fn new(
        types: Vec<String>,
        sources: Vec<String>,
        subjects: Vec<String>,
    ) -> Result<Self, InvalidFilter> {
        for (field, list) in [
            ("filter.types", &types),
            ("filter.sources", &sources),
            ("filter.subjects", &subjects),
        ] {
            if list.len() > MAX_FILTER_ENTRIES {
                return Err(InvalidFilter {
                    field,
                    reason: format!("at most {MAX_FILTER_ENTRIES} entries"),
                });
            }
            if list
                .iter()
                .any(|e| e.is_empty() || e.len() > MAX_FILTER_ENTRY_LEN)
            {
                return Err(InvalidFilter {
                    field,
                    reason: format!("entries must be 1-{MAX_FILTER_ENTRY_LEN} bytes"),
                });
            }
        }
        Ok(Self {
            types,
            sources,
            subjects,
        })
    }

    /// Whether the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.sources.is_empty() && self.subjects.is_empty()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        any_matches(&self.types, Some(&event.event_type))
            && any_matches(&self.sources, Some(&event.source))
            && any_matches(&self.subjects, event.subject.as_deref())
    }
}

fn any_matches(list: &[String], value: Option<&str>) -> bool {
    if list.is_empty() {
        return true;
    }
    value.is_some_and(|v| list.iter().any(|p| glob_match(p, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::StreamName;
    use crate::model::records::UnixMicros;

    fn event(t: &str, subject: Option<&str>) -> StoredEvent {
        StoredEvent {
            stream: StreamName::parse("s").unwrap(),
            sequence: 1,
            position: 1,
            recorded_at: UnixMicros(0),
            id: "1".into(),
            event_type: t.into(),
            source: "/src".into(),
            subject: subject.map(Into::into),
            payload: Default::default(),
        }
    }

    #[test]
    fn lists_are_or_within_and_across() {
        let f =
            EventFilter::new(vec!["a.*".into(), "b".into()], vec!["/src".into()], vec![]).unwrap();
        assert!(f.matches(&event("a.x", None)));
        assert!(f.matches(&event("b", None)));
        assert!(!f.matches(&event("c", None)));
        let g = EventFilter::new(vec![], vec!["/other".into()], vec![]).unwrap();
        assert!(!g.matches(&event("a", None)));
    }

    #[test]
    fn subject_filter_never_matches_events_without_subject() {
        let f = EventFilter::new(vec![], vec![], vec!["*".into()]).unwrap();
        assert!(!f.matches(&event("a", None)));
        assert!(f.matches(&event("a", Some(""))));
    }

    #[test]
    fn empty_entries_are_rejected() {
        assert!(EventFilter::new(vec!["".into()], vec![], vec![]).is_err());
        assert!(EventFilter::new(vec!["x".into(); 65], vec![], vec![]).is_err());
    }
}
