//! The contract between the gateway and one provider's wire format.
//!
//! An [`Adapter`] encodes canonical requests as `http::Request`s and decodes bodies and stream
//! events back; the gateway sends the requests and feeds the adapter what comes back.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};

use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;

/// Where and as whom to reach one provider.
#[derive(Clone, Default)]
pub struct Endpoint {
    /// The provider's base URL as its own SDK spells it, without a trailing slash.
    pub base_url: String,
    /// The credential, if the provider needs one.
    pub api_key: Option<String>,
    /// Extra headers sent on every request.
    pub headers: HeaderMap,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key and headers may hold secrets: never print them.
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A JSON `POST` to `base_url` + `path` carrying the endpoint's extra headers.
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Request<Bytes>, ProviderError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base_url, path))
            .body(Bytes::from(body))
            .map_err(|e| ProviderError::invalid_request(format!("bad upstream URL: {e}"), None))?;
        let headers = request.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        Ok(request)
    }
}

/// One step of a decoded stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Chunk(Box<ChatChunk>),
    /// The provider said the stream is complete.
    Done,
}

/// Turns one provider's stream events into canonical chunks, keeping whatever state it needs.
pub trait ChunkDecoder: Send {
    /// Decodes one server-sent event given its `event:` name (empty when absent) and its data.
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError>;
}

/// One provider family's wire format.
pub trait Adapter: Send + Sync {
    /// Encodes a chat request whose `model` is already the upstream's model name.
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError>;

    /// Decodes a successful non-streamed chat answer.
    fn chat_response(&self, body: &[u8]) -> Result<ChatResponse, ProviderError>;

    /// A decoder for one streamed chat answer.
    fn chat_stream(&self) -> Box<dyn ChunkDecoder>;

    /// Encodes an embeddings request whose `model` is already the upstream's model name.
    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError>;

    /// Decodes a successful embeddings answer.
    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError>;

    /// Translates an error answer (any non-2xx status) into OpenAI's vocabulary.
    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError;
}
