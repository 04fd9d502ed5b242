//! `/admin/tools`: services register, renew, list and remove MCP HTTP tools at run time, each
//! alive for the `ttl` of its last registration. Admin key only.
//!
//! The body is an `mcp.tools` entry as JSON plus `ttl`; it is checked exactly as YAML is, and
//! every error names the field it is about.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::AppState;
use super::admin::{admin_body, require_admin};
use super::path::Segments;
use crate::config::{HttpToolConfig, Span};
use crate::error::ApiError;
use crate::mcp::{RegisterError, Registered};

/// `POST /admin/tools`: 201 for a new tool, 200 for a renewal (which also replaces it).
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = admin_body(&state, &headers, body).await?;
    let (tool, ttl, entry) = parse(&body)?;
    // Checked here first, so Redis never holds a registration every replica would refuse.
    state.tool_registry.check(&tool, ttl.0).map_err(refusal)?;
    if let Some(shared) = &state.registrations {
        shared
            .tools
            .put(&tool.name, &entry, ttl.0)
            .await
            .map_err(|failure| {
                ApiError::state_unavailable(format!(
                    "Registrations are shared through Redis, which cannot be reached: {failure}"
                ))
            })?;
    }
    let outcome = state
        .tool_registry
        .register(&tool, ttl.0)
        .map_err(refusal)?;
    let status = match outcome {
        Registered::Added => StatusCode::CREATED,
        Registered::Renewed => StatusCode::OK,
    };
    let answer = json!({
        "name": tool.name,
        "ttl_ms": ttl.0.as_millis() as u64,
        "renewed": outcome == Registered::Renewed,
    });
    Ok((status, Json(answer)))
}

/// `GET /admin/tools`: every registered tool with its TTL and what is left of it. Header values
/// are secrets and are never shown.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    let tools: Vec<Value> = state
        .tool_registry
        .list()
        .into_iter()
        .map(|entry| {
            json!({
                "name": entry.tool.name,
                "title": entry.tool.title,
                "description": entry.tool.description,
                "method": entry.method,
                "url": entry.url,
                "ttl_ms": entry.ttl.as_millis() as u64,
                "expires_in_ms": entry.remaining.as_millis() as u64,
            })
        })
        .collect();
    Ok(Json(json!({"tools": tools})))
}

/// `DELETE /admin/tools/{name}`: removes a registered tool at once.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(name): Segments<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    let shared = match &state.registrations {
        Some(shared) => shared.tools.remove(&name).await.map_err(|failure| {
            ApiError::state_unavailable(format!(
                "Registrations are shared through Redis, which cannot be reached: {failure}"
            ))
        })?,
        None => false,
    };
    if state.tool_registry.remove(&name) || shared {
        Ok(Json(json!({"name": name, "deleted": true})))
    } else {
        Err(ApiError::not_found(format!(
            "No registered tool named '{name}'."
        )))
    }
}

/// The tool entry, its TTL, and the entry as JSON (what other replicas are given). `ttl` is
/// taken out before the entry is parsed, because the entry refuses unknown fields and
/// `#[serde(flatten)]` would silently accept them.
fn parse(body: &[u8]) -> Result<(HttpToolConfig, Span, String), ApiError> {
    let mut object: Map<String, Value> = super::body::parse(body)?;
    let ttl = object.remove("ttl").ok_or_else(|| {
        ApiError::invalid_request("'ttl' is required, e.g. \"30s\".", Some("ttl".into()))
    })?;
    let ttl: Span = serde_json::from_value(ttl).map_err(|e| {
        ApiError::invalid_request(format!("Invalid value for 'ttl': {e}"), Some("ttl".into()))
    })?;
    let entry = serde_json::to_vec(&object)
        .map_err(|e| ApiError::invalid_request(format!("Invalid request body: {e}"), None))?;
    let tool = super::body::parse(&entry)?;
    Ok((tool, ttl, String::from_utf8_lossy(&entry).into_owned()))
}

fn refusal(error: RegisterError) -> ApiError {
    match error {
        RegisterError::Reserved(message) => ApiError {
            status: StatusCode::CONFLICT,
            kind: "invalid_request_error".into(),
            message,
            param: Some("name".into()),
            code: Some("conflict".into()),
            retry_after: None,
        },
        RegisterError::Invalid(errors) => {
            let param = errors
                .first()
                .map(|e| e.path.clone())
                .filter(|p| !p.is_empty());
            let message = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            ApiError::invalid_request(format!("Invalid tool: {message}"), param)
        }
    }
}
