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

/// Appends `s.name MATCH ?` for a stream-name pattern.
pub(super) fn push_name_pattern<D: Dialect>(q: &mut Sql<D::DB>, pattern: &str) {
    q.push("s.name")
        .push(format!(" {} ", D::MATCH))
        .bind(D::pattern(pattern).as_str());
}

/// Appends `AND (s.name = ? OR s.name MATCH ? ...)`: events of any of the
/// selected streams (none when `selectors` is empty).
pub(super) fn push_selectors<D: Dialect>(q: &mut Sql<D::DB>, selectors: &[StreamSelector]) {
    q.push(" AND (");
    for (i, selector) in selectors.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        match selector {
            StreamSelector::Name(n) => {
                q.push("s.name = ").bind(n.as_str());
            }
            StreamSelector::Pattern(p) => push_name_pattern::<D>(q, p.as_str()),
        }
    }
    if selectors.is_empty() {
        q.push("1 = 0");
    }
    q.push(")");
}
