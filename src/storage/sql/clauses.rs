//! `WHERE` fragments both read paths use.

use super::Dialect;
use super::driver::Sql;
use crate::model::filter::EventFilter;
use crate::model::names::StreamSelector;

/// Appends `AND (col = ? OR col MATCH ? ...)` for each non-empty list of
/// the filter: entries with `*` are patterns, the others exact values.
pub(super) fn push_filter<D: Dialect>(q: &mut Sql<D::DB>, filter: &EventFilter) {
    for (column, list) in [
        ("e.type", &filter.types),
        ("e.source", &filter.sources),
        ("e.subject", &filter.subjects),
    ] {
        if list.is_empty() {
            continue;
        }
        q.push(" AND (");
        for (i, entry) in list.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            if entry.contains('*') {
                q.push(column)
                    .push(format!(" {} ", D::MATCH))
                    .bind(D::pattern(entry).as_str());
            } else {
                q.push(column).push(" = ").bind(entry.as_str());
            }
        }
        q.push(")");
    }
}

/// Appends `<column> MATCH ?` for a stream-name pattern.
pub(super) fn push_name_pattern<D: Dialect>(q: &mut Sql<D::DB>, column: &str, pattern: &str) {
    q.push(column)
        .push(format!(" {} ", D::MATCH))
        .bind(D::pattern(pattern).as_str());
}

/// The streams a log read takes events from.
///
/// One stream is a literal id, not a join on its name or a subquery: with
/// the value in hand PostgreSQL plans with that stream's own statistics
/// (the reader connections ask for custom plans, see `postgres.rs`), so it
/// walks the stream's `(stream_id, position)` index in order and stops at
/// the limit. Joined by name, it could not see the id when planning: it
/// fetched every event of the stream past the position and sorted them,
/// so each page of a catch-up read re-read the rest of the stream.
#[derive(Debug, Clone, Copy)]
pub(super) enum Selected<'a> {
    /// The stream with this id.
    One(i64),
    /// Streams with any of these names or patterns (none when empty).
    Any(&'a [StreamSelector]),
}

/// Appends `AND e.stream_id ...` for the `selected` streams.
///
/// Several streams are a set of ids tested on each event while the
/// position order is walked (the `+` keeps the planner from reading each
/// stream's index and sorting the union, which reads every selected event
/// past the position for each page): a page stops at the limit, so a
/// catch-up is linear in the events it passes.
pub(super) fn push_selected<D: Dialect>(q: &mut Sql<D::DB>, selected: Selected<'_>) {
    match selected {
        Selected::One(id) => {
            q.append(" AND e.stream_id = ?", (id,));
        }
        Selected::Any([]) => {
            q.push(" AND 1 = 0");
        }
        // Every stream (the tailer's read): no condition to plan or test.
        Selected::Any(selectors)
            if selectors
                .iter()
                .any(|s| matches!(s, StreamSelector::Pattern(p) if p.matches_every_name())) => {}
        Selected::Any(selectors) => {
            q.push(" AND +e.stream_id IN (SELECT id FROM streams WHERE ");
            for (i, selector) in selectors.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                match selector {
                    StreamSelector::Name(n) => {
                        q.push("name = ").bind(n.as_str());
                    }
                    StreamSelector::Pattern(p) => push_name_pattern::<D>(q, "name", p.as_str()),
                }
            }
            q.push(")");
        }
    }
}
