//! gRPC adapter of the `EventLog` service: decode, call the domain, encode.

use std::sync::Arc;

use futures::future::{self, Either};
use futures::{FutureExt, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{guard, publish_stream};
use crate::auth::Principal;
use crate::log::{
    Appended, EventLog, Expectation, LogError, PublishBatch, Queued, ReadQuery, SubscribeQuery,
    SubscriptionItem, parse,
};
use crate::metrics::Metrics;
use crate::model::query::{Direction, ReadFrom, TakeEnd, TrimUntil};
use crate::proto::v1::{self, event_log_server, publish_request, read_request, subscribe_response};
use crate::service::admission::{CallLimits, PublishStreamSlot, admit_events};
use crate::service::convert;
use crate::service::failure::Failure;
use crate::service::trace_context::TraceContext;

/// The `riverlog.v1.EventLog` service.
#[derive(Clone)]
pub struct EventLogApi {
    log: EventLog,
    limits: Arc<CallLimits>,
    /// PublishStream's own instruments.
    metrics: Arc<Metrics>,
}

impl EventLogApi {
    /// Serves `log` over gRPC within `limits`.
    pub fn new(log: EventLog, limits: Arc<CallLimits>, metrics: Arc<Metrics>) -> Self {
        Self {
            log,
            limits,
            metrics,
        }
    }

    /// Checks one publish request and queues its events for commit: all a
    /// unary Publish does before it awaits the commit, and what each
    /// PublishStream request does before the next is read.
    async fn queue_publish(
        &self,
        principal: &Principal,
        trace: Option<&TraceContext>,
        req: v1::PublishRequest,
    ) -> Result<Queued<Vec<Appended>>, Failure> {
        let stream = parse::stream(&req.stream)?;
        // Decoded only once the caller may publish there (see EventLog::publish).
        let admit = || -> Result<PublishBatch, Failure> {
            Ok(PublishBatch {
                expected: expectation(req.expected)?,
                events: admit_events(&self.limits, principal, req.events, trace)?,
            })
        };
        self.log.queue_publish(principal, stream, admit).await
    }
}

/// A publish's optimistic-concurrency condition.
fn expectation(expected: Option<publish_request::Expected>) -> Result<Expectation, LogError> {
    Ok(match expected {
        None => Expectation::Any,
        Some(publish_request::Expected::ExpectedLastSequence(s)) => Expectation::LastSequence(s),
        Some(publish_request::Expected::ExpectedState(state)) => {
            match v1::StreamState::try_from(state) {
                Ok(v1::StreamState::Unspecified) => Expectation::Any,
                Ok(v1::StreamState::NoStream) => Expectation::NoStream,
                Ok(v1::StreamState::Exists) => Expectation::Exists,
                Err(_) => {
                    return Err(LogError::invalid(
                        "expected_state",
                        format!("unknown value {state}"),
                    ));
                }
            }
        }
    })
}

/// Where a publish's events landed, as its answer.
fn published(appended: Vec<Appended>) -> v1::PublishResponse {
    v1::PublishResponse {
        positions: appended
            .into_iter()
            .map(|a| v1::PublishedPosition {
                id: a.id,
                sequence: a.sequence,
                position: a.position,
                duplicate: a.duplicate,
                recorded_at: Some(convert::timestamp(a.recorded_at)),
            })
            .collect(),
        error: None,
    }
}

/// What every request of one PublishStream call shares, looked up once
/// when the call opens rather than per request.
struct StreamCaller {
    /// The service, through which each request is checked and queued.
    api: EventLogApi,
    /// Who opened the call: each request is authorized as that caller.
    principal: Arc<Principal>,
    /// The call's trace context, added to events that carry none.
    trace: Option<TraceContext>,
    /// The call's place among the server's open PublishStream calls,
    /// freed when the call ends and the pipeline drops its caller.
    _slot: PublishStreamSlot,
}

impl StreamCaller {
    /// Queues one request of the call once it fits in the buffer all
    /// PublishStream calls share; resolves to its answer. The request's
    /// share is given back as soon as its commit is decided, whether or
    /// not the client has read the answers before it yet: a client slow
    /// to read holds its own window, never the other calls' buffer.
    async fn submit(self: Arc<Self>, req: v1::PublishRequest) -> PublishAnswer {
        let bytes = req.events.iter().map(|e| e.encoded().len()).sum();
        let share = self.api.limits.publish_streams.reserve(bytes).await;
        let queued = self
            .api
            .queue_publish(&self.principal, self.trace.as_ref(), req)
            .await;
        match queued {
            Ok(queued) => {
                let committed = tokio::spawn(async move {
                    let outcome = queued.await;
                    drop(share);
                    match outcome {
                        Ok(appended) => published(appended),
                        Err(e) => publish_stream::refusal(e.into()),
                    }
                });
                Either::Right(committed.map(joined as JoinedAnswer))
            }
            Err(refused) => Either::Left(future::ready(publish_stream::refusal(refused))),
        }
    }
}

/// The answer to one PublishStream request: known at once when it was
/// refused before being queued, else once its commit is decided.
type PublishAnswer = Either<
    future::Ready<v1::PublishResponse>,
    future::Map<tokio::task::JoinHandle<v1::PublishResponse>, JoinedAnswer>,
>;

type JoinedAnswer = fn(Result<v1::PublishResponse, tokio::task::JoinError>) -> v1::PublishResponse;

/// The answer a request's commit task gave; the task ends only by giving
/// one, unless the runtime is going away.
fn joined(answer: Result<v1::PublishResponse, tokio::task::JoinError>) -> v1::PublishResponse {
    answer.unwrap_or_else(|_| publish_stream::refusal(LogError::ShuttingDown.into()))
}

type PublishStreamStream = tonic::codegen::BoxStream<v1::PublishResponse>;

type SubscribeStream = tonic::codegen::BoxStream<v1::SubscribeResponse>;

fn subscribe_message(
    item: Result<SubscriptionItem, LogError>,
) -> Result<v1::SubscribeResponse, Status> {
    use subscribe_response::Message;
    let message = match item? {
        SubscriptionItem::Event(e) => Message::Event(convert::recorded_event(&e)),
        SubscriptionItem::Heartbeat { position, time } => Message::Heartbeat(v1::Heartbeat {
            position,
            time: Some(convert::timestamp(time)),
        }),
        SubscriptionItem::CaughtUp { position } => Message::CaughtUp(v1::CaughtUp { position }),
    };
    Ok(v1::SubscribeResponse {
        message: Some(message),
    })
}

#[tonic::async_trait]
impl event_log_server::EventLog for EventLogApi {
    async fn create_stream(
        &self,
        request: Request<v1::CreateStreamRequest>,
    ) -> Result<Response<v1::CreateStreamResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let retention = convert::retention(req.retention)?;
        let info = self
            .log
            .create_stream(&principal, stream, retention)
            .await?;
        Ok(Response::new(v1::CreateStreamResponse {
            info: Some(convert::stream_info(&info)),
        }))
    }

    async fn get_stream(
        &self,
        request: Request<v1::GetStreamRequest>,
    ) -> Result<Response<v1::GetStreamResponse>, Status> {
        let principal = guard::principal(&request)?;
        let stream = parse::stream(&request.get_ref().stream)?;
        let info = self.log.get_stream(&principal, &stream).await?;
        Ok(Response::new(v1::GetStreamResponse {
            info: Some(convert::stream_info(&info)),
        }))
    }

    async fn list_streams(
        &self,
        request: Request<v1::ListStreamsRequest>,
    ) -> Result<Response<v1::ListStreamsResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.get_ref();
        let (streams, next_page_token) = self
            .log
            .list_streams(&principal, &req.pattern, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(v1::ListStreamsResponse {
            streams: streams.iter().map(convert::stream_info).collect(),
            next_page_token,
        }))
    }

    async fn delete_stream(
        &self,
        request: Request<v1::DeleteStreamRequest>,
    ) -> Result<Response<v1::DeleteStreamResponse>, Status> {
        let principal = guard::principal(&request)?;
        let stream = parse::stream(&request.get_ref().stream)?;
        let events_deleted = self.log.delete_stream(&principal, stream).await?;
        Ok(Response::new(v1::DeleteStreamResponse { events_deleted }))
    }

    async fn publish(
        &self,
        request: Request<v1::PublishRequest>,
    ) -> Result<Response<v1::PublishResponse>, Status> {
        let principal = guard::principal(&request)?;
        let trace = TraceContext::from_headers(request.metadata().as_ref());
        let queued = self
            .queue_publish(&principal, trace.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(published(queued.await?)))
    }

    type PublishStreamStream = PublishStreamStream;

    async fn publish_stream(
        &self,
        request: Request<Streaming<v1::PublishRequest>>,
    ) -> Result<Response<PublishStreamStream>, Status> {
        let caller = Arc::new(StreamCaller {
            api: self.clone(),
            principal: guard::principal(&request)?,
            trace: TraceContext::from_headers(request.metadata().as_ref()),
            _slot: self.limits.publish_streams.open_call()?,
        });
        let submit = move |req: v1::PublishRequest| caller.clone().submit(req);
        Ok(Response::new(Box::pin(publish_stream::answers(
            request.into_inner(),
            submit,
            publish_stream::Window::DEFAULT,
            self.log.stopping(),
            self.metrics.clone(),
        ))))
    }

    async fn read(
        &self,
        request: Request<v1::ReadRequest>,
    ) -> Result<Response<v1::ReadResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let from = match req.from {
            None | Some(read_request::From::FromSequence(0)) => ReadFrom::End,
            Some(read_request::From::FromSequence(s)) => ReadFrom::Sequence(s),
            Some(read_request::From::FromTime(t)) => {
                ReadFrom::Time(convert::from_timestamp(&t, "from_time")?)
            }
        };
        let direction = match v1::ReadDirection::try_from(req.direction) {
            Ok(v1::ReadDirection::Unspecified | v1::ReadDirection::Forward) => Direction::Forward,
            Ok(v1::ReadDirection::Backward) => Direction::Backward,
            Err(_) => {
                return Err(LogError::invalid(
                    "direction",
                    format!("unknown value {}", req.direction),
                )
                .into());
            }
        };
        let page = self
            .log
            .read(
                &principal,
                ReadQuery {
                    stream,
                    from,
                    direction,
                    limit: req.limit,
                    filter: convert::filter(req.filter)?,
                },
            )
            .await?;
        Ok(Response::new(v1::ReadResponse {
            events: page.events.iter().map(convert::recorded_event).collect(),
            next_sequence: page.next_sequence,
            end_of_stream: page.end_of_stream,
        }))
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<SubscribeStream>, Status> {
        let principal = guard::principal(&request)?;
        let connection = request.remote_addr();
        let req = request.into_inner();
        let streams = parse::selectors(&req.streams)?;
        let heartbeat = req
            .heartbeat_interval
            .map(|d| convert::from_duration(&d, "heartbeat_interval"))
            .transpose()?;
        let items = self
            .log
            .subscribe(
                &principal,
                SubscribeQuery {
                    streams,
                    start: convert::start(req.start)?,
                    filter: convert::filter(req.filter)?,
                    heartbeat,
                },
            )
            .await?;
        // After the domain's checks: a refused caller never holds a slot.
        let slot = self.limits.slots.acquire(connection)?;
        Ok(Response::new(Box::pin(items.map(move |item| {
            // The slot frees when the stream is dropped.
            let _open = &slot;
            subscribe_message(item)
        }))))
    }

    async fn trim(
        &self,
        request: Request<v1::TrimRequest>,
    ) -> Result<Response<v1::TrimResponse>, Status> {
        use v1::trim_request::Until;
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let until = match req.until {
            None => {
                return Err(LogError::invalid(
                    "until",
                    "set one of max_events, before_sequence, before_time",
                )
                .into());
            }
            Some(Until::MaxEvents(n)) => TrimUntil::MaxEvents(n),
            Some(Until::BeforeSequence(s)) => TrimUntil::BeforeSequence(s),
            Some(Until::BeforeTime(t)) => {
                TrimUntil::BeforeTime(convert::from_timestamp(&t, "before_time")?)
            }
        };
        let removed = self.log.trim(&principal, stream, until).await?;
        Ok(Response::new(v1::TrimResponse { removed }))
    }

    async fn take(
        &self,
        request: Request<v1::TakeRequest>,
    ) -> Result<Response<v1::TakeResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let end = match v1::TakeEnd::try_from(req.end) {
            Ok(v1::TakeEnd::Unspecified | v1::TakeEnd::Oldest) => TakeEnd::Oldest,
            Ok(v1::TakeEnd::Newest) => TakeEnd::Newest,
            Err(_) => {
                return Err(LogError::invalid("end", format!("unknown value {}", req.end)).into());
            }
        };
        let events = self.log.take(&principal, stream, end, req.limit).await?;
        Ok(Response::new(v1::TakeResponse {
            events: events.iter().map(convert::recorded_event).collect(),
        }))
    }
}
