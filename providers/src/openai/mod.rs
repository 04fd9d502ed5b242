//! The OpenAI wire format, spoken by OpenAI and by every OpenAI-compatible server (vLLM, Ollama,
//! Groq, Together, DeepSeek, OpenRouter...). Requests pass through with unknown fields intact.
//!
//! Streams always ask the upstream for usage, because the gateway needs it for accounting; the
//! gateway drops the usage chunk again when the client did not ask for it.

use bytes::Bytes;
use http::{HeaderValue, Request, header};

use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::adapter::{Adapter, ChatAnswer, ChunkDecoder, Endpoint, StreamItem, VerbatimChunk};
use crate::chat::{
    ChatRequest, CompletionTokensDetails, PromptTokensDetails, StreamOptions, Usage,
};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::{OpenAiErrorBody, ProviderError};
use crate::json_scan;

mod responses;

pub use responses::WithResponses;

/// The default base URL of `kind: openai`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The OpenAI-compatible adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAi;

impl OpenAi {
    fn authorize(endpoint: &Endpoint, request: &mut Request<Bytes>) -> Result<(), ProviderError> {
        if let Some(key) = &endpoint.api_key {
            let mut value = HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                ProviderError::internal("provider api_key is not a valid header value")
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        Ok(())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value)
        .map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))
}

impl Adapter for OpenAi {
    fn chat_request(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let body = match (request.is_stream(), &request.stream_options) {
            (false, _) => encode(request)?,
            // The common case: add the option while encoding, without copying the request.
            (true, None) => encode(&WithUsage {
                request,
                stream_options: UsageOption {
                    include_usage: true,
                },
            })?,
            (true, Some(options)) if options.include_usage == Some(true) => encode(request)?,
            (true, Some(_)) => {
                let mut with_usage = request.clone();
                with_usage
                    .stream_options
                    .get_or_insert_with(StreamOptions::default)
                    .include_usage = Some(true);
                encode(&with_usage)?
            }
        };
        let mut http = endpoint.post_json("/chat/completions", body)?;
        if request.is_stream() {
            http.headers_mut().insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        Self::authorize(endpoint, &mut http)?;
        Ok(http)
    }

    fn chat_response(&self, body: Bytes) -> Result<ChatAnswer, ProviderError> {
        // One UTF-8 check of the whole body is cheaper than the check `from_slice` makes of
        // every string.
        let text = std::str::from_utf8(&body).map_err(ProviderError::bad_response)?;
        let peek = Peek::<AnyArray>::read(text, false).map_err(ProviderError::bad_response)?;
        Ok(ChatAnswer::Verbatim {
            body,
            usage: peek.usage.map(Usage::from),
        })
    }

    fn chat_stream(&self) -> Box<dyn ChunkDecoder> {
        Box::new(OpenAiStream::default())
    }

    fn embeddings_request(
        &self,
        endpoint: &Endpoint,
        request: &EmbeddingsRequest,
    ) -> Result<Request<Bytes>, ProviderError> {
        let mut http = endpoint.post_json("/embeddings", encode(request)?)?;
        Self::authorize(endpoint, &mut http)?;
        Ok(http)
    }

    fn embeddings_response(&self, body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
        serde_json::from_slice(body).map_err(ProviderError::bad_response)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ProviderError {
        let fallback = || format!("upstream returned HTTP {status}");
        match serde_json::from_slice::<OpenAiErrorBody>(body) {
            Ok(OpenAiErrorBody { error }) => error.into_error(status, fallback),
            Err(_) => {
                ProviderError::from_status(status, other_message(body).unwrap_or_else(fallback))
            }
        }
    }
}

/// Longest message taken from an error body in a shape of its own.
const MAX_OTHER_MESSAGE: usize = 2000;

/// The message of error bodies OpenAI-compatible servers write in shapes of their own: vLLM's
/// top-level `message`, TGI's `error` string, FastAPI's `detail` (a string, or a list of
/// validation problems). Plain text and HTML pages are not passed on.
fn other_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = [&value["message"], &value["error"]]
        .into_iter()
        .find_map(|field| field.as_str().map(str::to_owned))
        .or_else(|| match &value["detail"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        })?;
    let end = message
        .char_indices()
        .nth(MAX_OTHER_MESSAGE)
        .map_or(message.len(), |(at, _)| at);
    Some(message[..end].to_owned())
}

/// A streamed request with `stream_options.include_usage` added.
#[derive(Serialize)]
struct WithUsage<'a> {
    #[serde(flatten)]
    request: &'a ChatRequest,
    stream_options: UsageOption,
}

