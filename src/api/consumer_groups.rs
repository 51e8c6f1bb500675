//! gRPC adapter of the `ConsumerGroups` service: decode, call the domain,
//! encode.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::{deadline, guard};
use crate::log::groups::GroupStart;
use crate::log::{
    Claim, ConsumeItem, CreateGroup, EventLog, Fetch, ListPending, LogError, UnixMicros, parse,
};
use crate::model::groups::RedriveSelection;
use crate::proto::v1::{self, consume_response, consumer_groups_server, group_start};
use crate::service::admission::CallLimits;
use crate::service::convert;

/// The `riverlog.v1.ConsumerGroups` service.
#[derive(Clone)]
pub struct ConsumerGroupsApi {
    log: EventLog,
    limits: Arc<CallLimits>,
}

impl ConsumerGroupsApi {
    /// Serves the consumer groups of `log` over gRPC within `limits`.
    pub fn new(log: EventLog, limits: Arc<CallLimits>) -> Self {
        Self { log, limits }
    }
}

type ConsumeStream = tonic::codegen::BoxStream<v1::ConsumeResponse>;

fn optional_duration(
    d: Option<prost_types::Duration>,
    field: &'static str,
) -> Result<Option<Duration>, LogError> {
    d.map(|d| convert::from_duration(&d, field)).transpose()
}

fn group_start(start: group_start::Start) -> Result<GroupStart, LogError> {
    Ok(match start {
        group_start::Start::Earliest(()) => GroupStart::Earliest,
        group_start::Start::Latest(()) => GroupStart::Latest,
        group_start::Start::Sequence(s) => GroupStart::Sequence(s),
        group_start::Start::Time(t) => GroupStart::Time(convert::from_timestamp(&t, "start.time")?),
    })
}

fn consume_message(item: Result<ConsumeItem, LogError>) -> Result<v1::ConsumeResponse, Status> {
    use consume_response::Message;
    let message = match item? {
        ConsumeItem::Delivery(d) => Message::Delivery(convert::delivery(&d)),
        ConsumeItem::Heartbeat(time) => Message::Heartbeat(v1::Heartbeat {
            position: 0,
            time: Some(convert::timestamp(time)),
        }),
    };
    Ok(v1::ConsumeResponse {
        message: Some(message),
    })
}

