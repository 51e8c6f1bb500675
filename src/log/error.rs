//! The domain's error type. `service::failure` classifies it for every
//! transport.

use crate::auth::AuthError;
use crate::model::StorageError;
use crate::model::filter::InvalidFilter;
use crate::model::names::NameError;
use crate::model::records::Sequence;

/// What a publish demanded of the stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expectation {
    /// No condition.
    #[default]
    Any,
    /// The stream must not exist.
    NoStream,
    /// The stream must exist.
    Exists,
    /// The stream's last sequence must be exactly this (0: never written).
    LastSequence(Sequence),
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any state"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exists => f.write_str("an existing stream"),
            Self::LastSequence(s) => write!(f, "last sequence {s}"),
        }
    }
}

/// Everything a log operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The caller may not do this (see `log::access`).
    #[error(transparent)]
    Denied(#[from] AuthError),
    /// The stream does not exist.
    #[error("stream {0:?} not found")]
    StreamNotFound(String),
    /// The consumer group does not exist.
    #[error("group {group:?} of stream {stream:?} not found")]
    GroupNotFound {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
    },
    /// CreateGroup on a group that exists.
    #[error("group {group:?} of stream {stream:?} already exists")]
    GroupAlreadyExists {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
    },
    /// A work-queue stream has its one group already: each event goes to
    /// one group and is removed once acked there.
    #[error(
        "stream {stream:?} has retention policy work_queue and already has group {existing:?}: a work queue has at most one group (create the stream with policy interest for several)"
    )]
    WorkQueueHasGroup {
        /// The stream.
        stream: String,
        /// Its group.
        existing: String,
    },
    /// The checkpoint was never committed.
    #[error("checkpoint {name:?}{} not found", stream.as_ref().map(|s| format!(" of stream {s:?}")).unwrap_or_default())]
    CheckpointNotFound {
        /// Its name.
        name: String,
        /// Its stream, for a per-stream checkpoint.
        stream: Option<String>,
    },
    /// A subscription to several streams or a pattern names a checkpoint
    /// that exists only per stream: it resumes from a global checkpoint
    /// (one committed without a stream), and starting from the earliest
    /// event instead would silently replay everything.
    #[error(
        "checkpoint {name:?} is committed per stream ({}), not globally: a subscription to several streams or a pattern resumes from a global checkpoint (commit it without a stream), or subscribe to one stream",
        streams.join(", ")
    )]
    CheckpointPerStream {
        /// Its name.
        name: String,
        /// Streams it is committed for (the first few, in name order).
        streams: Vec<String>,
    },
    /// A group name failed to parse.
    #[error("invalid group name {name:?}: {reason}")]
    InvalidGroupName {
        /// The rejected input.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// A consumer name failed to parse.
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumerName {
        /// The rejected input.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// A checkpoint name failed to parse.
    #[error("invalid checkpoint name {name:?}: {reason}")]
    InvalidCheckpointName {
        /// The rejected input.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// CreateStream on a stream that exists.
    #[error("stream {0:?} already exists")]
    StreamAlreadyExists(String),
    /// A stream name failed to parse.
    #[error("invalid stream name {name:?}: {reason}")]
    InvalidStreamName {
        /// The rejected input.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// A stream pattern failed to parse.
    #[error("invalid stream pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The rejected input.
        pattern: String,
        /// Why.
        reason: NameError,
    },
    /// An event of a publish is not a valid CloudEvent.
    #[error("event {index}: {reason}")]
    InvalidEvent {
        /// Index of the event in the request.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An event's encoding exceeds the size limit.
    #[error("event {index} is {size} bytes encoded, over the {limit}-byte limit")]
    EventTooLarge {
        /// Index of the event in the request.
        index: usize,
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A publish has too many events or bytes.
    #[error("{0}")]
    BatchTooLarge(String),
    /// The optimistic-concurrency condition of a publish did not hold.
    #[error("stream {stream:?}: expected {expected}, found {}", describe_actual(*.actual))]
    WrongExpectedSequence {
        /// The stream.
        stream: String,
        /// What the publish demanded.
        expected: Expectation,
        /// The stream's last sequence, `None` when it does not exist.
        actual: Option<Sequence>,
    },
    /// Any other malformed request field.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field's name in the request.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Creating a stream would pass the server's stream limit.
    #[error("the server holds its limit of {limit} streams")]
    TooManyStreams {
        /// The limit.
        limit: u64,
    },
    /// Appending would pass the per-stream event limit.
    #[error("stream {stream:?} would hold more than its limit of {limit} events")]
    StreamFull {
        /// The stream.
        stream: String,
        /// The limit.
        limit: u64,
    },
    /// A start names a position or sequence the log has not assigned yet.
    /// Starting there would silently skip every event appended before it
    /// (typically an id kept from before the log was reset).
    #[error("{}", describe_beyond_head(unit, *.requested, *.next, stream.as_deref(), checkpoint.as_deref()))]
    StartBeyondHead {
        /// `position` (global) or `sequence` (of `stream`).
        unit: &'static str,
        /// The first position or sequence the start asks for.
        requested: u64,
        /// The next position or sequence the log will assign; a start up
        /// to it is valid.
        next: u64,
        /// The stream, for a sequence.
        stream: Option<String>,
        /// The checkpoint the start was read from, if any.
        checkpoint: Option<String>,
    },
    /// The storage failed; nothing was written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The server is stopping and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
}

fn describe_actual(actual: Option<Sequence>) -> String {
    match actual {
        None => "no stream".to_owned(),
        Some(s) => format!("last sequence {s}"),
    }
}

fn describe_beyond_head(
    unit: &str,
    requested: u64,
    next: u64,
    stream: Option<&str>,
    checkpoint: Option<&str>,
) -> String {
    let from = checkpoint.map_or_else(String::new, |c| format!("checkpoint {c:?}: "));
    let scope = stream.map_or_else(|| "the log".to_owned(), |s| format!("stream {s:?}"));
    format!(
        "{from}start {unit} {requested} is beyond the head of {scope}, whose next {unit} \
         will be {next}; starting there would skip the events appended before it"
    )
}

impl LogError {
    /// Refuses a start at `requested` (a `position`, or a `sequence` of
    /// `stream`) past `next`, the next one the log will assign: the start
    /// would skip the events appended before it. `next` itself is fine:
    /// "from the next event on".
    ///
    /// # Errors
    /// [`LogError::StartBeyondHead`], naming the checkpoint it came from.
    pub(crate) fn refuse_beyond_head(
        unit: &'static str,
        requested: u64,
        next: u64,
        stream: Option<&str>,
        checkpoint: Option<&str>,
    ) -> Result<(), Self> {
        if requested <= next {
            return Ok(());
        }
        Err(Self::StartBeyondHead {
            unit,
            requested,
            next,
            stream: stream.map(str::to_owned),
            checkpoint: checkpoint.map(str::to_owned),
        })
    }

    /// Shorthand for [`LogError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<InvalidFilter> for LogError {
    fn from(e: InvalidFilter) -> Self {
        Self::invalid(e.field, e.reason)
    }
}