#[derive(Serialize)]
struct UsageOption {
    include_usage: bool,
}

/// What the gateway reads of an OpenAI answer or chunk: enough to check its shape and account
/// for it. The rest is skipped without being built. `C` is what is read of `choices`: each
/// choice's delta for a chunk, only that it is an array for an answer.
#[derive(Deserialize)]
#[serde(expecting = "an OpenAI chat completion object")]
struct Peek<C> {
    choices: C,
    #[serde(default)]
    usage: Option<PeekUsage>,
}

/// The second look when [`Peek`] fails: a usage that is not the counts OpenAI documents does
/// not fail an answer (its tokens are counted instead), and a stream chunk may lack choices.
#[derive(Deserialize)]
#[serde(expecting = "an OpenAI chat completion object")]
struct PeekWithoutUsage<C> {
    #[serde(default = "Option::default")]
    choices: Option<C>,
    /// An error object fails the stream: it is for the error parse, not this one.
    #[serde(default)]
    error: Option<IgnoredAny>,
}

impl<C: DeserializeOwned + Default> Peek<C> {
    /// `chunk`: a stream chunk, which may have no `choices`; an answer must have them.
    fn read(json: &str, chunk: bool) -> Result<Peek<C>, serde_json::Error> {
        serde_json::from_str::<Peek<C>>(json).or_else(|error| {
            let Ok(second) = serde_json::from_str::<PeekWithoutUsage<C>>(json) else {
                return Err(error);
            };
            match second.choices {
                _ if second.error.is_some() => Err(error),
                Some(choices) => Ok(Peek {
                    choices,
                    usage: None,
                }),
                None if chunk => Ok(Peek {
                    choices: C::default(),
                    usage: None,
                }),
                None => Err(error),
            }
        })
    }
}

/// `choices` of a whole answer: an array, its elements skipped unread. Building each choice
/// to read nothing of it cost a quarter of the peek.
#[derive(Default)]
struct AnyArray;

impl<'de> Deserialize<'de> for AnyArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Elements;
        impl<'de> Visitor<'de> for Elements {
            type Value = AnyArray;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyArray, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AnyArray)
            }
        }
        deserializer.deserialize_seq(Elements)
    }
}

/// The counts of `usage`, without the unknown fields `Usage` keeps: accounting reads only the
/// counts, and collecting the rest through `flatten` was half the cost of the peek.
#[derive(Deserialize)]
struct PeekUsage {
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    /// Some servers leave it out; it is the sum.
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PeekPromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<PeekCompletionDetails>,
}

#[derive(Deserialize)]
struct PeekPromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PeekCompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    accepted_prediction_tokens: Option<u64>,
    #[serde(default)]
    rejected_prediction_tokens: Option<u64>,
}

impl From<PeekUsage> for Usage {
    fn from(peek: PeekUsage) -> Self {
        Usage {
            prompt_tokens: peek.prompt_tokens,
            completion_tokens: peek.completion_tokens,
            total_tokens: peek
                .total_tokens
                .unwrap_or_else(|| peek.prompt_tokens.saturating_add(peek.completion_tokens)),
            prompt_tokens_details: peek.prompt_tokens_details.map(|d| PromptTokensDetails {
                cached_tokens: d.cached_tokens,
                audio_tokens: d.audio_tokens,
                ..Default::default()
            }),
            completion_tokens_details: peek.completion_tokens_details.map(|d| {
                CompletionTokensDetails {
                    reasoning_tokens: d.reasoning_tokens,
                    audio_tokens: d.audio_tokens,
                    accepted_prediction_tokens: d.accepted_prediction_tokens,
                    rejected_prediction_tokens: d.rejected_prediction_tokens,
                    ..Default::default()
                }
            }),
            extra: Default::default(),
        }
    }
}

