//! gRPC adapter of the `Checkpoints` service.

use tonic::{Request, Response, Status};

use super::guard;
use crate::auth::{Permission, Principal};
use crate::log::EventLog;
use crate::log::groups::CheckpointAt;
use crate::proto::convert;
use crate::proto::v1::{self, checkpoints_server, commit_checkpoint_request};
use crate::service::access;

/// The `riverlog.v1.Checkpoints` service.
#[derive(Clone)]
pub struct CheckpointsApi {
    log: EventLog,
}

impl CheckpointsApi {
    /// Serves the checkpoints of `log` over gRPC.
    pub fn new(log: EventLog) -> Self {
        Self { log }
    }
}

/// Checkpoints of one stream need subscribe on it; global ones (no
/// stream) need subscribe on some stream. Either way a token sees and moves
/// only its own checkpoints (see `Principal::checkpoint_owner`).
fn require_checkpoint(principal: &Principal, stream: &str) -> Result<(), Status> {
    if stream.is_empty() {
        principal.require_some(Permission::Subscribe)?;
        Ok(())
    } else {
        Ok(access::require(principal, Permission::Subscribe, stream)?)
    }
}

#[tonic::async_trait]
impl checkpoints_server::Checkpoints for CheckpointsApi {
    async fn commit_checkpoint(
        &self,
        request: Request<v1::CommitCheckpointRequest>,
    ) -> Result<Response<v1::CommitCheckpointResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        require_checkpoint(&principal, &req.stream)?;
        let at = req.at.map(|at| match at {
            commit_checkpoint_request::At::Sequence(s) => CheckpointAt::Sequence(s),
            commit_checkpoint_request::At::Position(p) => CheckpointAt::Position(p),
        });
        let checkpoint = self
            .log
            .commit_checkpoint(&principal.checkpoint_owner(), &req.name, &req.stream, at)
            .await?;
        Ok(Response::new(v1::CommitCheckpointResponse {
            checkpoint: Some(convert::checkpoint(&checkpoint)),
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::GetCheckpointResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.get_ref();
        require_checkpoint(&principal, &req.stream)?;
        let checkpoint = self
            .log
            .get_checkpoint(&principal.checkpoint_owner(), &req.name, &req.stream)
            .await?;
        Ok(Response::new(v1::GetCheckpointResponse {
            checkpoint: Some(convert::checkpoint(&checkpoint)),
        }))
    }

    async fn list_checkpoints(
        &self,
        request: Request<v1::ListCheckpointsRequest>,
    ) -> Result<Response<v1::ListCheckpointsResponse>, Status> {
        let principal = guard::principal(&request)?;
        principal.require_some(Permission::Subscribe)?;
        let checkpoints = self
            .log
            .list_checkpoints(&principal.checkpoint_owner(), &request.get_ref().prefix)
            .await?;
        Ok(Response::new(v1::ListCheckpointsResponse {
            checkpoints: checkpoints
                .iter()
                .filter(|c| {
                    c.stream
                        .as_ref()
                        .is_none_or(|s| principal.may_read(s.as_str()))
                })
                .map(convert::checkpoint)
                .collect(),
        }))
    }
}
