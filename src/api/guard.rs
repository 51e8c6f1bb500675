//! Authentication of every gRPC call: the interceptor that resolves the
//! caller, and the handlers' way to get it back (permission rules are in
//! [`crate::service::access`]).

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::{Authenticator, Permission, Principal};
use crate::service::access::require;

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
