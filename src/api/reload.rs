//! `POST /admin/reload` and `GET /admin/config`: a reload asked for over HTTP (the same one
//! `SIGHUP` and a change to the file start), and the running config with its secrets masked.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use super::AppState;
use super::admin::authorize;
use crate::config::{ConfigError, Grant};
use crate::error::ApiError;

/// A reload asked for through the API; the reloader answers on `reply`.
pub struct Asked {
    pub reply: oneshot::Sender<Outcome>,
}

/// What a reload did.
pub enum Outcome {
    /// The file is running now, but for the paths that wait for a restart.
    Applied {
        hash: String,
        restart_required: Vec<String>,
    },
    /// The file has problems, each at its YAML path; the running config goes on serving.
    Refused(Vec<ConfigError>),
}

/// `POST /admin/reload` (`reload`): 200 with the new config's hash, or 422 with every problem.
pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &[Grant::Reload])?;
    let unavailable = || ApiError {
        status: StatusCode::CONFLICT,
        kind: "invalid_request_error".into(),
        message: "This gateway was not started from a config file, so there is nothing to reload."
            .into(),
        param: None,
        code: Some("no_config_file".into()),
        retry_after: None,
    };
    let reloads = state.reloads.as_ref().ok_or_else(unavailable)?;
    let (reply, outcome) = oneshot::channel();
    reloads
        .send(Asked { reply })
        .await
        .map_err(|_| unavailable())?;
    match outcome.await.map_err(|_| unavailable())? {
        Outcome::Applied {
            hash,
            restart_required,
        } => Ok(Json(json!({
            "reloaded": true,
            "hash": hash,
            "restart_required": restart_required,
        }))
        .into_response()),
        Outcome::Refused(problems) => {
            let message = format!(
                "The configuration file has {} problem(s); the running configuration keeps serving.",
                problems.len()
            );
            let body = json!({
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "invalid_config",
                },
                "problems": problems,
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
    }
}

/// `GET /admin/config` (`config:read`): the running config, every secret masked, with the hash
/// of the file it came from, when it was loaded, and what waits for a restart.
pub async fn config(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers, &[Grant::ConfigRead])?;
    let loaded = &state.loaded;
    Ok(Json(json!({
        "config": loaded.config,
        "hash": loaded.hash,
        "loaded_at": loaded.at,
        "restart_required": loaded.restart_required,
    })))
}
