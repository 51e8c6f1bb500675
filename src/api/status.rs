//! The one place domain errors become gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` whose `reason` is a stable
//! code clients may switch on; messages are for humans and may change.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{error, warn};

use crate::auth::AuthError;
use crate::log::LogError;
use crate::storage::StorageError;

/// `ErrorInfo.domain` of every riverlog error.
pub const ERROR_DOMAIN: &str = "riverlog.dev";

/// Maps a domain error to its gRPC status.
pub fn to_status(err: LogError) -> Status {
    let mut metadata = HashMap::new();
    let (code, reason) = match &err {
        LogError::StreamNotFound(stream) => {
            metadata.insert("stream".to_owned(), stream.clone());
            (Code::NotFound, "STREAM_NOT_FOUND")
        }
        LogError::StreamAlreadyExists(stream) => {
            metadata.insert("stream".to_owned(), stream.clone());
            (Code::AlreadyExists, "STREAM_ALREADY_EXISTS")
        }
        LogError::GroupNotFound { stream, group } => {
            metadata.insert("stream".to_owned(), stream.clone());
            metadata.insert("group".to_owned(), group.clone());
            (Code::NotFound, "GROUP_NOT_FOUND")
        }
        LogError::GroupAlreadyExists { stream, group } => {
            metadata.insert("stream".to_owned(), stream.clone());
            metadata.insert("group".to_owned(), group.clone());
            (Code::AlreadyExists, "GROUP_ALREADY_EXISTS")
        }
        LogError::CheckpointNotFound { name, stream } => {
            metadata.insert("checkpoint".to_owned(), name.clone());
            if let Some(s) = stream {
                metadata.insert("stream".to_owned(), s.clone());
            }
            (Code::NotFound, "CHECKPOINT_NOT_FOUND")
        }
        LogError::InvalidLabel { kind, name, .. } => {
            metadata.insert((*kind).to_owned(), name.clone());
            let reason = match *kind {
                "group" => "INVALID_GROUP_NAME",
                "consumer" => "INVALID_CONSUMER_NAME",
                _ => "INVALID_CHECKPOINT_NAME",
            };
            (Code::InvalidArgument, reason)
        }
        LogError::InvalidStreamName { name, .. } => {
            metadata.insert("stream".to_owned(), name.clone());
            (Code::InvalidArgument, "INVALID_STREAM_NAME")
        }
        LogError::InvalidPattern { pattern, .. } => {
            metadata.insert("pattern".to_owned(), pattern.clone());
            (Code::InvalidArgument, "INVALID_PATTERN")
        }
        LogError::InvalidEvent { index, .. } => {
            metadata.insert("index".to_owned(), index.to_string());
            (Code::InvalidArgument, "INVALID_EVENT")
        }
        LogError::EventTooLarge { index, limit, .. } => {
            metadata.insert("index".to_owned(), index.to_string());
            metadata.insert("limit".to_owned(), limit.to_string());
            (Code::InvalidArgument, "EVENT_TOO_LARGE")
        }
        LogError::BatchTooLarge(_) => (Code::InvalidArgument, "BATCH_TOO_LARGE"),
        LogError::WrongExpectedSequence {
            stream,
            expected,
            actual,
        } => {
            metadata.insert("stream".to_owned(), stream.clone());
            metadata.insert("expected".to_owned(), expected.to_string());
            metadata.insert(
                "actual_last_sequence".to_owned(),
                actual.map_or_else(|| "none".to_owned(), |s| s.to_string()),
            );
            (Code::FailedPrecondition, "WRONG_EXPECTED_SEQUENCE")
        }
        LogError::InvalidArgument { field, .. } => {
            metadata.insert("field".to_owned(), (*field).to_owned());
            (Code::InvalidArgument, "INVALID_ARGUMENT")
        }
        LogError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        LogError::TooManyStreams { limit } => {
            metadata.insert("limit".to_owned(), limit.to_string());
            (Code::ResourceExhausted, "TOO_MANY_STREAMS")
        }
        LogError::StreamFull { stream, limit } => {
            metadata.insert("stream".to_owned(), stream.clone());
            metadata.insert("limit".to_owned(), limit.to_string());
            (Code::ResourceExhausted, "STREAM_FULL")
        }
        LogError::Storage(StorageError::Unavailable(detail)) => {
            warn!(%detail, "storage unavailable");
            return with_info(
                Code::Unavailable,
                "storage is unavailable; retry later",
                "STORAGE_UNAVAILABLE",
                metadata,
            );
        }
        LogError::Storage(StorageError::Failure(detail)) => {
            error!(%detail, "storage failure");
            return with_info(
                Code::Internal,
                "internal storage error",
                "STORAGE_FAILURE",
                metadata,
            );
        }
    };
    with_info(code, &err.to_string(), reason, metadata)
}

fn with_info(code: Code, message: &str, reason: &str, metadata: HashMap<String, String>) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        let mut metadata = HashMap::new();
        match &err {
            AuthError::Unauthenticated(_) => with_info(
                Code::Unauthenticated,
                &err.to_string(),
                "UNAUTHENTICATED",
                metadata,
            ),
            AuthError::PermissionDenied {
                token,
                permission,
                stream,
            } => {
                metadata.insert("token".to_owned(), token.clone());
                metadata.insert("permission".to_owned(), permission.as_str().to_owned());
                if let Some(s) = stream {
                    metadata.insert("stream".to_owned(), s.clone());
                }
                with_info(
                    Code::PermissionDenied,
                    &err.to_string(),
                    "PERMISSION_DENIED",
                    metadata,
                )
            }
        }
    }
}

/// RESOURCE_EXHAUSTED with `reason`, and a `RetryInfo` when waiting helps.
pub fn exhausted(
    message: &str,
    reason: &str,
    metadata: HashMap<String, String>,
    retry_after: Option<std::time::Duration>,
) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

impl From<LogError> for Status {
    fn from(err: LogError) -> Self {
        to_status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_details_never_reach_the_client() {
        let status = to_status(LogError::Storage(StorageError::Failure(
            "SQLITE_CORRUPT at /secret/path".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "STORAGE_FAILURE");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }
}
