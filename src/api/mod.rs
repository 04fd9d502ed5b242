//! The HTTP surface: OpenAI's endpoints, health, readiness and metrics, wired into one router.
//!
//! Handlers are thin: they authenticate, parse, resolve the route and hand over to the module
//! that owns the rest (`chat`, `embeddings`).

mod admin;
mod body;
mod chat;
mod embeddings;
mod models;
mod ops;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};

use crate::auth::KeyStore;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::routing::Routes;
use crate::telemetry::{self, Metrics};

/// Everything a handler needs, shared by all requests.
pub struct AppState {
    pub keys: KeyStore,
    pub routes: Routes,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// The response cache, when `cache:` enables it.
    pub cache: Option<Arc<ResponseCache>>,
    /// SHA-256 of `server.admin_key`; `None` disables `/admin`.
    pub admin_key: Option<[u8; 32]>,
    pub max_body: u64,
    /// Unix seconds at start, reported as models' `created`.
    pub started: u64,
    /// Set once shutdown begins, so `/ready` sends traffic elsewhere.
    pub draining: AtomicBool,
}

/// The gateway's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/embeddings", post(embeddings::create))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/admin/cache", delete(admin::clear_cache))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(telemetry::request_span))
        .with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::unknown_route(method.as_str(), uri.path())
}

async fn wrong_method(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
