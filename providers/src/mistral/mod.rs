//! Mistral's API (`/v1/chat/completions`, `/v1/embeddings`): OpenAI's format with Mistral's
//! renames, its strict field checks and its 9-character tool-call ids handled here.

mod answer;
mod request;
mod stream;

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use request::tool_call_id;

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint};
use crate::chat::ChatRequest;
use crate::embeddings::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;
use crate::openai::OpenAi;

/// The default base URL of `kind: mistral`, with `/v1` as Mistral's SDK spells it.
pub const DEFAULT_BASE_URL: &str = "https://api.mistral.ai/v1";

/// The Mistral adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mistral;

fn post(endpoint: &Endpoint, path: &str, body: &Value) -> Result<Request<Bytes>, ProviderError> {
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

impl Adapter for Mistral {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let mut http = post(endpoint, "/chat/completions", &request::encode(request)?)?;
        if request.is_stream() {
            http.headers_mut().insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        if !answer::needs_normalizing(&body) {
            return OpenAi.chat_response(body);
        }
        let mut value: Value =
            serde_json::from_slice(&body).map_err(ProviderError::bad_response)?;
        answer::normalize(&mut value)?;
        let body = serde_json::to_vec(&value)
            .map_err(|e| ProviderError::internal(format!("cannot encode answer: {e}")))?;
        OpenAi.chat_response(Bytes::from(body))
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(stream::MistralStream::new(OpenAi.chat_stream()))
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        if matches!(
            request.input,
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_)
        ) {
            return Err(ProviderError::invalid_request(
                "mistral embeds text, not token ids",
                Some("input"),
            ));
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(request.model.clone()));
        body.insert("input".into(), serde_json::json!(request.input.items()));
        if let Some(format) = request.encoding_format {
            body.insert("encoding_format".into(), serde_json::json!(format));
        }
        if let Some(dimensions) = request.dimensions {
            body.insert("output_dimension".into(), dimensions.into());
        }
        if let Some(dtype) = request.extra.get("output_dtype") {
            body.insert("output_dtype".into(), dtype.clone());
        }
        post(endpoint, "/embeddings", &Value::Object(body))
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        OpenAi.embeddings_response(body)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        error(status, body)
    }
}

/// Mistral's error bodies: `{"object": "error", "message", "type", "param", "code"}`, where a
/// validation failure puts `{"detail": [...]}` in `message` or at the top level.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    detail: Option<Value>,
    #[serde(default, rename = "type")]
    error_type: Option<String>,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// One entry of a validation failure's `detail`.
#[derive(Deserialize)]
struct Invalid {
    #[serde(default)]
    loc: Vec<Value>,
    #[serde(default)]
    msg: String,
}

fn error(status: u16, body: &[u8]) -> ProviderError {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return OpenAi.error_response(status, body);
    };
    let detail = parsed.detail.clone().or_else(|| {
        parsed
            .message
            .as_ref()
            .and_then(|m| m.get("detail").cloned())
    });
    let invalid = detail.and_then(|d| serde_json::from_value::<Vec<Invalid>>(d).ok());
    let (message, param) = match (&parsed.message, invalid) {
        (_, Some(invalid)) if !invalid.is_empty() => validation(&invalid),
        (Some(Value::String(message)), _) => (message.clone(), parsed.param.clone()),
        (None, _) if parsed.error_type.is_none() => return OpenAi.error_response(status, body),
        _ => (
            format!("mistral returned HTTP {status}"),
            parsed.param.clone(),
        ),
    };
    // A request Mistral's schema refused is what OpenAI clients know as a 400.
    let status = if status == 422 { 400 } else { status };
    ProviderError {
        error_type: parsed.error_type,
        code: parsed.code.and_then(|c| match c {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        param,
        ..ProviderError::from_status(status, message)
    }
}

/// The failures as one message, and the first failing field as OpenAI's `param`.
fn validation(invalid: &[Invalid]) -> (String, Option<String>) {
    let path = |loc: &[Value]| {
        let mut out = String::new();
        for (i, part) in loc.iter().enumerate() {
            match part {
                Value::Number(n) => out.push_str(&format!("[{n}]")),
                Value::String(s) if i == 0 && s == "body" => {}
                Value::String(s) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(s);
                }
                _ => {}
            }
        }
        out
    };
    let message = invalid
        .iter()
        .map(|i| format!("{}: {}", path(&i.loc), i.msg))
        .collect::<Vec<_>>()
        .join("; ");
    (message, invalid.first().map(|i| path(&i.loc)))
}
