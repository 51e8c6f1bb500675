//! Server configuration from four layers, each overriding the one before:
//! built-in defaults, a TOML file (`--config`), `RIVERLOG_*` environment
//! variables, and command-line flags.
//!
//! Every setting has one name in all three forms: the TOML key
//! `max_event_size` is the flag `--max-event-size` and the variable
//! `RIVERLOG_MAX_EVENT_SIZE`. Tokens (`[[auth.tokens]]`) exist only in the
//! file. A value that does not parse, or an unknown key, stops start-up
//! with a message naming the key and where it came from.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Arg, ArgMatches, ValueEnum, parser::ValueSource};

use crate::auth::{AuthConfig, TokenConfig};
use crate::log::{Limits, Retention, RetentionPolicy, StreamLimits};
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

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nobody set it.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(var) => write!(f, "env {var}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Why the configuration was refused. The message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        message: String,
    },
    /// The file has a key riverlog does not know.
    #[error("unknown config key `{key}` in {path} (`riverlog config --reference` lists them)")]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A value is malformed or out of range.
    #[error("invalid `{key}` (from {origin}): {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Where the value came from.
        origin: Source,
        /// What is wrong.
        message: String,
    },
}

/// A setting's type: parsed from a flag or variable, read from TOML and
/// shown back as TOML.
trait Setting: Sized {
    fn parse(raw: &str) -> Result<Self, String>;

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Self::parse(s),
            other => Err(format!("expected a string, found {}", other.type_str())),
        }
    }

    /// `None` for an unset optional setting.
    fn to_toml(&self) -> Option<toml::Value>;
}

impl Setting for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl Setting for bool {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("expected true or false, found {raw:?}")),
        }
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| format!("expected a boolean, found {}", value.type_str()))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

macro_rules! integer_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.parse::<$t>().map_err(|_| format!(
                    "expected a whole number from {} to {}, found {raw:?}", <$t>::MIN, <$t>::MAX))
            }
            fn from_toml(value: &toml::Value) -> Result<Self, String> {
                let n = value.as_integer().ok_or_else(|| {
                    format!("expected an integer, found {}", value.type_str())
                })?;
                <$t>::try_from(n).map_err(|_| format!(
                    "expected a whole number from {} to {}, found {n}", <$t>::MIN, <$t>::MAX))
            }
            fn to_toml(&self) -> Option<toml::Value> {
                // Settings stay far below i64::MAX; saturate rather than panic.
                Some(toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
integer_setting!(u32, u64, usize);

impl Setting for Duration {
    fn parse(raw: &str) -> Result<Self, String> {
        humantime::parse_duration(raw).map_err(|e| {
            format!("expected a duration like \"500ms\" or \"30s\", found {raw:?}: {e}")
        })
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(
            humantime::format_duration(*self).to_string(),
        ))
    }
}

macro_rules! enum_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn parse(raw: &str) -> Result<Self, String> {
                <$t as ValueEnum>::from_str(raw, false).map_err(|_| {
                    let names: Vec<_> = <$t as ValueEnum>::value_variants()
                        .iter()
                        .filter_map(|v| v.to_possible_value())
                        .map(|v| v.get_name().to_owned())
                        .collect();
                    format!("expected one of {}, found {raw:?}", names.join(", "))
                })
            }
            fn to_toml(&self) -> Option<toml::Value> {
                self.to_possible_value().map(|v| toml::Value::String(v.get_name().to_owned()))
            }
        }
    )*};
}
enum_setting!(LogFormat, SqliteSync);

impl<T: Setting> Setting for Option<T> {
    fn parse(raw: &str) -> Result<Self, String> {
        T::parse(raw).map(Some)
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        T::from_toml(value).map(Some)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::to_toml)
    }
}

/// One setting, as the reference documents it.
#[derive(Debug, Clone, Copy)]
pub struct SettingInfo {
    /// TOML key; the flag is the same with `-` for `_`.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// One-line description.
    pub doc: &'static str,
}

impl SettingInfo {
    /// The command-line flag, like `--max-event-size`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }
}

