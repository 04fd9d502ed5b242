//! `POST /v1/chat/completions`: authenticate, parse, route, then answer from the mock or through
//! a provider's adapter, streamed or not.
//!
//! Each outcome is counted once in the metrics, labelled with the route that served it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use switchboard_providers::assemble;
use switchboard_providers::chat::{ChatRequest, ChatResponse};
use switchboard_providers::mock::MockAnswer;
use switchboard_providers::{ChatAnswer, StreamItem};

use super::{AppState, Served, body, model_endpoint, pick, route_for, unix_now};
use crate::auth::Caller;
use crate::cache::{CachedAnswer, Fill, Lookup};
use crate::charge::Charge;
use crate::error::ApiError;
use crate::routing::Target;
use crate::sse::{self, Recorder, UsageSink};
use crate::tokens;
use crate::upstream::{self, Backend, HttpBackend, MockBackend};

/// Names the provider and upstream model that answered, for debugging routes.
static TARGET_HEADER: HeaderName = HeaderName::from_static("x-switchboard-target");

/// `hit`, `miss` or `bypass`: what the response cache did.
static CACHE_HEADER: HeaderName = HeaderName::from_static("x-switchboard-cache");

/// The handler.
pub async fn completions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let answer = async |caller: &Caller, headers: &HeaderMap, body: Body, served: &mut Served| {
        answer(&state, caller, headers, body, served).await
    };
    model_endpoint(&state, "chat", request, answer).await
}

async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let mut request: ChatRequest = body::parse(&body::read(body, state.max_body).await?)?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid_request(
            "'messages' must contain at least one message.",
            Some("messages".into()),
        ));
    }
    let route = route_for(state, caller, &request.model)?;
    let lookup = match &state.cache {
        Some(cache) => Some(
            cache
                .lookup(caller.name.as_deref(), &route.name, &mut request, headers)
                .await,
        ),
        None => None,
    };
    served.model.clone_from(&route.label);
    let (fill, cache_status) = match lookup {
        None => (None, None),
        Some(Lookup::Bypass) => (None, Some("bypass")),
        Some(Lookup::Miss(fill)) => (Some(fill), Some("miss")),
        Some(Lookup::Hit(answer)) => {
            served.provider = "cache".to_owned();
            let mut response = cached_answer(&answer, &request);
            if let Some(quota) = &caller.quota {
                quota.record_hit(&answer.target);
                quota.token_headers().apply(&mut response);
            }
            return Ok(response);
        }
    };
    let target = pick(&route)?;
    served.provider.clone_from(&target.upstream.name);
    let choices = u64::from(request.n.unwrap_or(1).max(1));
    let output = u64::from(request.max_output_tokens().unwrap_or(target.max_output)) * choices;
    let charge = match Charge::reserve(caller, target, || tokens::prompt(&request), output) {
        Ok(charge) => charge,
        Err(refused) => return Ok(*refused),
    };
    let token_headers = charge.as_ref().map(|c| c.headers().clone());
    request.model.clone_from(&target.model);
    let answering = Answering {
        sink: UsageSink::new(
            state.metrics.clone(),
            &route.label,
            &target.upstream.name,
            charge,
        ),
        fill,
        target: target.name(),
    };
    let target_header = HeaderValue::from_str(&answering.target).ok();
    let mut response = match &target.upstream.backend {
        Backend::Mock(mock) => mock_answer(*mock, request, answering).await,
        // An upstream failure still says what the cache did.
        Backend::Http(http) => http_answer(state, target, http, request, answering)
            .await
            .unwrap_or_else(IntoResponse::into_response),
    };
    let headers = response.headers_mut();
    if let Some(value) = target_header {
        headers.insert(TARGET_HEADER.clone(), value);
    }
    if let Some(status) = cache_status {
        headers.insert(CACHE_HEADER.clone(), HeaderValue::from_static(status));
    }
    if let Some(token_headers) = token_headers {
        token_headers.apply(&mut response);
    }
    Ok(response)
}

