//! Wake-ups and live connections of the consumer groups on this server.
//!
//! Fetch and Consume wait on their group's signal when there is no work;
//! whatever may make work available (an ack, nack, claim, release or
//! removed consumer) wakes it. Kept in memory only: another replica's acks
//! reach these waiters at the latest when their next pending entry falls
//! due or their wait ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::model::names::{GroupName, StreamName};

/// Wake-ups and live connections of the consumer groups on this server.
#[derive(Default)]
pub(crate) struct GroupSignals {
    groups: Mutex<HashMap<(StreamName, GroupName), Arc<GroupSignal>>>,
}

/// One group's wake-up and its connected consumers.
#[derive(Default)]
pub(crate) struct GroupSignal {
    /// Woken when entries may have become deliverable or credit was freed.
    pub(super) changed: Notify,
    /// Open Consume streams per consumer name.
    connected: Mutex<HashMap<String, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the map consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupSignals {
    pub(super) fn get(&self, stream: &StreamName, group: &GroupName) -> Arc<GroupSignal> {
        lock(&self.groups)
            .entry((stream.clone(), group.clone()))
            .or_default()
            .clone()
    }

    pub(crate) fn wake(&self, stream: &StreamName, group: &GroupName) {
        if let Some(signal) = lock(&self.groups).get(&(stream.clone(), group.clone())) {
            signal.changed.notify_waiters();
        }
    }

    /// Wakes and drops the signal of a deleted group; its waiters find the
    /// group gone.
    pub(super) fn forget(&self, stream: &StreamName, group: &GroupName) {
        if let Some(signal) = lock(&self.groups).remove(&(stream.clone(), group.clone())) {
            signal.changed.notify_waiters();
        }
    }

    /// Wakes and drops the signals of every group of a deleted stream.
    pub(crate) fn forget_stream(&self, stream: &StreamName) {
        lock(&self.groups).retain(|(s, _), signal| {
            let keep = s != stream;
            if !keep {
                signal.changed.notify_waiters();
            }
            keep
        });
    }

    pub(super) fn connected(&self, stream: &StreamName, group: &GroupName) -> Vec<String> {
        let Some(signal) = lock(&self.groups)
            .get(&(stream.clone(), group.clone()))
            .cloned()
        else {
            return Vec::new();
        };
        let mut names: Vec<String> = lock(&signal.connected).keys().cloned().collect();
        names.sort();
        names
    }
}

/// Counts a Consume stream as connected for as long as it lives.
pub(super) struct Connection {
    signal: Arc<GroupSignal>,
    consumer: String,
}

impl Connection {
    pub(super) fn open(signal: Arc<GroupSignal>, consumer: &str) -> Self {
        *lock(&signal.connected)
            .entry(consumer.to_owned())
            .or_default() += 1;
        Self {
            signal,
            consumer: consumer.to_owned(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut connected = lock(&self.signal.connected);
        if let Some(n) = connected.get_mut(&self.consumer) {
            *n -= 1;
            if *n == 0 {
                connected.remove(&self.consumer);
            }
        }
    }
}
