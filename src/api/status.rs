//! Failures as gRPC statuses: the code, the message, and a
//! `google.rpc.ErrorInfo` (with `RetryInfo` when waiting helps) in the
//! status details. What each error becomes is decided once, in
//! [`crate::service::failure`].

use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::log::LogError;
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
