//! Azure OpenAI: OpenAI's bodies, streams and errors, sent to a deployment's URL with an
//! `api-version` query and an `api-key` header. The target's model name is the deployment.

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint, StreamItem};
use crate::chat::ChatRequest;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;
use crate::openai::OpenAi;

/// The API version used when config names none: the latest generally available one.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The Azure OpenAI adapter for one resource.
#[derive(Debug, Clone)]
pub struct Azure {
    api_version: String,
}

impl Azure {
    pub fn new(api_version: impl Into<String>) -> Self {
        Azure {
            api_version: api_version.into(),
        }
    }

    /// Builds the request as OpenAI would for the deployment's base, then moves it to Azure's
    /// URL and credential.
    fn send_to(
        &self,
        endpoint: &Endpoint,
        deployment: &str,
        build: impl FnOnce(&Endpoint) -> Result<Request<Bytes>, ProviderError>,
    ) -> Result<Request<Bytes>, ProviderError> {
        // The deployment becomes a path segment: anything but Azure's name characters could
        // change the URL's meaning.
        if !crate::adapter::is_path_segment(deployment) {
            return Err(ProviderError::invalid_request(
                format!("{deployment:?} is not a valid Azure deployment name"),
                Some("model"),
            ));
        }
        let deployment_endpoint = Endpoint {
            base_url: format!("{}/openai/deployments/{deployment}", endpoint.base_url),
            api_key: None,
            headers: endpoint.headers.clone(),
        };
        let mut http = build(&deployment_endpoint)?;
        let uri = format!("{}?api-version={}", http.uri(), self.api_version);
        *http.uri_mut() = uri
            .parse::<Uri>()
            .map_err(|e| ProviderError::internal(format!("bad upstream URL: {e}")))?;
        if let Some(key) = &endpoint.api_key {
            let mut value = HeaderValue::try_from(key.as_str()).map_err(|_| {
                ProviderError::internal("provider api_key is not a valid header value")
            })?;
            value.set_sensitive(true);
            http.headers_mut().insert("api-key", value);
        }
        Ok(http)
    }
}

impl Adapter for Azure {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        self.send_to(endpoint, &request.model, |e| {
            OpenAi.chat_request(e, request)
        })
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        OpenAi.chat_response(body)
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(AzureStream(OpenAi.chat_stream()))
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        self.send_to(endpoint, &request.model, |e| {
            OpenAi.embeddings_request(e, request)
        })
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        OpenAi.embeddings_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        OpenAi.error_response(status, body)
    }
}

/// OpenAI's stream decoder, skipping named events: chunks come unnamed, and anything else (a
/// keep-alive, say) is not a chunk.
struct AzureStream(Box<dyn ChunkDecoder>);

impl ChunkDecoder for AzureStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        if matches!(event, "" | "message") {
            self.0.decode(event, data)
        } else {
            Ok(Vec::new())
        }
    }

    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        self.0.finish()
    }
}
