//! Request strings into the domain's names, at the edge: each transport
//! parses the names of a request with these before calling the domain, so
//! a malformed name fails the same way (INVALID_ARGUMENT, its own reason)
//! on every transport and whoever asks, and the domain trusts its types.

use super::error::LogError;
use crate::model::names::{CheckpointName, ConsumerName, GroupName, StreamName, StreamSelector};

/// A stream name.
///
/// # Errors
/// [`LogError::InvalidStreamName`].
pub fn stream(name: &str) -> Result<StreamName, LogError> {
    StreamName::parse(name).map_err(|reason| LogError::InvalidStreamName {
        name: name.to_owned(),
        reason,
    })
}

/// A stream name, or `None` when empty (a global checkpoint).
///
/// # Errors
/// [`LogError::InvalidStreamName`].
pub fn optional_stream(name: &str) -> Result<Option<StreamName>, LogError> {
    match name {
        "" => Ok(None),
        name => stream(name).map(Some),
    }
}

/// A group name.
///
/// # Errors
/// [`LogError::InvalidGroupName`].
pub fn group(name: &str) -> Result<GroupName, LogError> {
    GroupName::parse(name).map_err(|reason| LogError::InvalidGroupName {
        name: name.to_owned(),
        reason,
    })
}

/// A consumer name.
///
/// # Errors
/// [`LogError::InvalidConsumerName`].
pub fn consumer(name: &str) -> Result<ConsumerName, LogError> {
    ConsumerName::parse(name).map_err(|reason| LogError::InvalidConsumerName {
        name: name.to_owned(),
        reason,
    })
}

/// A consumer name, or `None` when empty (any consumer).
///
/// # Errors
/// [`LogError::InvalidConsumerName`].
pub fn optional_consumer(name: &str) -> Result<Option<ConsumerName>, LogError> {
    match name {
        "" => Ok(None),
        name => consumer(name).map(Some),
    }
}

/// A checkpoint name.
///
/// # Errors
/// [`LogError::InvalidCheckpointName`].
pub fn checkpoint(name: &str) -> Result<CheckpointName, LogError> {
    CheckpointName::parse(name).map_err(|reason| LogError::InvalidCheckpointName {
        name: name.to_owned(),
        reason,
    })
}

/// What a subscription follows: stream names, and patterns (inputs with
/// `*`), in request order.
///
/// # Errors
/// [`LogError::InvalidStreamName`] or [`LogError::InvalidPattern`] for the
/// first malformed entry.
pub fn selectors<'a>(
    inputs: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<StreamSelector>, LogError> {
    inputs
        .into_iter()
        .map(|s| {
            StreamSelector::parse(s).map_err(|reason| {
                if s.contains('*') {
                    LogError::InvalidPattern {
                        pattern: s.clone(),
                        reason,
                    }
                } else {
                    LogError::InvalidStreamName {
                        name: s.clone(),
                        reason,
                    }
                }
            })
        })
        .collect()
}
