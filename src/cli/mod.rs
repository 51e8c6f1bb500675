//! The client subcommands of the `riverlog` binary (`publish`, `tail`,
//! `streams`, `groups`, plus `completion` and `man`): short, scriptable,
//! gRPC to a running server.
//!
//! Layout: `connection` (the `--server`/`--tls`/`--token` flags and the
//! channel), `probe` (is the server TLS, when a call failed at the
//! transport), `output` (`-o text|json`: tables, lines, JSON), `progress`
//! (bulk publish progress and summary), `confirm` (asking on a terminal),
//! `reference` (shell completions and man pages), and one file per
//! command.
//!
//! Exit codes: 0 success, 1 the server refused (the message names the
//! status and its ErrorInfo reason) or a confirmation was declined, 2 bad
//! usage (including a TLS/plaintext mismatch with the server), 3 the
//! server cannot be reached or is unavailable.

mod confirm;
mod connection;
mod groups;
mod output;
mod probe;
mod progress;
mod publish;
mod reference;
mod streams;
mod tail;

use std::io::Write;
use std::process::ExitCode;

use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use connection::{Authed, Connection, ServerAddress};
pub use groups::GroupsArgs;
pub use output::{Format, OutputArgs};
pub use publish::PublishArgs;
pub use reference::{ReferenceError, completion, man};
pub use streams::StreamsArgs;
pub use tail::TailArgs;

use probe::Speaks;

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub enum CliError {
    /// Bad input caught before calling the server.
    Usage(String),
    /// The server cannot be reached.
    Unreachable(String),
    /// The server answered with an error.
    Refused(Status),
    /// The user answered no when asked to confirm.
    Declined(String),
    /// Local I/O failed.
    Io(std::io::Error),
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self::Refused(status)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl CliError {
    /// Prints the error and returns the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Self::Usage(message) => {
                eprintln!("riverlog: {message}");
                ExitCode::from(2)
            }
            Self::Unreachable(message) => {
                eprintln!("riverlog: {message}");
                ExitCode::from(3)
            }
            Self::Refused(status) => {
                let reason = status
                    .get_details_error_info()
                    .map(|info| format!(" ({})", info.reason))
                    .unwrap_or_default();
                eprintln!(
                    "riverlog: {:?}{reason}: {}",
                    status.code(),
                    status.message()
                );
                if status.code() == Code::Unavailable {
                    ExitCode::from(3)
                } else {
                    ExitCode::from(1)
                }
            }
            Self::Declined(message) => {
                eprintln!("riverlog: {message}");
                ExitCode::from(1)
            }
            // A closed pipe (`riverlog tail ... | head`) is a normal end.
            Self::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Self::Io(e) => {
                eprintln!("riverlog: {e}");
                ExitCode::from(1)
            }
        }
    }

    /// Whether an HTTP server that is not a gRPC one answered (the HTTP
    /// API's port by mistake): tonic then reports the HTTP status of a
    /// response that is not gRPC, with no ErrorInfo.
    fn is_plain_http(&self) -> bool {
        match self {
            Self::Refused(status) => {
                status.get_details_error_info().is_none()
                    && status.message().contains("response with status:")
            }
            _ => false,
        }
    }

    /// Whether the failure happened below gRPC (no connection, a broken
    /// one): what a TLS/plaintext mismatch looks like. riverlog's own
    /// refusals always carry an ErrorInfo.
    fn is_transport(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused(status) => {
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Internal
                ) && status.get_details_error_info().is_none()
            }
            _ => false,
        }
    }
}

/// Writes a line to stdout, flushing so pipes see it at once.
fn emit(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Writes a block of lines (a table) to stdout.
fn emit_block(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Runs a client command to its exit code. A failure at the transport is
/// explained when the server speaks the other of TLS and plaintext.
pub async fn run(
    connection: Connection,
    command: impl std::future::Future<Output = Result<(), CliError>>,
) -> ExitCode {
    match command.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_plain_http() => CliError::Usage(format!(
            "the server at {} answered plain HTTP, not gRPC: is that riverlog's HTTP port? \
             The gRPC API listens on the server's --listen address (127.0.0.1:50051 by default)",
            connection
                .target()
                .map_or_else(|_| "that address".to_owned(), |t| t.authority.to_string())
        ))
        .report(),
        Err(e) if e.is_transport() => match mismatch(&connection).await {
            Some(message) => CliError::Usage(message).report(),
            None => e.report(),
        },
        Err(e) => e.report(),
    }
}

/// What is wrong when the client and the server disagree about TLS.
async fn mismatch(connection: &Connection) -> Option<String> {
    let target = connection.target().ok()?;
    match (target.tls, probe::speaks(&target).await) {
        (false, Speaks::Tls) => Some(format!(
            "the server at {} speaks TLS; use https:// or --tls",
            target.authority
        )),
        (true, Speaks::Plaintext) => Some(format!(
            "the server at {} does not speak TLS; use http:// or drop --tls",
            target.authority
        )),
        _ => None,
    }
}

/// Parses a duration flag like `30s`.
fn duration(s: &str) -> Result<prost_types::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    prost_types::Duration::try_from(d).map_err(|e| e.to_string())
}

/// Parses an RFC 3339 time flag (any offset).
fn timestamp(s: &str) -> Result<prost_types::Timestamp, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2026-11-24T10:00:00Z"))
}
