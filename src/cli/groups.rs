//! `riverlog groups [ls|info|create|seek|redrive|delete|pending]`;
//! `riverlog groups STREAM` lists that stream's groups, as `groups ls`
//! does.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{
    Format, OutputArgs, group_fields, group_json, groups_table, pending_json, pending_table,
};
use super::{CliError, Connection, duration, emit, emit_block};
use crate::model::groups::GroupStart;
use crate::proto::v1::{self, group_start::Start};
use crate::service::convert;

/// Consumer-group administration; `riverlog groups STREAM` lists the
/// stream's groups.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(subcommand)]
    command: Option<GroupsCommand>,
    /// The stream whose groups to list (groups belong to a stream).
    stream: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    output: OutputArgs,
}

/// Consumer-group administration.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List a stream's groups (the default command).
    #[command(visible_alias = "list")]
    Ls {
        /// The stream.
        stream: String,
    },
    /// Describe a group: pending, lag, consumers.
    Info {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
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
    },
    /// Delete a group with its pending entries.
    Delete {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
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

impl GroupsArgs {
    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        let format = self.output.format();
        let connection = &self.connection;
        let command = match (self.command, self.stream) {
            (Some(_), Some(stream)) => {
                return Err(CliError::Usage(format!(
                    "{stream:?} before the subcommand: put it after, as in `riverlog groups \
                     info STREAM GROUP`"
                )));
            }
            (Some(command), None) => command,
            (None, Some(stream)) => GroupsCommand::Ls { stream },
            (None, None) => {
                return Err(CliError::Usage(
                    "groups belong to a stream: give it, as in `riverlog groups STREAM` \
                     (`riverlog streams` shows how many groups each stream has)"
                        .into(),
                ));
            }
        };
        match command {
            GroupsCommand::Ls { stream } => {
                let groups = connection
                    .groups()
                    .await?
                    .list_groups(v1::ListGroupsRequest {
                        stream: stream.clone(),
                    })
                    .await?
                    .into_inner()
                    .groups;
                match format {
                    Format::Json => {
                        for g in &groups {
                            emit(&group_json(g).to_string())?;
                        }
                        Ok(())
                    }
                    Format::Text if groups.is_empty() => {
                        eprintln!("no groups on {stream}");
                        Ok(())
                    }
                    Format::Text => emit_block(&groups_table(&groups)),
                }
            }
            GroupsCommand::Info { stream, group } => {
                let info = connection
                    .groups()
                    .await?
                    .get_group(v1::GetGroupRequest { stream, group })
                    .await?
                    .into_inner()
                    .info
                    .unwrap_or_default();
                match format {
                    Format::Json => emit(&group_json(&info).to_string()),
                    Format::Text => emit_block(&group_fields(&info)),
                }
            }
            GroupsCommand::Create {
                stream,
                group,
                start,
                ack_timeout,
                max_deliveries,
                dead_letter_stream,
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
                match format {
                    Format::Json => emit(&group_json(&info).to_string()),
                    Format::Text => emit(&format!(
                        "created {}/{} (dead letters to {})",
                        info.stream, info.group, info.dead_letter_stream
                    )),
                }
            }
            GroupsCommand::Seek { stream, group, to } => {
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
                match format {
                    Format::Json => emit(
                        &json!({
                            "group": group_json(&info),
                            "pending_removed": sought.pending_removed,
                        })
                        .to_string(),
                    ),
                    Format::Text => emit(&format!(
                        "{}/{} goes on after sequence {} ({} pending entries removed, lag {})",
                        info.stream,
                        info.group,
                        info.last_delivered_sequence,
                        sought.pending_removed,
                        info.lag
                    )),
                }
            }
            GroupsCommand::Redrive {
                stream,
                group,
                all,
                sequences,
                event_type,
                source,
                subject,
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
                if format == Format::Json {
                    return emit(
                        &json!({
                            "stream": stream,
                            "group": group,
                            "redriven": redriven.redriven,
                            "origin_gone": redriven.origin_gone,
                            "more": redriven.more,
                        })
                        .to_string(),
                    );
                }
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
            GroupsCommand::Delete { stream, group } => {
                connection
                    .groups()
                    .await?
                    .delete_group(v1::DeleteGroupRequest {
                        stream: stream.clone(),
                        group: group.clone(),
                    })
                    .await?;
                match format {
                    Format::Json => emit(
                        &json!({"stream": stream, "group": group, "deleted": true}).to_string(),
                    ),
                    Format::Text => emit(&format!("deleted {stream}/{group}")),
                }
            }
            GroupsCommand::Pending {
                stream,
                group,
                consumer,
                limit,
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
                match format {
                    Format::Json => {
                        for p in &pending.entries {
                            emit(&pending_json(p).to_string())?;
                        }
                        Ok(())
                    }
                    Format::Text if pending.entries.is_empty() => {
                        eprintln!("nothing pending");
                        Ok(())
                    }
                    Format::Text => emit_block(&pending_table(&pending.entries)),
                }
            }
        }
    }
}
