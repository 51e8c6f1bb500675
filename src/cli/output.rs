//! How the CLI prints what the server returns, chosen once by `-o`:
//! `text` for people (lists as aligned tables, a description as a
//! two-column table, events and publish answers one line each as they
//! come) or `json` for programs (one JSON object per line, per item: the
//! field names are the HTTP API's and only ever grow).

use clap::{Args, ValueEnum};
use comfy_table::{ColumnConstraint, Table, Width, presets};
use serde_json::Value;

use crate::proto::v1;
use crate::proto::views::{StreamView, seconds, time};
pub use crate::proto::views::{event_json, group_json, pending_json, stream_json};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `-o` switch every client command takes.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text, global = true)]
    format: Format,
    /// Same as `-o json` (kept for scripts written before `-o`).
    #[arg(long, hide = true, global = true)]
    json: bool,
}

impl OutputArgs {
    /// The chosen format.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

/// Columns separated by three spaces, no borders, like `kubectl get`.
fn plain_table() -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table
}

/// Renders `table` with its columns padded to line up, trailing spaces cut.
fn render(mut table: Table) -> String {
    let columns = table.column_count();
    for (i, column) in table.column_iter_mut().enumerate() {
        let right = if i + 1 == columns { 0 } else { 3 };
        column.set_padding((0, right));
        // Never wrap: a line per row is what `grep` and `awk` expect.
        column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(1)));
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned() + "\n")
        .collect()
}

/// A table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = plain_table();
    table.set_header(header.to_vec());
    table.add_rows(rows);
    render(table)
}

/// A description: a name column and a value column.
pub fn fields(pairs: Vec<(&str, String)>) -> String {
    let mut table = plain_table();
    table.add_rows(pairs.into_iter().map(|(k, v)| vec![k.to_owned(), v]));
    render(table)
}

/// `-` for nothing.
fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

/// A duration in seconds as `30s`, `1h`, `7days`.
fn duration(secs: Option<f64>) -> String {
    or_dash(secs.map(|s| {
        humantime::format_duration(std::time::Duration::from_secs_f64(s.max(0.0))).to_string()
    }))
}

/// `2026-11-24T10:00:00.000000Z orders#3 @17 order.created e-1 {"total":12}`
pub fn event_line(e: &v1::RecordedEvent) -> String {
    let value = event_json(e);
    let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
    let data = match (&value["data"], &value["data_base64"]) {
        (Value::String(s), _) => s.clone(),
        (Value::Null, Value::String(b)) => format!("base64:{b}"),
        (Value::Null, _) => String::new(),
        (other, _) => other.to_string(),
    };
    format!(
        "{} {}#{} @{} {} {} {}",
        field("rlrecordedtime"),
        e.stream,
        e.sequence,
        e.position,
        field("type"),
        field("id"),
        data
    )
    .trim_end()
    .to_owned()
}

/// Streams as a table.
pub fn streams_table(streams: &[v1::StreamInfo]) -> String {
    let rows = streams
        .iter()
        .map(|s| {
            vec![
                s.stream.clone(),
                s.event_count.to_string(),
                s.first_sequence.to_string(),
                s.last_sequence.to_string(),
                s.group_count.to_string(),
                or_dash(time(s.last_appended_at.as_ref())),
            ]
        })
        .collect();
    table(
        &["STREAM", "EVENTS", "FIRST", "LAST", "GROUPS", "LAST APPEND"],
        rows,
    )
}

/// One stream's description.
pub fn stream_fields(s: &v1::StreamInfo) -> String {
    let retention = s.retention.as_ref();
    fields(vec![
        ("stream", s.stream.clone()),
        ("events", s.event_count.to_string()),
        ("first sequence", s.first_sequence.to_string()),
        ("last sequence", s.last_sequence.to_string()),
        ("last position", s.last_position.to_string()),
        ("created", or_dash(time(s.created_at.as_ref()))),
        ("last append", or_dash(time(s.last_appended_at.as_ref()))),
        ("groups", s.group_count.to_string()),
        (
            "max events",
            or_dash(
                retention
                    .map(|r| r.max_events)
                    .filter(|&n| n > 0)
                    .map(|n| n.to_string()),
            ),
        ),
        (
            "max age",
            duration(seconds(retention.and_then(|r| r.max_age.as_ref()))),
        ),
        (
            "ttl",
            duration(seconds(retention.and_then(|r| r.ttl.as_ref()))),
        ),
        ("policy", StreamView::from(s).retention.policy.to_owned()),
        (
            "dedup window",
            duration(seconds(retention.and_then(|r| r.dedup_window.as_ref()))),
        ),
    ])
}

/// Groups as a table.
pub fn groups_table(groups: &[v1::GroupInfo]) -> String {
    let rows = groups
        .iter()
        .map(|g| {
            vec![
                g.stream.clone(),
                g.group.clone(),
                g.pending.to_string(),
                g.lag.to_string(),
                g.last_delivered_sequence.to_string(),
                g.consumers.len().to_string(),
                g.dead_letter_stream.clone(),
            ]
        })
        .collect();
    table(
        &[
            "STREAM",
            "GROUP",
            "PENDING",
            "LAG",
            "DELIVERED",
            "CONSUMERS",
            "DEAD LETTERS",
        ],
        rows,
    )
}

/// One group's description, then its consumers as a table.
pub fn group_fields(g: &v1::GroupInfo) -> String {
    let mut text = fields(vec![
        ("stream", g.stream.clone()),
        ("group", g.group.clone()),
        ("pending", g.pending.to_string()),
        ("lag", g.lag.to_string()),
        ("last delivered", g.last_delivered_sequence.to_string()),
        ("ack floor", g.ack_floor.to_string()),
        ("ack timeout", duration(seconds(g.ack_timeout.as_ref()))),
        ("max deliveries", g.max_deliveries.to_string()),
        ("dead letters", g.dead_letter_stream.clone()),
        ("created", or_dash(time(g.created_at.as_ref()))),
    ]);
    if !g.consumers.is_empty() {
        let rows = g
            .consumers
            .iter()
            .map(|c| {
                vec![
                    c.consumer.clone(),
                    c.pending.to_string(),
                    duration(seconds(c.idle.as_ref())),
                    if c.connected { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        text.push('\n');
        text += &table(&["CONSUMER", "PENDING", "IDLE", "CONNECTED"], rows);
    }
    text
}

/// Pending entries as a table.
pub fn pending_table(entries: &[v1::PendingEntry]) -> String {
    let rows = entries
        .iter()
        .map(|p| {
            vec![
                p.sequence.to_string(),
                p.consumer.clone(),
                p.delivery_count.to_string(),
                format!("{:.1}s", seconds(p.idle.as_ref()).unwrap_or(0.0)),
            ]
        })
        .collect();
    table(&["SEQUENCE", "CONSUMER", "DELIVERIES", "IDLE"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_on_the_widest_cell_and_end_without_spaces() {
        let text = table(
            &["NAME", "N"],
            vec![
                vec!["a".into(), "1".into()],
                vec!["longer-name".into(), "22".into()],
            ],
        );
        assert_eq!(text, "NAME          N\na             1\nlonger-name   22\n");
    }

    #[test]
    fn long_cells_are_never_wrapped() {
        let long = "x".repeat(300);
        let text = fields(vec![("k", long.clone())]);
        assert_eq!(text, format!("k   {long}\n"));
    }

    #[test]
    fn durations_read_as_humans_write_them() {
        assert_eq!(duration(Some(30.0)), "30s");
        assert_eq!(duration(Some(3600.0)), "1h");
        assert_eq!(duration(None), "-");
    }
}
