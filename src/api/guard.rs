//! Authentication of every gRPC call: the interceptor that resolves the
//! caller, and the handlers' way to get it back to pass it to the domain
//! (which decides what it may do: [`crate::log::access`]).

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::{Authenticator, Principal};

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
