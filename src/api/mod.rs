//! Transport: the gRPC services. Decoding (names through
//! [`crate::log::parse`]), validation of wire shapes, and failures as
//! statuses (`status`); no business rules and no permission checks (the
//! domain makes them). What the HTTP
//! side shares with it lives in [`crate::service`] and [`crate::proto`].

pub mod checkpoints;
pub mod codec;
pub mod consumer_groups;
pub mod deadline;
pub mod event_log;
pub mod guard;
pub mod message_size;
pub mod observe;
pub mod publish_stream;
pub mod status;

pub use checkpoints::CheckpointsApi;
pub use consumer_groups::ConsumerGroupsApi;
pub use event_log::EventLogApi;
