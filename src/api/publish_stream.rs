//! The transport of `PublishStream`: many publishes on one call, pipelined
//! and answered in request order.
//!
//! Each request goes through the same path as a unary `Publish`
//! (`EventLogApi::queue_publish`): its checks run and its events are queued
//! for the writer, but its commit is not awaited before the next request
//! is read. The writer applies commands in the order they were queued, so
//! the requests of one call are applied in the order they were sent and
//! share group commits; their answers are sent in that same order, each
//! as soon as it and every one before it is known.
//!
//! # The window
//! At most [`Window::requests`] requests, and about [`Window::bytes`] of
//! their events, are read and not yet answered. With the window full the
//! pipeline reads nothing more: the request body stops being polled,
//! HTTP/2 flow control stops the client, and a client that never reads
//! its answers holds at most a window of work on the server. Answers
//! themselves are produced only as the transport asks for them.
//!
//! # Ending
//! After the client half-closes, every request read is answered, then the
//! call ends OK. When the call fails as a whole (the server shuts down, a
//! request does not decode), the pipeline stops reading, answers every
//! request it read, and only then ends with that status: a request without
//! an answer was never read.

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::{Future, FutureExt, Stream, StreamExt};
use opentelemetry::KeyValue;
use tonic::Status;

use super::message_size;
use crate::log::LogError;
use crate::metrics::Metrics;
use crate::proto::v1;
use crate::service::failure::Failure;

/// How much of a call may be read and not yet answered.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Most requests in flight.
    pub requests: usize,
    /// Encoded event bytes in flight past which no further request is
    /// read (the request that crosses it is the last one read; one
    /// request is always admitted, however large).
    pub bytes: usize,
}

impl Window {
    /// The window of every call: 256 requests and 16 MiB of events (a
    /// full-size publish under the default `max_batch_bytes` fits).
    pub const DEFAULT: Self = Self {
        requests: 256,
        bytes: 16 << 20,
    };
}

/// The answer to a refused request.
pub fn refusal(failure: Failure) -> v1::PublishResponse {
    v1::PublishResponse {
        positions: Vec::new(),
        error: Some(failure.into()),
    }
}

/// A request read and not yet answered.
struct InFlight<F> {
    answer: F,
    /// Encoded event bytes it holds against the window.
    bytes: usize,
}

impl<F: Future + Unpin> Future for InFlight<F> {
    type Output = (F::Output, usize);

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let bytes = self.bytes;
        self.answer.poll_unpin(cx).map(|answer| (answer, bytes))
    }
}

/// The state of one call (see the module documentation).
struct Pipeline<R, S, F: Future + Unpin> {
    /// The call's request body: polled only while the window has room, so
    /// HTTP/2 flow control holds back a client that sends too fast.
    requests: R,
    /// Checks a request and queues it; resolves once queued, to its
    /// answer.
    submit: S,
    /// Requests read and not yet answered, in request order: answers go
    /// out in that order whatever order their commits are decided in.
    in_flight: FuturesOrdered<InFlight<F>>,
    /// Encoded event bytes of `in_flight`, held against `window.bytes`.
    in_flight_bytes: usize,
    /// How much may be read and not yet answered.
    window: Window,
    /// Whether requests are still read: not after the client half-closed,
    /// a request did not decode, or the server began to shut down.
    reading: bool,
    /// The status the call ends with once every read request is answered;
    /// `None`: OK.
    end: Option<Status>,
    /// Resolves when the server begins to shut down: the call stops
    /// reading then, rather than holding the shutdown open.
    stopping: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Where the in-flight gauge and the answer counter go.
    metrics: Arc<Metrics>,
    /// Requests answered, with and without a refusal, for the call's
    /// closing log line.
    answered: u64,
    refused: u64,
    /// Whether the call's end was returned: the stream yields nothing
    /// after it.
    finished: bool,
}