#[derive(Deserialize)]
struct PeekChoice {
    #[serde(default)]
    delta: Option<PeekDelta>,
}

#[derive(Deserialize)]
struct PeekDelta {
    #[serde(default)]
    role: Option<IgnoredAny>,
}

/// OpenAI streams are already canonical: each event is one chunk, `[DONE]` ends it.
///
/// A chunk a byte scan shows to be plain is forwarded unparsed; only chunks carrying usage,
/// errors or anything unusual are parsed, and the first chunk with choices unless the scan sees
/// its role (the relay adds a missing one).
///
/// A server that ends its stream without `[DONE]` right after every choice has finished (some
/// local servers and proxies do) is taken as complete: the last chunk with choices, kept by
/// reference, is read when the bytes end.
#[derive(Default)]
struct OpenAiStream {
    seen_choices: bool,
    last_with_choices: Option<Bytes>,
}

impl ChunkDecoder for OpenAiStream {
    fn decode(&mut self, _event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.last_with_choices = None;
            return Ok(vec![StreamItem::Done]);
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = Bytes::copy_from_slice(data.as_bytes());
        let items = self.chunk(data, bytes)?;
        if let [StreamItem::Verbatim(chunk)] = &items[..]
            && chunk.has_choices
        {
            self.last_with_choices = Some(chunk.data.clone());
        }
        Ok(items)
    }

    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        let finished = self.last_with_choices.take().is_some_and(|last| {
            serde_json::from_slice::<Peek<Vec<FinishedChoice>>>(&last)
                .is_ok_and(|peek| peek.choices.iter().all(|c| c.finish_reason.is_some()))
        });
        Ok(if finished {
            vec![StreamItem::Done]
        } else {
            Vec::new()
        })
    }
}

/// What [`OpenAiStream::finish`] reads of the last chunk's choices.
#[derive(Deserialize)]
struct FinishedChoice {
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

impl OpenAiStream {
    /// One chunk's items: forwarded unparsed when the byte scan allows.
    fn chunk(&mut self, data: &str, bytes: Bytes) -> Result<Vec<StreamItem>, ProviderError> {
        if let Some(plain) = json_scan::plain_chunk(&bytes)
            // Only the first chunk with choices is asked about its role.
            && (self.seen_choices || !plain.has_choices || json_scan::one_delta_with_role(&bytes))
        {
            self.seen_choices |= plain.has_choices;
            return Ok(vec![StreamItem::Verbatim(Box::new(VerbatimChunk {
                data: bytes,
                usage: None,
                has_choices: plain.has_choices,
                has_role: true,
            }))]);
        }
        match Peek::<Vec<PeekChoice>>::read(data, true) {
            Ok(peek) => {
                self.seen_choices |= !peek.choices.is_empty();
                Ok(vec![StreamItem::Verbatim(Box::new(VerbatimChunk {
                    data: bytes,
                    has_role: peek
                        .choices
                        .iter()
                        .all(|c| c.delta.as_ref().is_some_and(|d| d.role.is_some())),
                    usage: peek.usage.map(Usage::from),
                    has_choices: !peek.choices.is_empty(),
                }))])
            }
            Err(parse_error) => match serde_json::from_str::<OpenAiErrorBody>(data) {
                Ok(OpenAiErrorBody { error }) => {
                    Err(error.into_error(502, || "upstream stream failed".to_owned()))
                }
                Err(_) => Err(ProviderError::bad_response(parse_error)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
