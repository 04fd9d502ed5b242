//! The HTTP side of `/mcp`: every request authenticated with the virtual keys before rmcp sees
//! it, its body read under the gateway's limits, and each session bound to the key that opened it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::mcp;

/// Authenticates every `/mcp` request with the virtual keys (401 in OpenAI's shape otherwise)
/// and hands the caller on in the request's extensions. A request naming a session another
/// key opened is answered as if the session did not exist.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match state.keys.authenticate(request.headers()) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
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
        && state
            .mcp_sessions
            .owner_of(id)
            .is_some_and(|owner| owner != caller.name)
    {
        return ApiError::not_found("Session not found").into_response();
    }
    let deleting = request.method() == Method::DELETE;
    let owner = caller.name.clone();
    request.extensions_mut().insert(caller);
    // rmcp reads a message whole, with no limit of size or time: read it here under the
    // gateway's, so that a slow or huge body gets 408 or 413 in the gateway's shape.
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        match state.bodies.read(body).await {
            Ok(bytes) => request = Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(error) => return error.into_response(),
        }
    }
    let mut response = next.run(request).await;
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
    match (&session, created) {
        (None, Some(id)) if !stateless => state.mcp_sessions.record(id, owner).await,
        (Some(id), _) if deleting && response.status().is_success() => {
            state.mcp_sessions.forget(id);
        }
        _ => {}
    }
    response
}
