//! A redis-server of the tool's own, durable like riverlog's default:
//! append-only file with `appendfsync always` (fsync before each reply),
//! no RDB snapshots, in a temporary folder.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::process::ServerProcess;
use crate::measure::Probe;

/// How long redis-server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running redis-server started by the tool.
pub struct RedisServer {
    /// Its process, for CPU time, RSS and bytes written.
    pub probe: Probe,
    client: redis::Client,
    process: ServerProcess,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `bin` on a free port with `appendfsync always`.
    pub async fn start(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("riverlog-bench-redis-")
            .tempdir()
            .context("cannot make a temporary folder")?;
        let port = super::free_port()?;
        let mut command = tokio::process::Command::new(bin);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            // W6 holds 10,000 idle connections besides the others.
            .args(["--maxclients", "19000", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--logfile", ""]);
        let (process, ()) = ServerProcess::spawn("redis-server", command, START_TIMEOUT, |line| {
            line.contains("Ready to accept connections").then_some(())
        })
        .await
        .with_context(|| format!("starting {} (is redis-server installed?)", bin.display()))?;
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str())?;
        Ok(Self {
            probe: Probe {
                pids: vec![process.pid],
                ..Probe::default()
            },
            client,
            process,
            _dir: dir,
        })
    }

    /// A new connection of its own (one TCP connection), whose commands
    /// never time out on the client side (blocking reads wait as long as
    /// they ask to).
    pub async fn connect(&self) -> anyhow::Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(10)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("cannot connect to redis-server")
    }

    /// Stops the server.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(10)).await
    }
}
