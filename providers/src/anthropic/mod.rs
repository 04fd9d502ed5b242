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
use crate::native::{Native, NativeFormat};

pub use request::JSON_TOOL;
pub use response::REASONING_FIELD;
pub use thinking::THINKING_BLOCKS;

/// The default base URL of `kind: anthropic`: the API root, without `/v1`.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The API version this adapter speaks, sent as `anthropic-version` unless config overrides it.
pub const API_VERSION: &str = "2023-06-01";

const VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
const KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
const BETA_HEADER: HeaderName = HeaderName::from_static("anthropic-beta");

/// The Anthropic adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl Adapter for Anthropic {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        // A Messages client's own body goes out as written but for the model: translating it
        // there and back would lose what the canonical form does not model.
        let native = request
            .native
            .as_deref()
            .filter(|n| n.format == NativeFormat::AnthropicMessages);
        let body = match native {
            Some(native) => native.with_model(&request.model)?,
            None => serde_json::to_vec(&request::encode(request)?)
                .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))?,
        };
        let mut http = endpoint.post_json("/v1/messages", body)?;
        self.authorize(
            endpoint,
            native.and_then(|n| n.beta.as_deref()),
            http.headers_mut(),
        )?;
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

    fn speaks(&self, format: NativeFormat, _model: &str) -> bool {
        format == NativeFormat::AnthropicMessages
    }

    fn count_tokens_request(
        &self,
        endpoint: &Endpoint,
        native: &Native,
        model: &str,
    ) -> Option<Result<Request<Bytes>, ProviderError>> {
        if native.format != NativeFormat::AnthropicMessages {
            return None;
        }
        Some(native.with_model(model).and_then(|body| {
            let mut http = endpoint.post_json("/v1/messages/count_tokens", body)?;
            self.authorize(endpoint, native.beta.as_deref(), http.headers_mut())?;
            Ok(http)
        }))
    }
}

impl Anthropic {
    /// The version, key and beta headers every request carries.
    fn authorize(
        &self,
        endpoint: &Endpoint,
        beta: Option<&str>,
        headers: &mut http::HeaderMap,
    ) -> Result<(), ProviderError> {
        if let Some(beta) = beta
            && let Ok(value) = HeaderValue::try_from(beta)
        {
            headers.insert(BETA_HEADER, value);
        }
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
        Ok(())
    }
}
