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

/// Reason of a 415: a request body in a media type no endpoint reads.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
/// Reason of a 406: `Accept` allows nothing the endpoint serves.
pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
/// Reason of a 400 for a query parameter the endpoint does not take.
pub const UNKNOWN_QUERY_PARAMETER: &str = "UNKNOWN_QUERY_PARAMETER";

/// The HTTP status that fits a failure.
pub fn http_status(f: &Failure) -> StatusCode {
    match (f.code, f.reason) {
        (_, UNSUPPORTED_MEDIA_TYPE) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (_, NOT_ACCEPTABLE) => StatusCode::NOT_ACCEPTABLE,
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

/// Query parameters (repeatable keys allowed), parsed at the edge. Every
/// query struct denies unknown fields, so a parameter the endpoint does not
/// take (a typo such as `form=latest` for `from=latest`) is refused with
/// 400 `UNKNOWN_QUERY_PARAMETER` naming it instead of being ignored.
/// `access_token`, read by the caller extractor, is taken everywhere.
pub struct Params<T>(pub T);

/// The query of an endpoint that takes no parameters (`access_token`
/// aside).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_html_form::from_str(query)
            .map_err(|e| bad_request("query", format!("not a query string: {e}")))?;
        let own = serde_html_form::to_string(
            pairs
                .iter()
                .filter(|(name, _)| name != super::caller::ACCESS_TOKEN)
                .collect::<Vec<_>>(),
        )
        .map_err(|e| bad_request("query", e.to_string()))?;
        serde_html_form::from_str(&own)
            .map(Self)
            .map_err(|e| query_problem(&e.to_string()))
    }
}

/// A query that does not deserialize. serde words an unknown field as
/// "unknown field `NAME`, expected ...": the name goes into the metadata.
fn query_problem(message: &str) -> Problem {
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    match unknown {
        Some((name, rest)) => Problem(Failure::new(
            Code::InvalidArgument,
            UNKNOWN_QUERY_PARAMETER,
            format!("unknown query parameter `{name}`{rest}"),
            [("parameter".to_owned(), name.to_owned())].into(),
        )),
        None => bad_request("query", message.to_owned()),
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