/// Declares every setting once: the field of [`Config`], its default, its
/// environment variable and its documentation.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident : $ty:ty = $default:expr, env $env:literal;
    )*) => {
        /// The effective configuration of a server.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )*
            /// Bearer tokens and what each may do; empty: auth is off.
            pub auth: AuthConfig,
            /// Where each setting's value came from, for `riverlog config`.
            pub sources: BTreeMap<&'static str, Source>,
        }

        impl Default for Config {
            fn default() -> Self {
                Self {
                    $( $key: $default, )*
                    auth: AuthConfig::default(),
                    sources: BTreeMap::new(),
                }
            }
        }

        /// Every setting, in declaration order.
        pub const SETTINGS: &[SettingInfo] = &[
            $( SettingInfo { key: stringify!($key), env: $env, doc: concat!($($doc),+) }, )*
        ];

        impl Config {
            /// Sets `key` from a flag or variable (`Err(None)`: unknown key).
            fn assign_raw(&mut self, key: &str, raw: &str) -> Result<(), Option<String>> {
                match key {
                    $( stringify!($key) => self.$key = Setting::parse(raw).map_err(Some)?, )*
                    _ => return Err(None),
                }
                Ok(())
            }

            /// Sets `key` from the TOML file (`Err(None)`: unknown key).
            fn assign_toml(&mut self, key: &str, value: &toml::Value) -> Result<(), Option<String>> {
                match key {
                    $( stringify!($key) => self.$key = Setting::from_toml(value).map_err(Some)?, )*
                    _ => return Err(None),
                }
                Ok(())
            }

            /// Each setting's value as TOML (`None`: unset).
            fn values(&self) -> Vec<(&'static str, Option<toml::Value>)> {
                vec![ $( (stringify!($key), Setting::to_toml(&self.$key)), )* ]
            }
        }
    };
}

