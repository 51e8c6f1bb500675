//! How the CLI prints what the server returns: one line per item, human
//! or JSON (`--json`, one object per line, for scripts and `jq`).

use serde_json::Value;

use crate::proto::v1;
pub use crate::proto::views::{event_json, group_json, pending_json, stream_json};
use crate::proto::views::{seconds, time};

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

/// `orders  events=12 seq=1..12 groups=1 last=2026-...`
pub fn stream_line(s: &v1::StreamInfo) -> String {
    format!(
        "{}\tevents={}\tseq={}..{}\tgroups={}\tlast_append={}",
        s.stream,
        s.event_count,
        s.first_sequence,
        s.last_sequence,
        s.group_count,
        time(s.last_appended_at.as_ref()).unwrap_or_else(|| "-".into())
    )
}

/// `orders/billing  pending=2 lag=5 delivered=7 consumers=2`
pub fn group_line(g: &v1::GroupInfo) -> String {
    format!(
        "{}/{}\tpending={}\tlag={}\tlast_delivered={}\tconsumers={}\tdead_letters={}",
        g.stream,
        g.group,
        g.pending,
        g.lag,
        g.last_delivered_sequence,
        g.consumers.len(),
        g.dead_letter_stream
    )
}

/// `12  consumer=c1 deliveries=2 idle=3.2s`
pub fn pending_line(p: &v1::PendingEntry) -> String {
    format!(
        "{}\tconsumer={}\tdeliveries={}\tidle={:.1}s",
        p.sequence,
        p.consumer,
        p.delivery_count,
        seconds(p.idle.as_ref()).unwrap_or(0.0)
    )
}
