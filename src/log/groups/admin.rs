//! Creating, describing, listing and deleting consumer groups, and removing
//! consumers.

use std::time::Duration;

use super::{
    DEAD_LETTER_SUFFIX, DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_DELIVERIES, GroupInfo, GroupSettings,
    GroupStart,
};
use crate::auth::Principal;
use crate::log::EventLog;
use crate::log::access::{Operation, authorize};
use crate::log::error::LogError;
use crate::log::writer::GroupCommand;
use crate::model::names::{ConsumerName, GroupName, StreamName};

/// A CreateGroup request.
#[derive(Debug, Clone)]
pub struct CreateGroup {
    /// The stream.
    pub stream: StreamName,
    /// The group.
    pub group: GroupName,
    /// Where it starts.
    pub start: GroupStart,
    /// Redelivery timeout; `None` = default.
    pub ack_timeout: Option<Duration>,
    /// Deliveries before dead-lettering; 0 = default.
    pub max_deliveries: u32,
    /// Dead-letter stream, unparsed (a malformed one is an invalid
    /// `dead_letter_stream` argument, not a stream name error); empty =
    /// `<stream>:dlq`.
    pub dead_letter_stream: String,
}

impl CreateGroup {
    /// A group of `stream` named `group` with every setting at its default.
    pub fn new(stream: StreamName, group: GroupName) -> Self {
        Self {
            stream,
            group,
            start: GroupStart::default(),
            ack_timeout: None,
            max_deliveries: 0,
            dead_letter_stream: String::new(),
        }
    }
}

impl CreateGroup {
    /// Where the group's dead letters go: the named stream, or
    /// `<stream>:dlq` by default.
    pub fn dead_letter_stream(&self) -> Result<StreamName, LogError> {
        match self.dead_letter_stream.as_str() {
            "" => StreamName::parse(&format!("{}{DEAD_LETTER_SUFFIX}", self.stream.as_str())).map_err(|e| {
                LogError::invalid(
                    "dead_letter_stream",
                    format!("the default `<stream>{DEAD_LETTER_SUFFIX}` is not a valid name ({e}); name one"),
                )
            }),
            name => StreamName::parse(name)
                .map_err(|e| LogError::invalid("dead_letter_stream", e.to_string())),
        }
    }
}

impl EventLog {
    /// Creates a consumer group on an existing stream.
    pub async fn create_group(
        &self,
        caller: &Principal,
        request: CreateGroup,
    ) -> Result<GroupInfo, LogError> {
        let dead_letter = request.dead_letter_stream();
        authorize(
            caller,
            Operation::CreateGroup {
                stream: &request.stream,
                dead_letter: dead_letter.as_ref().ok(),
            },
        )?;
        let ack_timeout = match request.ack_timeout {
            None => DEFAULT_ACK_TIMEOUT,
            Some(d) if d < Duration::from_millis(1) => {
                return Err(LogError::invalid("ack_timeout", "must be at least 1ms"));
            }
            Some(d) => d,
        };
        let max_deliveries = match request.max_deliveries {
            0 => DEFAULT_MAX_DELIVERIES,
            n => n,
        };
        let dead_letter_stream = dead_letter?;
        let CreateGroup { stream, group, .. } = request;
        if dead_letter_stream == stream {
            return Err(LogError::invalid(
                "dead_letter_stream",
                "must differ from the group's stream",
            ));
        }
        let settings = GroupSettings {
            start: request.start,
            ack_timeout,
            max_deliveries,
            dead_letter_stream,
        };
        self.writer
            .group(|reply| GroupCommand::Create {
                stream: stream.clone(),
                group: group.clone(),
                settings,
                reply,
            })
            .await?;
        self.group_info(&stream, &group).await
    }

    pub(in crate::log) async fn group_info(
        &self,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<GroupInfo, LogError> {
        let Some(state) = self.storage.group_state(stream, group).await? else {
            // Name the missing piece, as the writer's commands do.
            return Err(match self.storage.get_stream(stream).await? {
                None => LogError::StreamNotFound(stream.to_string()),
                Some(_) => LogError::GroupNotFound {
                    stream: stream.to_string(),
                    group: group.to_string(),
                },
            });
        };
        Ok(GroupInfo {
            state,
            connected: self.groups.connected(stream, group),
        })
    }

    /// Describes a group.
    pub async fn get_group(
        &self,
        caller: &Principal,
        stream: &StreamName,
        group: &GroupName,
    ) -> Result<GroupInfo, LogError> {
        authorize(caller, Operation::Inspect(stream))?;
        self.group_info(stream, group).await
    }

    /// The groups of a stream, in name order.
    pub async fn list_groups(
        &self,
        caller: &Principal,
        stream: &StreamName,
    ) -> Result<Vec<GroupInfo>, LogError> {
        authorize(caller, Operation::Inspect(stream))?;
        if self.storage.get_stream(stream).await?.is_none() {
            return Err(LogError::StreamNotFound(stream.to_string()));
        }
        let states = self.storage.list_group_states(stream).await?;
        Ok(states
            .into_iter()
            .map(|state| {
                let connected = self.groups.connected(stream, &state.group.name);
                GroupInfo { state, connected }
            })
            .collect())
    }

    /// Moves a group's cursor to `start` (earliest, latest, a sequence or
    /// a time): afterwards the group is as if every event up to the cursor
    /// had been acked and none after it delivered, so its pending entries
    /// are removed and the events after the cursor are delivered again
    /// with a fresh delivery count. Returns the group and how many pending
    /// entries were removed. Errors: `StreamNotFound`, `GroupNotFound`, a
    /// sequence past the next one (`StartBeyondHead`: OUT_OF_RANGE), `Denied`.
    pub async fn seek_group(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        start: GroupStart,
    ) -> Result<(GroupInfo, u64), LogError> {
        authorize(caller, Operation::ChangeGroup(&stream))?;
        let (_, removed) = self
            .writer
            .group(|reply| GroupCommand::Seek {
                stream: stream.clone(),
                group: group.clone(),
                start,
                reply,
            })
            .await?;
        // Work before the cursor is gone, work after it is new: consumers
        // waiting or held back by credit look again.
        self.groups.wake(&stream, &group);
        Ok((self.group_info(&stream, &group).await?, removed))
    }

    /// Deletes a group with its pending entries.
    pub async fn delete_group(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
    ) -> Result<(), LogError> {
        authorize(caller, Operation::Administer(&stream))?;
        self.writer
            .group(|reply| GroupCommand::Delete {
                stream: stream.clone(),
                group: group.clone(),
                reply,
            })
            .await?;
        self.groups.forget(&stream, &group);
        Ok(())
    }

    /// Removes a consumer; its pending entries are claimable at once.
    pub async fn delete_consumer(
        &self,
        caller: &Principal,
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
    ) -> Result<u64, LogError> {
        authorize(caller, Operation::Administer(&stream))?;
        let released = self
            .writer
            .group(|reply| GroupCommand::DeleteConsumer {
                stream: stream.clone(),
                group: group.clone(),
                consumer,
                reply,
            })
            .await?;
        self.groups.wake(&stream, &group);
        Ok(released)
    }
}
