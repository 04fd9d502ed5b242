//! `/admin`: operator endpoints, guarded by `server.admin_key` (absent: the admin API is off).
//!
//! Client keys never open these; only the admin key does.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use crate::auth;
use crate::error::ApiError;

/// Refuses the request unless it carries the admin key.
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &state.admin_key {
        None => Err(ApiError::forbidden(
            "The admin API is disabled: set server.admin_key to enable it.",
        )),
        Some(digest) if auth::is_admin(headers, digest) => Ok(()),
        Some(_) => Err(ApiError::invalid_api_key()),
    }
}

/// `DELETE /admin/cache`: empties the response cache.
pub async fn clear_cache(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&state, &headers)?;
    let cache = state
        .cache
        .as_ref()
        .ok_or_else(|| ApiError::not_found("The response cache is not enabled."))?;
    cache.clear().await;
    Ok((StatusCode::OK, Json(json!({"cleared": true}))))
}

/// `GET /admin/usage`: per key and per model, requests, tokens and cost, and what is left of
/// each limit.
pub async fn usage(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    let keys: Vec<Value> = state
        .keys
        .callers()
        .iter()
        .filter_map(|caller| caller.quota.as_ref().map(|q| q.report()))
        .collect();
    Ok(Json(json!({"keys": keys})))
}
