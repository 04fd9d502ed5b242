//! `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`: OpenAI's Responses API on the
//! chat request path, with the responses a client stores kept for its key alone.
//!
//! `previous_response_id` continues the stored conversation whatever provider answered it, so a
//! multi-turn exchange works with any provider and from any replica.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use switchboard_providers::responses::{self, Echo, ResponsesRequest};
use switchboard_providers::{Native, NativeFormat};

use super::chat;
use super::path::Segments;
use super::surface::{ResponsesJob, Surface};
use super::{AppState, Served, admitted, body, model_endpoint};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::quota::Door;
use crate::stored_responses::{Keep, StoreError};
use crate::tokens;

/// How many of `server.max_body` a stored conversation may hold, its history and this request
/// together: past it, a chain of `previous_response_id`s would grow one stored file (and every
/// read of it) without end.
const MAX_CONVERSATION_BODIES: u64 = 4;

/// Names the built-in tools left out of a request answered by a provider that cannot run them.
static DROPPED_TOOLS: HeaderName = HeaderName::from_static("x-switchboard-dropped-tools");

/// `POST /v1/responses`.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let answer = async |caller: &Caller, headers: &HeaderMap, body: Body, served: &mut Served| {
        answer(&state, caller, headers, body, served).await
    };
    Box::pin(model_endpoint(&state, "responses", request, answer)).await
}

/// The key's name, as responses are stored under it; empty on an open gateway.
fn owner(caller: &Caller) -> String {
    caller.name.clone().unwrap_or_default()
}

fn unavailable(error: StoreError) -> ApiError {
    tracing::warn!(%error, "stored responses unavailable");
    ApiError::service_unavailable(format!("stored responses are unavailable: {error}"))
}

async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let raw = state.bodies.read(body).await?;
    let request: ResponsesRequest = body::parse(&raw)?;
    let owner = owner(caller);
    // The provider holding the response continued, when one wrote it from the client's body:
    // outer `None` when nothing is continued, inner when the gateway wrote it.
    let mut holder = None;
    let history = match &request.previous_response_id {
        None => Vec::new(),
        Some(id) => {
            let stored = state.responses.get(id, &owner).await.map_err(unavailable)?;
            let Some(stored) = stored else {
                let mut error = ApiError::invalid_request(
                    format!("Previous response with id '{id}' not found."),
                    Some("previous_response_id".into()),
                );
                error.code = Some("previous_response_not_found".into());
                return Err(error);
            };
            let bound = state.bodies.max.saturating_mul(MAX_CONVERSATION_BODIES);
            if request.stores() && (stored.size + raw.len()) as u64 > bound {
                return Err(ApiError::invalid_request(
                    format!(
                        "The conversation would be over {bound} bytes to store (4 times \
                         server.max_body): continue it with store: false, sending its items \
                         yourself."
                    ),
                    Some("previous_response_id".into()),
                ));
            }
            holder = Some(stored.upstream);
            stored.conversation
        }
    };
    let mut translated = responses::translate(&request, history)?;
    translated.request.native = native_body(&raw, holder, translated.forced_builtin.clone())?;
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let echo = Echo::new(id, crate::clock::unix_now(), &request);
    let keep = request.stores().then(|| {
        let conversation = translated.request.messages[translated.conversation_from..].to_vec();
        Keep::new(state.responses.clone(), owner, conversation)
    });
    let recount = move || {
        let prompt = |r: &ResponsesRequest| responses::translate(r, Vec::new()).ok();
        body::parse::<ResponsesRequest>(&raw)
            .ok()
            .and_then(|r| prompt(&r))
            .map_or(0, |t| tokens::prompt(&t.request))
    };
    let surface = Surface::Responses(Box::new(ResponsesJob { echo, keep }));
    let mut response = chat::serve(
        state,
        caller,
        headers,
        translated.request,
        surface,
        recount,
        served,
    )
    .await?;
    // A provider sent the body as written dropped nothing.
    let dropped = translated.dropped_tools;
    if !dropped.is_empty()
        && !served.native
        && let Ok(value) = HeaderValue::from_str(&dropped.join(","))
    {
        response.headers_mut().insert(DROPPED_TOOLS.clone(), value);
    }
    Ok(response)
}

/// The client's body, for a provider that takes it as written. `holder` is who wrote the
/// response it continues, if it continues one: a body naming a response the gateway wrote
/// (`Some(None)`) means nothing to any provider, so the conversation goes translated, and a
/// `tool_choice` forcing a built-in tool cannot be honoured.
fn native_body(
    raw: &Bytes,
    holder: Option<Option<String>>,
    forced_tool: Option<String>,
) -> Result<Option<Arc<Native>>, ApiError> {
    let holder = match holder {
        Some(None) => {
            return match forced_tool {
                None => Ok(None),
                Some(tool) => Err(ApiError::invalid_request(
                    format!(
                        "tool_choice forces the built-in tool {tool:?}, but previous_response_id \
                         names a response no provider that runs it wrote"
                    ),
                    Some("tool_choice".into()),
                )),
            };
        }
        Some(Some(provider)) => Some(provider),
        None => None,
    };
    Ok(Some(Arc::new(Native {
        holder,
        forced_tool,
        ..Native::new(NativeFormat::OpenAiResponses, raw.clone())
    })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Response with id '{id}' not found."))
}

/// `GET /v1/responses/{id}`: a response the caller's key stored.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Segments(id): Segments<String>,
    headers: HeaderMap,
) -> Response {
    let (caller, admission) = match admitted(&state, &headers, Door::Other).await {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let found = state.responses.get(&id, &owner(&caller)).await;
    let response = match found {
        Ok(Some(stored)) => chat::json_response(&stored.response),
        Ok(None) => not_found(&id).into_response(),
        Err(error) => unavailable(error).into_response(),
    };
    admission.hold_until_sent(response)
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Segments(id): Segments<String>,
    headers: HeaderMap,
) -> Response {
    let (caller, admission) = match admitted(&state, &headers, Door::Other).await {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let response = match state.responses.delete(&id, &owner(&caller)).await {
        Ok(true) => chat::json_response(&json!({"id": id, "object": "response", "deleted": true})),
        Ok(false) => not_found(&id).into_response(),
        Err(error) => unavailable(error).into_response(),
    };
    admission.hold_until_sent(response)
}