/// Answers `requests` in order, submitting each with `submit` without
/// waiting for the answers before it, within `window`, until the client
/// half-closes or `stopping` resolves.
pub fn answers<R, S, SF, F>(
    requests: R,
    submit: S,
    window: Window,
    stopping: impl Future<Output = ()> + Send + 'static,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<v1::PublishResponse, Status>> + Send + 'static
where
    R: Stream<Item = Result<v1::PublishRequest, Status>> + Unpin + Send + 'static,
    S: FnMut(v1::PublishRequest) -> SF + Send + 'static,
    SF: Future<Output = F> + Send,
    F: Future<Output = v1::PublishResponse> + Unpin + Send + 'static,
{
    let pipeline = Pipeline {
        requests,
        submit,
        in_flight: FuturesOrdered::new(),
        in_flight_bytes: 0,
        window,
        reading: true,
        end: None,
        stopping: Box::pin(stopping),
        metrics,
        answered: 0,
        refused: 0,
        finished: false,
    };
    futures::stream::unfold(pipeline, |mut p| async move {
        let item = p.next_answer().await?;
        Some((item, p))
    })
}

impl<R, S, SF, F> Pipeline<R, S, F>
where
    R: Stream<Item = Result<v1::PublishRequest, Status>> + Unpin,
    S: FnMut(v1::PublishRequest) -> SF,
    SF: Future<Output = F>,
    F: Future<Output = v1::PublishResponse> + Unpin,
{
    fn has_room(&self) -> bool {
        self.in_flight.is_empty()
            || (self.in_flight.len() < self.window.requests
                && self.in_flight_bytes < self.window.bytes)
    }

    /// The next answer in request order, or the call's end: `None` after
    /// an OK end, the failure once, then `None`.
    async fn next_answer(&mut self) -> Option<Result<v1::PublishResponse, Status>> {
        loop {
            if self.finished {
                return None;
            }
            if !self.reading && self.in_flight.is_empty() {
                self.finished = true;
                tracing::debug!(
                    answered = self.answered,
                    refused = self.refused,
                    "publish stream ended"
                );
                return self.end.take().map(Err);
            }
            let room = self.has_room();
            tokio::select! {
                // Answers first: they free the window.
                biased;
                Some((answer, bytes)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.in_flight_bytes -= bytes;
                    self.metrics.publish_stream_in_flight.add(-1, &[]);
                    self.record(&answer);
                    return Some(Ok(answer));
                }
                () = &mut self.stopping, if self.reading => {
                    self.stop_reading(Some(LogError::ShuttingDown.into()));
                }
                next = self.requests.next(), if self.reading && room => match next {
                    Some(Ok(request)) => {
                        let bytes = request.events.iter().map(|e| e.encoded().len()).sum();
                        let answer = (self.submit)(request).await;
                        self.metrics.publish_stream_in_flight.add(1, &[]);
                        self.in_flight_bytes += bytes;
                        self.in_flight.push_back(InFlight { answer, bytes });
                    }
                    Some(Err(status)) => self.stop_reading(Some(undecodable(status))),
                    None => self.stop_reading(None),
                },
            }
        }
    }

    fn stop_reading(&mut self, end: Option<Status>) {
        self.reading = false;
        self.end = end;
    }

    fn record(&mut self, answer: &v1::PublishResponse) {
        let code = answer.error.as_ref().map_or(0, |e| e.code);
        self.answered += 1;
        if code != 0 {
            self.refused += 1;
        }
        self.metrics
            .publish_stream_requests
            .add(1, &[KeyValue::new("rpc.grpc.status_code", i64::from(code))]);
    }
}

impl<R, S, F: Future + Unpin> Drop for Pipeline<R, S, F> {
    fn drop(&mut self) {
        // A call cut short leaves requests unanswered.
        let open = i64::try_from(self.in_flight.len()).unwrap_or(i64::MAX);
        if open > 0 {
            self.metrics.publish_stream_in_flight.add(-open, &[]);
        }
    }
}

/// The status a call ends with when its next request cannot be read: an
/// oversized message is RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE), as for a
/// unary call; anything else (MALFORMED_REQUEST from the codec, a reset
/// by the client) as it came.
fn undecodable(status: Status) -> Status {
    match message_size::too_large(&status) {
        Some(failure) => failure.into(),
        None => status,
    }
}

#[cfg(test)]
// Submitting resolves to the answer's future: that is the design.
#[allow(clippy::async_yields_async)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::Either;
    use tokio::sync::oneshot;

    use super::*;
    use crate::proto::EventPayload;

    type Answered = oneshot::Sender<v1::PublishResponse>;
    /// The requests submitted, by stream, each with its answer to give.
    type Queue = tokio::sync::mpsc::UnboundedReceiver<(String, Answered)>;

    /// A request of `bytes` encoded event bytes, told apart by `stream`.
    fn request(stream: usize, bytes: usize) -> v1::PublishRequest {
        v1::PublishRequest {
            stream: stream.to_string(),
            events: vec![EventPayload::from_encoded(vec![0u8; bytes].into())],
            expected: None,
        }
    }

    /// Answers naming the request's stream, sent when the test says.
    fn answer(stream: &str) -> v1::PublishResponse {
        v1::PublishResponse {
            positions: vec![v1::PublishedPosition {
                id: stream.to_owned(),
                ..Default::default()
            }],
            error: None,
        }
    }

    /// A pipeline over `requests` whose answers the test gives through the
    /// returned channel, request by request; `read` counts the requests
    /// the pipeline took.
    fn pipeline(
        requests: Vec<v1::PublishRequest>,
        window: Window,
    ) -> (
        impl Stream<Item = Result<v1::PublishResponse, Status>>,
        Queue,
        Arc<AtomicUsize>,
    ) {
        let read = Arc::new(AtomicUsize::new(0));
        let counted = read.clone();
        let requests = futures::stream::iter(requests.into_iter().map(Ok)).inspect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let (queued, queue) = tokio::sync::mpsc::unbounded_channel();
        let submit = move |r: v1::PublishRequest| {
            let (answered, answer) = oneshot::channel();
            let _ = queued.send((r.stream, answered));
            async move {
                Either::<futures::future::Ready<_>, _>::Right(
                    answer.map(|a| a.unwrap_or_else(|_| refusal(LogError::ShuttingDown.into()))),
                )
            }
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let answers = answers(
            requests,
            submit,
            window,
            futures::future::pending(),
            metrics,
        );
        (answers, queue, read)
    }

    #[test]
    fn the_window_is_the_one_the_api_documents() {
        let proto = include_str!("../../proto/riverlog/v1/event_log.proto");
        let documented = format!(
            "// Window: at most {} requests, and about {} MiB of events, are read and",
            Window::DEFAULT.requests,
            Window::DEFAULT.bytes >> 20
        );
        assert!(proto.contains(&documented), "{documented}");
    }

    #[tokio::test]
    async fn a_full_window_reads_no_further_request_until_an_answer_goes_out() {
        let window = Window {
            requests: 3,
            bytes: usize::MAX,
        };
        let (answers, mut queue, read) = pipeline((0..10).map(|i| request(i, 1)).collect(), window);
        let mut answers = Box::pin(answers);
        // Nothing answered yet: the pipeline reads a window and waits.
        assert!(futures::poll!(answers.next()).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 3);
        let mut pending: Vec<_> = std::iter::from_fn(|| queue.try_recv().ok()).collect();
        assert_eq!(pending.len(), 3);
        // A later answer known first still waits for the earlier one.
        let (second, tx) = pending.remove(1);
        tx.send(answer(&second)).unwrap();
        assert!(futures::poll!(answers.next()).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 3, "the window is still full");
        let (first, tx) = pending.remove(0);
        tx.send(answer(&first)).unwrap();
        let got = answers.next().await.unwrap().unwrap();
        assert_eq!(got.positions[0].id, "0");
        let got = answers.next().await.unwrap().unwrap();
        assert_eq!(got.positions[0].id, "1");
        // Two answers out: two more requests read, no more.
        assert!(futures::poll!(answers.next()).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn the_window_counts_bytes_and_always_admits_one_request() {
        let window = Window {
            requests: 100,
            bytes: 1000,
        };
        // 600 + 600 crosses the bound: the second is the last read. A
        // request larger than the whole window still goes through alone.
        let requests = vec![request(0, 600), request(1, 600), request(2, 5000)];
        let (answers, mut queue, read) = pipeline(requests, window);
        let mut answers = Box::pin(answers);
        assert!(futures::poll!(answers.next()).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 2);
        for _ in 0..2 {
            let (s, tx) = queue.try_recv().unwrap();
            tx.send(answer(&s)).unwrap();
            answers.next().await.unwrap().unwrap();
        }
        assert!(futures::poll!(answers.next()).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 3);
        let (s, tx) = queue.try_recv().unwrap();
        tx.send(answer(&s)).unwrap();
        assert_eq!(answers.next().await.unwrap().unwrap().positions[0].id, "2");
        assert!(
            answers.next().await.is_none(),
            "half-closed and all answered"
        );
    }

    #[tokio::test]
    async fn an_undecodable_request_ends_the_call_after_the_answers_before_it() {
        let requests = futures::stream::iter(vec![
            Ok(request(0, 1)),
            Err(Status::invalid_argument("malformed request: bad bytes")),
            Ok(request(2, 1)),
        ]);
        let submit = |r: v1::PublishRequest| async move {
            Either::<_, futures::future::Ready<_>>::Left(futures::future::ready(answer(&r.stream)))
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let all: Vec<_> = answers(
            requests,
            submit,
            Window::DEFAULT,
            futures::future::pending(),
            metrics,
        )
        .collect()
        .await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap().positions[0].id, "0");
        let end = all[1].as_ref().unwrap_err();
        assert_eq!(end.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn shutting_down_stops_reading_answers_what_was_read_then_ends_unavailable() {
        let (stop, stopping) = oneshot::channel::<()>();
        let (more, requests) = tokio::sync::mpsc::unbounded_channel();
        let requests = tokio_stream::wrappers::UnboundedReceiverStream::new(requests).map(Ok);
        let (answered, answer_rx) = oneshot::channel();
        let mut answer_rx = Some(answer_rx);
        let submit = move |_r: v1::PublishRequest| {
            let rx = answer_rx.take().expect("one request");
            async move { Either::<futures::future::Ready<_>, _>::Right(rx.map(|a| a.unwrap())) }
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let answers = answers(
            requests,
            submit,
            Window::DEFAULT,
            stopping.map(|_| ()),
            metrics,
        );
        let mut answers = Box::pin(answers);
        more.send(request(0, 1)).unwrap();
        assert!(futures::poll!(answers.next()).is_pending());
        stop.send(()).unwrap();
        // Sent after the shutdown began: never read.
        more.send(request(1, 1)).unwrap();
        assert!(futures::poll!(answers.next()).is_pending());
        answered.send(answer("0")).unwrap();
        assert_eq!(answers.next().await.unwrap().unwrap().positions[0].id, "0");
        let end = answers.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(answers.next().await.is_none());
    }
}
