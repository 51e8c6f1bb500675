//! The one place errors are classified: each becomes a [`Failure`] with a
//! canonical status code (`google.rpc.Code`, as tonic spells it) and a
//! stable `reason`, which the gRPC side sends as a status with a
//! `google.rpc.ErrorInfo` (`api::status`) and the HTTP side as
//! problem+json (`http::problem`). Messages are for humans and may change;
//! reasons are for code.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tracing::{error, warn};

use crate::auth::AuthError;
use crate::log::LogError;
use crate::model::StorageError;

/// `ErrorInfo.domain` of every riverlog error.
pub const ERROR_DOMAIN: &str = "riverlog.dev";

/// An error, classified for any transport.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The gRPC code (the HTTP side derives its status from it).
    pub code: Code,
    /// The stable reason code.
    pub reason: &'static str,
    /// For humans.
    pub message: String,
    /// Facts about the error (`stream`, `limit`, ...).
    pub metadata: HashMap<String, String>,
    /// When waiting helps, how long.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure without retry advice.
    pub fn new(
        code: Code,
        reason: &'static str,
        message: impl Into<String>,
        metadata: HashMap<String, String>,
    ) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            metadata,
            retry_after: None,
        }
    }

    /// A request that does not decode: a gRPC message that is not the
    /// method's protobuf message, or an HTTP body that is not the JSON the
    /// endpoint takes. INVALID_ARGUMENT with reason `MALFORMED_REQUEST`:
    /// the caller's fault, never worth retrying unchanged.
    pub fn malformed_request(detail: impl std::fmt::Display) -> Self {
        Self::new(
            Code::InvalidArgument,
            "MALFORMED_REQUEST",
            format!("malformed request: {detail}"),
            HashMap::new(),
        )
    }
}

impl From<LogError> for Failure {
    fn from(err: LogError) -> Self {
        classify(err)
    }
}

fn classify(err: LogError) -> Failure {
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
        LogError::WorkQueueHasGroup { stream, existing } => {
            metadata.insert("stream".to_owned(), stream.clone());
            metadata.insert("group".to_owned(), existing.clone());
            (Code::FailedPrecondition, "WORK_QUEUE_HAS_GROUP")
        }
        LogError::CheckpointNotFound { name, stream } => {
            metadata.insert("checkpoint".to_owned(), name.clone());
            if let Some(s) = stream {
                metadata.insert("stream".to_owned(), s.clone());
            }
            (Code::NotFound, "CHECKPOINT_NOT_FOUND")
        }
        LogError::CheckpointPerStream { name, streams } => {
            metadata.insert("checkpoint".to_owned(), name.clone());
            metadata.insert("streams".to_owned(), streams.join(","));
            (Code::FailedPrecondition, "CHECKPOINT_PER_STREAM")
        }
        LogError::InvalidGroupName { name, .. } => {
            metadata.insert("group".to_owned(), name.clone());
            (Code::InvalidArgument, "INVALID_GROUP_NAME")
        }
        LogError::InvalidConsumerName { name, .. } => {
            metadata.insert("consumer".to_owned(), name.clone());
            (Code::InvalidArgument, "INVALID_CONSUMER_NAME")
        }
        LogError::InvalidCheckpointName { name, .. } => {
            metadata.insert("checkpoint".to_owned(), name.clone());
            (Code::InvalidArgument, "INVALID_CHECKPOINT_NAME")
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
        LogError::StartBeyondHead {
            unit,
            requested,
            next,
            stream,
            checkpoint,
        } => {
            metadata.insert((*unit).to_owned(), requested.to_string());
            metadata.insert(format!("next_{unit}"), next.to_string());
            if let Some(s) = stream {
                metadata.insert("stream".to_owned(), s.clone());
            }
            if let Some(c) = checkpoint {
                metadata.insert("checkpoint".to_owned(), c.clone());
            }
            // gRPC's code for "past the end", which the state may still
            // change; HTTP answers 400.
            (Code::OutOfRange, "START_BEYOND_HEAD")
        }
        LogError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        // A refusal reads the same whoever made it.
        LogError::Denied(refusal) => return refusal.clone().into(),
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
            return Failure::new(
                Code::Unavailable,
                "STORAGE_UNAVAILABLE",
                "storage is unavailable; retry later",
                metadata,
            );
        }
        LogError::Storage(StorageError::Failure(detail)) => {
            error!(%detail, "storage failure");
            return Failure::new(
                Code::Internal,
                "STORAGE_FAILURE",
                "internal storage error",
                metadata,
            );
        }
    };
    Failure::new(code, reason, err.to_string(), metadata)
}

impl From<AuthError> for Failure {
    fn from(err: AuthError) -> Self {
        let mut metadata = HashMap::new();
        match &err {
            AuthError::Unauthenticated(_) => Failure::new(
                Code::Unauthenticated,
                "UNAUTHENTICATED",
                err.to_string(),
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
                Failure::new(
                    Code::PermissionDenied,
                    "PERMISSION_DENIED",
                    err.to_string(),
                    metadata,
                )
            }
        }
    }
}

/// RESOURCE_EXHAUSTED with `reason`, and retry advice when waiting helps.
pub fn exhausted(
    message: &str,
    reason: &'static str,
    metadata: HashMap<String, String>,
    retry_after: Option<Duration>,
) -> Failure {
    Failure {
        retry_after,
        ..Failure::new(Code::ResourceExhausted, reason, message, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    #[test]
    fn a_refusal_reads_the_same_whether_the_domain_or_a_transport_made_it() {
        let refusals = [
            AuthError::Unauthenticated("unknown token"),
            AuthError::PermissionDenied {
                token: "reader".into(),
                permission: Permission::Publish,
                stream: Some("orders:1".into()),
            },
        ];
        for refusal in refusals {
            let direct = Failure::from(refusal.clone());
            let via_domain = Failure::from(LogError::Denied(refusal));
            assert_eq!(
                (
                    direct.code,
                    direct.reason,
                    &direct.message,
                    &direct.metadata
                ),
                (
                    via_domain.code,
                    via_domain.reason,
                    &via_domain.message,
                    &via_domain.metadata
                )
            );
        }
    }
}
