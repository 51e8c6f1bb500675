//! The OpenAPI 3.1 document of the HTTP API (`/api/v1/openapi.json`),
//! generated from the handlers' annotations and the bodies' schemas.

use utoipa::OpenApi;

use super::bodies::*;
use crate::proto::views::{ConsumerView, GroupView, PendingView, RetentionView, StreamView};

/// The OpenAPI document of the HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "riverlog HTTP API",
        description = "CloudEvents in named streams over HTTP: history, publishing (the CloudEvents HTTP binding), Server-Sent Events, consumer groups.",
    ),
    paths(
        super::rest::list_streams,
        super::rest::create_stream,
        super::rest::get_stream,
        super::rest::delete_stream,
        super::rest::trim,
        super::rest::read,
        super::publish::publish,
        super::rest::list_groups,
        super::rest::list_pending,
        super::rest::ack,
        super::rest::seek,
        super::rest::redrive,
        super::history::stream_history,
        super::history::group_history,
        super::sse::subscribe,
        super::sse::consume,
    ),
    components(schemas(
        StreamsPage, StreamView, RetentionView, CloudEventJson, EventsPage, PositionView,
        PublishResult, GroupsList, GroupView, ConsumerView, PendingPage, PendingView,
        ConsumerPending, AckResult, SeekResult, RedriveResult, TrimResult, DeleteResult, ProblemJson,
        StreamHistory, ThroughputPointView, GroupHistory, BacklogPointView
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}
