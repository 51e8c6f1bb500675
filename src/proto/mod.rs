//! Generated protobuf and gRPC code for package `riverlog.v1`.

pub mod json;
mod payload;
pub mod views;

pub use payload::{EventPayload, Extension, append_string_attribute, rewrite_event};

/// Services and messages of `riverlog.v1`, as the server and the Rust client
/// use them (events travel as [`EventPayload`]).
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("riverlog.v1");
    include!(concat!(env!("OUT_DIR"), "/client/riverlog.v1.rs"));
}

/// The decoded CloudEvents Protobuf Format message.
pub mod cloudevent {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/cloudevent/riverlog.v1.rs"));
}

pub use cloudevent::CloudEvent;
pub use cloudevent::cloud_event::CloudEventAttributeValue;
pub use cloudevent::cloud_event::cloud_event_attribute_value::Attr as AttributeValue;

/// Encoded `FileDescriptorSet` of every riverlog proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("riverlog_descriptor");
