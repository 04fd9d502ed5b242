//! OpenAI itself, or a compatible server that also serves the Responses API: a Responses
//! client's body goes to `POST {base_url}/responses` as written but for the model, so built-in
//! tools, reasoning items and fields the canonical form does not model reach it.
//!
//! Everything else (chat, embeddings, errors) is [`OpenAi`]'s, which shares the error format.

use bytes::Bytes;
use http::{HeaderValue, Request, header};

use super::OpenAi;
use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint};
use crate::chat::{ChatRequest, ChatResponse};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;
use crate::native::NativeFormat;
use crate::responses;

/// The OpenAI adapter for a server with the Responses API.
#[derive(Debug, Clone, Copy, Default)]
pub struct WithResponses;

impl Adapter for WithResponses {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let Some(native) = request
            .native
            .as_deref()
            .filter(|n| n.format == NativeFormat::OpenAiResponses)
        else {
            return OpenAi.chat_request(endpoint, request);
        };
        let mut http = endpoint.post_json("/responses", native.with_model(&request.model)?)?;
        if request.is_stream() {
            http.headers_mut().insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        OpenAi::authorize(endpoint, &mut http)?;
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        OpenAi.chat_response(body)
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        OpenAi.chat_stream()
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        OpenAi.embeddings_request(endpoint, request)
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        OpenAi.embeddings_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        OpenAi.error_response(status, body)
    }

    fn speaks(&self, format: NativeFormat, _model: &str) -> bool {
        format == NativeFormat::OpenAiResponses
    }

    fn native_response(
        &self,
        format: NativeFormat,
        body: Bytes,
    ) -> Result<ChatResponse, ProviderError> {
        match format {
            NativeFormat::OpenAiResponses => responses::decode_answer(&body),
            NativeFormat::AnthropicMessages => Err(ProviderError::internal(
                "an OpenAI server was sent an Anthropic body",
            )),
        }
    }

    fn native_stream(&self, _format: NativeFormat) -> Box<dyn ChunkDecoder> {
        Box::new(responses::StreamDecoder::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::native::Native;

    fn endpoint() -> Endpoint {
        Endpoint {
            base_url: "http://up/v1".into(),
            api_key: Some("sk-x".into()),
            headers: Default::default(),
        }
    }

    #[test]
    fn a_responses_body_goes_to_responses_and_a_chat_one_to_chat() {
        let body =
            r#"{"model":"alias","input":"hi","tools":[{"type":"web_search"}],"stream":true}"#;
        let mut request: ChatRequest = serde_json::from_str(
            r#"{"model":"gpt-x","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        )
        .unwrap();
        let plain = WithResponses.chat_request(&endpoint(), &request).unwrap();
        assert_eq!(plain.uri().path(), "/v1/chat/completions");
        request.native = Some(Arc::new(Native::new(
            NativeFormat::OpenAiResponses,
            Bytes::from(body),
        )));
        let native = WithResponses.chat_request(&endpoint(), &request).unwrap();
        assert_eq!(native.uri().path(), "/v1/responses");
        assert_eq!(
            native.body().as_ref(),
            br#"{"model":"gpt-x","input":"hi","tools":[{"type":"web_search"}],"stream":true}"#
        );
        assert_eq!(native.headers()[header::AUTHORIZATION], "Bearer sk-x");
        assert_eq!(native.headers()[header::ACCEPT], "text/event-stream");
    }
}
