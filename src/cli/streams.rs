//! `riverlog streams [ls|info|create|delete|trim]`; without a subcommand
//! it lists, as `streams ls` does.

use clap::{Args, Subcommand};
use serde_json::json;

use super::confirm;
use super::output::{Format, OutputArgs, stream_fields, stream_json, streams_table};
use super::{CliError, Connection, duration, emit, emit_block, timestamp};
use crate::proto::v1::{self, trim_request::Until};

/// Stream administration; lists streams when no subcommand is given.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    #[command(subcommand)]
    command: Option<StreamsCommand>,
    #[command(flatten)]
    list: ListArgs,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    output: OutputArgs,
}

/// `riverlog streams [ls] [PATTERN]`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only streams matching this pattern, like `orders:*`.
    pattern: Option<String>,
}

/// Stream administration.
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// List streams, optionally matching a pattern (the default command).
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Describe a stream.
    Info {
        /// The stream.
        stream: String,
    },
    /// Create an empty stream with retention rules.
    Create {
        /// The stream.
        stream: String,
        /// Keep at most this many events.
        #[arg(long)]
        max_events: Option<u64>,
        /// Remove events older than this (`7d`).
        #[arg(long, value_parser = duration)]
        max_age: Option<prost_types::Duration>,
        /// Delete the stream after this long without appends.
        #[arg(long, value_parser = duration)]
        ttl: Option<prost_types::Duration>,
        /// What else removes events: `limits` (only the rules above),
        /// `interest` (once every group acked them) or `work_queue` (once
        /// its one group acked them).
        #[arg(long, value_parser = policy, default_value = "limits")]
        policy: v1::RetentionPolicy,
        /// How long a removed event's id still answers a republish as
        /// duplicate (`24h`; default: the server's, else forever).
        #[arg(long, value_parser = duration)]
        dedup_window: Option<prost_types::Duration>,
    },
    /// Delete a stream with its events, groups and checkpoints. Asks on a
    /// terminal; without one, needs --yes.
    Delete {
        /// The stream.
        stream: String,
        /// Do not ask: delete.
        #[arg(long, short)]
        yes: bool,
    },
    /// Remove old events; give exactly one rule.
    Trim(TrimArgs),
}

/// `riverlog streams trim`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("until")
        .required(true)
        .multiple(false)
        .args(["keep", "before_sequence", "before_time"])
))]
pub struct TrimArgs {
    /// The stream.
    stream: String,
    /// Keep only the newest N events.
    #[arg(long)]
    keep: Option<u64>,
    /// Remove events below this sequence.
    #[arg(long)]
    before_sequence: Option<u64>,
    /// Remove events recorded before this RFC 3339 time.
    #[arg(long, value_parser = timestamp)]
    before_time: Option<prost_types::Timestamp>,
}

impl StreamsArgs {
    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        let format = self.output.format();
        let connection = &self.connection;
        if let (Some(_), Some(pattern)) = (&self.command, &self.list.pattern) {
            return Err(CliError::Usage(format!(
                "{pattern:?} before the subcommand: put it after, as in `riverlog streams ls PATTERN`"
            )));
        }
        match self.command {
            None => list(connection, format, self.list.pattern).await,
            Some(StreamsCommand::Ls(args)) => list(connection, format, args.pattern).await,
            Some(StreamsCommand::Info { stream }) => {
                let info = describe(connection, stream).await?;
                match format {
                    Format::Json => emit(&stream_json(&info).to_string()),
                    Format::Text => emit_block(&stream_fields(&info)),
                }
            }
            Some(StreamsCommand::Create {
                stream,
                max_events,
                max_age,
                ttl,
                policy,
                dedup_window,
            }) => {
                let info = connection
                    .event_log()
                    .await?
                    .create_stream(v1::CreateStreamRequest {
                        stream,
                        retention: Some(v1::Retention {
                            max_events: max_events.unwrap_or(0),
                            max_age,
                            ttl,
                            policy: policy.into(),
                            dedup_window,
                        }),
                    })
                    .await?
                    .into_inner()
                    .info
                    .unwrap_or_default();
                match format {
                    Format::Json => emit(&stream_json(&info).to_string()),
                    Format::Text => emit(&format!("created {}", info.stream)),
                }
            }
            Some(StreamsCommand::Delete { stream, yes }) => {
                if !yes {
                    confirm::need_terminal(&format!("deleting stream {stream} cannot be undone"))?;
                    // Says what would go, and NOT_FOUND before asking.
                    let info = describe(connection, stream.clone()).await?;
                    confirm::ask(&format!(
                        "delete stream {stream} with its {} events, {} groups and its \
                         checkpoints?",
                        info.event_count, info.group_count
                    ))?;
                }
                let deleted = connection
                    .event_log()
                    .await?
                    .delete_stream(v1::DeleteStreamRequest {
                        stream: stream.clone(),
                    })
                    .await?
                    .into_inner()
                    .events_deleted;
                match format {
                    Format::Json => {
                        emit(&json!({"stream": stream, "events_deleted": deleted}).to_string())
                    }
                    Format::Text => emit(&format!("deleted {stream} ({deleted} events)")),
                }
            }
            Some(StreamsCommand::Trim(args)) => {
                let until = match (args.keep, args.before_sequence, args.before_time) {
                    (Some(n), _, _) => Until::MaxEvents(n),
                    (_, Some(s), _) => Until::BeforeSequence(s),
                    (_, _, Some(t)) => Until::BeforeTime(t),
                    _ => {
                        return Err(CliError::Usage(
                            "give --keep, --before-sequence or --before-time".into(),
                        ));
                    }
                };
                let removed = connection
                    .event_log()
                    .await?
                    .trim(v1::TrimRequest {
                        stream: args.stream.clone(),
                        until: Some(until),
                    })
                    .await?
                    .into_inner()
                    .removed;
                match format {
                    Format::Json => {
                        emit(&json!({"stream": args.stream, "removed": removed}).to_string())
                    }
                    Format::Text => emit(&format!("removed {removed} events from {}", args.stream)),
                }
            }
        }
    }
}

/// One stream's description.
async fn describe(connection: &Connection, stream: String) -> Result<v1::StreamInfo, CliError> {
    Ok(connection
        .event_log()
        .await?
        .get_stream(v1::GetStreamRequest { stream })
        .await?
        .into_inner()
        .info
        .unwrap_or_default())
}

/// Prints every stream (matching `pattern`), page by page from the server.
async fn list(
    connection: &Connection,
    format: Format,
    pattern: Option<String>,
) -> Result<(), CliError> {
    let mut client = connection.event_log().await?;
    let mut page_token = String::new();
    let mut streams = Vec::new();
    loop {
        let page = client
            .list_streams(v1::ListStreamsRequest {
                pattern: pattern.clone().unwrap_or_default(),
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        match format {
            // Each page as it comes: a script sees the first at once.
            Format::Json => {
                for s in &page.streams {
                    emit(&stream_json(s).to_string())?;
                }
            }
            // A table needs every row to line its columns up.
            Format::Text => streams.extend(page.streams),
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if format == Format::Text {
        if streams.is_empty() {
            eprintln!("no streams");
        } else {
            emit_block(&streams_table(&streams))?;
        }
    }
    Ok(())
}

/// A `--policy` value: `limits`, `interest` or `work_queue`.
fn policy(s: &str) -> Result<v1::RetentionPolicy, String> {
    Ok(crate::service::convert::retention_policy(s.parse()?))
}
