//! Authentication of every call to the riverlog services, and the
//! per-call permission checks handlers make.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::status::Failure;
use crate::auth::{Authenticator, Permission, Principal};
use crate::log::{LogError, StreamName};

/// Resolves the `authorization` metadata of each call to a [`Principal`]
/// stored in the request's extensions. Health and reflection are not
/// wrapped, so they stay open.
#[derive(Clone)]
pub struct Guard {
    auth: Arc<Authenticator>,
}

impl Guard {
    /// Authenticates with `auth`.
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl Interceptor for Guard {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let principal = self.auth.authenticate(header)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller of a request that passed the [`Guard`].
pub fn principal<T>(request: &Request<T>) -> Result<Arc<Principal>, Status> {
    request
        .extensions()
        .get::<Arc<Principal>>()
        .cloned()
        // Only a service added without the guard gets here: refuse rather
        // than serve it unauthenticated.
        .ok_or_else(|| Status::internal("call was not authenticated"))
}

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

/// The caller of `request`, once it holds `permission` on the request's
/// stream.
pub fn authorize<T>(
    request: &Request<T>,
    permission: Permission,
    stream: impl FnOnce(&T) -> &str,
) -> Result<Arc<Principal>, Status> {
    let principal = principal(request)?;
    require(&principal, permission, stream(request.get_ref()))?;
    Ok(principal)
}