settings! {
    /// gRPC listen address.
    listen: String = "127.0.0.1:50051".into(), env "RIVERLOG_LISTEN";
    /// HTTP listen address (`/metrics`).
    http_listen: String = "127.0.0.1:8080".into(), env "RIVERLOG_HTTP_LISTEN";
    /// Database URL: `sqlite://PATH` (or a bare path), or `postgres://...`.
    database_url: String = "sqlite://./data/riverlog.db".into(), env "RIVERLOG_DATABASE_URL";
    /// Create streams on their first publish.
    auto_create_streams: bool = true, env "RIVERLOG_AUTO_CREATE_STREAMS";
    /// SQLite durability: `full` fsyncs every commit, `normal` only at checkpoints.
    sqlite_synchronous: SqliteSync = SqliteSync::Full, env "RIVERLOG_SQLITE_SYNCHRONOUS";
    /// Database connections for reads (the writer has its own one).
    db_pool_size: u32 = 4, env "RIVERLOG_DB_POOL_SIZE";
    /// PostgreSQL: longest a statement may run (`0s`: no limit).
    db_statement_timeout: Duration = Duration::from_secs(30), env "RIVERLOG_DB_STATEMENT_TIMEOUT";
    /// PostgreSQL: connection attempts at start-up before giving up.
    db_connect_attempts: u32 = 10, env "RIVERLOG_DB_CONNECT_ATTEMPTS";
    /// Largest encoded CloudEvent accepted, in bytes.
    max_event_size: usize = 1 << 20, env "RIVERLOG_MAX_EVENT_SIZE";
    /// Most events in one publish.
    max_batch_events: usize = 1000, env "RIVERLOG_MAX_BATCH_EVENTS";
    /// Most encoded bytes in one publish; gRPC messages may be 1 MiB larger.
    max_batch_bytes: usize = 16 << 20, env "RIVERLOG_MAX_BATCH_BYTES";
    /// Bytes of recent events kept in memory for live subscribers.
    live_buffer_bytes: usize = 64 << 20, env "RIVERLOG_LIVE_BUFFER_BYTES";
    /// Most streams the log holds; creating one more is RESOURCE_EXHAUSTED (0: no limit).
    max_streams: u64 = 100_000, env "RIVERLOG_MAX_STREAMS";
    /// Most retained events per stream; a publish past it is RESOURCE_EXHAUSTED (0: no limit).
    max_stream_events: u64 = 0, env "RIVERLOG_MAX_STREAM_EVENTS";
    /// Default retention: most events a stream keeps (a stream's own setting wins).
    retention_max_events: Option<u64> = None, env "RIVERLOG_RETENTION_MAX_EVENTS";
    /// Default retention: oldest event age kept, like `7d`.
    retention_max_age: Option<Duration> = None, env "RIVERLOG_RETENTION_MAX_AGE";
    /// Default retention: a stream without appends for this long is deleted.
    retention_ttl: Option<Duration> = None, env "RIVERLOG_RETENTION_TTL";
    /// Default dedup window: how long after an event was recorded its id still answers a republish as duplicate once the event was removed (unset: as long as the stream exists; a stream's own setting wins).
    dedup_window: Option<Duration> = None, env "RIVERLOG_DEDUP_WINDOW";
    /// How often retention is enforced (limits, interest and work-queue policies, forgetting ids past their dedup window).
    retention_interval: Duration = Duration::from_secs(10), env "RIVERLOG_RETENTION_INTERVAL";
    /// How often entries whose last allowed delivery timed out are moved to their group's dead-letter stream, whether or not a consumer asks for work.
    dead_letter_interval: Duration = Duration::from_secs(1), env "RIVERLOG_DEAD_LETTER_INTERVAL";
    /// Most open Subscribe and Consume streams on the server.
    max_subscriptions: usize = 10_000, env "RIVERLOG_MAX_SUBSCRIPTIONS";
    /// Most open Subscribe and Consume streams per client connection.
    max_subscriptions_per_connection: usize = 100, env "RIVERLOG_MAX_SUBSCRIPTIONS_PER_CONNECTION";
    /// Most open PublishStream calls on the server.
    max_publish_streams: usize = 1000, env "RIVERLOG_MAX_PUBLISH_STREAMS";
    /// Encoded event bytes (at least 1 KiB a request) that all PublishStream calls together may have queued for commit; past it they read no further request until commits free room.
    publish_stream_buffer_bytes: usize = 64 << 20, env "RIVERLOG_PUBLISH_STREAM_BUFFER_BYTES";
    /// Events per second each token (or, with auth off, the whole server) may publish (0: no limit).
    publish_rate_limit: u32 = 0, env "RIVERLOG_PUBLISH_RATE_LIMIT";
    /// Events a token may publish at once above its rate; 0: the larger of the rate and max_batch_events.
    publish_burst: u32 = 0, env "RIVERLOG_PUBLISH_BURST";
    /// How often storage is probed for the health service.
    health_check_interval: Duration = Duration::from_secs(1), env "RIVERLOG_HEALTH_CHECK_INTERVAL";
    /// Origins browsers may call from (grpc-web and the HTTP API), comma-separated; `*` for any; unset: none.
    cors_allowed_origins: Option<String> = None, env "RIVERLOG_CORS_ALLOWED_ORIGINS";
    /// Serve the web console from this folder instead of the built-in copy (for working on it).
    console_dir: Option<String> = None, env "RIVERLOG_CONSOLE_DIR";
    /// Server-Sent Events: heartbeat comment interval when idle.
    sse_heartbeat: Duration = Duration::from_secs(15), env "RIVERLOG_SSE_HEARTBEAT";
    /// How long shutdown waits for open calls and queued writes.
    shutdown_grace: Duration = Duration::from_secs(10), env "RIVERLOG_SHUTDOWN_GRACE";
    /// PEM certificate chain: serve gRPC and HTTP over TLS (needs tls_key).
    tls_cert: Option<String> = None, env "RIVERLOG_TLS_CERT";
    /// PEM private key of tls_cert.
    tls_key: Option<String> = None, env "RIVERLOG_TLS_KEY";
    /// PEM CA bundle: clients must present a certificate it signed.
    tls_client_ca: Option<String> = None, env "RIVERLOG_TLS_CLIENT_CA";
    /// With tls_client_ca: let clients without a certificate in too.
    tls_client_auth_optional: bool = false, env "RIVERLOG_TLS_CLIENT_AUTH_OPTIONAL";
    /// Log format: `text` or `json`.
    log_format: LogFormat = LogFormat::Text, env "RIVERLOG_LOG_FORMAT";
    /// Log filter like `info` or `riverlog=debug`; unset: `RUST_LOG`, else `info`.
    log_level: Option<String> = None, env "RIVERLOG_LOG_LEVEL";
    /// Log one line per gRPC call and HTTP request (target `riverlog::access`, level INFO): method, route or RPC, status, duration, peer, response bytes.
    access_log: bool = false, env "RIVERLOG_ACCESS_LOG";
    /// OTLP/gRPC collector for traces and metrics, like `http://otel:4317`; unset: no export.
    otlp_endpoint: Option<String> = None, env "RIVERLOG_OTLP_ENDPOINT";
    /// Serve `/metrics` on this address, without a token, instead of on `http_listen` (where it needs a token with `metrics` when tokens are configured); keep it off public networks.
    metrics_listen: Option<String> = None, env "RIVERLOG_METRICS_LISTEN";
    /// How often metrics are pushed over OTLP.
    otlp_metrics_interval: Duration = Duration::from_secs(10), env "RIVERLOG_OTLP_METRICS_INTERVAL";
    /// How often consumer-group lag and pending gauges are refreshed.
    group_metrics_interval: Duration = Duration::from_secs(15), env "RIVERLOG_GROUP_METRICS_INTERVAL";
}

