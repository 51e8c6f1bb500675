//! `riverlog streams ls|info|create|delete|trim`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{stream_json, stream_line};
use super::{CliError, Connection, duration, emit, timestamp};
use crate::proto::v1::{self, trim_request::Until};

/// Stream administration.
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// List streams, optionally matching a pattern.
    Ls {
        /// Pattern like `orders:*`.
        pattern: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Describe a stream.
    Info {
        /// The stream.
        stream: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
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
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a stream with its events, groups and checkpoints.
    Delete {
        /// The stream.
        stream: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove old events; give exactly one rule.
    Trim(TrimArgs),
}

/// `riverlog streams trim`.
#[derive(Debug, Args)]
#[group(id = "until", required = true, multiple = false, args = ["keep", "before_sequence", "before_time"])]
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
    #[command(flatten)]
    connection: Connection,
}

impl StreamsCommand {
    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        match self {
            Self::Ls {
                pattern,
                json,
                connection,
            } => {
                let mut client = connection.event_log().await?;
                let mut page_token = String::new();
                loop {
                    let page = client
                        .list_streams(v1::ListStreamsRequest {
                            pattern: pattern.clone().unwrap_or_default(),
                            page_size: 1000,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    for s in &page.streams {
                        emit(&if json {
                            stream_json(s).to_string()
                        } else {
                            stream_line(s)
                        })?;
                    }
                    if page.next_page_token.is_empty() {
                        return Ok(());
                    }
                    page_token = page.next_page_token;
                }
            }
            Self::Info {
                stream,
                json,
                connection,
            } => {
                let info = connection
                    .event_log()
                    .await?
                    .get_stream(v1::GetStreamRequest { stream })
                    .await?
                    .into_inner()
                    .info
                    .unwrap_or_default();
                let value = stream_json(&info);
                emit(&if json {
                    value.to_string()
                } else {
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                })
            }
            Self::Create {
                stream,
                max_events,
                max_age,
                ttl,
                policy,
                dedup_window,
                connection,
            } => {
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
                emit(&format!("created {}", info.stream))
            }
            Self::Delete { stream, connection } => {
                let deleted = connection
                    .event_log()
                    .await?
                    .delete_stream(v1::DeleteStreamRequest {
                        stream: stream.clone(),
                    })
                    .await?
                    .into_inner()
                    .events_deleted;
                emit(&format!("deleted {stream} ({deleted} events)"))
            }
            Self::Trim(args) => {
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
                let removed = args
                    .connection
                    .event_log()
                    .await?
                    .trim(v1::TrimRequest {
                        stream: args.stream.clone(),
                        until: Some(until),
                    })
                    .await?
                    .into_inner()
                    .removed;
                emit(&json!({"stream": args.stream, "removed": removed}).to_string())
            }
        }
    }
}

/// A `--policy` value: `limits`, `interest` or `work_queue`.
fn policy(s: &str) -> Result<v1::RetentionPolicy, String> {
    Ok(match s.parse::<crate::model::records::RetentionPolicy>()? {
        crate::model::records::RetentionPolicy::Limits => v1::RetentionPolicy::Limits,
        crate::model::records::RetentionPolicy::Interest => v1::RetentionPolicy::Interest,
        crate::model::records::RetentionPolicy::WorkQueue => v1::RetentionPolicy::WorkQueue,
    })
}
