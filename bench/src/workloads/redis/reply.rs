//! Stream entries out of raw Redis replies (RESP2 arrays), read without a
//! map per entry.

use anyhow::Context;
use redis::Value;

use crate::measure::read_stamp;

/// One stream entry: its id and the send-time stamp in its data field.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The entry id, `ms-seq`.
    pub id: String,
    /// The stamp in the first 8 bytes of its first field's value.
    pub stamp: Option<u64>,
}

fn text(v: &Value) -> anyhow::Result<String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => anyhow::bail!("expected a string in the reply, got {other:?}"),
    }
}

/// The entries of an XRANGE reply: `[[id, [field, value, ...]], ...]`.
pub fn entries(v: &Value) -> anyhow::Result<Vec<Entry>> {
    let items = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => anyhow::bail!("expected an array of entries, got {other:?}"),
    };
    items
        .iter()
        .map(|item| {
            let Value::Array(pair) = item else {
                anyhow::bail!("expected an [id, fields] entry, got {item:?}");
            };
            let id = text(pair.first().context("an entry without id")?)?;
            let stamp = match pair.get(1) {
                Some(Value::Array(fields)) => match fields.get(1) {
                    Some(Value::BulkString(data)) => read_stamp(data),
                    _ => None,
                },
                _ => None,
            };
            Ok(Entry { id, stamp })
        })
        .collect()
}

/// The entries of an XREAD or XREADGROUP reply, every stream's in order:
/// `[[key, entries], ...]`, or nil when a BLOCK timed out.
pub fn xread(v: &Value) -> anyhow::Result<Vec<Entry>> {
    let streams = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        other => anyhow::bail!("expected an XREAD reply, got {other:?}"),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(pair) = stream else {
            anyhow::bail!("expected a [key, entries] pair, got {stream:?}");
        };
        out.extend(entries(pair.get(1).context("a stream without entries")?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    #[test]
    fn reads_xread_replies() {
        let data = crate::measure::stamped_data(16, 42);
        let entry = Value::Array(vec![
            bulk(b"1-0"),
            Value::Array(vec![bulk(b"d"), bulk(&data)]),
        ]);
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![entry]),
        ])]);
        assert_eq!(
            xread(&reply).expect("parses"),
            vec![Entry {
                id: "1-0".into(),
                stamp: Some(42)
            }]
        );
        assert!(xread(&Value::Nil).expect("nil").is_empty());
        assert!(xread(&Value::Int(1)).is_err());
    }
}
