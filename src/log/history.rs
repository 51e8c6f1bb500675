//! The last hour of each stream's throughput and each consumer group's
//! backlog, kept in memory so that a console opened now can draw the past
//! hour.
//!
//! Time is cut into buckets of [`BUCKET`] (10 s); a series keeps at most
//! [`BUCKETS`] (360, one hour) of them, newest last, and drops a bucket
//! once it is an hour older than the newest one it was given. Only
//! buckets that received something are stored, so an idle series costs
//! nothing until it is read, when its gaps read as zero (throughput) or
//! as no sample (backlog).
//!
//! Throughput counts the events this process committed (the writer feeds
//! it before it answers the publishers, so a publish is counted once it is
//! acknowledged). With several processes writing one PostgreSQL database,
//! each counts its own commits. Backlog is what the group-metrics sampler
//! reads every `group_metrics_interval` (the `riverlog.group.lag` and
//! `riverlog.group.pending` gauges), at most one sample per bucket kept.
//!
//! Memory is bounded by counts, not by traffic: at most [`MAX_STREAMS`]
//! streams and [`MAX_GROUPS`] groups are tracked. A stream's series is at
//! most 360 × 16 bytes (5.6 KiB), a group's 360 × 32 bytes (11.3 KiB): about
//! 17 MB for both limits full, plus the names. When the limit is reached,
//! a stream idle for the whole hour makes room for a new one; if none is
//! idle, the new stream is not tracked (its history says so). Groups follow
//! the sampler, which samples at most as many groups as tracked here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::access::{Operation, authorize};
use super::{EventLog, LogError};
use crate::auth::Principal;
use crate::metrics::GroupSample;
use crate::model::names::{GroupName, StreamName};
use crate::model::records::UnixMicros;

/// Length of one bucket.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept per series: one hour.
pub const BUCKETS: usize = 360;
/// Most streams whose throughput is kept.
pub const MAX_STREAMS: usize = 1000;
/// Most consumer groups whose backlog is kept.
pub const MAX_GROUPS: usize = 1000;

const BUCKET_MICROS: i64 = BUCKET.as_micros() as i64;

/// The bucket holding `t`.
fn bucket_of(t: UnixMicros) -> i64 {
    t.0.div_euclid(BUCKET_MICROS)
}

/// When bucket `b` starts.
fn bucket_start(b: i64) -> UnixMicros {
    UnixMicros(b.saturating_mul(BUCKET_MICROS))
}

/// One series: a value per bucket that received one, oldest first, no two
/// for the same bucket, none [`BUCKETS`] or more older than the newest.
#[derive(Debug, Default)]
struct Series<V> {
    buckets: VecDeque<(i64, V)>,
}

impl<V: Default> Series<V> {
    /// The value of bucket `b`, created empty if needed; buckets that fall
    /// out of the hour before `b` go. A `b` older than the newest bucket
    /// (the wall clock stepped back) lands in the newest: a series never
    /// goes back in time.
    fn at(&mut self, b: i64) -> &mut V {
        match self.buckets.back() {
            Some(&(newest, _)) if newest >= b => {}
            _ => {
                self.buckets.push_back((b, V::default()));
                while self
                    .buckets
                    .front()
                    .is_some_and(|&(old, _)| old <= b - BUCKETS as i64)
                {
                    self.buckets.pop_front();
                }
            }
        }
        // Just pushed or already there.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last].1
    }
}

impl<V> Series<V> {
    /// The newest bucket given a value.
    fn newest(&self) -> Option<i64> {
        self.buckets.back().map(|&(b, _)| b)
    }

    /// The buckets from `first` on, oldest first.
    fn from(&self, first: i64) -> impl Iterator<Item = &(i64, V)> {
        self.buckets.iter().filter(move |&&(b, _)| b >= first)
    }
}

/// A consumer group's backlog at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogPoint {
    /// When it was sampled.
    pub time: UnixMicros,
    /// Retained events not yet delivered.
    pub lag: u64,
    /// Delivered, not yet acked.
    pub pending: u64,
}

/// Events appended to a stream in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThroughputPoint {
    /// When the bucket starts.
    pub start: UnixMicros,
    /// Events committed in it.
    pub events: u64,
    /// Events per second: over the whole bucket, or for the current one
    /// over its part elapsed (at least one second).
    pub per_second: f64,
}

