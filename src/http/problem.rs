//! Errors over HTTP: `application/problem+json` (RFC 9457) carrying the
//! same stable `reason` as the gRPC `ErrorInfo`, with a fitting status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tonic::Code;

use crate::service::failure::Failure;

/// A failure as an HTTP response.
#[derive(Debug)]
pub struct Problem(pub Failure);

impl<E: Into<Failure>> From<E> for Problem {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// The HTTP status that fits a failure.
pub fn http_status(f: &Failure) -> StatusCode {
    match (f.code, f.reason) {
        (_, "EVENT_TOO_LARGE" | "BATCH_TOO_LARGE" | "MESSAGE_TOO_LARGE") => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        (Code::InvalidArgument | Code::OutOfRange, _) => StatusCode::BAD_REQUEST,
        (Code::Unauthenticated, _) => StatusCode::UNAUTHORIZED,
        (Code::PermissionDenied, _) => StatusCode::FORBIDDEN,
        (Code::NotFound, _) => StatusCode::NOT_FOUND,
        (Code::AlreadyExists | Code::Aborted, _) => StatusCode::CONFLICT,
        (Code::FailedPrecondition, _) => StatusCode::PRECONDITION_FAILED,
        (Code::ResourceExhausted, _) => StatusCode::TOO_MANY_REQUESTS,
        (Code::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
        (Code::Unimplemented, _) => StatusCode::NOT_IMPLEMENTED,
        (Code::DeadlineExceeded, _) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let f = self.0;
        let status = http_status(&f);
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!(
                "https://riverlog.dev/problems/{}",
                f.reason.to_ascii_lowercase().replace('_', "-")
            )),
        );
        body.insert(
            "title".into(),
            json!(status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(status.as_u16()));
        body.insert("detail".into(), json!(f.message));
        body.insert("reason".into(), json!(f.reason));
        if !f.metadata.is_empty() {
            body.insert("metadata".into(), json!(f.metadata));
        }
        let mut response = (status, Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(wait) = f.retry_after {
            // Whole seconds, rounded up: never invite an early retry.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A 400 for a malformed HTTP request (query, headers, body).
pub fn bad_request(field: &'static str, message: impl Into<String>) -> Problem {
    Problem::from(crate::log::LogError::invalid(field, message))
}

/// Query parameters (repeatable keys allowed), refused as problem+json.
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum_extra::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum_extra::extract::Query(q)| Self(q))
            .map_err(|e| bad_request("query", e.to_string()))
    }
}

/// A refused request body: over the size limit (413, `MESSAGE_TOO_LARGE`,
/// as on gRPC) or malformed (400).
pub fn body_problem(status: StatusCode, text: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem(Failure::new(
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
            text,
            Default::default(),
        ))
    } else {
        bad_request("body", text)
    }
}

/// A JSON request body, refused as problem+json.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        use axum::extract::rejection::JsonRejection;
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(body)| Self(body))
            .map_err(|e| match e {
                // Not JSON, or not this endpoint's JSON: as a gRPC message
                // that does not decode.
                JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
                    Problem(Failure::malformed_request(e.body_text()))
                }
                _ => body_problem(e.status(), e.body_text()),
            })
    }
}
