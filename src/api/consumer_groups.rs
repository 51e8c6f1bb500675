//! gRPC adapter of the `ConsumerGroups` service.
//!
//! The contract is in the proto files already; the implementation is
//! tracked by the consumer-groups issue. Until then every rpc answers
//! UNIMPLEMENTED (the generated default), so clients generated today keep
//! working when it lands.

use crate::proto::v1::consumer_groups_server;

/// The `riverlog.v1.ConsumerGroups` service.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupsApi;

impl consumer_groups_server::ConsumerGroups for ConsumerGroupsApi {}
