//! gRPC adapter of the `Checkpoints` service.

use tonic::{Request, Response, Status};

use super::guard;
use crate::log::groups::CheckpointAt;
use crate::log::{EventLog, parse};
use crate::proto::v1::{self, checkpoints_server, commit_checkpoint_request};
use crate::service::convert;

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

#[tonic::async_trait]
impl checkpoints_server::Checkpoints for CheckpointsApi {
    async fn commit_checkpoint(
        &self,
        request: Request<v1::CommitCheckpointRequest>,
    ) -> Result<Response<v1::CommitCheckpointResponse>, Status> {
        let principal = guard::principal(&request)?;
        let req = request.into_inner();
        let stream = parse::optional_stream(&req.stream)?;
        let name = parse::checkpoint(&req.name)?;
        let at = match req.at {
            None => None,
            Some(commit_checkpoint_request::At::Sequence(s)) => Some(CheckpointAt::Sequence(s)),
            Some(commit_checkpoint_request::At::Position(p)) => Some(CheckpointAt::Position(p)),
            Some(commit_checkpoint_request::At::Time(t)) => {
                Some(CheckpointAt::Time(convert::from_timestamp(&t, "time")?))
            }
        };
        let checkpoint = self
            .log
            .commit_checkpoint(&principal, name, stream, at)
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
        let stream = parse::optional_stream(&req.stream)?;
        let name = parse::checkpoint(&req.name)?;
        let checkpoint = self
            .log
            .get_checkpoint(&principal, &name, stream.as_ref())
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
        let checkpoints = self
            .log
            .list_checkpoints(&principal, &request.get_ref().prefix)
            .await?;
        Ok(Response::new(v1::ListCheckpointsResponse {
            checkpoints: checkpoints.iter().map(convert::checkpoint).collect(),
        }))
    }
}
