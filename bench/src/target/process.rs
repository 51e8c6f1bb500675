//! Child server processes: started with piped logs, stopped with SIGTERM
//! and, after a grace period, SIGKILL.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Lines of a child's log kept for error messages.
const KEPT_LINES: usize = 40;

/// A running child server.
pub struct ServerProcess {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    /// Its process id.
    pub pid: u32,
}

impl ServerProcess {
    /// Spawns `command` with stdout and stderr piped, and reads its log
    /// lines (both streams) until `ready` returns a value for one of them,
    /// or `timeout` passes, or the child exits. The log is drained in the
    /// background afterwards so the child never blocks on a full pipe.
    pub async fn spawn<T: Send + 'static>(
        name: &str,
        mut command: Command,
        timeout: Duration,
        ready: impl Fn(&str) -> Option<T> + Send + 'static,
    ) -> anyhow::Result<(Self, T)> {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().context("the child has no pid")?;
        let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = lines_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    // Nobody listens once the server is up: drain only.
                    let _ = tx.send(line);
                }
            });
        }
        drop(lines_tx);
        let mut seen = std::collections::VecDeque::new();
        let found = tokio::time::timeout(timeout, async {
            while let Some(line) = lines_rx.recv().await {
                if let Some(found) = ready(&line) {
                    return Some(found);
                }
                if seen.len() == KEPT_LINES {
                    seen.pop_front();
                }
                seen.push_back(line);
            }
            None
        })
        .await;
        let log = Vec::from(seen).join("\n");
        match found {
            Ok(Some(found)) => {
                // Keep draining, so the child never blocks writing its log.
                tokio::spawn(async move { while lines_rx.recv().await.is_some() {} });
                Ok((
                    Self {
                        name: name.to_owned(),
                        child,
                        pid,
                    },
                    found,
                ))
            }
            Ok(None) => {
                let status = child.wait().await.ok();
                anyhow::bail!("{name} exited before it was ready ({status:?}); its log:\n{log}")
            }
            Err(_) => {
                let _ = child.start_kill();
                anyhow::bail!("{name} was not ready within {timeout:?}; its log:\n{log}")
            }
        }
    }

    /// Asks the process to stop (SIGTERM), waits up to `grace`, then kills it.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                status.with_context(|| format!("waiting for {} to stop", self.name))?;
            }
            Err(_) => {
                eprintln!("{} did not stop within {grace:?}: killing it", self.name);
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}
