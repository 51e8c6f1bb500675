//! Failures as gRPC statuses: the code, the message, and a
//! `google.rpc.ErrorInfo` (with `RetryInfo` when waiting helps) in the
//! status details. What each error becomes is decided once, in
//! [`crate::service::failure`].

use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::log::LogError;
use crate::proto::v1;
use crate::service::failure::{ERROR_DOMAIN, Failure};

impl From<Failure> for Status {
    fn from(f: Failure) -> Self {
        let mut details = ErrorDetails::with_error_info(f.reason, ERROR_DOMAIN, f.metadata);
        if let Some(delay) = f.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(f.code, f.message, details)
    }
}

/// A refusal of one request of a streaming call (PublishStream): what the
/// unary call would have returned as its status, as a message.
impl From<Failure> for v1::RequestError {
    fn from(f: Failure) -> Self {
        Self {
            code: f.code as i32,
            message: f.message,
            reason: f.reason.to_owned(),
            domain: ERROR_DOMAIN.to_owned(),
            metadata: f.metadata,
            retry_delay: f
                .retry_after
                .and_then(|d| prost_types::Duration::try_from(d).ok()),
        }
    }
}

/// Maps a domain error to its gRPC status.
pub fn to_status(err: LogError) -> Status {
    Failure::from(err).into()
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        Failure::from(err).into()
    }
}

impl From<LogError> for Status {
    fn from(err: LogError) -> Self {
        to_status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StorageError;
    use tonic::Code;

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
