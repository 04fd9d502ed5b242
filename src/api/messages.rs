//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API on the
//! chat request path (keys, quotas, cache, routing, retries, fallbacks, usage), in its own shapes.
//!
//! The client's body rides along with its canonical translation, so an Anthropic target is sent
//! it as written; every error leaves in Anthropic's envelope.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use switchboard_providers::messages::{self, BETA_HEADER, MessagesRequest};
use switchboard_providers::{Native, NativeFormat};

use super::chat;
use super::surface::Surface;
use super::{AppState, Served, body, model_endpoint, route_for};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::tokens;
use crate::upstream::{Backend, exchange};

/// Names the server tools left out of a request answered by a provider that cannot run them.
static DROPPED_TOOLS: HeaderName = HeaderName::from_static("x-switchboard-dropped-tools");

/// An error body read back to be put in Anthropic's shape is never larger than this.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// `POST /v1/messages`.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let answer = async |caller: &Caller, headers: &HeaderMap, body: Body, served: &mut Served| {
        answer(&state, caller, headers, body, served).await
    };
    let response = Box::pin(model_endpoint(&state, "messages", request, answer)).await;
    in_anthropic_shape(response).await
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let count = async |caller: &Caller, headers: &HeaderMap, body: Body, served: &mut Served| {
        count(&state, caller, headers, body, served).await
    };
    let response = Box::pin(model_endpoint(&state, "count_tokens", request, count)).await;
    in_anthropic_shape(response).await
}

/// The client's body, read and translated, with the body itself kept for native targets.
struct Read {
    request: MessagesRequest,
    translated: messages::Translated,
    native: Arc<Native>,
}

async fn read(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    needs_max_tokens: bool,
) -> Result<Read, ApiError> {
    let raw = state.bodies.read(body).await?;
    let request: MessagesRequest = body::parse(&raw)?;
    let translated = messages::translate(&request, needs_max_tokens)?;
    let beta = headers
        .get(BETA_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let native = Arc::new(Native {
        beta,
        ..Native::new(NativeFormat::AnthropicMessages, raw)
    });
    Ok(Read {
        request,
        translated,
        native,
    })
}

async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let Read {
        translated, native, ..
    } = read(state, headers, body, true).await?;
    let mut request = translated.request;
    request.native = Some(native.clone());
    // The client's own body, translated again only in the rare case it is needed.
    let recount = move || prompt_tokens(&native.body);
    let mut response = chat::serve(
        state,
        caller,
        headers,
        request,
        Surface::Messages,
        recount,
        served,
    )
    .await?;
    let dropped = translated.dropped_tools;
    if !dropped.is_empty()
        && !served.native
        && let Ok(value) = HeaderValue::from_str(&dropped.join(","))
    {
        response.headers_mut().insert(DROPPED_TOOLS.clone(), value);
    }
    Ok(response)
}

/// The prompt's tokens by the gateway's count.
fn prompt_tokens(body: &Bytes) -> u64 {
    serde_json::from_slice::<MessagesRequest>(body)
        .ok()
        .and_then(|request| messages::translate(&request, false).ok())
        .map_or(0, |t| tokens::prompt(&t.request))
}

/// Anthropic's `count_tokens` answer.
#[derive(Deserialize, serde::Serialize)]
struct Count {
    input_tokens: u64,
}

/// Exact from the provider when the chosen target counts natively (Anthropic), else counted
/// here with the gateway's tokenizer.
async fn count(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let read = read(state, headers, body, false).await?;
    let route = route_for(state, caller, &read.request.model).await?;
    served.model.clone_from(&route.label);
    if let Some((index, lease)) = route.choose(&[], &[]) {
        let target = &route.targets[index];
        if let Backend::Http(http) = &target.upstream.backend {
            let endpoint = &lease.instance().endpoint;
            if let Some(built) =
                http.adapter
                    .count_tokens_request(endpoint, &read.native, &target.model)
            {
                served.provider.clone_from(&target.upstream.name);
                let client = state
                    .clients
                    .for_connect(route.timeouts.connect.map(|c| c.0));
                let deadline = super::route_deadline(&route);
                let name = &target.upstream.name;
                let answer =
                    exchange::whole(client, name, http, built.map_err(ApiError::from)?, deadline)
                        .await
                        .map_err(|failure| *failure.error)?;
                let counted: Count = serde_json::from_slice(&answer).map_err(|e| {
                    ApiError::from(switchboard_providers::ProviderError::bad_response(e))
                })?;
                return Ok(chat::json_response(&counted));
            }
        }
    }
    served.provider = "gateway".to_owned();
    let input_tokens = tokens::prompt(&read.translated.request);
    Ok(chat::json_response(&Count { input_tokens }))
}

/// A failed answer's OpenAI-shaped body as Anthropic's `{"type":"error","error":{...}}`, with
/// its headers (`retry-after`, rate limits, request id) kept. An overloaded provider answers
/// 529, as Anthropic does.
async fn in_anthropic_shape(response: Response) -> Response {
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: String,
        #[serde(default)]
        code: Option<String>,
    }
    let (message, code) = match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(Envelope { error }) => (error.message, error.code),
        Err(_) => (String::from_utf8_lossy(&bytes).into_owned(), None),
    };
    let kind = messages::error_type(status.as_u16(), code.as_deref());
    if kind == "overloaded_error" {
        parts.status = StatusCode::from_u16(529).unwrap_or(status);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = messages::error_body(kind, &message);
    (parts, body).into_response()
}
