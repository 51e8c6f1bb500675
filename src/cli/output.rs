//! How the CLI prints what the server returns: one line per item, human
//! or JSON (`--json`, one object per line, for scripts and `jq`).

use serde_json::{Value, json};

use crate::log::UnixMicros;
use crate::proto::json::{rfc3339, to_json};
use crate::proto::v1;

fn time(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.map(|t| rfc3339(UnixMicros::from_parts(t.seconds, t.nanos)))
}

fn seconds(d: Option<&prost_types::Duration>) -> Option<f64> {
    d.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

/// A recorded event as CloudEvents JSON with the log's extensions
/// (`rlstream`, `rlsequence`, `rlposition`, `rlrecordedtime`).
pub fn event_json(e: &v1::RecordedEvent) -> Value {
    let extra = [
        ("rlstream", json!(e.stream)),
        ("rlsequence", json!(e.sequence)),
        ("rlposition", json!(e.position)),
        (
            "rlrecordedtime",
            json!(time(e.recorded_at.as_ref()).unwrap_or_default()),
        ),
    ];
    match e.event.as_ref().map(|p| p.decode()) {
        Some(Ok(event)) => to_json(&event, &extra),
        _ => {
            let mut object = serde_json::Map::new();
            for (k, v) in extra {
                object.insert(k.to_owned(), v);
            }
            object.insert("error".into(), json!("undecodable event"));
            Value::Object(object)
        }
    }
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

/// A stream's description.
pub fn stream_json(s: &v1::StreamInfo) -> Value {
    let retention = s.retention.as_ref();
    json!({
        "stream": s.stream,
        "event_count": s.event_count,
        "first_sequence": s.first_sequence,
        "last_sequence": s.last_sequence,
        "last_position": s.last_position,
        "created_at": time(s.created_at.as_ref()),
        "last_appended_at": time(s.last_appended_at.as_ref()),
        "group_count": s.group_count,
        "retention": {
            "max_events": retention.map(|r| r.max_events).filter(|&n| n > 0),
            "max_age_seconds": seconds(retention.and_then(|r| r.max_age.as_ref())),
            "ttl_seconds": seconds(retention.and_then(|r| r.ttl.as_ref())),
        },
    })
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

/// A consumer group's description.
pub fn group_json(g: &v1::GroupInfo) -> Value {
    json!({
        "stream": g.stream,
        "group": g.group,
        "pending": g.pending,
        "lag": g.lag,
        "last_delivered_sequence": g.last_delivered_sequence,
        "ack_floor": g.ack_floor,
        "ack_timeout_seconds": seconds(g.ack_timeout.as_ref()),
        "max_deliveries": g.max_deliveries,
        "dead_letter_stream": g.dead_letter_stream,
        "created_at": time(g.created_at.as_ref()),
        "consumers": g.consumers.iter().map(|c| json!({
            "consumer": c.consumer,
            "pending": c.pending,
            "idle_seconds": seconds(c.idle.as_ref()),
            "connected": c.connected,
        })).collect::<Vec<_>>(),
    })
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

/// A pending entry.
pub fn pending_json(p: &v1::PendingEntry) -> Value {
    json!({
        "sequence": p.sequence,
        "consumer": p.consumer,
        "delivery_count": p.delivery_count,
        "idle_seconds": seconds(p.idle.as_ref()),
    })
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
