//! Google's Gemini API (`generateContent`, `streamGenerateContent`, `embedContent`): the adapter,
//! with the translation split by direction into the modules below.
//!
//! The key travels in `x-goog-api-key`; `base_url` is the API root and the adapter appends
//! `/v1beta/models/{model}:{action}`.

mod calls;
mod embeddings;
mod error;
mod logprobs;
mod media;
mod request;
mod response;
mod schema;
mod stream;
pub mod wire;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint};
use crate::chat::ChatRequest;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;

/// The default base URL of `kind: gemini`.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The API version in every path.
const VERSION: &str = "/v1beta";

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-goog-api-key");

/// The Gemini adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

impl Gemini {
    fn post(
        endpoint: &Endpoint,
        model: &str,
        action: &str,
        body: Vec<u8>,
    ) -> Result<Request<Bytes>, ProviderError> {
        let path = format!("{VERSION}/{}:{action}", model_path(model)?);
        let mut request = endpoint.post_json(&path, body)?;
        if let Some(key) = &endpoint.api_key {
            let mut value = HeaderValue::try_from(key.as_str()).map_err(|_| {
                ProviderError::internal("provider api_key is not a valid header value")
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(API_KEY_HEADER, value);
        }
        Ok(request)
    }
}

/// `models/{model}` (or a `tunedModels/` name given whole); anything that could leave the path
/// segment is refused.
fn model_path(model: &str) -> Result<String, ProviderError> {
    let (prefix, name) = match model.split_once('/') {
        Some((prefix @ ("models" | "tunedModels"), name)) => (prefix, name),
        _ => ("models", model),
    };
    if !crate::adapter::is_path_segment(name) {
        return Err(ProviderError::invalid_request(
            format!("{model:?} is not a Gemini model name"),
            Some("model"),
        ));
    }
    Ok(format!("{prefix}/{name}"))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value)
        .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))
}

impl Adapter for Gemini {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let body = encode(&request::encode(request)?)?;
        if !request.is_stream() {
            return Self::post(endpoint, &request.model, "generateContent", body);
        }
        let mut http = Self::post(
            endpoint,
            &request.model,
            "streamGenerateContent?alt=sse",
            body,
        )?;
        http.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        let response: wire::GenerateContentResponse =
            serde_json::from_slice(&body).map_err(ProviderError::bad_response)?;
        Ok(ChatAnswer::Translated(Box::new(response::translate(
            response,
        )?)))
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(stream::GeminiStream::default())
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let model = model_path(&request.model)?;
        let (action, body) = embeddings::encode(request, &model)?;
        Self::post(endpoint, &request.model, action, body)
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        embeddings::decode(body)
    }

    /// `batchEmbedContents` takes at most 100 requests per call.
    fn embeddings_batch(&self) -> Option<usize> {
        Some(100)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        error::from_body(status, body)
    }
}
