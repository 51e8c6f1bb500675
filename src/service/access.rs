//! Which permission a call needs on which stream, checked the same way for
//! gRPC, HTTP/SSE and grpc-web.

use super::failure::Failure;
use crate::auth::{Permission, Principal};
use crate::log::{LogError, StreamName};

/// Requires `permission` on `stream` (validated first, so a bad name is
/// INVALID_ARGUMENT whoever asks).
pub fn require(principal: &Principal, permission: Permission, stream: &str) -> Result<(), Failure> {
    let name = StreamName::parse(stream).map_err(|reason| LogError::InvalidStreamName {
        name: stream.to_owned(),
        reason,
    })?;
    principal.require(permission, &name)?;
    Ok(())
}

/// Requires what a subscription to `entries` needs, on any transport:
/// subscribe on each stream name, and for each pattern some readable
/// stream it can match (events of others are then left out).
pub fn require_subscription<'a>(
    principal: &Principal,
    entries: impl IntoIterator<Item = &'a String>,
) -> Result<(), Failure> {
    for entry in entries {
        if entry.contains('*') {
            principal.require_pattern(entry)?;
        } else {
            require(principal, Permission::Subscribe, entry)?;
        }
    }
    Ok(())
}
