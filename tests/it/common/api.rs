//! The HTTP side in tests: a server's JSON API (`/api/v1`) through reqwest,
//! with the requests tests repeat.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::TestServer;

/// The content type of one CloudEvent in structured mode.
pub const STRUCTURED: &str = "application/cloudevents+json";
/// The content type of a JSON array of CloudEvents (batched mode).
pub const BATCHED: &str = "application/cloudevents-batch+json";

/// A test server's JSON API, under `/api/v1` on its HTTP port.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl TestServer {
    pub fn api(&self) -> Api {
        Api {
            base: format!("http://{}/api/v1", self.http_addr),
            http: reqwest::Client::new(),
        }
    }
}

impl Api {
    /// The URL of `path` (`/streams`, `/subscribe?stream=s` ...).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, for a test to add headers or a body to.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// GETs `path` and reads the answer as JSON, whatever its status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    /// DELETEs `path`.
    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    /// POSTs `body` as `application/json`.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as `content_type`.
    pub async fn post_as(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.request(Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A POST of one CloudEvent in structured mode
    /// (`application/cloudevents+json`), not sent yet.
    pub fn event_request(&self, path: &str, event: &Value) -> RequestBuilder {
        self.request(Method::POST, path)
            .header("content-type", STRUCTURED)
            .body(event.to_string())
    }

    /// POSTs one CloudEvent in structured mode.
    pub async fn post_event(&self, path: &str, event: &Value) -> Response {
        self.post_as(path, STRUCTURED, event.to_string()).await
    }

    /// POSTs a JSON array of CloudEvents in batched mode.
    pub async fn post_batch(&self, path: &str, events: &Value) -> Response {
        self.post_as(path, BATCHED, events.to_string()).await
    }
}
