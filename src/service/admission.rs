//! Admission of calls, the same on every transport: open streaming calls
//! (in total and per client connection), open PublishStream calls and the
//! bytes they may have queued for commit, each token's publish rate, and
//! the checks a publish's events pass before they reach the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use bytes::Bytes;

use super::convert;
use super::failure::{Failure, exhausted};
use super::trace_context::TraceContext;
use crate::auth::Principal;
use crate::log::{EventAttributes, LogError};
use crate::proto::EventPayload;

/// Counts open Subscribe and Consume streams against their limits.
#[derive(Debug)]
pub struct SubscriptionSlots {
    max_total: usize,
    max_per_connection: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_connection: HashMap<SocketAddr, usize>,
}

/// One open streaming call; its slot frees when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<SubscriptionSlots>,
    connection: Option<SocketAddr>,
}

impl SubscriptionSlots {
    /// Allows `max_total` open streams, `max_per_connection` per client
    /// connection.
    pub fn new(max_total: usize, max_per_connection: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_connection,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a stream on `connection` (its peer address, which
    /// tells connections apart), or says which limit is reached.
    pub fn acquire(self: &Arc<Self>, connection: Option<SocketAddr>) -> Result<Slot, Failure> {
        let mut open = self.lock();
        let refuse = |scope: &str, limit: usize| {
            let metadata = HashMap::from([
                ("scope".to_owned(), scope.to_owned()),
                ("limit".to_owned(), limit.to_string()),
            ]);
            exhausted(
                &format!("at most {limit} open subscriptions and consumers per {scope}"),
                "TOO_MANY_SUBSCRIPTIONS",
                metadata,
                None,
            )
        };
        if open.total >= self.max_total {
            return Err(refuse("server", self.max_total));
        }
        if let Some(addr) = connection {
            let on_connection = open.per_connection.entry(addr).or_default();
            if *on_connection >= self.max_per_connection {
                return Err(refuse("connection", self.max_per_connection));
            }
            *on_connection += 1;
        }
        open.total += 1;
        Ok(Slot {
            slots: self.clone(),
            connection,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(addr) = self.connection {
            if let Some(n) = open.per_connection.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    open.per_connection.remove(&addr);
                }
            }
        }
    }
}

/// What all PublishStream calls together may hold on the server: a call
/// pipelines up to its own window, so without a bound shared by every
/// call, a few producers could fill the writer's queue and make unary
/// publishes, acks and dispatch wait behind their backlog.
#[derive(Debug)]
pub struct PublishStreamLimits {
    max_calls: usize,
    calls: Mutex<usize>,
    /// Encoded event bytes (at least [`PublishStreamLimits::REQUEST_FLOOR`]
    /// per request) queued for commit and not yet committed, over all
    /// calls.
    buffer: Arc<tokio::sync::Semaphore>,
    buffer_bytes: usize,
}

/// One open PublishStream call; frees its place when dropped.
#[derive(Debug)]
pub struct PublishStreamSlot(Arc<PublishStreamLimits>);

/// A request's share of the buffer, given back once its commit is decided.
pub type BufferShare = tokio::sync::OwnedSemaphorePermit;

impl PublishStreamLimits {
    /// What each request costs the buffer at least, however small its
    /// events: the buffer bounds how many requests wait for the writer too.
    pub const REQUEST_FLOOR: usize = 1024;

    /// Allows `max_calls` open calls holding `buffer_bytes` queued for
    /// commit between them.
    pub fn new(max_calls: usize, buffer_bytes: usize) -> Arc<Self> {
        // A request takes its share in one acquire, counted in u32.
        let buffer_bytes = buffer_bytes.clamp(1, u32::MAX as usize);
        Arc::new(Self {
            max_calls,
            calls: Mutex::new(0),
            buffer: Arc::new(tokio::sync::Semaphore::new(buffer_bytes)),
            buffer_bytes,
        })
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, usize> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more call, or RESOURCE_EXHAUSTED
    /// `TOO_MANY_PUBLISH_STREAMS`.
    pub fn open_call(self: &Arc<Self>) -> Result<PublishStreamSlot, Failure> {
        let mut calls = self.calls();
        if *calls >= self.max_calls {
            let limit = self.max_calls;
            return Err(exhausted(
                &format!("at most {limit} open PublishStream calls on the server"),
                "TOO_MANY_PUBLISH_STREAMS",
                HashMap::from([("limit".to_owned(), limit.to_string())]),
                None,
            ));
        }
        *calls += 1;
        Ok(PublishStreamSlot(self.clone()))
    }

    /// Waits until a request of `bytes` encoded event bytes fits in the
    /// buffer (first come, first served across calls) and takes its share.
    /// A request larger than the whole buffer waits for all of it.
    pub async fn reserve(&self, bytes: usize) -> BufferShare {
        let cost = bytes.max(Self::REQUEST_FLOOR).min(self.buffer_bytes);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        self.buffer
            .clone()
            .acquire_many_owned(cost)
            .await
            .expect("the buffer's semaphore is never closed")
    }
}

impl Drop for PublishStreamSlot {
    fn drop(&mut self) {
        let mut calls = self.0.calls();
        *calls = calls.saturating_sub(1);
    }
}

/// Each token's publish rate, in events per second with a burst.
pub struct PublishRate {
    /// Keyed by token name: tokens are configured, so the keys are bounded.
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl PublishRate {
    /// `per_second` events with bursts of `burst`; 0 per second: no limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Spends `events` of the caller's allowance, or says when to retry.
    pub fn check(&self, principal: &Principal, events: usize) -> Result<(), Failure> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        let metadata = || HashMap::from([("token".to_owned(), principal.name.clone())]);
        match limiter.check_key_n(&principal.name, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(exhausted(
                    &format!(
                        "publish rate limit of token {:?} reached; retry in {wait:?}",
                        principal.name
                    ),
                    "RATE_LIMITED",
                    metadata(),
                    Some(wait),
                ))
            }
            // Waiting would never help: the batch is too large for the
            // token's burst, like one over max_batch_events.
            Err(capacity) => Err(LogError::BatchTooLarge(format!(
                "{events} events in one publish exceed the burst of {} that token {:?} may publish at once",
                capacity.0, principal.name
            ))
            .into()),
        }
    }
}

/// The limits every service consults.
pub struct CallLimits {
    /// Open Subscribe and Consume calls.
    pub slots: Arc<SubscriptionSlots>,
    /// Open PublishStream calls and what they hold.
    pub publish_streams: Arc<PublishStreamLimits>,
    /// Publish rates.
    pub publish_rate: PublishRate,
    /// Largest encoded event, which added trace context must not push
    /// an event past.
    pub max_event_size: usize,
}

/// Admits a publish's events the same way on every transport: within the
/// caller's publish rate, each a valid CloudEvent encoding, with the call's
/// trace context added where an event has none and it fits.
pub fn admit_events(
    limits: &CallLimits,
    principal: &Principal,
    events: Vec<EventPayload>,
    trace: Option<&TraceContext>,
) -> Result<Vec<(EventAttributes, Bytes)>, Failure> {
    limits.publish_rate.check(principal, events.len())?;
    let mut admitted = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| convert::event_attributes(e, i))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(trace) = trace {
        for event in &mut admitted {
            trace.attach(event, limits.max_event_size);
        }
    }
    Ok(admitted)
}
