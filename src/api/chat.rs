//! `POST /v1/chat/completions`: authenticate, parse, route, then answer from the mock or through
//! a provider's adapter, streamed or not.
//!
//! Each outcome is counted once in the metrics, labelled with the route that served it.

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
use switchboard_providers::mock::MockAnswer;
use switchboard_providers::{ChatAnswer, Native, StreamItem};

use super::surface::Surface;
use super::{AppState, Served, body, model_endpoint, route_deadline, route_for, with_fallbacks};
use crate::auth::Caller;
use crate::cache::{CachedAnswer, Fill, Lookup};
use crate::charge::{self, Charge};
use crate::config::TimeoutsConfig;
use crate::error::ApiError;
use crate::resilience::{self, Plan};
use crate::routing::Target;
use crate::sse::{self, Recorder, UsageSink};
use crate::tokens;
use crate::upstream::exchange::{self, ChatReply};
use crate::upstream::instances::InstanceLease;
use crate::upstream::{self, Backend, Failure, MockDelays, Pace};

/// Names the provider and upstream model that answered, for debugging routes.
static TARGET_HEADER: HeaderName = HeaderName::from_static("x-switchboard-target");

/// `hit`, `miss` or `bypass`: what the response cache did.
static CACHE_HEADER: HeaderName = HeaderName::from_static("x-switchboard-cache");

/// The handler.
pub async fn completions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let answer = async |caller: &Caller, headers: &HeaderMap, body: Body, served: &mut Served| {
        answer(&state, caller, headers, body, served).await
    };
    // Boxed: axum moves a handler's future whole as it wraps it in its layers, and this one is
    // several KB (bench/README.md); moving a box is a pointer.
    Box::pin(model_endpoint(&state, "chat", request, answer)).await
}

/// OpenAI's bound on `n`; beyond it a request could ask for answers without end.
const MAX_CHOICES: u32 = 128;

pub(super) async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let raw = state.bodies.read(body).await?;
    let request: ChatRequest = body::parse(&raw)?;
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
    // The client's own body, parsed again only in the rare case it is needed.
    let recount =
        move || body::parse::<ChatRequest>(&raw).map_or(0, |request| tokens::prompt(&request));
    serve(
        state,
        caller,
        headers,
        request,
        Surface::Chat,
        recount,
        served,
    )
    .await
}

