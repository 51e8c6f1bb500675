//! The storage failure every layer may see: classified by the backend at
//! its boundary, carried by the domain's errors, mapped to a status once.

/// A storage failure. The message is for logs, not for clients.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or refused the operation for now;
    /// retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error that retrying will not fix.
    #[error("storage failure: {0}")]
    Failure(String),
}
