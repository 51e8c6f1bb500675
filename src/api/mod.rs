//! Transport: the gRPC services. Decoding, validation of wire shapes,
//! and the mapping of domain errors to statuses; no business rules.

pub mod checkpoints;
pub mod codec;
pub mod consumer_groups;
pub mod deadline;
pub mod event_log;
pub mod guard;
pub mod message_size;
pub mod observe;
pub mod status;

pub use checkpoints::CheckpointsApi;
pub use consumer_groups::ConsumerGroupsApi;
pub use event_log::EventLogApi;