/// A stream's throughput over the last hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// [`BUCKETS`] buckets, oldest first, the last the current (partial)
    /// one; buckets without events count zero.
    pub points: Vec<ThroughputPoint>,
    /// Whether the stream is tracked: `false` when [`MAX_STREAMS`] streams
    /// active within the hour were already tracked as it first appended
    /// (its points are then all zero).
    pub tracked: bool,
}

/// The in-memory history of every tracked stream and group.
#[derive(Debug)]
pub struct History {
    streams: Mutex<HashMap<String, Series<u64>>>,
    groups: Mutex<HashMap<(String, String), Series<BacklogPoint>>>,
    max_streams: usize,
    max_groups: usize,
}

impl Default for History {
    fn default() -> Self {
        Self::new(MAX_STREAMS, MAX_GROUPS)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each statement under the lock leaves the maps consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl History {
    /// A history tracking at most `max_streams` streams and `max_groups`
    /// groups.
    pub fn new(max_streams: usize, max_groups: usize) -> Self {
        Self {
            streams: Mutex::default(),
            groups: Mutex::default(),
            max_streams,
            max_groups,
        }
    }

    /// Counts events committed at `now`, as (stream, events) pairs.
    pub fn count_appended<'a>(
        &self,
        now: UnixMicros,
        appended: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let b = bucket_of(now);
        let mut streams = lock(&self.streams);
        for (stream, events) in appended {
            // Runs on the writer for every commit: a tracked stream costs a
            // lookup, no key allocation.
            if let Some(series) = streams.get_mut(stream) {
                *series.at(b) += events;
            } else if make_room(&mut streams, self.max_streams, b) {
                *streams.entry(stream.to_owned()).or_default().at(b) += events;
            }
        }
    }

    /// `stream`'s throughput over the hour up to `now`.
    pub fn throughput(&self, stream: &str, now: UnixMicros) -> Throughput {
        let current = bucket_of(now);
        let first = current - (BUCKETS as i64 - 1);
        let streams = lock(&self.streams);
        let series = streams.get(stream);
        let mut counts = vec![0; BUCKETS];
        for &(b, events) in series.into_iter().flat_map(|s| s.from(first)) {
            // A clock stepped back may leave the newest bucket ahead of now.
            let i = usize::try_from(b - first).unwrap_or(0).min(BUCKETS - 1);
            counts[i] += events;
        }
        let whole = BUCKET.as_secs_f64();
        let elapsed = Duration::from_micros(now.0.saturating_sub(bucket_start(current).0) as u64)
            .as_secs_f64()
            .max(1.0);
        let points = counts
            .into_iter()
            .enumerate()
            .map(|(i, events)| {
                let b = first + i as i64;
                let seconds = if b == current { elapsed } else { whole };
                ThroughputPoint {
                    start: bucket_start(b),
                    events,
                    per_second: events as f64 / seconds,
                }
            })
            .collect();
        Throughput {
            points,
            tracked: series.is_some() || streams.len() < self.max_streams,
        }
    }

    /// Records the sampler's backlog of every group at `now`. Groups
    /// missing from `samples` no longer exist (or are no longer sampled):
    /// their history goes.
    pub fn record_backlog(&self, now: UnixMicros, samples: &[GroupSample]) {
        let b = bucket_of(now);
        let mut groups = lock(&self.groups);
        let mut kept = HashMap::with_capacity(samples.len().min(self.max_groups));
        for s in samples.iter().take(self.max_groups) {
            let key = (s.stream.clone(), s.group.clone());
            let mut series = groups.remove(&key).unwrap_or_default();
            *series.at(b) = BacklogPoint {
                time: now,
                lag: s.lag,
                pending: s.pending,
            };
            kept.insert(key, series);
        }
        *groups = kept;
    }

    /// The backlog samples of `group` of `stream` over the hour up to
    /// `now`, oldest first.
    pub fn backlog(&self, stream: &str, group: &str, now: UnixMicros) -> Vec<BacklogPoint> {
        let first = bucket_of(now) - (BUCKETS as i64 - 1);
        lock(&self.groups)
            .get(&(stream.to_owned(), group.to_owned()))
            .map(|s| s.from(first).map(|&(_, p)| p).collect())
            .unwrap_or_default()
    }

    /// Forgets a deleted stream and its groups.
    pub fn forget_stream(&self, stream: &str) {
        lock(&self.streams).remove(stream);
        lock(&self.groups).retain(|(s, _), _| s != stream);
    }
}

impl EventLog {
    /// The throughput of `stream` over the last hour.
    ///
    /// # Errors
    /// PermissionDenied unless `caller` may inspect the stream;
    /// StreamNotFound.
    pub async fn stream_history(
        &self,
        caller: &Principal,
        stream: &StreamName,
    ) -> Result<Throughput, LogError> {
        self.get_stream(caller, stream).await?;
        Ok(self.history.throughput(stream.as_str(), UnixMicros::now()))
    }

