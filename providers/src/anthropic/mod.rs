//! The Anthropic Messages API (`POST /v1/messages`): requests, answers, streams and errors
//! translated to and from OpenAI's Chat Completions. Anthropic has no embeddings endpoint.
//!
//! `wire` holds Anthropic's types; `request`, `response`, `stream` and `error` translate.

mod error;
mod request;
mod response;
mod stream;
mod thinking;
mod wire;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint};
use crate::chat::ChatRequest;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;

pub use request::JSON_TOOL;
pub use response::REASONING_FIELD;
pub use thinking::THINKING_BLOCKS;

/// The default base URL of `kind: anthropic`: the API root, without `/v1`.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The API version this adapter speaks, sent as `anthropic-version` unless config overrides it.
pub const API_VERSION: &str = "2023-06-01";

const VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
const KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The Anthropic adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl Adapter for Anthropic {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let body = serde_json::to_vec(&request::encode(request)?)
            .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))?;
        let mut http = endpoint.post_json("/v1/messages", body)?;
        let headers = http.headers_mut();
        if !headers.contains_key(&VERSION_HEADER) {
            headers.insert(VERSION_HEADER, HeaderValue::from_static(API_VERSION));
        }
        if let Some(key) = &endpoint.api_key {
            let mut value = HeaderValue::try_from(key.as_str()).map_err(|_| {
                ProviderError::internal("provider api_key is not a valid header value")
            })?;
            value.set_sensitive(true);
            headers.insert(KEY_HEADER, value);
        }
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        Ok(ChatAnswer::Translated(Box::new(response::decode(&body)?)))
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(stream::Decoder::default())
    }

    fn embeddings_request(
        &self,
        _endpoint: &Endpoint,
        _request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        Err(ProviderError::invalid_request(
            "Anthropic has no embeddings API: route embedding models to another provider",
            Some("model"),
        ))
    }

    fn embeddings_response(&self, _body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        Err(ProviderError::invalid_request(
            "Anthropic has no embeddings API",
            None,
        ))
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        error::from_http(status, body)
    }
}
