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
//!
//! It also sets `RIVERLOG_GIT_COMMIT` for `riverlog --version`: the
//! variable of that name when the build environment sets it (an image
//! built without `.git`), else `git rev-parse --short HEAD`, else
//! `unknown`. Outside git it never fails the build.

use std::path::{Path, PathBuf};
use std::{env, process::Command};

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

    let commit = env::var("RIVERLOG_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RIVERLOG_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=RIVERLOG_GIT_COMMIT");
    Ok(())
}

/// Runs `git ARGS` in the package folder; `None` if git is missing, this
/// is not a repository, or it says nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The short hash of HEAD, and the files whose change means a new HEAD
/// watched, so `--version` never names an old commit.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // `--git-path` resolves worktrees (HEAD is per worktree, refs shared).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        // The branch's file; if it is only packed, its folder, where the
        // next commit writes the file (the folder alone would also rerun
        // for every other branch's commits).
        let file = git(&["rev-parse", "--git-path", &branch]);
        watched.push(file.and_then(|f| {
            let path = Path::new(&f);
            let watch = if path.exists() { path } else { path.parent()? };
            Some(watch.display().to_string())
        }));
    }
    for path in watched.into_iter().flatten() {
        // A missing path would make cargo rerun this script on every build.
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}