    /// The backlog of `group` of `stream` over the last hour: the
    /// sampler's points, then the group's state read now, so the newest
    /// point is always current.
    ///
    /// # Errors
    /// PermissionDenied unless `caller` may inspect the stream;
    /// StreamNotFound, GroupNotFound.
    pub async fn group_history(
        &self,
        caller: &Principal,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<Vec<BacklogPoint>, LogError> {
        authorize(caller, Operation::Inspect(stream))?;
        let info = self.group_info(stream, group).await?;
        let now = UnixMicros::now();
        let mut points = self.history.backlog(stream.as_str(), group.as_str(), now);
        points.push(BacklogPoint {
            time: now,
            lag: info.state.lag,
            pending: info.state.pending,
        });
        Ok(points)
    }
}

/// Whether a new stream may be tracked at bucket `b`: there is room, or a
/// stream idle for the whole hour gives up its place.
fn make_room(streams: &mut HashMap<String, Series<u64>>, max: usize, b: i64) -> bool {
    if streams.len() < max {
        return true;
    }
    let idle = streams
        .iter()
        .find(|(_, s)| s.newest().is_none_or(|n| n <= b - BUCKETS as i64))
        .map(|(name, _)| name.clone());
    match idle {
        Some(name) => {
            streams.remove(&name);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A time `seconds` after an arbitrary bucket boundary.
    fn at(seconds: f64) -> UnixMicros {
        UnixMicros(1_800_000_000_000_000 + (seconds * 1e6) as i64)
    }

    fn sample(stream: &str, group: &str, lag: u64, pending: u64) -> GroupSample {
        GroupSample {
            stream: stream.into(),
            group: group.into(),
            lag,
            pending,
        }
    }

    fn events(t: &Throughput) -> Vec<u64> {
        t.points.iter().map(|p| p.events).collect()
    }

    #[test]
    fn throughput_covers_the_hour_in_buckets_ending_with_the_current_one() {
        let h = History::default();
        h.count_appended(at(1.0), [("orders", 3)]);
        h.count_appended(at(9.0), [("orders", 2), ("other", 7)]);
        h.count_appended(at(25.0), [("orders", 4)]);
        let t = h.throughput("orders", at(25.0));
        assert!(t.tracked);
        assert_eq!(t.points.len(), BUCKETS);
        let e = events(&t);
        assert_eq!(e[BUCKETS - 3..], [5, 0, 4]);
        assert_eq!(e.iter().sum::<u64>(), 9, "other streams are apart");
        let last = t.points[BUCKETS - 1];
        assert_eq!(last.start, at(20.0));
        assert_eq!(t.points[0].start, at(20.0 - 359.0 * 10.0));
        assert!(
            t.points
                .windows(2)
                .all(|w| w[1].start.0 - w[0].start.0 == 10_000_000)
        );
    }

    #[test]
    fn rates_are_per_second_of_the_bucket_or_of_its_elapsed_part() {
        let h = History::default();
        h.count_appended(at(0.0), [("s", 25)]);
        h.count_appended(at(14.0), [("s", 8)]);
        let t = h.throughput("s", at(14.0));
        let [.., closed, current] = t.points[..] else {
            panic!("points")
        };
        assert_eq!(closed.per_second, 2.5);
        assert_eq!(current.per_second, 2.0, "8 events in the 4 s elapsed");
        // Less than a second in, the rate is over one second, not a spike.
        h.count_appended(at(20.2), [("s", 3)]);
        let t = h.throughput("s", at(20.2));
        assert_eq!(t.points[BUCKETS - 1].per_second, 3.0);
    }

    #[test]
    fn a_series_wraps_after_an_hour_and_keeps_at_most_an_hour_of_buckets() {
        let mut s = Series::<u64>::default();
        for b in 0..1000 {
            *s.at(b) += 1;
            assert!(s.buckets.len() <= BUCKETS);
        }
        assert_eq!(s.buckets.len(), BUCKETS);
        assert_eq!(
            s.buckets.front().map(|&(b, _)| b),
            Some(1000 - BUCKETS as i64)
        );
        // A gap longer than the hour leaves only the new bucket.
        *s.at(5000) += 1;
        assert_eq!(s.buckets.len(), 1);
    }

    #[test]
    fn events_older_than_the_hour_are_not_shown() {
        let h = History::default();
        h.count_appended(at(0.0), [("s", 1)]);
        h.count_appended(at(3590.0), [("s", 2)]);
        assert_eq!(events(&h.throughput("s", at(3595.0)))[0], 1);
        assert_eq!(
            events(&h.throughput("s", at(3600.0))).iter().sum::<u64>(),
            2
        );
    }

    #[test]
    fn a_clock_stepping_back_counts_in_the_newest_bucket() {
        let h = History::default();
        h.count_appended(at(30.0), [("s", 1)]);
        h.count_appended(at(5.0), [("s", 1)]);
        let e = events(&h.throughput("s", at(30.0)));
        assert_eq!(e[BUCKETS - 1], 2);
        // Read with the earlier clock, the newest bucket still shows.
        assert_eq!(events(&h.throughput("s", at(5.0)))[BUCKETS - 1], 2);
    }

    #[test]
    fn the_stream_limit_holds_and_an_idle_stream_makes_room() {
        let h = History::new(2, 2);
        h.count_appended(at(0.0), [("a", 1), ("b", 1)]);
        h.count_appended(at(10.0), [("c", 5)]);
        let c = h.throughput("c", at(10.0));
        assert!(!c.tracked);
        assert_eq!(events(&c).iter().sum::<u64>(), 0);
        assert!(h.throughput("a", at(10.0)).tracked);
        // An hour later "b" is idle; "a" is not.
        h.count_appended(at(3590.0), [("a", 1)]);
        h.count_appended(at(3605.0), [("c", 5)]);
        assert!(h.throughput("c", at(3605.0)).tracked);
        assert!(!h.throughput("b", at(3605.0)).tracked);
        assert_eq!(lock(&h.streams).len(), 2);
    }

    #[test]
    fn backlog_keeps_one_sample_per_bucket_and_follows_the_sampled_groups() {
        let h = History::new(10, 2);
        h.record_backlog(at(1.0), &[sample("s", "g", 5, 1), sample("s", "h", 0, 0)]);
        h.record_backlog(at(4.0), &[sample("s", "g", 6, 2), sample("s", "h", 1, 0)]);
        h.record_backlog(at(15.0), &[sample("s", "g", 2, 0), sample("t", "x", 9, 9)]);
        let g = h.backlog("s", "g", at(15.0));
        assert_eq!(
            g,
            [
                BacklogPoint {
                    time: at(4.0),
                    lag: 6,
                    pending: 2
                },
                BacklogPoint {
                    time: at(15.0),
                    lag: 2,
                    pending: 0
                }
            ]
        );
        assert!(
            h.backlog("s", "h", at(15.0)).is_empty(),
            "no longer sampled"
        );
        assert_eq!(h.backlog("t", "x", at(15.0)).len(), 1);
        assert_eq!(
            h.backlog("s", "g", at(3605.0)).len(),
            1,
            "one left the hour"
        );
        assert!(h.backlog("s", "g", at(3615.0)).is_empty(), "both left it");
        // The group limit holds whatever the sampler sends.
        h.record_backlog(
            at(20.0),
            &[
                sample("a", "1", 1, 1),
                sample("a", "2", 1, 1),
                sample("a", "3", 1, 1),
            ],
        );
        assert_eq!(lock(&h.groups).len(), 2);
    }

    #[test]
    fn forgetting_a_stream_drops_its_throughput_and_groups() {
        let h = History::default();
        h.count_appended(at(0.0), [("s", 1), ("t", 1)]);
        h.record_backlog(at(0.0), &[sample("s", "g", 1, 0), sample("t", "g", 1, 0)]);
        h.forget_stream("s");
        assert_eq!(events(&h.throughput("s", at(0.0))).iter().sum::<u64>(), 0);
        assert!(h.backlog("s", "g", at(0.0)).is_empty());
        assert_eq!(events(&h.throughput("t", at(0.0))).iter().sum::<u64>(), 1);
        assert_eq!(h.backlog("t", "g", at(0.0)).len(), 1);
    }
}
