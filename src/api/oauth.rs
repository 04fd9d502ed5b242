//! The gateway as an OAuth 2.1 protected resource (RFC 9728), when `auth.jwt` is configured:
//! its metadata at `/.well-known/oauth-protected-resource` (and the form suffixed with `/mcp`),
//! and the `WWW-Authenticate` challenge of a 401 that points a client at it, so an MCP client
//! can start its login flow.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::config::JwtConfig;
use crate::error::ApiError;

/// Where the metadata of a resource lives, relative to the gateway's URL.
const METADATA: &str = "/.well-known/oauth-protected-resource";

/// `GET /.well-known/oauth-protected-resource`: the gateway as a whole.
pub async fn metadata(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    described(&state, &headers, "")
}

/// `GET /.well-known/oauth-protected-resource/mcp`: the MCP endpoint.
pub async fn mcp_metadata(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    described(&state, &headers, "/mcp")
}

fn described(state: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let Some(jwt) = state.keys.jwt() else {
        let message = "This gateway accepts no OAuth tokens (auth.jwt is not configured).";
        return ApiError::not_found(message).into_response();
    };
    let config = jwt.config();
    let document = json!({
        "resource": format!("{}{path}", base_url(config, headers)),
        "authorization_servers": [config.issuer],
        "scopes_supported": config.scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard",
    });
    (StatusCode::OK, Json(document)).into_response()
}

/// `response` with the challenge an OAuth client follows, if it refuses a caller (401) of a
/// gateway that takes JWTs; `path` is the endpoint refused (`/mcp` has metadata of its own).
pub fn challenged(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    response: Response,
) -> Response {
    let Some(jwt) = state.keys.jwt() else {
        return response;
    };
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let suffix = if path == "/mcp" { "/mcp" } else { "" };
    let url = format!("{}{METADATA}{suffix}", base_url(jwt.config(), headers));
    let mut challenge = format!("Bearer resource_metadata=\"{url}\"");
    if !jwt.config().scopes.is_empty() {
        challenge.push_str(&format!(", scope=\"{}\"", jwt.config().scopes.join(" ")));
    }
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The gateway's URL as its clients reach it: `auth.jwt.resource`, else from the request's
/// `Host` (or HTTP/2 authority), over plain HTTP.
fn base_url(config: &JwtConfig, headers: &HeaderMap) -> String {
    if let Some(resource) = &config.resource {
        return resource.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    // A Host that is no host name could inject into the challenge header.
    let host = host.filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    format!("http://{}", host.unwrap_or("localhost"))
}