/// Command-line and environment input of `riverlog serve` and
/// `riverlog config`: every setting as an optional flag with its variable,
/// plus `--config`.
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// Settings given as flags or variables.
    given: Vec<(&'static SettingInfo, String, Source)>,
}

impl clap::FromArgMatches for ConfigArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self {
            file: matches.get_one::<PathBuf>("config").cloned(),
            given: Vec::new(),
        };
        for info in SETTINGS {
            if let Some(raw) = matches.get_one::<String>(info.key) {
                let source = match matches.value_source(info.key) {
                    Some(ValueSource::EnvVariable) => Source::Env(info.env),
                    _ => Source::Flag(info.flag()),
                };
                args.given.push((info, raw.clone(), source));
            }
        }
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let file = Arg::new("config")
            .long("config")
            .env("RIVERLOG_CONFIG")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML config file; flags and RIVERLOG_* variables override it");
        let defaults = Config::default().values();
        cmd.arg(file).args(SETTINGS.iter().map(|info| {
            // Shown in the help only: a clap default would count as given
            // and hide the file's value.
            let default = defaults
                .iter()
                .find(|(key, _)| *key == info.key)
                .and_then(|(_, value)| value.as_ref())
                .map(|value| match value {
                    toml::Value::String(s) => format!(" [default: {s}]"),
                    other => format!(" [default: {other}]"),
                })
                .unwrap_or_default();
            Arg::new(info.key)
                .long(info.key.replace('_', "-"))
                .env(info.env)
                .value_name("VALUE")
                .help(format!("{}{default}", info.doc.trim()))
        }))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The TOML sections that are not plain settings.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

