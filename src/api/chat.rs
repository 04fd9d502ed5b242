//! `POST /v1/chat/completions`: authenticate, parse, route, then answer from the mock or through
//! a provider's adapter, streamed or not.
//!
//! Each outcome is counted once in the metrics, labelled with the route that served it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use switchboard_providers::assemble;
use switchboard_providers::chat::{ChatRequest, ChatResponse};
use switchboard_providers::eventstream::{EventMessage, FrameSplitter, MessageKind};
use switchboard_providers::mock::MockAnswer;
use switchboard_providers::sse_frames::{SseEvent, SseSplitter};
use switchboard_providers::{ChatAnswer, ChunkDecoder, StreamFormat, StreamItem};

use super::{
    AppState, Served, body, model_endpoint, route_deadline, route_for, unix_now, with_fallbacks,
};
use crate::auth::Caller;
use crate::cache::{CachedAnswer, Fill, Lookup};
use crate::charge::Charge;
use crate::config::TimeoutsConfig;
use crate::error::ApiError;
use crate::resilience::{Failure, Plan};
use crate::routing::Target;
use crate::sse::{self, Recorder, UsageSink};
use crate::tokens;
use crate::upstream::instances::Lease;
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

/// OpenAI's bound on `n`; beyond it a request could ask for answers without end.
const MAX_CHOICES: u32 = 128;

