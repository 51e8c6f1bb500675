//! The servers the workloads run against: riverlog (started here on SQLite
//! or PostgreSQL, or given by URL) and Redis (started here).

pub mod process;
pub mod redis;
pub mod riverlog;

use std::path::PathBuf;

use anyhow::Context;

/// The `riverlog` server binary: the given path, or `riverlog` next to this
/// executable (where `cargo build --workspace` puts both).
pub fn riverlog_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(
            path.exists(),
            "--riverlog-bin {} does not exist",
            path.display()
        );
        return Ok(path.clone());
    }
    let me = std::env::current_exe().context("cannot find this executable's path")?;
    // Test binaries live one level further down, in deps/.
    let dir = me.parent().context("this executable has no folder")?;
    for candidate in [dir.join("riverlog"), dir.join("../riverlog")] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "no riverlog binary next to {}: build it (cargo build --release --workspace) or pass --riverlog-bin",
        me.display()
    )
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child).
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a free local port")?;
    Ok(listener.local_addr()?.port())
}
