//! One exchange with a provider on one instance: the request encoded by its adapter, sent, and
//! its answer read (whole, or a stream up to its first item) and decoded. No retries, no timers:
//! the caller bounds the try and tells the instance's breaker how it went.

use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, header};
use switchboard_providers::assemble;
use switchboard_providers::chat::{ChatRequest, ChatResponse};
use switchboard_providers::embeddings::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use switchboard_providers::{ChatAnswer, Endpoint, StreamItem};

use super::stream::{Pace, upstream_items};
use super::{Client, Failure, HttpBackend, read_body, send};
use crate::error::ApiError;

/// What a provider sent back for a chat request.
pub enum ChatReply {
    /// Boxed: an answer (its usage's maps) is several times the size of a stream.
    Whole(Box<ChatAnswer>),
    /// A stream whose first item has arrived.
    Stream(BoxStream<'static, Result<StreamItem, ApiError>>),
}

/// One chat exchange: sent, and read until its first item (its whole answer when not streamed).
/// A streamed request answered whole is replayed as the stream it asked for.
pub async fn chat(
    client: &Client,
    name: &str,
    http: &HttpBackend,
    endpoint: &Endpoint,
    request: &ChatRequest,
    pace: Pace,
) -> Result<ChatReply, Failure> {
    let outgoing = http
        .adapter
        .chat_request(endpoint, request)
        .map_err(ApiError::from)?;
    let response = send(client, name, http, outgoing, pace.deadline).await?;
    // A client's own format goes back to it as the provider wrote it.
    let native = request
        .native
        .as_deref()
        .map(|n| n.format)
        .filter(|&format| http.adapter.speaks(format, &request.model));
    // Some OpenAI-compatible servers ignore `stream: true` and answer whole: the answer is
    // replayed to the client as the stream it asked for.
    let whole = !request.is_stream() || is_json(response.headers());
    if whole {
        let bytes = read_body(client, name, response).await?;
        // A malformed answer's error quotes it, and it may echo a credential back.
        let mut answer = match native {
            Some(format) => http
                .adapter
                .native_response(format, bytes.clone())
                .map(|response| ChatAnswer::Native {
                    body: bytes,
                    response: Box::new(response),
                }),
            None => http.adapter.chat_response(bytes),
        }
        .map_err(|e| http.scrub(e.into()))?;
        // Answers that name no model (Bedrock's) are labelled with the model asked for.
        if let ChatAnswer::Translated(completion)
        | ChatAnswer::Native {
            response: completion,
            ..
        } = &mut answer
            && completion.model.is_empty()
        {
            completion.model.clone_from(&request.model);
        }
        if request.is_stream() {
            return replayed(answer).map(ChatReply::Stream);
        }
        return Ok(ChatReply::Whole(Box::new(answer)));
    }
    let mut items = upstream_items(name, http, response, pace, &request.model, native);
    // Signs of life before the first token neither answer nor reach the client:
    // `first_token` still decides whether this try failed.
    let mut first = items.next().await;
    while let Some(Ok(StreamItem::KeepAlive)) = first {
        first = items.next().await;
    }
    match first {
        Some(Ok(first)) => Ok(ChatReply::Stream(
            futures_util::stream::once(async { Ok(first) })
                .chain(items)
                .boxed(),
        )),
        Some(Err(error)) => Err(Failure::from(error)),
        None => Err(Failure::from(ApiError::bad_gateway(format!(
            "provider '{name}' closed the stream before it started"
        )))),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// A whole answer as the items of a stream; its usage is always among them (the relay drops it
/// when the client did not ask), so it is accounted for as a streamed answer would be.
fn replayed(
    answer: ChatAnswer,
) -> Result<BoxStream<'static, Result<StreamItem, ApiError>>, Failure> {
    let completion = match answer {
        ChatAnswer::Translated(completion)
        | ChatAnswer::Native {
            response: completion,
            ..
        } => *completion,
        ChatAnswer::Verbatim { body, .. } => serde_json::from_slice::<ChatResponse>(&body)
            .map_err(|e| ApiError::from(switchboard_providers::ProviderError::bad_response(e)))?,
    };
    let items: Vec<Result<StreamItem, ApiError>> = assemble::replay(&completion, true)
        .into_iter()
        .map(|chunk| Ok(StreamItem::Chunk(Box::new(chunk))))
        .chain(std::iter::once(Ok(StreamItem::Done)))
        .collect();
    Ok(futures_util::stream::iter(items).boxed())
}

/// How many batches of one request are in flight at once, for providers that take few inputs
/// per call (Titan takes one).
const BATCHES_IN_FLIGHT: usize = 4;

/// OpenAI's limit on inputs per request, enforced where the gateway itself splits a request.
const MAX_BATCHED_INPUTS: usize = 2048;

/// One embeddings exchange: the request encoded for the instance at `endpoint`, sent, and its answer decoded. A request
/// with more inputs than the provider takes per call goes in batches, whose answers are joined
/// in order; any batch failing fails the try.
pub async fn embeddings(
    client: &Client,
    name: &str,
    backend: &HttpBackend,
    endpoint: &Endpoint,
    request: &EmbeddingsRequest,
    deadline: Instant,
) -> Result<EmbeddingsResponse, Failure> {
    let batch = backend.adapter.embeddings_batch();
    let mut answer = match batch.filter(|&size| request.input.len() > size) {
        None => embed_batch(client, name, backend, endpoint, request, deadline).await?,
        Some(size) => {
            if request.input.len() > MAX_BATCHED_INPUTS {
                return Err(Failure::from(ApiError::invalid_request(
                    format!(
                        "'input' may hold at most {MAX_BATCHED_INPUTS} items for provider '{name}', which embeds {size} per call; got {}.",
                        request.input.len()
                    ),
                    Some("input".into()),
                )));
            }
            // The other fields are cloned once, not once per batch with the whole input.
            let mut template = request.clone();
            template.input = EmbeddingInput::Texts(Vec::new());
            let requests: Vec<EmbeddingsRequest> = request
                .input
                .batches(size)
                .into_iter()
                .map(|input| EmbeddingsRequest {
                    input,
                    ..template.clone()
                })
                .collect();
            // The futures are made up front: a closure inside the stream would make the handler's
            // future too general for axum to name.
            let calls: Vec<_> = requests
                .iter()
                .map(|part| embed_batch(client, name, backend, endpoint, part, deadline))
                .collect();
            let answers: Vec<EmbeddingsResponse> = futures_util::stream::iter(calls)
                .buffered(BATCHES_IN_FLIGHT)
                .try_collect()
                .await?;
            // A batch that came back short would shift every later vector onto the wrong input.
            for (part, answer) in requests.iter().zip(&answers) {
                if answer.data.len() != part.input.len() {
                    return Err(Failure::from(ApiError::bad_gateway(format!(
                        "provider '{name}' returned {} embeddings for {} inputs",
                        answer.data.len(),
                        part.input.len()
                    ))));
                }
            }
            let mut answers = answers.into_iter();
            let mut whole = answers.next().ok_or_else(|| {
                Failure::from(ApiError::bad_gateway("no embeddings came back".to_owned()))
            })?;
            answers.for_each(|next| whole.append(next));
            whole
        }
    };
    answer.fit_to(request);
    Ok(answer)
}

async fn embed_batch(
    client: &Client,
    name: &str,
    backend: &HttpBackend,
    endpoint: &Endpoint,
    request: &EmbeddingsRequest,
    deadline: Instant,
) -> Result<EmbeddingsResponse, Failure> {
    let outgoing = backend
        .adapter
        .embeddings_request(endpoint, request)
        .map_err(ApiError::from)?;
    let response = send(client, name, backend, outgoing, deadline).await?;
    let bytes = read_body(client, name, response).await?;
    // A malformed answer's error quotes it, and it may echo a credential back.
    Ok(backend
        .adapter
        .embeddings_response(&bytes)
        .map_err(|e| backend.scrub(e.into()))?)
}

/// A request already built by an adapter, sent, and its whole successful answer read.
pub async fn whole(
    client: &Client,
    name: &str,
    backend: &HttpBackend,
    request: http::Request<Bytes>,
    deadline: Instant,
) -> Result<Bytes, Failure> {
    let response = send(client, name, backend, request, deadline).await?;
    Ok(read_body(client, name, response).await?)
}
