//! AWS Bedrock: chat through the Converse and ConverseStream APIs (a Messages client's body to
//! Claude through InvokeModel, as written), embeddings through Amazon Titan's InvokeModel,
//! every request signed with SigV4 inside `chat_request`.
//!
//! The adapter holds the credentials and a clock; the clock is injectable so that a signature can
//! be checked against a known vector. Streams use the AWS event stream framing.

mod embeddings;
mod errors;
mod invoke;
mod request;
mod response;
mod sign;
mod stream;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::{HeaderValue, Request, header};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint, StreamFormat};
use crate::anthropic::Anthropic;
use crate::chat::{ChatRequest, ChatResponse};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;
use crate::native::NativeFormat;

pub use invoke::ANTHROPIC_VERSION;
pub use request::{JSON_TOOL, converse_request};

/// The default base URL of `kind: bedrock`, with `{region}` replaced by the configured region.
pub const DEFAULT_BASE_URL: &str = "https://bedrock-runtime.{region}.amazonaws.com";

/// The SigV4 service name of Bedrock's runtime API.
const SERVICE: &str = "bedrock";

/// The default base URL for `region`.
pub fn default_base_url(region: &str) -> String {
    DEFAULT_BASE_URL.replace("{region}", region)
}

/// The time requests are signed at.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Static AWS credentials, as config or the environment give them.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The Bedrock adapter for one region and one set of credentials.
#[derive(Clone)]
pub struct Bedrock {
    credentials: Credentials,
    region: String,
    clock: Clock,
}

impl std::fmt::Debug for Bedrock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credentials' own Debug already redacts the secret; say nothing of them at all.
        f.debug_struct("Bedrock")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Bedrock {
    /// An adapter signing with `credentials` for `region`, at the system's time.
    pub fn new(credentials: AwsCredentials, region: impl Into<String>) -> Self {
        Bedrock {
            credentials: Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token,
                None,
                "switchboard-config",
            ),
            region: region.into(),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// The same adapter signing at the times `clock` gives.
    pub fn with_clock(self, clock: Clock) -> Self {
        Bedrock { clock, ..self }
    }

    /// A signed JSON `POST` to `/model/{model}/{action}`.
    fn post(
        &self,
        endpoint: &Endpoint,
        model: &str,
        action: &str,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<Request<Bytes>, ProviderError> {
        // Encoding keeps `.`: a model id of dots alone would climb out of `/model/`.
        if model.is_empty() || model.bytes().all(|b| b == b'.') {
            return Err(ProviderError::invalid_request(
                format!("{model:?} is not a Bedrock model id"),
                Some("model"),
            ));
        }
        let path = format!("/model/{}/{action}", encode_path_segment(model));
        let mut http = endpoint.post_json(&path, body)?;
        http.headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static(accept));
        sign::sign_request(
            &mut http,
            &self.credentials,
            &self.region,
            SERVICE,
            (self.clock)(),
        )?;
        Ok(http)
    }

    /// An id and creation time for an answer; Bedrock sends neither.
    fn stamp(&self) -> (String, u64) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let since_epoch = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("chatcmpl-bedrock-{:x}{n:04x}", since_epoch.as_nanos());
        (id, since_epoch.as_secs())
    }
}

/// Percent-encodes a model id or ARN as one path segment: `:` and `/` included, as the AWS SDKs
/// send it.
pub fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value)
        .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))
}

impl Adapter for Bedrock {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let native = request
            .native
            .as_deref()
            .filter(|n| self.speaks(n.format, &request.model));
        // A Messages client's body goes to Claude through InvokeModel; the rest through Converse.
        let (body, actions) = match native {
            Some(native) => (
                invoke::body(native)?,
                ("invoke", "invoke-with-response-stream"),
            ),
            None => (
                encode(&converse_request(request)?)?,
                ("converse", "converse-stream"),
            ),
        };
        let (action, accept) = if request.is_stream() {
            (actions.1, "application/vnd.amazon.eventstream")
        } else {
            (actions.0, "application/json")
        };
        self.post(endpoint, &request.model, action, body, accept)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        let (id, created) = self.stamp();
        let response = response::chat_response(&body, id, created)?;
        Ok(ChatAnswer::Translated(Box::new(response)))
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        let (id, created) = self.stamp();
        Box::new(stream::ConverseStream::new(id, created))
    }

    fn stream_format(&self) -> StreamFormat {
        StreamFormat::AwsEventStream
    }

    fn speaks(&self, format: NativeFormat, model: &str) -> bool {
        format == NativeFormat::AnthropicMessages && invoke::is_claude(model)
    }

    fn native_response(
        &self,
        format: NativeFormat,
        body: Bytes,
    ) -> Result<ChatResponse, ProviderError> {
        Anthropic.native_response(format, body)
    }

    fn native_stream(&self, _format: NativeFormat) -> Box<dyn ChunkDecoder> {
        Box::new(invoke::InvokeStream::new())
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let body = encode(&embeddings::titan_request(request)?)?;
        self.post(endpoint, &request.model, "invoke", body, "application/json")
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        embeddings::titan_response(body)
    }

    /// Titan embeds one text per call.
    fn embeddings_batch(&self) -> Option<usize> {
        Some(1)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        errors::error_response(status, body)
    }
}
