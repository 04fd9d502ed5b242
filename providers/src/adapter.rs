//! The contract between the gateway and one provider's wire format.
//!
//! An [`Adapter`] encodes canonical requests as `http::Request`s and decodes bodies and stream
//! events back; the gateway sends the requests and feeds the adapter what comes back.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};

use crate::chat::{ChatChunk, ChatRequest, ChatResponse, Usage};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::ProviderError;
use crate::native::{Native, NativeFormat};

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

/// Whether `name` (a model or deployment) can be put in a URL path as one segment and mean only
/// itself: letters, digits, `-`, `_` and `.`, and not `.` or `..`, which a server would resolve
/// as the directory or its parent.
pub(crate) fn is_path_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.bytes().any(|b| b != b'.')
}

impl Endpoint {
    /// A JSON `POST` to `base_url` + `path` carrying the endpoint's extra headers.
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Request<Bytes>, ProviderError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base_url, path))
            .body(Bytes::from(body))
            .map_err(|e| ProviderError::internal(format!("bad upstream URL: {e}")))?;
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

/// A decoded non-streamed chat answer.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // One per request, moved once: boxing would only add an allocation.
pub enum ChatAnswer {
    /// Translated from the provider's format into canonical form.
    Translated(Box<ChatResponse>),
    /// Already in OpenAI's format: the provider's own bytes, forwarded unchanged, with the usage
    /// they report. Skipping a full parse and re-encode keeps pass-through byte-exact and cheap.
    Verbatim { body: Bytes, usage: Option<Usage> },
    /// In the client's own format, from a target that speaks it (see [`crate::Native`]): the
    /// provider's bytes for the client, and their canonical reading for usage and the cache.
    Native {
        body: Bytes,
        response: Box<ChatResponse>,
    },
}

impl ChatAnswer {
    /// The token usage the provider reported.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            ChatAnswer::Translated(response) => response.usage.as_ref(),
            ChatAnswer::Verbatim { usage, .. } => usage.as_ref(),
            ChatAnswer::Native { response, .. } => response.usage.as_ref(),
        }
    }
}

/// One chunk already in OpenAI's format, kept as the provider sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerbatimChunk {
    /// The event's JSON, unchanged.
    pub data: Bytes,
    /// The usage the chunk reports, if any.
    pub usage: Option<Usage>,
    /// Whether the chunk has any choices; a usage-only chunk has none.
    pub has_choices: bool,
    /// Whether every choice's delta names the role. Only the first chunk with choices is asked,
    /// so a decoder may report `true` for later ones without looking.
    pub has_role: bool,
}

impl VerbatimChunk {
    /// The chunk in canonical form, for the rare edits a verbatim chunk needs.
    pub fn parse(&self) -> Result<ChatChunk, ProviderError> {
        serde_json::from_slice(&self.data).map_err(ProviderError::bad_response)
    }

    /// The chunk with `edits` made and every other value as the provider wrote it.
    pub fn edited(&self, edits: crate::chunk_edit::Edits) -> Result<Bytes, ProviderError> {
        let json = std::str::from_utf8(&self.data).map_err(ProviderError::bad_response)?;
        crate::chunk_edit::edit(json, edits).map(Bytes::from)
    }
}

/// One step of a decoded stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A chunk translated into canonical form.
    Chunk(Box<ChatChunk>),
    /// A chunk already in OpenAI's format.
    Verbatim(Box<VerbatimChunk>),
    /// The provider said the stream is complete.
    Done,
    /// The stream is alive (an SSE comment) though nothing was said: idle timers restart, and
    /// the client hears a comment, so proxies on its side do not close a long silence either.
    KeepAlive,
    /// An event in the client's own format, from a target that speaks it: forwarded as it came.
    /// The items decoded from it follow, for usage and the cache only.
    Native(Box<NativeEvent>),
}

/// One server-sent event as a provider sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeEvent {
    /// `event:`, empty when absent.
    pub name: String,
    pub data: String,
}

/// How a provider frames a streamed answer on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// Server-sent events (`text/event-stream`): OpenAI, Anthropic, Gemini, Cohere, Mistral.
    Sse,
    /// AWS event stream (`application/vnd.amazon.eventstream`): Bedrock's ConverseStream. The
    /// gateway splits frames and hands the decoder each message's `:event-type` (or, for an
    /// exception message, `:exception-type`) as the event name and its payload as the data.
    AwsEventStream,
}

/// Turns one provider's stream events into canonical chunks, keeping whatever state it needs.
pub trait ChunkDecoder: Send {
    /// Decodes one event given its name (SSE `event:`, empty when absent; or the AWS event type)
    /// and its data.
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError>;

    /// Called when the byte stream ended without an error. Providers whose streams end with a
    /// terminal event rather than `[DONE]` have already yielded [`StreamItem::Done`] by then;
    /// anything still pending can be flushed here.
    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        Ok(Vec::new())
    }

    /// Whether this decoder writes the client's native events itself, as
    /// [`StreamItem::Native`], because the provider wraps them (Bedrock's `chunk` events);
    /// otherwise each event is forwarded as it came, ahead of what is decoded from it.
    fn writes_native(&self) -> bool {
        false
    }
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
    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError>;

    /// A decoder for one streamed chat answer.
    fn chat_stream(&self) -> Box<dyn ChunkDecoder>;

    /// How this provider frames streams.
    fn stream_format(&self) -> StreamFormat {
        StreamFormat::Sse
    }

    /// Encodes an embeddings request whose `model` is already the upstream's model name.
    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError>;

    /// Decodes a successful embeddings answer.
    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError>;

    /// The most inputs the provider embeds in one call, when it has a limit below OpenAI's
    /// 2048: the gateway sends a larger request in batches and joins the answers.
    fn embeddings_batch(&self) -> Option<usize> {
        None
    }

    /// Translates an error answer (any non-2xx status) into OpenAI's vocabulary.
    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError;

    /// Whether a client's body in `format` is sent to this provider's `model` as written (see
    /// [`crate::Native`]) rather than translated from the canonical request. The model matters
    /// where one provider hosts several families (Bedrock).
    fn speaks(&self, _format: NativeFormat, _model: &str) -> bool {
        false
    }

    /// Reads a whole answer to a client's native body (see [`Adapter::speaks`]) as a canonical
    /// completion, for usage, the cache and stored conversations; the client gets the bytes.
    /// By default the native format is the provider's own, so it reads as any answer does.
    fn native_response(
        &self,
        _format: NativeFormat,
        body: Bytes,
    ) -> Result<crate::chat::ChatResponse, ProviderError> {
        match self.chat_response(body)? {
            ChatAnswer::Translated(response) | ChatAnswer::Native { response, .. } => Ok(*response),
            ChatAnswer::Verbatim { body, .. } => {
                serde_json::from_slice(&body).map_err(ProviderError::bad_response)
            }
        }
    }

    /// A decoder for a stream answering a client's native body, read as canonical chunks
    /// beside the events the client gets as they came.
    fn native_stream(&self, _format: NativeFormat) -> Box<dyn ChunkDecoder> {
        self.chat_stream()
    }

    /// The provider's own token count of a client's native body for `model`, when it has one
    /// (Anthropic's `count_tokens`); `None` when the gateway must count.
    fn count_tokens_request(
        &self,
        _endpoint: &Endpoint,
        _native: &Native,
        _model: &str,
    ) -> Option<Result<Request<Bytes>, ProviderError>> {
        None
    }
}
