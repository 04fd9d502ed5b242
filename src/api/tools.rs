//! `/admin/tools`: services register, renew, list and remove MCP HTTP tools at run time, each
//! alive for the `ttl` of its last registration. The admin key, or a key with the
//! `tools:register` grant, which names tools only under its `tools_prefix` and changes only the
//! tools it registered.
//!
//! The body is an `mcp.tools` entry as JSON plus `ttl`; it is checked exactly as YAML is, and
//! every error names the field it is about.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::AppState;
use super::admin::{Actor, admin_body, authorize};
use super::path::Segments;
use crate::config::{Grant, HttpToolConfig, Span};
use crate::error::ApiError;
use crate::mcp::{RegisterError, Registered};

/// `POST /admin/tools`: 201 for a new tool, 200 for a renewal (which also replaces it).
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (actor, body) = admin_body(&state, &headers, Grant::ToolsRegister, body).await?;
    let (tool, ttl, entry) = parse(&body)?;
    if let Actor::Key(caller) = &actor {
        let prefix = caller.tools_prefix.as_deref().unwrap_or_default();
        if !tool.name.starts_with(prefix) {
            return Err(ApiError::forbidden(format!(
                "The key '{}' registers tools named '{prefix}…' only; '{}' is not.",
                actor.owner().unwrap_or_default(),
                tool.name
            )));
        }
    }
    let owner = actor.owner();
    // A server offering its names unchanged owns whatever it lists now.
    if let Some(server) = state.mcp_shared.server_offering(&tool.name) {
        return Err(refusal(RegisterError::Reserved(format!(
            "'{}' is a tool of the MCP server '{server}'; a registered tool may not shadow it.",
            tool.name
        ))));
    }
    // Checked here first, so Redis never holds a registration every replica would refuse.
    state
        .tool_registry
        .check(&tool, ttl.0, owner)
        .map_err(refusal)?;
    // With Redis, whether this renewed a live entry is Redis's to say: this replica's poll may
    // have applied the write before the line below does.
    let shared_outcome = match &state.registrations {
        Some(shared) => {
            let entry = crate::mcp::shared_entry(owner, &entry);
            let renewed = shared
                .tools
                .put(&tool.name, &entry, ttl.0)
                .await
                .map_err(|failure| {
                    ApiError::state_unavailable(format!(
                        "Registrations are shared through Redis, which cannot be reached: {failure}"
                    ))
                })?;
            Some(if renewed {
                Registered::Renewed
            } else {
                Registered::Added
            })
        }
        None => None,
    };
    let local = state
        .tool_registry
        .register(&tool, ttl.0, owner)
        .map_err(refusal)?;
    let outcome = shared_outcome.unwrap_or(local);
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

/// `GET /admin/tools`: every registered tool (a key's own, for a key) with its TTL, what is left
/// of it and its owner. Header values are secrets and are never shown.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let actor = authorize(&state, &headers, &[Grant::ToolsRegister])?;
    let tools: Vec<Value> = state
        .tool_registry
        .list()
        .into_iter()
        .filter(|entry| matches!(actor, Actor::Admin) || entry.owner.as_deref() == actor.owner())
        .map(|entry| {
            json!({
                "name": entry.tool.name,
                "title": entry.tool.title,
                "description": entry.tool.description,
                "method": entry.method,
                "url": entry.url,
                "ttl_ms": entry.ttl.as_millis() as u64,
                "expires_in_ms": entry.remaining.as_millis() as u64,
                "owner": entry.owner,
            })
        })
        .collect();
    Ok(Json(json!({"tools": tools})))
}

/// `DELETE /admin/tools/{name}`: removes a registered tool at once (a key: one it registered).
pub async fn remove(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(name): Segments<String>,
) -> Result<Json<Value>, ApiError> {
    let actor = authorize(&state, &headers, &[Grant::ToolsRegister])?;
    state
        .tool_registry
        .may_change(&name, actor.owner())
        .map_err(refusal)?;
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
        RegisterError::NotYours(message) => ApiError::forbidden(message),
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
