//! The client subcommands of the `riverlog` binary (`publish`, `tail`,
//! `streams`, `groups`): short, scriptable, gRPC to a running server.
//!
//! Exit codes: 0 success, 1 the server refused (the message names the
//! status and its ErrorInfo reason), 2 bad usage, 3 the server cannot be
//! reached or is unavailable.

mod groups;
mod output;
mod publish;
mod streams;
mod tail;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

pub use groups::GroupsCommand;
pub use publish::PublishArgs;
pub use streams::StreamsCommand;
pub use tail::TailArgs;

use crate::proto::v1::consumer_groups_client::ConsumerGroupsClient;
use crate::proto::v1::event_log_client::EventLogClient;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server URL; `https://` uses TLS.
    #[arg(
        long,
        env = "RIVERLOG_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// Bearer token (prefer the variable: flags show up in `ps`).
    #[arg(long, env = "RIVERLOG_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA that signed the server's certificate (for `https://`).
    #[arg(long, env = "RIVERLOG_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// Adds `authorization: Bearer ...` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub enum CliError {
    /// Bad input caught before calling the server.
    Usage(String),
    /// The server cannot be reached.
    Unreachable(String),
    /// The server answered with an error.
    Refused(Status),
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
            // A closed pipe (`riverlog tail ... | head`) is a normal end.
            Self::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Self::Io(e) => {
                eprintln!("riverlog: {e}");
                ExitCode::from(1)
            }
        }
    }
}

impl Connection {
    async fn channel(&self) -> Result<Channel, CliError> {
        let mut endpoint = Endpoint::from_shared(self.server.clone())
            .map_err(|e| CliError::Usage(format!("--server {:?}: {e}", self.server)))?;
        if self.server.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(path) = &self.ca_cert {
                let pem = std::fs::read(path)
                    .map_err(|e| CliError::Usage(format!("--ca-cert {}: {e}", path.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
        }
        endpoint
            .connect()
            .await
            .map_err(|e| CliError::Unreachable(format!("cannot reach {}: {e}", self.server)))
    }

    fn bearer(&self) -> Result<Bearer, CliError> {
        self.token
            .as_ref()
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| CliError::Usage("the token must be printable ASCII".into()))
            })
            .transpose()
            .map(Bearer)
    }

    /// An `EventLog` client.
    pub async fn event_log(&self) -> Result<EventLogClient<Authed>, CliError> {
        Ok(EventLogClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    /// A `ConsumerGroups` client.
    pub async fn groups(&self) -> Result<ConsumerGroupsClient<Authed>, CliError> {
        Ok(ConsumerGroupsClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }
}

/// Writes a line to stdout, flushing so pipes see it at once.
fn emit(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Runs a client command to its exit code.
pub async fn run(command: impl std::future::Future<Output = Result<(), CliError>>) -> ExitCode {
    match command.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
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
