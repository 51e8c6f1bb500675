//! Turns tonic's refusal of an oversized request message (OUT_OF_RANGE,
//! raised while decoding, before any handler runs) into the status gRPC
//! prescribes for it: RESOURCE_EXHAUSTED, with an ErrorInfo like every
//! other riverlog error.

use std::collections::HashMap;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Code;
use tower::{Layer, Service};

use crate::service::failure::{Failure, exhausted};

/// How tonic's decoder words the refusal (tonic 0.14, `codec/decode.rs`);
/// a test fails if that ever changes.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// RESOURCE_EXHAUSTED (`MESSAGE_TOO_LARGE`) when `status` is tonic's
/// refusal of an oversized request message. A streaming call meets it
/// among its requests, after its headers went out, and ends with it
/// itself (`api::publish_stream`).
pub(super) fn too_large(status: &tonic::Status) -> Option<Failure> {
    (status.code() == Code::OutOfRange && status.message().starts_with(TONIC_TOO_LARGE))
        .then(|| exhausted(status.message(), "MESSAGE_TOO_LARGE", HashMap::new(), None))
}

/// Adds [`MessageSize`] to every service.
#[derive(Clone, Copy, Default)]
pub struct MessageSizeLayer;

impl<S> Layer<S> for MessageSizeLayer {
    type Service = MessageSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSize { inner }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct MessageSize<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MessageSize<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            // Decoding errors come back "trailers-only": in the headers.
            let refused = tonic::Status::from_header_map(response.headers())
                .as_ref()
                .and_then(too_large);
            if let Some(status) = refused {
                let headers = response.headers_mut();
                headers.remove("grpc-message");
                headers.remove("grpc-status-details-bin");
                // Only fails for messages that cannot be headers; keep
                // tonic's answer then.
                let _ = tonic::Status::from(status).add_header(headers);
            }
            Ok(response)
        })
    }
}
