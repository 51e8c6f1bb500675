//! Appending a publish request inside the write transaction: duplicate ids
//! answered with the original, the expected-sequence check, the per-stream
//! limit, then sequences and positions assigned.

use std::collections::{HashMap, HashSet};

use super::answer::Outcome;
use super::command::{AppendRequest, Appended};
use super::transaction::Transaction;
use crate::log::error::{Expectation, LogError};
use crate::model::records::{Retention, StoredEvent};
use crate::storage::EventRow;

impl Transaction {
    /// Appends `req`'s events, or decides why not.
    pub(super) async fn append(&mut self, req: &AppendRequest) -> Outcome<Vec<Appended>> {
        let head = self.head(&req.stream).await?;

        // Which events the stream already holds: in storage, earlier in this
        // transaction, or earlier in this same request.
        let mut known: HashMap<String, Appended> = HashMap::new();
        if let Some(h) = &head {
            let mut to_look_up = Vec::new();
            for e in &req.events {
                let key = (h.id, e.id.clone());
                if let Some(&i) = self.unflushed_ids.get(&key) {
                    known.insert(e.id.clone(), appended(&self.rows[i].event, true));
                } else if self.prefetched.contains(&h.id) {
                    let remembered = || self.remembered.get(&key).filter(|_| req.dedup_removed);
                    if let Some(original) = self.existing.get(&key).or_else(remembered) {
                        known.insert(e.id.clone(), original.clone());
                    }
                } else {
                    to_look_up.push((h.id, e.id.as_str()));
                }
            }
            if !to_look_up.is_empty() {
                let (retained, removed) =
                    self.find_originals(&to_look_up, req.dedup_removed).await?;
                for found in retained.into_iter().chain(removed) {
                    known.insert(found.id.clone(), found.into());
                }
            }
        }
        let is_retry = req.events.iter().all(|e| known.contains_key(e.id.as_str()));
        if is_retry {
            return Ok(Ok(req
                .events
                .iter()
                .map(|e| known[e.id.as_str()].clone())
                .collect()));
        }

        let actual = head.as_ref().map(|h| h.last_sequence);
        let satisfied = match req.expected {
            Expectation::Any => true,
            Expectation::NoStream => head.is_none(),
            Expectation::Exists => head.is_some(),
            Expectation::LastSequence(s) => actual.unwrap_or(0) == s,
        };
        if !satisfied {
            return Ok(Err(LogError::WrongExpectedSequence {
                stream: req.stream.to_string(),
                expected: req.expected,
                actual,
            }));
        }

        let limit = self.limits.max_stream_events;
        if limit > 0 {
            let new = req
                .events
                .iter()
                .filter(|e| !known.contains_key(e.id.as_str()))
                .map(|e| e.id.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            let held = head.as_ref().map_or(0, |h| h.event_count);
            if held + new > limit {
                return Ok(Err(LogError::StreamFull {
                    stream: req.stream.to_string(),
                    limit,
                }));
            }
        }
        let mut head = match head {
            Some(h) => h,
            None if req.auto_create => {
                if let Err(e) = self.make_room_for_stream().await? {
                    return Ok(Err(e));
                }
                let h = self
                    .tx
                    .create_stream(&req.stream, &Retention::default(), self.now)
                    .await?;
                // A new stream stores nothing yet: no lookups needed.
                self.prefetched.insert(h.id);
                self.heads.insert(req.stream.clone(), Some(h.clone()));
                h
            }
            None => return Ok(Err(LogError::StreamNotFound(req.stream.to_string()))),
        };
        let mut position = match self.log_head {
            Some(p) => p,
            None => self.tx.log_head().await?,
        };

        let mut results = Vec::with_capacity(req.events.len());
        for e in &req.events {
            if let Some(a) = known.get(e.id.as_str()) {
                results.push(a.clone());
                continue;
            }
            head.last_sequence += 1;
            position += 1;
            let event = StoredEvent {
                stream: req.stream.clone(),
                sequence: head.last_sequence,
                position,
                recorded_at: self.now,
                id: e.id.clone(),
                event_type: e.event_type.clone(),
                source: e.source.clone(),
                subject: e.subject.clone(),
                payload: e.payload.clone(),
            };
            let a = appended(&event, false);
            // A repeated id later in this request is a duplicate of this one.
            known.insert(
                e.id.clone(),
                Appended {
                    duplicate: true,
                    ..a.clone()
                },
            );
            self.unflushed_ids
                .insert((head.id, e.id.clone()), self.rows.len());
            self.rows.push(EventRow {
                stream_id: head.id,
                event,
            });
            head.event_count += 1;
            results.push(a);
        }
        head.last_position = position;
        head.last_appended_at = Some(self.now);
        self.set_head(head);
        self.log_head = Some(position);
        self.log_head_dirty = true;
        Ok(Ok(results))
    }
}

fn appended(e: &StoredEvent, duplicate: bool) -> Appended {
    Appended {
        id: e.id.clone(),
        sequence: e.sequence,
        position: e.position,
        recorded_at: e.recorded_at,
        duplicate,
    }
}
