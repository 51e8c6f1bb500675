//! Generates the gRPC code and the reflection descriptor set from `proto/`.
//!
//! Three views of the same files are generated:
//! - `riverlog.v1.rs`: messages and servers, with `CloudEvent` mapped to
//!   `crate::proto::EventPayload`, which keeps an event's protobuf encoding as
//!   bytes. The server stores and sends events without decoding and
//!   re-encoding them; the wire format is unchanged. Servers use
//!   `crate::api::codec::RequestCodec`, so a request that does not decode
//!   is the caller's INVALID_ARGUMENT rather than INTERNAL.
//! - `client/riverlog.v1.rs`: the clients alone, over the messages above
//!   and tonic-prost's codec (a response that does not decode is a broken
//!   server: INTERNAL).
//! - `cloudevent/riverlog.v1.rs`: the decoded `CloudEvent` message, for
//!   validation on publish and for clients that build events.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/riverlog/v1/cloudevent.proto",
    "proto/riverlog/v1/types.proto",
    "proto/riverlog/v1/event_log.proto",
    "proto/riverlog/v1/consumer_groups.proto",
    "proto/riverlog/v1/checkpoints.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the
    // environment concurrently.
    unsafe { env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("riverlog_descriptor.bin"))
        .extern_path(".riverlog.v1.CloudEvent", "crate::proto::EventPayload")
        .build_client(false)
        .codec_path("crate::api::codec::RequestCodec")
        .compile_protos(PROTOS, &["proto"])?;

    // Every message is the one generated above; only the clients are new.
    let client_dir = out_dir.join("client");
    std::fs::create_dir_all(&client_dir)?;
    tonic_prost_build::configure()
        .out_dir(&client_dir)
        .extern_path(".riverlog.v1", "crate::proto::v1")
        .build_server(false)
        .compile_protos(PROTOS, &["proto"])?;

    let cloudevent_dir = out_dir.join("cloudevent");
    std::fs::create_dir_all(&cloudevent_dir)?;
    tonic_prost_build::configure()
        .out_dir(&cloudevent_dir)
        .build_client(false)
        .build_server(false)
        .compile_protos(&["proto/riverlog/v1/cloudevent.proto"], &["proto"])?;

    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds the migration files; without this, a new
    // migration alone does not rebuild the crate and the binary silently
    // lacks it.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