impl Config {
    /// The defaults, with a different database and listen address: what
    /// tests and embedders start from. The HTTP side binds a free port.
    pub fn new(database_url: impl Into<String>, listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            http_listen: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            ..Self::default()
        }
    }

    /// Resolves defaults, the file, the environment and the flags, then
    /// checks the result.
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = &args.file {
            config.merge_file(path)?;
        }
        for (info, raw, source) in &args.given {
            config
                .assign_raw(info.key, raw)
                .map_err(|message| ConfigError::Invalid {
                    key: info.key.to_owned(),
                    origin: source.clone(),
                    message: message.unwrap_or_else(|| "unknown setting".into()),
                })?;
            config.sources.insert(info.key, source.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Loads a TOML file over the current values.
    fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
        let from_file = Source::File(path.to_owned());
        for (key, value) in &table {
            if key == "auth" {
                let section: AuthSection =
                    value.clone().try_into().map_err(|e: toml::de::Error| {
                        ConfigError::Invalid {
                            key: "auth".into(),
                            origin: from_file.clone(),
                            message: e.message().to_owned(),
                        }
                    })?;
                self.auth = AuthConfig {
                    tokens: section.tokens,
                };
                self.sources.insert("auth", from_file.clone());
                continue;
            }
            match self.assign_toml(key, value) {
                Ok(()) => {}
                Err(None) => {
                    return Err(ConfigError::UnknownKey {
                        key: key.clone(),
                        path: path.to_owned(),
                    });
                }
                Err(Some(message)) => {
                    return Err(ConfigError::Invalid {
                        key: key.clone(),
                        origin: from_file,
                        message,
                    });
                }
            }
            if let Some(info) = SETTINGS.iter().find(|i| i.key == key) {
                self.sources.insert(info.key, from_file.clone());
            }
        }
        Ok(())
    }

    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            origin: self.source(key),
            message: message.into(),
        }
    }

    /// Checks values that parse but cannot work.
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("db_pool_size", self.db_pool_size as usize),
            ("db_connect_attempts", self.db_connect_attempts as usize),
            ("max_event_size", self.max_event_size),
            ("max_batch_events", self.max_batch_events),
            ("max_batch_bytes", self.max_batch_bytes),
            ("max_subscriptions", self.max_subscriptions),
            ("max_publish_streams", self.max_publish_streams),
            (
                "publish_stream_buffer_bytes",
                self.publish_stream_buffer_bytes,
            ),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(self.invalid(key, "must be above zero"));
            }
        }
        for (key, value) in [
            ("health_check_interval", self.health_check_interval),
            ("otlp_metrics_interval", self.otlp_metrics_interval),
            ("group_metrics_interval", self.group_metrics_interval),
            ("retention_interval", self.retention_interval),
            ("dead_letter_interval", self.dead_letter_interval),
            ("sse_heartbeat", self.sse_heartbeat),
        ] {
            if value.is_zero() {
                return Err(self.invalid(key, "must be above zero"));
            }
        }
        if self.max_event_size > self.max_batch_bytes {
            return Err(self.invalid(
                "max_event_size",
                format!(
                    "{} is larger than max_batch_bytes ({}): such an event could never be published",
                    self.max_event_size, self.max_batch_bytes
                ),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(self.invalid("tls_key", "tls_cert needs tls_key")),
            (None, Some(_)) => return Err(self.invalid("tls_cert", "tls_key needs tls_cert")),
            _ => {}
        }
        if self.tls_client_auth_optional && self.tls_client_ca.is_none() {
            return Err(self.invalid(
                "tls_client_auth_optional",
                "only means something with tls_client_ca",
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(self.invalid(
                "tls_client_ca",
                "client certificates need TLS: set tls_cert and tls_key",
            ));
        }
        if let Some(level) = &self.log_level {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(level) {
                return Err(self.invalid("log_level", e.to_string()));
            }
        }
        self.auth
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                key,
                origin: self.source("auth"),
                message,
            })
    }

    /// The effective configuration as a TOML document, each value followed
    /// by where it came from, the database password replaced by `***`.
    pub fn to_toml_annotated(&self) -> String {
        let mut out = String::from(
            "# riverlog effective configuration\n\
             # precedence: flag > RIVERLOG_* environment > config file > default\n",
        );
        for (key, value) in self.values() {
            let value = match (key, value) {
                ("database_url", Some(toml::Value::String(url))) => {
                    Some(toml::Value::String(redact_url(&url)))
                }
                (_, value) => value,
            };
            match value {
                Some(value) => {
                    let _ = writeln!(out, "{key} = {value}  # {}", self.source(key));
                }
                None => {
                    let _ = writeln!(out, "# {key} is unset  # {}", self.source(key));
                }
            }
        }
        if self.auth.tokens.is_empty() {
            out.push_str("# no [[auth.tokens]]: authentication is off\n");
        }
        for token in &self.auth.tokens {
            let _ = write!(out, "\n[[auth.tokens]]\n{}", token.to_toml());
        }
        out
    }

    /// The settings reference as a Markdown table (the README carries it).
    pub fn reference_markdown() -> String {
        let defaults = Self::default().values();
        let mut out =
            String::from("| key / flag / environment | default | meaning |\n| --- | --- | --- |\n");
        for (info, (_, default)) in SETTINGS.iter().zip(defaults) {
            let default = default.map_or_else(|| "unset".to_owned(), |v| format!("`{v}`"));
            let _ = writeln!(
                out,
                "| `{}` / `{}` / `{}` | {default} | {} |",
                info.key,
                info.flag(),
                info.env,
                info.doc.trim()
            );
        }
        out
    }

    /// The limits the log enforces.
    pub fn limits(&self) -> Limits {
        Limits {
            max_event_size: self.max_event_size,
            max_batch_events: self.max_batch_events,
            max_batch_bytes: self.max_batch_bytes,
            auto_create_streams: self.auto_create_streams,
            live_buffer_bytes: self.live_buffer_bytes,
            // Half the read pool at most: the rest stays free for reads
            // that are not catch-up.
            catch_up_reads: (self.db_pool_size as usize / 2).max(1),
            streams: StreamLimits {
                max_streams: self.max_streams,
                max_stream_events: self.max_stream_events,
                dedup_window: self.dedup_window.filter(|d| !d.is_zero()),
            },
        }
    }

    /// The database URL with any password replaced by `***`, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// The server-wide retention defaults.
    pub fn retention_defaults(&self) -> Retention {
        Retention {
            max_events: self.retention_max_events.filter(|&n| n > 0),
            max_age: self.retention_max_age.filter(|d| !d.is_zero()),
            ttl: self.retention_ttl.filter(|d| !d.is_zero()),
            policy: RetentionPolicy::Limits,
            dedup_window: self.dedup_window.filter(|d| !d.is_zero()),
        }
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConfigArgs,
    }

    fn load(argv: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["riverlog"];
        full.extend_from_slice(argv);
        Config::load(&Cli::try_parse_from(full).expect("flags parse").args)
    }

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, contents.as_bytes()).expect("write");
        f
    }

    #[test]
    fn every_variable_is_riverlog_plus_the_key_in_capitals() {
        for info in SETTINGS {
            assert_eq!(info.env, format!("RIVERLOG_{}", info.key.to_uppercase()));
        }
    }

    #[test]
    fn the_readme_reference_table_is_the_generated_one() {
        let readme = include_str!("../README.md");
        let start = "<!-- config-reference:start -->\n";
        let end = "<!-- config-reference:end -->";
        let from = readme
            .find(start)
            .expect("README has the reference start marker")
            + start.len();
        let to = readme[from..].find(end).expect("end marker") + from;
        assert_eq!(
            &readme[from..to],
            Config::reference_markdown(),
            "README's config table is stale: paste `riverlog config --reference` into it"
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let f = file("listen = \"0.0.0.0:1\"\nmax_event_size = 2048\nlog_format = \"json\"\n");
        let path = f.path().to_str().unwrap();
        let config = load(&["--config", path, "--listen", "0.0.0.0:2"]).unwrap();
        assert_eq!(config.listen, "0.0.0.0:2");
        assert_eq!(config.source("listen"), Source::Flag("--listen".into()));
        assert_eq!(config.max_event_size, 2048);
        assert_eq!(
            config.source("max_event_size"),
            Source::File(f.path().into())
        );
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.db_pool_size, 4);
        assert_eq!(config.source("db_pool_size"), Source::Default);
    }

    #[test]
    fn bad_values_name_their_key_and_source() {
        let f = file("max_event_size = \"big\"\n");
        let err = load(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`max_event_size`") && err.contains("expected an integer"),
            "{err}"
        );

        let f = file("shutdown_grace = \"soon\"\n");
        let err = load(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`shutdown_grace`") && err.contains("duration"),
            "{err}"
        );

        let err = load(&["--db-pool-size=-3"]).unwrap_err().to_string();
        assert!(
            err.contains("`db_pool_size` (from flag --db-pool-size)"),
            "{err}"
        );

        let err = load(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(err.contains("expected one of text, json"), "{err}");

        let err = load(&["--health-check-interval", "0s"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`health_check_interval`") && err.contains("above zero"),
            "{err}"
        );

        let err = load(&["--max-event-size", "100", "--max-batch-bytes", "10"]).unwrap_err();
        assert!(err.to_string().contains("`max_event_size`"), "{err}");
    }

    #[test]
    fn unknown_keys_and_broken_toml_are_refused() {
        let f = file("listn = \"0.0.0.0:1\"\n");
        let err = load(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown config key `listn`"), "{err}");

        let f = file("listen = \n");
        let err = load(&["--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not valid TOML") && err.contains("line 1"),
            "{err}"
        );

        let err = load(&["--config", "/nonexistent/riverlog.toml"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read config file /nonexistent/riverlog.toml"),
            "{err}"
        );
    }

    #[test]
    fn the_printed_config_hides_the_password_and_reloads() {
        let config = load(&["--database-url", "postgres://app:s3cret@db/log"]).unwrap();
        let printed = config.to_toml_annotated();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("database_url = \"postgres://app:***@db/log\"  # flag --database-url")
        );
        // What `riverlog config` prints is itself a valid config file.
        let f = file(&printed);
        let reloaded = load(&["--config", f.path().to_str().unwrap()]).unwrap();
        assert_eq!(reloaded.listen, config.listen);
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
    fn auto_create_can_be_switched_off() {
        assert!(
            !load(&["--auto-create-streams", "false"])
                .unwrap()
                .auto_create_streams
        );
        assert!(load(&["--auto-create-streams", "maybe"]).is_err());
    }
}