/// How an answer from upstream is accounted for and kept.
struct Answering {
    sink: UsageSink,
    /// Set on a cache miss: the answer is stored once complete.
    fill: Option<Fill>,
    /// `provider/model` answering.
    target: String,
}

impl Answering {
    /// Accounts for and caches a whole answer, then sends it.
    async fn finish(mut self, response: ChatResponse, json: Option<Bytes>) -> Response {
        self.sink.record_response(&response);
        let json = match json {
            Some(json) => json,
            None => match serde_json::to_vec(&response) {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    return ApiError::internal(format!("cannot encode the response: {e}"))
                        .into_response();
                }
            },
        };
        if let Some(fill) = self.fill.take() {
            fill.store(response, Some(json.clone()), &self.target).await;
        }
        json_bytes(json)
    }

    /// Streams an answer, caching it if it completes.
    fn stream<S>(self, items: S, wants_usage: bool) -> Response
    where
        S: Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static,
    {
        let recorder = self.fill.map(|fill| Recorder::new(fill, &self.target));
        event_stream(sse::encode(items, wants_usage, self.sink, recorder))
    }
}

/// Serves a cached answer: the stored JSON, or a replayed stream. Hits cost no tokens.
fn cached_answer(answer: &CachedAnswer, request: &ChatRequest) -> Response {
    let mut response = if request.is_stream() {
        let wants_usage = request.wants_stream_usage();
        let chunks = assemble::replay(&answer.response, wants_usage);
        let items = futures_util::stream::iter(chunks)
            .map(|chunk| Ok(StreamItem::Chunk(Box::new(chunk))))
            .chain(futures_util::stream::once(async { Ok(StreamItem::Done) }));
        event_stream(sse::encode(
            items.boxed(),
            wants_usage,
            UsageSink::ignore(),
            None,
        ))
    } else {
        json_bytes(answer.json.clone())
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_HEADER.clone(), HeaderValue::from_static("hit"));
    headers.insert(header::AGE, HeaderValue::from(answer.age().as_secs()));
    if let Ok(value) = HeaderValue::from_str(&answer.target) {
        headers.insert(TARGET_HEADER.clone(), value);
    }
    response
}

async fn http_answer(
    state: &AppState,
    target: &Target,
    backend: &HttpBackend,
    request: ChatRequest,
    mut answering: Answering,
) -> Result<Response, ApiError> {
    let name = target.upstream.name.as_str();
    let outgoing = backend.adapter.chat_request(&backend.endpoint, &request)?;
    let response = upstream::send(&state.client, name, backend, outgoing).await?;
    if request.is_stream() {
        let items = upstream_items(name, backend, response, &request.model);
        return Ok(answering.stream(items.boxed(), request.wants_stream_usage()));
    }
    let bytes = upstream::read_body(name, response).await?;
    Ok(match backend.adapter.chat_response(bytes)? {
        ChatAnswer::Translated(mut completion) => {
            if completion.model.is_empty() {
                completion.model.clone_from(&request.model);
            }
            answering.finish(*completion, None).await
        }
        // Parsing the whole answer is only worth it when the cache will keep it, or when its
        // usage is missing and its text must be counted instead.
        ChatAnswer::Verbatim { body, usage } => {
            let parsed = (answering.fill.is_some() || usage.is_none())
                .then(|| serde_json::from_slice::<ChatResponse>(&body).ok())
                .flatten();
            match parsed {
                Some(completion) => answering.finish(completion, Some(body)).await,
                // Dropping `answering` drops its fill: nothing is stored, waiters are released.
                None => {
                    answering.sink.record(usage.as_ref());
                    json_bytes(body)
                }
            }
        }
    })
}

