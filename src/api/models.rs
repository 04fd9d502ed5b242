//! `GET /v1/models` and `GET /v1/models/{id}`: the models a key may use, in OpenAI's shape.
//!
//! A model outside the key's globs is invisible (404), as OpenAI hides models an account lacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::AppState;
use super::path::Segments;
use crate::error::ApiError;

#[derive(Serialize)]
pub struct Model {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: String,
}

#[derive(Serialize)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

fn model(state: &AppState, id: &str) -> Option<Model> {
    let route = state.routes.resolve(id)?;
    let owned_by = route
        .targets
        .first()
        .map_or_else(|| "switchboard".to_owned(), |t| t.upstream.name.clone());
    Some(Model {
        id: id.to_owned(),
        object: "model",
        created: state.started,
        owned_by,
    })
}

/// `GET /v1/models`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    let caller = state.keys.authenticate(&headers).await?;
    let data = state
        .routes
        .names()
        .filter(|name| caller.may_use(name))
        .filter(|name| !super::catalog::is_retired(&state, name))
        .filter_map(|name| model(&state, name))
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

/// `GET /v1/models/{id}`; ids may contain `/` (`provider/model`).
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Segments(id): Segments<String>,
) -> Result<Json<Model>, ApiError> {
    let caller = state.keys.authenticate(&headers).await?;
    if !caller.may_use(&id) {
        return Err(ApiError::model_not_found(&id));
    }
    super::catalog::refuse_retired(&state, &id)?;
    model(&state, &id)
        .map(Json)
        .ok_or_else(|| ApiError::model_not_found(&id))
}
