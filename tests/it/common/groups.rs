//! Consumer groups in tests: the groups client, a builder for the group a
//! test needs (and the server, stream and events around it), and the calls
//! tests repeat.

use riverlog::proto::v1;
use riverlog::proto::v1::event_log_client::EventLogClient;
use tonic::transport::Channel;

use super::{TestServer, events, millis, publish};

pub type Groups = riverlog::proto::v1::consumer_groups_client::ConsumerGroupsClient<Channel>;

impl TestServer {
    pub async fn groups(&self) -> Groups {
        Groups::new(self.channel().await)
    }
}

/// A consumer group to create: the server's defaults (ack timeout 30 s,
/// 5 deliveries, dead letters to `{stream}:dlq`) unless a setting says
/// otherwise.
#[must_use]
pub struct GroupSpec {
    request: v1::CreateGroupRequest,
}

/// Group `group` on `stream`, with the server's defaults.
pub fn group(stream: &str, group: &str) -> GroupSpec {
    GroupSpec {
        request: v1::CreateGroupRequest {
            stream: stream.into(),
            group: group.into(),
            ..Default::default()
        },
    }
}

impl GroupSpec {
    /// An unacked delivery is handed out again after `ms`.
    pub fn ack_timeout_ms(mut self, ms: u64) -> Self {
        self.request.ack_timeout = Some(millis(ms));
        self
    }

    /// An event is dead-lettered instead of delivered a time more.
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.request.max_deliveries = n;
        self
    }

    pub fn dead_letter_stream(mut self, stream: &str) -> Self {
        self.request.dead_letter_stream = stream.into();
        self
    }

    /// Where the group's cursor starts (the first event when not set).
    pub fn start(mut self, start: v1::group_start::Start) -> Self {
        self.request.start = Some(v1::GroupStart { start: Some(start) });
        self
    }

    /// The CreateGroup request, for tests of how the server answers it.
    pub fn request(self) -> v1::CreateGroupRequest {
        self.request
    }

    /// Creates the group, panicking on error.
    pub async fn create(self, groups: &mut Groups) -> v1::GroupInfo {
        groups
            .create_group(self.request)
            .await
            .expect("group created")
            .into_inner()
            .info
            .expect("info")
    }

    /// How most group tests begin: a fresh server whose stream holds
    /// `n` events (`e-0` ...; an empty stream when 0) and this group.
    pub async fn on_new_server(self, n: usize) -> (TestServer, EventLogClient<Channel>, Groups) {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let mut groups = server.groups().await;
        let stream = self.request.stream.clone();
        if n == 0 {
            client
                .create_stream(v1::CreateStreamRequest {
                    stream,
                    retention: None,
                })
                .await
                .expect("stream created");
        } else {
            publish(&mut client, &stream, events("e", 0..n)).await;
        }
        self.create(&mut groups).await;
        (server, client, groups)
    }
}

pub fn fetch_request(
    stream: &str,
    group: &str,
    consumer: &str,
    count: u32,
    block_ms: u32,
) -> v1::FetchRequest {
    v1::FetchRequest {
        stream: stream.into(),
        group: group.into(),
        consumer: consumer.into(),
        count,
        block_ms,
        pending_only: false,
    }
}

/// Fetches, panicking on error.
pub async fn fetch(
    groups: &mut Groups,
    stream: &str,
    group: &str,
    consumer: &str,
    count: u32,
    block_ms: u32,
) -> Vec<v1::Delivery> {
    groups
        .fetch(fetch_request(stream, group, consumer, count, block_ms))
        .await
        .expect("fetch succeeds")
        .into_inner()
        .deliveries
}

/// Re-reads what `consumer` holds pending (a fetch with `pending_only`).
pub async fn fetch_own_pending(
    groups: &mut Groups,
    stream: &str,
    group: &str,
    consumer: &str,
) -> Vec<v1::Delivery> {
    let request = v1::FetchRequest {
        pending_only: true,
        ..fetch_request(stream, group, consumer, 10, 0)
    };
    groups
        .fetch(request)
        .await
        .expect("fetch succeeds")
        .into_inner()
        .deliveries
}

pub fn seq_of(d: &v1::Delivery) -> u64 {
    d.event.as_ref().expect("event").sequence
}

/// The sequences of deliveries, in order.
pub fn seqs(deliveries: &[v1::Delivery]) -> Vec<u64> {
    deliveries.iter().map(seq_of).collect()
}

pub async fn ack(
    groups: &mut Groups,
    stream: &str,
    group: &str,
    sequences: Vec<u64>,
) -> v1::AckResponse {
    groups
        .ack(v1::AckRequest {
            stream: stream.into(),
            group: group.into(),
            sequences,
        })
        .await
        .expect("ack succeeds")
        .into_inner()
}

/// A nack of `sequences` with no delay, from whoever holds them.
pub fn nack_request(stream: &str, group: &str, sequences: Vec<u64>) -> v1::NackRequest {
    v1::NackRequest {
        stream: stream.into(),
        group: group.into(),
        sequences,
        delay: None,
        consumer: String::new(),
    }
}

pub async fn group_info(groups: &mut Groups, stream: &str, group: &str) -> v1::GroupInfo {
    groups
        .get_group(v1::GetGroupRequest {
            stream: stream.into(),
            group: group.into(),
        })
        .await
        .expect("group exists")
        .into_inner()
        .info
        .expect("info")
}

/// The group's pending entries (first page) and their summary.
pub async fn list_pending(
    groups: &mut Groups,
    stream: &str,
    group: &str,
) -> v1::ListPendingResponse {
    groups
        .list_pending(v1::ListPendingRequest {
            stream: stream.into(),
            group: group.into(),
            ..Default::default()
        })
        .await
        .expect("pending listed")
        .into_inner()
}
