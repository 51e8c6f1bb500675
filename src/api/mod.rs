//! Transport: the gRPC services. Decoding, validation of wire shapes,
//! and failures as statuses (`status`); no business rules. What the HTTP
//! side shares with it lives in [`crate::service`] and [`crate::proto`].

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