/// A provider's streamed answer as canonical items: framed by the provider's stream format,
/// decoded by its adapter, scrubbed of its credentials. The decoder hears of the end of the bytes
/// too, so formats without a `[DONE]` can finish. Chunks of formats that do not name the model
/// are given `model`, the one the gateway asked for.
fn upstream_items(
    provider: &str,
    backend: &HttpBackend,
    response: reqwest::Response,
    model: &str,
) -> impl Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static {
    let model = model.to_owned();
    let decoder = backend.adapter.chat_stream();
    let provider = provider.to_owned();
    let secrets = backend.secrets.clone();
    let events = response.bytes_stream().eventsource();
    let steps = futures_util::stream::unfold(Some((events, decoder)), move |state| {
        let provider = provider.clone();
        async move {
            let (mut events, mut decoder) = state?;
            let (items, next) = match events.next().await {
                Some(Ok(event)) => {
                    let items = decoder.decode(&event.event, &event.data);
                    let failed = items.is_err();
                    (
                        items.map_err(ApiError::from),
                        (!failed).then_some((events, decoder)),
                    )
                }
                Some(Err(error)) => (Err(stream_error(&provider, &error)), None),
                None => (decoder.finish().map_err(ApiError::from), None),
            };
            Some((items, next))
        }
    });
    steps
        .flat_map(move |items| {
            let items: Vec<Result<StreamItem, ApiError>> = match items {
                Ok(items) => items
                    .into_iter()
                    .map(|item| Ok(named(item, &model)))
                    .collect(),
                Err(error) => vec![Err(upstream::redact(error, &secrets))],
            };
            futures_util::stream::iter(items)
        })
        .boxed()
}

/// A translated chunk with the model filled in when the provider's event did not name it.
fn named(item: StreamItem, model: &str) -> StreamItem {
    match item {
        StreamItem::Chunk(mut chunk) if chunk.model.is_empty() => {
            model.clone_into(&mut chunk.model);
            StreamItem::Chunk(chunk)
        }
        other => other,
    }
}

fn stream_error<E: std::fmt::Display>(
    provider: &str,
    error: &eventsource_stream::EventStreamError<E>,
) -> ApiError {
    match error {
        eventsource_stream::EventStreamError::Transport(e) => {
            ApiError::bad_gateway(format!("the stream from provider '{provider}' broke: {e}"))
        }
        other => ApiError::bad_gateway(format!(
            "provider '{provider}' sent an invalid stream: {other}"
        )),
    }
}

async fn mock_answer(
    mock: MockBackend,
    mut request: ChatRequest,
    answering: Answering,
) -> Response {
    let answer = MockAnswer::for_request(&request);
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_now();
    if !request.is_stream() {
        let extra_chunks = answer.pieces.len().saturating_sub(1) as u32;
        pause(mock.first_token + mock.per_chunk * extra_chunks).await;
        return answering
            .finish(answer.response(&request, &id, created), None)
            .await;
    }
    // Like a real upstream asked by the gateway, the mock always reports usage at the end of a
    // stream; the relay drops it unless the client asked.
    let wants_usage = request.wants_stream_usage();
    request
        .stream_options
        .get_or_insert_with(Default::default)
        .include_usage = Some(true);
    let chunks = answer.chunks(&request, &id, created);
    let items = futures_util::stream::iter(chunks.into_iter().enumerate())
        .then(move |(i, chunk)| async move {
            pause(if i == 0 {
                mock.first_token
            } else {
                mock.per_chunk
            })
            .await;
            Ok(StreamItem::Chunk(Box::new(chunk)))
        })
        .chain(futures_util::stream::once(async { Ok(StreamItem::Done) }));
    answering.stream(items.boxed(), wants_usage)
}

async fn pause(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

fn event_stream<B>(body: B) -> Response
where
    B: Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, Body::from_stream(body)).into_response()
}

/// A JSON body already encoded.
fn json_bytes(body: bytes::Bytes) -> Response {
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (content_type, body).into_response()
}

/// Serializes a response body as JSON.
pub(super) fn json_response<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(bytes.into()),
        Err(e) => ApiError::internal(format!("cannot encode the response: {e}")).into_response(),
    }
}