async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let raw = body::read(body, state.max_body).await?;
    let mut request: ChatRequest = body::parse(&raw)?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid_request(
            "'messages' must contain at least one message.",
            Some("messages".into()),
        ));
    }
    if let Some(n) = request.n.filter(|n| !(1..=MAX_CHOICES).contains(n)) {
        return Err(ApiError::invalid_request(
            format!("'n' must be between 1 and {MAX_CHOICES}; got {n}."),
            Some("n".into()),
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
    let routes = with_fallbacks(state, &route);
    let deadline = route_deadline(&route);
    let choices = u64::from(request.n.unwrap_or(1).max(1));
    let requested_output = request.max_output_tokens();
    let output =
        |target: &Target| u64::from(requested_output.unwrap_or(target.max_output)) * choices;
    let mut charge = match Charge::reserve(caller, &routes, || tokens::prompt(&request), output) {
        Ok(charge) => charge,
        Err(refused) => return Ok(*refused),
    };
    if let Some(charge) = &mut charge {
        // The client's own body, parsed again only in the rare case it is needed.
        charge.count_prompt_if_unreported(move || {
            body::parse::<ChatRequest>(&raw).map_or(0, |request| tokens::prompt(&request))
        });
    }
    let token_headers = charge.as_ref().map(|c| c.headers().clone());
    let streamed = request.is_stream();
    let client = state.clients.for_route(&route);
    let plan = Plan::new(&routes, deadline, &state.metrics);
    let tried = try_targets(plan, client, &mut request, &route.timeouts, deadline).await;
    let mut response = match tried {
        Err(error) => {
            drop(charge); // Released before the headers below are read.
            error.into_response()
        }
        Ok((attempted, target)) => {
            served.provider.clone_from(&target.upstream.name);
            let answering = Answering {
                sink: UsageSink::new(
                    state.metrics.clone(),
                    &route.label,
                    &target.upstream.name,
                    charge.map(|c| c.retarget(target)),
                ),
                fill,
                target: target.name().to_owned(),
            };
            let mut response = match attempted {
                // Boxed, like the cache's store below: the handler's future is as large as its
                // largest branch, and it is moved whole into place on every request.
                Attempted::Mock(mock, lease) => {
                    Box::pin(mock_answer(mock, lease, request, answering)).await
                }
                Attempted::Whole(answer) => whole_answer(*answer, answering).await,
                Attempted::Stream(items) => {
                    let choices = request.n.unwrap_or(1);
                    answering.stream(items, request.wants_stream_usage(), choices)
                }
            };
            if let Ok(value) = HeaderValue::from_str(target.name()) {
                response.headers_mut().insert(TARGET_HEADER.clone(), value);
            }
            response
        }
    };
    // An upstream failure still says what the cache did.
    if let Some(status) = cache_status {
        let headers = response.headers_mut();
        headers.insert(CACHE_HEADER.clone(), HeaderValue::from_static(status));
    }
    // A whole answer (or a failure) is settled by now: the headers say what is left, not what
    // was reserved. A stream's go out before it is settled.
    let token_headers = match &caller.quota {
        Some(quota) if !streamed && token_headers.is_some() => Some(quota.token_headers()),
        _ => token_headers,
    };
    if let Some(token_headers) = token_headers {
        token_headers.apply(&mut response);
    }
    Ok(response)
}

/// Tries the plan's targets in turn until one answers or the plan gives up; the request names
/// each target's upstream model as it goes.
async fn try_targets<'r>(
    mut plan: Plan<'r>,
    client: &upstream::Client,
    request: &mut ChatRequest,
    timeouts: &TimeoutsConfig,
    deadline: Instant,
) -> Result<(Attempted, &'r Target), ApiError> {
    loop {
        let (target, lease) = plan.next()?;
        request.model.clone_from(&target.model);
        match attempt(client, target, lease, request, timeouts, deadline).await {
            Ok(attempted) => return Ok((attempted, target)),
            Err(failure) => plan.failed(target, failure).await?,
        }
    }
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
            Box::pin(fill.store(response, Some(json.clone()), &self.target)).await;
        }
        json_bytes(json)
    }

    /// Streams an answer, caching it if it completes.
    /// `choices` is the request's `n`.
    fn stream<S>(self, items: S, wants_usage: bool, choices: u32) -> Response
    where
        S: Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static,
    {
        let recorder = self.fill.map(|fill| Recorder::new(fill, &self.target));
        event_stream(sse::encode(
            items,
            wants_usage,
            choices,
            self.sink,
            recorder,
        ))
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
        // A replay gives every choice its role.
        event_stream(sse::encode(
            items.boxed(),
            wants_usage,
            1,
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

/// What one successful try produced, before it is turned into a response.
enum Attempted {
    /// The built-in model answers; the lease keeps it counted as busy while it does.
    Mock(MockBackend, Lease),
    /// Boxed: an answer (its usage's maps) is several times the size of the other variants.
    Whole(Box<ChatAnswer>),
    /// A stream whose first item has arrived; the lease lives inside it until it ends.
    Stream(BoxStream<'static, Result<StreamItem, ApiError>>),
}

/// One try on one target: sent, and waited on until its first token (its whole answer when not
/// streamed), within `first_token`. The lease's breaker hears how it went.
async fn attempt(
    client: &upstream::Client,
    target: &Target,
    mut lease: Lease,
    request: &ChatRequest,
    timeouts: &TimeoutsConfig,
    deadline: Instant,
) -> Result<Attempted, Failure> {
    let http = match &target.upstream.backend {
        Backend::Mock(mock) if mock.injects_failure() => {
            let failure = Failure::from(ApiError::bad_gateway(format!(
                "provider '{}' failed (injected by error_rate)",
                target.upstream.name
            )));
            lease.fail(&failure.error.message);
            return Err(failure);
        }
        Backend::Mock(mock) => {
            lease.succeed();
            return Ok(Attempted::Mock(*mock, lease));
        }
        Backend::Http(http) => http,
    };
    let name = target.upstream.name.as_str();
    let first_token = timeouts.first_token.map(|t| t.0);
    let until = first_token.map_or(deadline, |t| (Instant::now() + t).min(deadline));
    let pace = Pace {
        idle: timeouts.idle.map(|t| t.0),
        deadline,
    };
    let endpoint = &lease.instance().endpoint;
    let outgoing = http
        .adapter
        .chat_request(endpoint, request)
        .map_err(ApiError::from);
    let tried = tokio::time::timeout_at(until.into(), async {
        let response = upstream::send(client, name, http, outgoing?, deadline).await?;
        // Some OpenAI-compatible servers ignore `stream: true` and answer whole: the answer is
        // replayed to the client as the stream it asked for.
        let whole = !request.is_stream() || is_json(response.headers());
        if whole {
            let bytes = upstream::read_body(client, name, response).await?;
            // A malformed answer's error quotes it, and it may echo a credential back.
            let mut answer = http
                .adapter
                .chat_response(bytes)
                .map_err(|e| http.scrub(e.into()))?;
            // Answers that name no model (Bedrock's) are labelled with the model asked for.
            if let ChatAnswer::Translated(completion) = &mut answer
                && completion.model.is_empty()
            {
                completion.model.clone_from(&request.model);
            }
            if request.is_stream() {
                return replayed(answer).map(Attempted::Stream);
            }
            return Ok(Attempted::Whole(Box::new(answer)));
        }
        let mut items = upstream_items(name, http, response, pace, &request.model);
        // Signs of life before the first token neither answer nor reach the client:
        // `first_token` still decides whether this try failed.
        let mut first = items.next().await;
        while let Some(Ok(StreamItem::KeepAlive)) = first {
            first = items.next().await;
        }
        match first {
            Some(Ok(first)) => Ok(Attempted::Stream(
                futures_util::stream::once(async { Ok(first) })
                    .chain(items)
                    .boxed(),
            )),
            Some(Err(error)) => Err(Failure::from(error)),
            None => Err(Failure::from(ApiError::bad_gateway(format!(
                "provider '{name}' closed the stream before it started"
            )))),
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(Failure::timeout(format!(
            "provider '{name}' sent no first token in time"
        )))
    });
    match tried {
        Ok(Attempted::Stream(items)) => {
            lease.succeed();
            // The lease rides along: the instance counts as busy until the stream ends.
            Ok(Attempted::Stream(
                items
                    .map(move |item| {
                        let _held = &lease;
                        item
                    })
                    .boxed(),
            ))
        }
        Ok(other) => {
            lease.succeed();
            Ok(other)
        }
        // The client's own mistake says nothing about the instance's health.
        Err(failure) if !failure.retryable => {
            lease.succeed();
            Err(failure)
        }
        Err(failure) => {
            lease.fail(&failure.error.message);
            Err(failure)
        }
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
        ChatAnswer::Translated(completion) => *completion,
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

/// Turns a whole upstream answer into the response, accounting for and caching it.
async fn whole_answer(answer: ChatAnswer, mut answering: Answering) -> Response {
    match answer {
        ChatAnswer::Translated(completion) => answering.finish(*completion, None).await,
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
    }
}

/// How long a stream may stay silent, and when it must be over.
#[derive(Debug, Clone, Copy)]
struct Pace {
    idle: Option<Duration>,
    deadline: Instant,
}

/// A provider's streamed answer as canonical items: framed by the provider's stream format,
/// decoded by its adapter, scrubbed of its credentials. The decoder hears of the end of the bytes
/// too, so formats without a `[DONE]` can finish. Chunks that name no model (Bedrock's) are
/// labelled with the upstream model asked for.
fn upstream_items(
    provider: &str,
    backend: &HttpBackend,
    response: upstream::Response,
    pace: Pace,
    model: &str,
) -> impl Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static {
    let decoder = backend.adapter.chat_stream();
    let secrets = backend.secrets.clone();
    let model = model.to_owned();
    let provider: Arc<str> = provider.into();
    let events = match backend.adapter.stream_format() {
        StreamFormat::Sse => sse_events(Arc::clone(&provider), response),
        StreamFormat::AwsEventStream => aws_events(Arc::clone(&provider), response),
    };
    let steps = futures_util::stream::unfold(Some((events, decoder, false)), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut events, mut decoder, started) = state?;
            // Until the first item, `first_token` (the caller's timeout) is the limit: a model
            // that sends its headers and then thinks is not a stalled stream.
            let until = match pace.idle {
                Some(idle) if started => (Instant::now() + idle).min(pace.deadline),
                _ => pace.deadline,
            };
            // Reads that complete no event (half an event, bytes dribbled) do not end the
            // silence; a comment does, as the upstream's way of saying it is alive.
            loop {
                let Ok(batch) = tokio::time::timeout_at(until.into(), events.next()).await else {
                    // Dropping the events drops the upstream response: the connection is released.
                    let stalled = ApiError::gateway_timeout(format!(
                        "the stream from provider '{provider}' stalled"
                    ));
                    return Some((vec![Err(stalled)], None));
                };
                let Some(batch) = batch else {
                    let items = match decoder.finish() {
                        Ok(items) => items.into_iter().map(Ok).collect(),
                        Err(error) => vec![Err(error.into())],
                    };
                    return Some((items, None));
                };
                if batch.is_empty() {
                    continue;
                }
                let (items, ok) = decode_batch(decoder.as_mut(), batch);
                let started = started
                    || items
                        .iter()
                        .any(|item| !matches!(item, Ok(StreamItem::KeepAlive)));
                return Some((items, ok.then_some((events, decoder, started))));
            }
        }
    });
    steps
        .flat_map(move |items| {
            let items: Vec<_> = items
                .into_iter()
                .map(|item| match item {
                    Ok(item) => Ok(name_model(item, &model)),
                    Err(error) => Err(upstream::redact(error, &secrets)),
                })
                .collect();
            futures_util::stream::iter(items)
        })
        .boxed()
}

/// The items of the events one read completed, in order; `false` once one failed, which ends
/// the stream after the items before it.
fn decode_batch(
    decoder: &mut dyn ChunkDecoder,
    batch: Vec<Result<UpstreamEvent, ApiError>>,
) -> (Vec<Result<StreamItem, ApiError>>, bool) {
    let mut items = Vec::with_capacity(batch.len());
    for event in batch {
        if matches!(&event, Ok(event) if event.is_keep_alive()) {
            items.push(Ok(StreamItem::KeepAlive));
            continue;
        }
        match event.and_then(|event| decode_event(decoder, &event)) {
            Ok(decoded) => items.extend(decoded.into_iter().map(Ok)),
            Err(error) => {
                items.push(Err(error));
                return (items, false);
            }
        }
    }
    (items, true)
}

/// One framed upstream event.
struct UpstreamEvent {
    name: Cow<'static, str>,
    data: String,
    /// An AWS exception or error message: the stream fails whatever the decoder makes of it.
    fatal: bool,
}

impl UpstreamEvent {
    /// What a read that brought only SSE comments becomes: a sign of life, not an event.
    const KEEP_ALIVE: &'static str = ":keep-alive";

    fn keep_alive() -> Self {
        UpstreamEvent {
            name: Cow::Borrowed(Self::KEEP_ALIVE),
            data: String::new(),
            fatal: false,
        }
    }

    fn is_keep_alive(&self) -> bool {
        self.name == Self::KEEP_ALIVE
    }
}

/// The events each read of the body completed, one batch per read.
type Events = futures_util::stream::BoxStream<'static, Vec<Result<UpstreamEvent, ApiError>>>;

fn decode_event(
    decoder: &mut dyn ChunkDecoder,
    event: &UpstreamEvent,
) -> Result<Vec<StreamItem>, ApiError> {
    let items = decoder.decode(&event.name, &event.data)?;
    if event.fatal {
        return Err(ApiError::bad_gateway(format!(
            "the provider's stream failed: {}",
            event.name
        )));
    }
    Ok(items)
}

fn name_model(item: StreamItem, model: &str) -> StreamItem {
    match item {
        StreamItem::Chunk(mut chunk) if chunk.model.is_empty() => {
            chunk.model = model.to_owned();
            StreamItem::Chunk(chunk)
        }
        other => other,
    }
}

/// Server-sent events split as bytes arrive; the events of one read are handed on together.
fn sse_events(provider: Arc<str>, response: upstream::Response) -> Events {
    let start = (response.bytes_stream(), SseSplitter::new());
    futures_util::stream::unfold(Some(start), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut bytes, mut splitter) = state?;
            let mut events = Vec::new();
            let (events, next) = match bytes.next().await {
                Some(Ok(piece)) => {
                    // Events completed before a bad line still reach the client, then the error.
                    let fed = splitter.feed(&piece, &mut events);
                    let alive = splitter.take_comments() > 0 && events.is_empty();
                    let mut items: Vec<_> = events.into_iter().map(sse_event).collect();
                    if alive {
                        items.push(Ok(UpstreamEvent::keep_alive()));
                    }
                    match fed {
                        Ok(()) => (items, true),
                        Err(error) => {
                            items.push(Err(invalid_stream(&provider, &error)));
                            (items, false)
                        }
                    }
                }
                Some(Err(error)) => (vec![Err(broken(&provider, &error))], false),
                None => (Vec::new(), false),
            };
            let next = next.then_some((bytes, splitter));
            Some((events, next))
        }
    })
    .boxed()
}

fn sse_event(event: SseEvent) -> Result<UpstreamEvent, ApiError> {
    Ok(UpstreamEvent {
        name: event.event,
        data: event.data,
        fatal: false,
    })
}

/// AWS event stream frames split as bytes arrive; a stream cut inside a frame is an error.
fn aws_events(provider: Arc<str>, response: upstream::Response) -> Events {
    let start = (response.bytes_stream(), FrameSplitter::new());
    futures_util::stream::unfold(Some(start), move |state| {
        let provider = Arc::clone(&provider);
        async move {
            let (mut bytes, mut splitter) = state?;
            let (events, next) = match bytes.next().await {
                Some(Ok(piece)) => match splitter.feed(&piece) {
                    Ok(messages) => (messages.into_iter().map(aws_event).collect(), true),
                    Err(error) => (vec![Err(ApiError::from(error))], false),
                },
                Some(Err(error)) => (vec![Err(broken(&provider, &error))], false),
                None => (
                    splitter
                        .finish()
                        .err()
                        .map(|e| Err(e.into()))
                        .into_iter()
                        .collect(),
                    false,
                ),
            };
            let next = next.then_some((bytes, splitter));
            Some((events, next))
        }
    })
    .boxed()
}

fn aws_event(message: EventMessage) -> Result<UpstreamEvent, ApiError> {
    let data = String::from_utf8(message.payload.to_vec()).map_err(|_| {
        ApiError::bad_gateway("the provider sent an event whose payload is not UTF-8")
    })?;
    Ok(UpstreamEvent {
        fatal: message.kind != MessageKind::Event,
        name: Cow::Owned(message.name),
        data,
    })
}

fn broken(provider: &str, error: &upstream::TransportError) -> ApiError {
    match error {
        // The request's `total` ran out while the stream was still going.
        upstream::TransportError::Timeout => ApiError::gateway_timeout(format!(
            "the stream from provider '{provider}' ran past the request's deadline"
        )),
        _ => ApiError::bad_gateway(format!(
            "the stream from provider '{provider}' broke: {error}"
        )),
    }
}

fn invalid_stream(provider: &str, error: &impl std::fmt::Display) -> ApiError {
    ApiError::bad_gateway(format!(
        "provider '{provider}' sent an invalid stream: {error}"
    ))
}

async fn mock_answer(
    mock: MockBackend,
    lease: Lease,
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
        .chain(futures_util::stream::once(async { Ok(StreamItem::Done) }))
        .map(move |item| {
            let _held = &lease;
            item
        });
    answering.stream(items.boxed(), wants_usage, request.n.unwrap_or(1))
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
