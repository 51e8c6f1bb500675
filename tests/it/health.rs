//! Health and reflection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use riverlog::config::Config;
use riverlog::log::groups::{
    Checkpoint, CheckpointOwner, GroupState, PendingEntry, PendingQuery, PendingSummary,
};
use riverlog::model::StorageError;
use riverlog::model::filter::EventFilter;
use riverlog::model::names::{
    CheckpointName, GroupName, StreamName, StreamPattern, StreamSelector,
};
use riverlog::model::query::{Direction, ReadFrom};
use riverlog::model::records::{Position, Sequence, StoredEvent, StreamInfo, UnixMicros};
use riverlog::proto::v1;
use riverlog::server::Application;
use riverlog::storage::{self, Storage, StorageOptions, WriteTx};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

use crate::common::*;

const SERVICES: [&str; 4] = [
    "",
    "riverlog.v1.EventLog",
    "riverlog.v1.ConsumerGroups",
    "riverlog.v1.Checkpoints",
];

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in SERVICES {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn reflect(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_every_service_and_resolves_health_and_error_details() {
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let MessageResponse::ListServicesResponse(list) =
        reflect(&mut client, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "riverlog.v1.Checkpoints",
        "riverlog.v1.ConsumerGroups",
        "riverlog.v1.EventLog",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    for symbol in [
        "grpc.health.v1.Health",
        "google.rpc.ErrorInfo",
        "riverlog.v1.CloudEvent",
    ] {
        let response = reflect(
            &mut client,
            MessageRequest::FileContainingSymbol(symbol.into()),
        )
        .await;
        assert!(
            matches!(response, MessageResponse::FileDescriptorResponse(_)),
            "{symbol}: {response:?}"
        );
    }
}

/// Storage that can be switched off, the way a failing disk or a lost
/// database connection looks to the server.
struct SwitchableStorage {
    inner: Arc<dyn Storage>,
    down: Arc<AtomicBool>,
}

impl SwitchableStorage {
    fn check(&self) -> Result<(), StorageError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for SwitchableStorage {
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StorageError> {
        self.check()?;
        self.inner.begin_write().await
    }
    async fn get_stream(&self, name: &StreamName) -> Result<Option<StreamInfo>, StorageError> {
        self.check()?;
        self.inner.get_stream(name).await
    }
    async fn list_streams(
        &self,
        pattern: Option<&StreamPattern>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StreamInfo>, StorageError> {
        self.check()?;
        self.inner.list_streams(pattern, after, limit).await
    }
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        self.check()?;
        self.inner
            .read_stream(stream, from, direction, filter, limit)
            .await
    }
    async fn read_log(
        &self,
        after: Position,
        selectors: &[StreamSelector],
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        self.check()?;
        self.inner.read_log(after, selectors, filter, limit).await
    }
    async fn head_position(&self) -> Result<Position, StorageError> {
        self.check()?;
        self.inner.head_position().await
    }
    async fn position_before_time(&self, time: UnixMicros) -> Result<Position, StorageError> {
        self.check()?;
        self.inner.position_before_time(time).await
    }
    async fn position_before_sequence(
        &self,
        stream: &StreamName,
        sequence: Sequence,
    ) -> Result<Position, StorageError> {
        self.check()?;
        self.inner.position_before_sequence(stream, sequence).await
    }
    async fn last_recorded_at(&self) -> Result<Option<UnixMicros>, StorageError> {
        self.check()?;
        self.inner.last_recorded_at().await
    }
    async fn group_state(
        &self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<Option<GroupState>, StorageError> {
        self.check()?;
        self.inner.group_state(stream, group).await
    }
    async fn list_group_states(
        &self,
        stream: &StreamName,
    ) -> Result<Vec<GroupState>, StorageError> {
        self.check()?;
        self.inner.list_group_states(stream).await
    }
    async fn groups_with_exhausted_entries(
        &self,
        now: UnixMicros,
    ) -> Result<Vec<(StreamName, GroupName)>, StorageError> {
        self.check()?;
        self.inner.groups_with_exhausted_entries(now).await
    }
    async fn retained_positions(
        &self,
        stream: &StreamName,
        positions: &[Position],
    ) -> Result<Vec<Position>, StorageError> {
        self.check()?;
        self.inner.retained_positions(stream, positions).await
    }
    async fn pending_summary(&self, group_id: i64) -> Result<PendingSummary, StorageError> {
        self.check()?;
        self.inner.pending_summary(group_id).await
    }
    async fn list_pending(
        &self,
        group_id: i64,
        query: &PendingQuery,
    ) -> Result<Vec<PendingEntry>, StorageError> {
        self.check()?;
        self.inner.list_pending(group_id, query).await
    }
    async fn checkpoint(
        &self,
        owner: &CheckpointOwner,
        name: &CheckpointName,
        stream: Option<&StreamName>,
    ) -> Result<Option<Checkpoint>, StorageError> {
        self.check()?;
        self.inner.checkpoint(owner, name, stream).await
    }
    async fn list_checkpoints(
        &self,
        owner: &CheckpointOwner,
        prefix: &str,
    ) -> Result<Vec<Checkpoint>, StorageError> {
        self.check()?;
        self.inner.list_checkpoints(owner, prefix).await
    }
    async fn group_feed(&self) -> Option<riverlog::storage::GroupFeed> {
        self.inner.group_feed().await
    }
    async fn commit_feed(&self) -> Result<Option<riverlog::storage::CommitFeed>, StorageError> {
        self.check()?;
        self.inner.commit_feed().await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

#[tokio::test]
async fn while_storage_is_down_health_is_not_serving_and_publishes_fail_unavailable() {
    let db = TestDb::new().await;
    let inner = storage::open(&db.url, &StorageOptions::default())
        .await
        .unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let storage = Arc::new(SwitchableStorage {
        inner,
        down: down.clone(),
    });
    let mut config = Config::new(db.url.clone(), "127.0.0.1:0");
    config.health_check_interval = std::time::Duration::from_millis(20);
    let app = Application::build_with_storage(config, storage)
        .await
        .unwrap();
    let addr = app.grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = v1::event_log_client::EventLogClient::new(channel.clone());
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "riverlog.v1.EventLog".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("before")]).await;

    down.store(true, Ordering::SeqCst);
    assert_eq!(
        next_status(&mut watch).await,
        ServingStatus::NotServing as i32
    );
    // Liveness follows the process, not the storage: restarting cannot
    // bring a database back.
    let liveness = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: riverlog::server::LIVENESS_SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(liveness, ServingStatus::Serving as i32);
    let err = client
        .publish(publish_request("s", vec![event("during")]))
        .await
        .unwrap_err();
    assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");
    let err = client
        .read(v1::ReadRequest {
            stream: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::Unavailable, "STORAGE_UNAVAILABLE");

    down.store(false, Ordering::SeqCst);
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving as i32);
    publish(&mut client, "s", vec![event("after")]).await;
    let ids: Vec<_> = read_all(&mut client, "s")
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(
        ids,
        ["before", "after"],
        "the failed publish left nothing behind"
    );

    drop(watch);
    stop.send(()).unwrap();
    within(running).await.unwrap().unwrap();
}