/// Everything after parsing, shared by every surface: the route, the cache, the reservation, the
/// tries with their retries and fallbacks, and the answer in the surface's shape. `recount`
/// counts the prompt when the provider reports no usage.
pub(super) async fn serve(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    mut request: ChatRequest,
    surface: Surface,
    recount: impl FnOnce() -> u64 + Send + 'static,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let route = route_for(state, caller, &request.model).await?;
    crate::telemetry::traces::capture("gen_ai.input.messages", || {
        serde_json::to_string(&request.messages).unwrap_or_default()
    });
    let lookup = match &state.cache {
        Some(cache) => Some(
            cache
                .lookup(
                    caller.name.as_deref(),
                    &route.cache_identity,
                    &mut request,
                    headers,
                )
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
            let headers = match &caller.quota {
                Some(quota) => match quota.record_hit(&answer.target).await {
                    Ok(headers) => Some(headers),
                    Err(refused) => return Ok(*refused),
                },
                None => None,
            };
            let mut response = cached_answer(&answer, &request, surface).await;
            if let Some(headers) = headers {
                headers.apply(&mut response);
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
    let planned = Charge::plan(caller, &routes, || tokens::prompt(&request), output);
    let streamed = request.is_stream();
    let client = state
        .clients
        .for_connect(route.timeouts.connect.map(|c| c.0));
    let plan = Plan::new(&routes, deadline, &state.metrics);
    let mut tries = ChatTry {
        client,
        native: request.native.clone(),
        request: &mut request,
        timeouts: &route.timeouts,
        deadline,
    };
    let call =
        async { resilience::first_answer!(plan, |target, lease| tries.attempt(target, lease)) };
    let (mut charge, tried) = match charge::reserve_and_call(planned, call).await {
        Ok(both) => both,
        Err(refused) => return Ok(*refused),
    };
    if let Some(charge) = &mut charge {
        charge.count_prompt_if_unreported(recount);
    }
    let token_headers = charge.as_ref().map(|c| c.headers().clone());
    let mut response = match tried {
        Err(error) => {
            drop(charge); // Released before the headers below are read.
            error.into_response()
        }
        Ok((attempted, target)) => {
            served.provider.clone_from(&target.upstream.name);
            // The try that answered left the body in the request only where it was sent.
            served.native = request.native.is_some();
            let answering = Answering {
                sink: UsageSink::new(
                    state.metrics.clone(),
                    &route.label,
                    &target.upstream.name,
                    charge.map(|c| c.retarget(target)),
                ),
                fill,
                target: target.name().to_owned(),
                surface: surface.answered_by(&target.upstream.name, served.native),
                native: served.native,
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
                    answering.stream(items, &request, choices)
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
        Some(quota) if !streamed && token_headers.is_some() => {
            quota.token_headers().or(token_headers)
        }
        _ => token_headers,
    };
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
    surface: Surface,
    /// The provider speaks the client's format: its own events go out.
    native: bool,
}

impl Answering {
    /// Accounts for and caches a whole answer, then sends it.
    /// `json` is the completion's own JSON when the provider wrote it; `native`, the provider's
    /// bytes in the client's format.
    async fn finish(
        mut self,
        response: ChatResponse,
        json: Option<Bytes>,
        native: Option<Bytes>,
    ) -> Response {
        self.sink.record_response(&response);
        // Spend is on record (journaled, with Redis) before the answer goes out.
        self.sink.close();
        let (body, json) = match native {
            // The provider's bytes go out; the completion's JSON is left to the cache to write.
            Some(native) => {
                self.surface.written(&native, &response).await;
                (native, json)
            }
            None => {
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
                (self.surface.whole(&response, &json).await, Some(json))
            }
        };
        if let Some(fill) = self.fill {
            Box::pin(fill.store(response, json, &self.target)).await;
        }
        json_bytes(body)
    }

    /// Streams an answer to `request`, caching it if it completes.
    /// `choices` is the request's `n`.
    fn stream<S>(self, items: S, request: &ChatRequest, choices: u32) -> Response
    where
        S: Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin + 'static,
    {
        let recorder = self.fill.map(|fill| Recorder::new(fill, &self.target));
        let dialect = self.surface.dialect(request, self.native);
        event_stream(sse::encode(
            items,
            request.wants_stream_usage(),
            choices,
            self.sink,
            recorder,
            dialect,
        ))
    }
}

/// Serves a cached answer: the stored JSON, or a replayed stream. Hits cost no tokens.
async fn cached_answer(answer: &CachedAnswer, request: &ChatRequest, surface: Surface) -> Response {
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
            surface.dialect(request, false),
        ))
    } else {
        json_bytes(surface.whole(&answer.response, &answer.json).await)
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
    Mock(MockDelays, InstanceLease),
    /// Boxed: an answer (its usage's maps) is several times the size of the other variants.
    Whole(Box<ChatAnswer>),
    /// A stream whose first item has arrived; the lease lives inside it until it ends.
    Stream(BoxStream<'static, Result<StreamItem, ApiError>>),
}

/// The tries of one chat request; each names its target's upstream model in the request, and
/// leaves the client's own body in it only for a target that takes it as written.
struct ChatTry<'a> {
    client: &'a upstream::Client,
    /// The client's own body, when it spoke another API than chat.
    native: Option<Arc<Native>>,
    request: &'a mut ChatRequest,
    timeouts: &'a TimeoutsConfig,
    deadline: Instant,
}

impl ChatTry<'_> {
    /// One try: sent, and waited on until its first token (its whole answer when not
    /// streamed), within `first_token`. The lease's breaker hears how it went.
    async fn attempt(
        &mut self,
        target: &Target,
        mut lease: InstanceLease,
    ) -> Result<Attempted, Failure> {
        self.request.model.clone_from(&target.model);
        let name = target.upstream.name.as_str();
        self.request.native = self.native.clone().filter(|native| {
            matches!(&target.upstream.backend, Backend::Http(http) if http.adapter.speaks(native.format, &target.model))
                && native.goes_to(name)
        });
        if let (Some(native), None) = (&self.native, &self.request.native)
            && let Some(tool) = &native.forced_tool
        {
            // Not the instance's fault: its breaker hears nothing (the dropped lease abandons).
            return Err(Failure::from_error(ApiError::invalid_request(
                format!(
                    "tool_choice forces the built-in tool {tool:?}, which provider '{name}' cannot \
                     run: only an OpenAI provider with responses_api runs built-in tools"
                ),
                Some("tool_choice".into()),
            )));
        }
        let http = match &target.upstream.backend {
            Backend::Mock(mock) => {
                let outcome = mock.try_once(name);
                lease.settle(&outcome);
                return outcome.map(|()| Attempted::Mock(mock.delays, lease));
            }
            Backend::Http(http) => http,
        };
        let first_token = self.timeouts.first_token.map(|t| t.0);
        let pace = Pace {
            idle: self.timeouts.idle.map(|t| t.0),
            deadline: self.deadline,
        };
        let endpoint = &lease.instance().endpoint;
        let tried = resilience::within(
            resilience::first_token_due(first_token, self.deadline),
            || format!("provider '{name}' sent no first token in time"),
            exchange::chat(self.client, name, http, endpoint, self.request, pace),
        )
        .await;
        lease.settle(&tried);
        Ok(match tried? {
            ChatReply::Whole(answer) => Attempted::Whole(answer),
            // The lease rides along: the instance counts as busy until the stream ends.
            ChatReply::Stream(items) => Attempted::Stream(
                items
                    .map(move |item| {
                        let _held = &lease;
                        item
                    })
                    .boxed(),
            ),
        })
    }
}

/// Turns a whole upstream answer into the response, accounting for and caching it.
async fn whole_answer(answer: ChatAnswer, answering: Answering) -> Response {
    match answer {
        ChatAnswer::Translated(completion) => answering.finish(*completion, None, None).await,
        ChatAnswer::Native { body, response } => {
            answering.finish(*response, None, Some(body)).await
        }
        // Parsing the whole answer is only worth it when the cache will keep it, when its
        // usage is missing and its text must be counted instead, or to translate it.
        ChatAnswer::Verbatim { body, usage } => {
            let needed = answering.fill.is_some() || usage.is_none();
            let translated = !answering.surface.is_chat();
            let parsed = (needed || translated)
                .then(|| serde_json::from_slice::<ChatResponse>(&body))
                .transpose();
            match parsed {
                Ok(Some(completion)) => answering.finish(completion, Some(body), None).await,
                // Dropping `answering` drops its fill: nothing is stored, waiters are released.
                parsed => {
                    let mut answering = answering;
                    answering.sink.record(usage.as_ref());
                    answering.sink.record_verbatim(&body);
                    answering.sink.close();
                    match parsed {
                        Err(e) if translated => {
                            ApiError::from(switchboard_providers::ProviderError::bad_response(e))
                                .into_response()
                        }
                        _ => json_bytes(body),
                    }
                }
            }
        }
    }
}

async fn mock_answer(
    mock: MockDelays,
    lease: InstanceLease,
    mut request: ChatRequest,
    answering: Answering,
) -> Response {
    let answer = MockAnswer::for_request(&request);
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = crate::clock::unix_now();
    if !request.is_stream() {
        let extra_chunks = answer.pieces.len().saturating_sub(1) as u32;
        pause(mock.first_token + mock.per_chunk * extra_chunks).await;
        return answering
            .finish(answer.response(&request, &id, created), None, None)
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
    let choices = request.n.unwrap_or(1);
    request
        .stream_options
        .get_or_insert_with(Default::default)
        .include_usage = Some(wants_usage);
    answering.stream(items.boxed(), &request, choices)
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
