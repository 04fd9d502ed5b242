//! The Cohere v2 wire format: Chat (`/v2/chat`), streamed and not, and Embed (`/v2/embed`).
//! Requests are rebuilt in Cohere's vocabulary; answers and events come back as OpenAI's.

mod embed;
mod request;
mod response;
mod stream;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, header};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint};
use crate::chat::ChatRequest;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;

/// The default base URL of `kind: cohere`: the API root; the adapter appends `/v2/...`.
pub const DEFAULT_BASE_URL: &str = "https://api.cohere.com";

/// The Cohere adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cohere;

/// Seconds since the epoch: Cohere's answers carry no timestamp, OpenAI's must.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A JSON `POST` to `path` with Cohere's bearer authentication.
fn post(
    endpoint: &Endpoint,
    path: &str,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<Request<Bytes>, ProviderError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))?;
    let mut http = endpoint.post_json(path, body)?;
    if let Some(key) = &endpoint.api_key {
        let mut value = HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| ProviderError::internal("provider api_key is not a valid header value"))?;
        value.set_sensitive(true);
        http.headers_mut().insert(header::AUTHORIZATION, value);
    }
    Ok(http)
}

impl Adapter for Cohere {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let mut http = post(endpoint, "/v2/chat", &request::encode(request)?)?;
        let accept = if request.is_stream() {
            "text/event-stream"
        } else {
            "application/json"
        };
        http.headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static(accept));
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        response::decode(&body, now()).map(|r| ChatAnswer::Translated(Box::new(r)))
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(stream::CohereStream::new(now()))
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        post(endpoint, "/v2/embed", &embed::encode(request)?)
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        embed::decode(body)
    }

    /// Cohere's Embed API takes at most 96 texts per call.
    fn embeddings_batch(&self) -> Option<usize> {
        Some(96)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        response::error(status, body)
    }
}
