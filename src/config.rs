//! Server configuration: flags, each with a `RIVERLOG_*` environment
//! variable; a flag wins over its variable, which wins over the default.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::log::Limits;
use crate::storage::StorageOptions;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// fsync on every commit: an acknowledged publish survives power loss.
    Full,
    /// fsync at WAL checkpoints only: faster; survives a process crash but
    /// may lose the last commits on power loss.
    Normal,
}

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// A duration above zero, like `500ms` or `2s`.
fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Options of `riverlog serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// gRPC listen address.
    #[arg(long, env = "RIVERLOG_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: String,

    /// Database URL: `sqlite://PATH` (or a bare path).
    #[arg(
        long,
        env = "RIVERLOG_DATABASE_URL",
        default_value = "sqlite://./data/riverlog.db"
    )]
    pub database_url: String,

    /// Create streams on their first publish.
    #[arg(long, env = "RIVERLOG_AUTO_CREATE_STREAMS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_streams: bool,

    /// SQLite durability: `full` fsyncs every commit.
    #[arg(
        long,
        env = "RIVERLOG_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: SqliteSync,

    /// Database connections for reads (the writer has its own one).
    #[arg(long, env = "RIVERLOG_DB_POOL_SIZE", default_value_t = 4)]
    pub db_pool_size: u32,

    /// PostgreSQL: longest a statement may run (`0s`: no limit).
    #[arg(long, env = "RIVERLOG_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: Duration,

    /// PostgreSQL: connection attempts at start-up before giving up.
    #[arg(long, env = "RIVERLOG_DB_CONNECT_ATTEMPTS", default_value_t = 10)]
    pub db_connect_attempts: u32,

    /// Largest encoded CloudEvent accepted, in bytes.
    #[arg(long, env = "RIVERLOG_MAX_EVENT_SIZE", default_value_t = 1 << 20)]
    pub max_event_size: usize,

    /// Most events in one publish.
    #[arg(long, env = "RIVERLOG_MAX_BATCH_EVENTS", default_value_t = 1000)]
    pub max_batch_events: usize,

    /// Most encoded bytes in one publish.
    #[arg(long, env = "RIVERLOG_MAX_BATCH_BYTES", default_value_t = 16 << 20)]
    pub max_batch_bytes: usize,

    /// Memory for recent events that live subscribers falling a little
    /// behind read from; beyond it they read storage. Bytes.
    #[arg(long, env = "RIVERLOG_LIVE_BUFFER_BYTES", default_value_t = 64 << 20)]
    pub live_buffer_bytes: usize,

    /// How often storage is probed for the health service.
    #[arg(long, env = "RIVERLOG_HEALTH_CHECK_INTERVAL", default_value = "1s", value_parser = positive_duration)]
    pub health_check_interval: Duration,

    /// How long shutdown waits for in-flight writes to commit.
    #[arg(long, env = "RIVERLOG_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log format; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "RIVERLOG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl ServeConfig {
    /// The defaults, with a different database and listen address: what
    /// tests and embedders start from.
    pub fn new(database_url: impl Into<String>, listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            database_url: database_url.into(),
            auto_create_streams: true,
            sqlite_synchronous: SqliteSync::Full,
            db_pool_size: 4,
            db_statement_timeout: Duration::from_secs(30),
            db_connect_attempts: 10,
            max_event_size: 1 << 20,
            max_batch_events: 1000,
            max_batch_bytes: 16 << 20,
            live_buffer_bytes: 64 << 20,
            health_check_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
        }
    }

    /// The limits the log enforces.
    pub fn limits(&self) -> Limits {
        Limits {
            max_event_size: self.max_event_size,
            max_batch_events: self.max_batch_events,
            max_batch_bytes: self.max_batch_bytes,
            auto_create_streams: self.auto_create_streams,
            live_buffer_bytes: self.live_buffer_bytes,
        }
    }

    /// The database URL with any password replaced by `***`, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// Storage options.
    pub fn storage_options(&self) -> StorageOptions {
        StorageOptions {
            sqlite_sync_full: self.sqlite_synchronous == SqliteSync::Full,
            read_connections: self.db_pool_size.max(1),
            statement_timeout: Some(self.db_statement_timeout).filter(|t| !t.is_zero()),
            connect_attempts: self.db_connect_attempts.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let parsed = Cli::try_parse_from(["riverlog"]).unwrap().serve;
        let built = ServeConfig::new("sqlite://./data/riverlog.db", "127.0.0.1:50051");
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/log?sslmode=require"),
            "postgres://app:***@db:5432/log?sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/log"), "postgres://app@db/log");
        assert_eq!(
            redact_url("sqlite://./data/riverlog.db"),
            "sqlite://./data/riverlog.db"
        );
    }

    #[test]
    fn a_zero_health_interval_is_refused() {
        assert!(Cli::try_parse_from(["riverlog", "--health-check-interval", "0s"]).is_err());
        assert!(Cli::try_parse_from(["riverlog", "--health-check-interval", "250ms"]).is_ok());
    }

    #[test]
    fn auto_create_can_be_switched_off() {
        let parsed = Cli::try_parse_from(["riverlog", "--auto-create-streams", "false"]).unwrap();
        assert!(!parsed.serve.auto_create_streams);
    }
}