#[tonic::async_trait]
impl consumer_groups_server::ConsumerGroups for ConsumerGroupsApi {
    async fn create_group(
        &self,
        request: Request<v1::CreateGroupRequest>,
    ) -> Result<Response<v1::CreateGroupResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let group = parse::group(&req.group)?;
        let start = match req.start.and_then(|s| s.start) {
            None => GroupStart::Earliest,
            Some(start) => group_start(start)?,
        };
        let create = CreateGroup {
            start,
            ack_timeout: optional_duration(req.ack_timeout, "ack_timeout")?,
            max_deliveries: req.max_deliveries,
            dead_letter_stream: req.dead_letter_stream,
            ..CreateGroup::new(stream, group)
        };
        let info = self.log.create_group(&principal, create).await?;
        Ok(Response::new(v1::CreateGroupResponse {
            info: Some(convert::group_info(&info)),
        }))
    }

    async fn get_group(
        &self,
        request: Request<v1::GetGroupRequest>,
    ) -> Result<Response<v1::GetGroupResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.get_ref();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        let info = self.log.get_group(&principal, &stream, &group).await?;
        Ok(Response::new(v1::GetGroupResponse {
            info: Some(convert::group_info(&info)),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<v1::ListGroupsRequest>,
    ) -> Result<Response<v1::ListGroupsResponse>, Status> {
        let principal = guard::principal(&request)?;
        let stream = parse::stream(&request.get_ref().stream)?;
        let groups = self.log.list_groups(&principal, &stream).await?;
        Ok(Response::new(v1::ListGroupsResponse {
            groups: groups.iter().map(convert::group_info).collect(),
        }))
    }

    async fn seek_group(
        &self,
        request: Request<v1::SeekGroupRequest>,
    ) -> Result<Response<v1::SeekGroupResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        let Some(start) = req.start.and_then(|s| s.start) else {
            return Err(LogError::invalid(
                "start",
                "required: earliest, latest, a sequence or a time",
            )
            .into());
        };
        let (info, pending_removed) = self
            .log
            .seek_group(&principal, stream, group, group_start(start)?)
            .await?;
        Ok(Response::new(v1::SeekGroupResponse {
            info: Some(convert::group_info(&info)),
            pending_removed,
        }))
    }

    async fn redrive(
        &self,
        request: Request<v1::RedriveRequest>,
    ) -> Result<Response<v1::RedriveResponse>, Status> {
        use v1::redrive_request::Selection;
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        let selection = match req.selection {
            None => {
                return Err(LogError::invalid(
                    "selection",
                    "required: all, dead_letter_sequences or filter",
                )
                .into());
            }
            Some(Selection::All(())) => RedriveSelection::All,
            Some(Selection::DeadLetterSequences(range)) => RedriveSelection::DeadLetterSequences {
                first: range.first,
                last: range.last,
            },
            Some(Selection::Filter(filter)) => {
                RedriveSelection::Filter(convert::filter(Some(filter))?)
            }
        };
        let redriven = self
            .log
            .redrive(&principal, stream, group, selection)
            .await?;
        Ok(Response::new(v1::RedriveResponse {
            redriven: redriven.redriven,
            origin_gone: redriven.origin_gone,
            more: redriven.more,
        }))
    }

    async fn delete_group(
        &self,
        request: Request<v1::DeleteGroupRequest>,
    ) -> Result<Response<v1::DeleteGroupResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.get_ref();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        self.log.delete_group(&principal, stream, group).await?;
        Ok(Response::new(v1::DeleteGroupResponse {}))
    }

    async fn delete_consumer(
        &self,
        request: Request<v1::DeleteConsumerRequest>,
    ) -> Result<Response<v1::DeleteConsumerResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.get_ref();
        let stream = parse::stream(&req.stream)?;
        let group = parse::group(&req.group)?;
        let consumer = parse::consumer(&req.consumer)?;
        let pending_released = self
            .log
            .delete_consumer(&principal, stream, group, consumer)
            .await?;
        Ok(Response::new(v1::DeleteConsumerResponse {
            pending_released,
        }))
    }

    type ConsumeStream = ConsumeStream;

    async fn consume(
        &self,
        request: Request<v1::ConsumeRequest>,
    ) -> Result<Response<ConsumeStream>, Status> {
        let principal = guard::principal(&request)?;
        let connection = request.remote_addr();
        let req = request.into_inner();
        let stream = parse::stream(&req.stream)?;
        let group = parse::group(&req.group)?;
        let consumer = parse::consumer(&req.consumer)?;
        let heartbeat = optional_duration(req.heartbeat_interval, "heartbeat_interval")?;
        let items = self
            .log
            .consume(
                &principal,
                stream,
                group,
                consumer,
                req.max_in_flight,
                heartbeat,
            )
            .await?;
        // After the domain's checks: a refused caller never holds a slot.
        let slot = self.limits.slots.acquire(connection)?;
        Ok(Response::new(Box::pin(items.map(move |item| {
            // The slot frees when the stream is dropped.
            let _open = &slot;
            consume_message(item)
        }))))
    }

    async fn fetch(
        &self,
        request: Request<v1::FetchRequest>,
    ) -> Result<Response<v1::FetchResponse>, Status> {
        let principal = guard::principal(&request)?;
        // Answer (empty-handed if need be) before the caller's deadline:
        // past it the answer, and what it handed out, would be lost.
        let mut block = Duration::from_millis(u64::from(request.get_ref().block_ms));
        if let Some(timeout) = deadline::grpc_timeout(request.metadata()) {
            block = block.min(deadline::wait_within(timeout));
        }
        let req = request.into_inner();
        let fetch = Fetch {
            stream: parse::stream(&req.stream)?,
            group: parse::group(&req.group)?,
            consumer: parse::consumer(&req.consumer)?,
            count: req.count,
            block,
            pending_only: req.pending_only,
        };
        let deliveries = self.log.fetch(&principal, fetch).await?;
        Ok(Response::new(v1::FetchResponse {
            deliveries: deliveries.iter().map(convert::delivery).collect(),
        }))
    }

    async fn ack(
        &self,
        request: Request<v1::AckRequest>,
    ) -> Result<Response<v1::AckResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        let settled = self
            .log
            .ack(&principal, stream, group, req.sequences)
            .await?;
        Ok(Response::new(v1::AckResponse {
            acked: settled.settled,
            not_pending: settled.not_pending,
        }))
    }

    async fn nack(
        &self,
        request: Request<v1::NackRequest>,
    ) -> Result<Response<v1::NackResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let (stream, group) = (parse::stream(&req.stream)?, parse::group(&req.group)?);
        let holder = parse::optional_consumer(&req.consumer)?;
        let delay = optional_duration(req.delay, "delay")?.unwrap_or_default();
        let settled = self
            .log
            .nack(&principal, stream, group, holder, req.sequences, delay)
            .await?;
        Ok(Response::new(v1::NackResponse {
            nacked: settled.settled,
            not_pending: settled.not_pending,
        }))
    }

    async fn list_pending(
        &self,
        request: Request<v1::ListPendingRequest>,
    ) -> Result<Response<v1::ListPendingResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let query = ListPending {
            stream: parse::stream(&req.stream)?,
            group: parse::group(&req.group)?,
            consumer: parse::optional_consumer(&req.consumer)?,
            min_idle: optional_duration(req.min_idle, "min_idle")?,
            limit: req.limit,
            after_sequence: req.after_sequence,
        };
        let (summary, entries) = self.log.list_pending(&principal, query).await?;
        let now = UnixMicros::now();
        Ok(Response::new(v1::ListPendingResponse {
            summary: Some(v1::PendingSummary {
                count: summary.count,
                lowest_sequence: summary.lowest.unwrap_or(0),
                highest_sequence: summary.highest.unwrap_or(0),
                consumers: summary
                    .consumers
                    .into_iter()
                    .map(|(consumer, count)| v1::ConsumerPending { consumer, count })
                    .collect(),
            }),
            entries: entries
                .iter()
                .map(|e| convert::pending_entry(e, now))
                .collect(),
        }))
    }

    async fn claim(
        &self,
        request: Request<v1::ClaimRequest>,
    ) -> Result<Response<v1::ClaimResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let claim = Claim {
            stream: parse::stream(&req.stream)?,
            group: parse::group(&req.group)?,
            consumer: parse::consumer(&req.consumer)?,
            min_idle: optional_duration(req.min_idle, "min_idle")?.unwrap_or_default(),
            sequences: req.sequences,
            count: req.count,
        };
        let deliveries = self.log.claim(&principal, claim).await?;
        Ok(Response::new(v1::ClaimResponse {
            deliveries: deliveries.iter().map(convert::delivery).collect(),
        }))
    }
}
