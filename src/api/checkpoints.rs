//! gRPC adapter of the `Checkpoints` service.
//!
//! Declared in the proto contract; implemented by the consumer-groups and
//! checkpoints issue. Until then every rpc answers UNIMPLEMENTED.

use crate::proto::v1::checkpoints_server;

/// The `riverlog.v1.Checkpoints` service.
#[derive(Debug, Clone, Default)]
pub struct CheckpointsApi;

impl checkpoints_server::Checkpoints for CheckpointsApi {}
