//! Who is calling over HTTP: `Authorization: Bearer <token>`, or (for
//! `EventSource`, which cannot set headers) an `access_token` query
//! parameter. Resolved by the same authenticator as gRPC.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::HttpState;
use super::problem::Problem;
use crate::auth::{AuthError, Principal};

/// The query parameter that carries a token where headers cannot.
pub(super) const ACCESS_TOKEN: &str = "access_token";

/// The authenticated caller of a request.
pub struct Caller(pub Arc<Principal>);

fn query_token(query: &str) -> Option<String> {
    serde_html_form::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == ACCESS_TOKEN)
        .map(|(_, v)| format!("Bearer {v}"))
}

impl FromRequestParts<Arc<HttpState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| AuthError::Unauthenticated("authorization header is not text"))?
                    .to_owned(),
            ),
            None => parts.uri.query().and_then(query_token),
        };
        Ok(Self(state.auth.authenticate(header.as_deref())?))
    }
}
