//! The HTTP side of `/mcp`: every request authenticated with the virtual keys before rmcp sees
//! it, its body read under the gateway's limits, and each session bound to the key that opened it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::mcp_edge::{self, Asked};
use crate::error::ApiError;
use crate::mcp;
use crate::quota::Door;

/// Authenticates every `/mcp` request with the virtual keys (401 in OpenAI's shape otherwise)
/// and hands the caller on in the request's extensions. A request naming a session another
/// key opened is answered as if the session did not exist.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Every MCP request counts against the key's request rate and in-flight cap.
    let (caller, admission) = match super::admitted(&state, request.headers(), Door::Other).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            return super::oauth::challenged(&state, request.headers(), "/mcp", *refused);
        }
    };
    // A 2026-07-28 request names its method in `Mcp-Method` and opens no session. Whatever
    // else a request carries, a session id in it is checked against the key that opened that
    // session: rmcp may still route the request to the session.
    let stateless = request.headers().contains_key(&mcp::MCP_METHOD);
    let session = request
        .headers()
        .get(&mcp::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session
        && owner(&state, id)
            .await
            .is_some_and(|owner| owner != caller.name)
    {
        return ApiError::not_found("Session not found").into_response();
    }
    let method = request.method().clone();
    // A session-era POST without a session is an `initialize`: it takes one of the key's
    // session slots before rmcp creates anything.
    let slot = if session.is_none() && !stateless && method == Method::POST {
        match state.mcp_sessions.reserve(caller.name.clone()).await {
            Ok(slot) => Some(slot),
            Err(full) => return too_many_sessions(&full).into_response(),
        }
    } else {
        None
    };
    request.extensions_mut().insert(caller.clone());
    host_from_authority(&mut request);
    let (request, asked) = match read_message(&state, request).await {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let asked = match (asked, &session) {
        (Asked::Task(id, method, params), Some(session)) if !stateless => {
            let task = (id, method, params);
            match mcp_edge::answer_task(&state, &caller, session, task).await {
                Some(answer) => return admission.hold_until_sent(answer),
                None => Asked::Other,
            }
        }
        (asked, _) => asked,
    };
    let response = as_json_rpc_error(next.run(request).await).await;
    let mut response = mcp_edge::completed(&state, (&asked, stateless), response).await;
    let deleting = method == Method::DELETE;
    if deleting && response.status() == StatusCode::ACCEPTED {
        // rmcp answers a session's end 202; the MCP SDKs accept 200 or 204 and warn on anything
        // else, at every session close.
        *response.status_mut() = StatusCode::OK;
    }
    let created = response
        .headers()
        .get(&mcp::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let (Some(slot), Some(id)) = (slot, created) {
        // Before the client hears of the session: its next request may reach another replica.
        if let Some(shared) = &state.shared_sessions
            && let Err(error) = shared.set_owner(&id, caller.name.as_deref()).await
        {
            tracing::warn!(%error, "MCP session owner not shared: other replicas will refuse it");
        }
        slot.bind(id).await;
    }
    if let Some(id) = &session
        && deleting
        && response.status().is_success()
    {
        state.mcp_sessions.forget(id);
        if let Some(shared) = &state.shared_sessions {
            let _ = shared.forget(id).await;
        }
    }
    // A session's GET stream may stay open for hours: it counts once against the rate, and
    // its in-flight slot is freed as soon as the stream starts.
    if method == Method::GET {
        admission.release_on_answer(response)
    } else {
        admission.hold_until_sent(response)
    }
}

/// The key that opened session `id`, as this replica knows it or, failing that, as the
/// replicas share it; `None` for a session nobody knows (rmcp answers those 404).
async fn owner(state: &AppState, id: &str) -> Option<Option<String>> {
    if let Some(owner) = state.mcp_sessions.owner_of(id) {
        return Some(owner);
    }
    let shared = state.shared_sessions.as_ref()?;
    shared.owner(id).await.ok().flatten()
}

/// HTTP/2 carries the host as the `:authority` of the URI, not as a `Host` header, and rmcp
/// refuses a request without one: h2c clients would get 400 for every message.
fn host_from_authority(request: &mut Request) {
    if !request.headers().contains_key(header::HOST)
        && let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, value);
    }
}

/// rmcp answers the HTTP errors it finds itself (406, 415, a missing `Host`...) in plain text,
/// mostly with no content type; they become JSON-RPC errors without an id, as the MCP SDKs' own
/// servers send them.
async fn as_json_rpc_error(response: Response) -> Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    let status = response.status();
    if !plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // rmcp's messages are one short line.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let code = if status.is_client_error() {
        -32600
    } else {
        -32603
    };
    let message = String::from_utf8_lossy(&text);
    let error = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": code, "message": message.trim()},
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(error.to_string()))
}

/// rmcp reads a message whole, with no limit of size or time: read it here under the gateway's,
/// so that a slow or huge body gets 408 or 413 in the gateway's shape; and what it asks.
async fn read_message(state: &AppState, request: Request) -> Result<(Request, Asked), ApiError> {
    if request.method() != Method::POST {
        return Ok((request, Asked::Other));
    }
    let (parts, body) = request.into_parts();
    let bytes = state.bodies.read(body).await?;
    let asked = mcp_edge::asked(&bytes);
    Ok((
        Request::from_parts(parts, axum::body::Body::from(bytes)),
        asked,
    ))
}

fn too_many_sessions(full: &mcp::TooManySessions) -> ApiError {
    ApiError::rate_limited(format!(
        "This API key holds {} open MCP sessions, the most mcp.max_sessions_per_key allows. \
         End one (DELETE /mcp) or let one close after mcp.session_idle without messages.",
        full.limit
    ))
}
