//! `riverlog groups ls|info|create|seek|redrive|delete|pending`.

use clap::Subcommand;

use super::output::{group_json, group_line, pending_json, pending_line};
use super::{CliError, Connection, duration, emit};
use crate::model::groups::GroupStart;
use crate::proto::v1::{self, group_start::Start};
use crate::service::convert;

/// Consumer-group administration.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List a stream's groups.
    Ls {
        /// The stream.
        stream: String,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Describe a group: pending, lag, consumers.
    Info {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create a group.
    Create {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// First event: `earliest`, `latest` (only new ones), a sequence or
        /// an RFC 3339 time (the first event recorded at or after it).
        #[arg(long, default_value = "earliest", value_parser = parse_start)]
        start: Start,
        /// Redelivery after this long without an ack (`30s`).
        #[arg(long, value_parser = duration)]
        ack_timeout: Option<prost_types::Duration>,
        /// Deliveries before an event is dead-lettered.
        #[arg(long, default_value_t = 0)]
        max_deliveries: u32,
        /// Dead-letter stream (default `<stream>:dlq`).
        #[arg(long, default_value = "")]
        dead_letter_stream: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Move a group's cursor: as if every event before it were acked and
    /// none after it delivered (its pending entries are removed).
    Seek {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// Where it goes on from: `earliest`, `latest`, a sequence or an
        /// RFC 3339 time.
        #[arg(long, value_parser = parse_start)]
        to: Start,
        #[command(flatten)]
        connection: Connection,
    },
    /// Give dead letters back to their group with a fresh delivery count
    /// (their copies leave the dead-letter stream).
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true)))]
    Redrive {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// All of the group's dead letters.
        #[arg(long, group = "which", conflicts_with_all = ["sequences", "event_type", "source", "subject"])]
        all: bool,
        /// Dead-letter stream sequences `FIRST-LAST` (or one sequence).
        #[arg(long, group = "which", value_parser = parse_range, conflicts_with_all = ["event_type", "source", "subject"])]
        sequences: Option<v1::SequenceRange>,
        /// Only dead letters of this type (repeatable).
        #[arg(long = "type", group = "which")]
        event_type: Vec<String>,
        /// Only dead letters from this source (repeatable).
        #[arg(long, group = "which")]
        source: Vec<String>,
        /// Only dead letters with this subject (repeatable).
        #[arg(long, group = "which")]
        subject: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a group with its pending entries.
    Delete {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List pending (delivered, unacked) entries.
    Pending {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
        /// Only this consumer's entries.
        #[arg(long, default_value = "")]
        consumer: String,
        /// Most entries shown.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

fn parse_start(s: &str) -> Result<Start, String> {
    Ok(match s.parse::<GroupStart>()? {
        GroupStart::Earliest => Start::Earliest(()),
        GroupStart::Latest => Start::Latest(()),
        GroupStart::Sequence(n) => Start::Sequence(n),
        GroupStart::Time(t) => Start::Time(convert::timestamp(t)),
    })
}

fn parse_range(s: &str) -> Result<v1::SequenceRange, String> {
    let (first, last) = s.split_once('-').unwrap_or((s, s));
    let number = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?}: use FIRST-LAST or one sequence number"))
    };
    Ok(v1::SequenceRange {
        first: number(first)?,
        last: number(last)?,
    })
}

impl GroupsCommand {
    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        match self {
            Self::Ls {
                stream,
                json,
                connection,
            } => {
                let groups = connection
                    .groups()
                    .await?
                    .list_groups(v1::ListGroupsRequest { stream })
                    .await?
                    .into_inner()
                    .groups;
                for g in &groups {
                    emit(&if json {
                        group_json(g).to_string()
                    } else {
                        group_line(g)
                    })?;
                }
                Ok(())
            }
            Self::Info {
                stream,
                group,
                json,
                connection,
            } => {
                let info = connection
                    .groups()
                    .await?
                    .get_group(v1::GetGroupRequest { stream, group })
                    .await?
                    .into_inner()
                    .info
                    .unwrap_or_default();
                let value = group_json(&info);
                emit(&if json {
                    value.to_string()
                } else {
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                })
            }
            Self::Create {
                stream,
                group,
                start,
                ack_timeout,
                max_deliveries,
                dead_letter_stream,
                connection,
            } => {
                let info = connection
                    .groups()
                    .await?
                    .create_group(v1::CreateGroupRequest {
                        stream,
                        group,
                        start: Some(v1::GroupStart { start: Some(start) }),
                        ack_timeout,
                        max_deliveries,
                        dead_letter_stream,
                    })
                    .await?
                    .into_inner()
                    .info
                    .unwrap_or_default();
                emit(&format!(
                    "created {}/{} (dead letters to {})",
                    info.stream, info.group, info.dead_letter_stream
                ))
            }
            Self::Seek {
                stream,
                group,
                to,
                connection,
            } => {
                let sought = connection
                    .groups()
                    .await?
                    .seek_group(v1::SeekGroupRequest {
                        stream,
                        group,
                        start: Some(v1::GroupStart { start: Some(to) }),
                    })
                    .await?
                    .into_inner();
                let info = sought.info.unwrap_or_default();
                emit(&format!(
                    "{}/{} goes on after sequence {} ({} pending entries removed, lag {})",
                    info.stream,
                    info.group,
                    info.last_delivered_sequence,
                    sought.pending_removed,
                    info.lag
                ))
            }
            Self::Redrive {
                stream,
                group,
                all,
                sequences,
                event_type,
                source,
                subject,
                connection,
            } => {
                use v1::redrive_request::Selection;
                let selection = match sequences {
                    Some(range) => Selection::DeadLetterSequences(range),
                    None if all => Selection::All(()),
                    None => Selection::Filter(v1::EventFilter {
                        types: event_type,
                        sources: source,
                        subjects: subject,
                    }),
                };
                let redriven = connection
                    .groups()
                    .await?
                    .redrive(v1::RedriveRequest {
                        stream: stream.clone(),
                        group: group.clone(),
                        selection: Some(selection),
                    })
                    .await?
                    .into_inner();
                let mut line = format!(
                    "redrove {} dead letters to {stream}/{group}",
                    redriven.redriven
                );
                if !redriven.origin_gone.is_empty() {
                    let gone: Vec<String> =
                        redriven.origin_gone.iter().map(u64::to_string).collect();
                    line += &format!(
                        "; kept {} whose event is gone (dead-letter sequences {})",
                        gone.len(),
                        gone.join(", ")
                    );
                }
                if redriven.more {
                    line += "; more remain: run it again";
                }
                emit(&line)
            }
            Self::Delete {
                stream,
                group,
                connection,
            } => {
                connection
                    .groups()
                    .await?
                    .delete_group(v1::DeleteGroupRequest {
                        stream: stream.clone(),
                        group: group.clone(),
                    })
                    .await?;
                emit(&format!("deleted {stream}/{group}"))
            }
            Self::Pending {
                stream,
                group,
                consumer,
                limit,
                json,
                connection,
            } => {
                let pending = connection
                    .groups()
                    .await?
                    .list_pending(v1::ListPendingRequest {
                        stream,
                        group,
                        consumer,
                        min_idle: None,
                        limit,
                        after_sequence: 0,
                    })
                    .await?
                    .into_inner();
                for p in &pending.entries {
                    emit(&if json {
                        pending_json(p).to_string()
                    } else {
                        pending_line(p)
                    })?;
                }
                Ok(())
            }
        }
    }
}
