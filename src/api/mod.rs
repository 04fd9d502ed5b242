//! The HTTP surface: OpenAI's endpoints, health, readiness and metrics, wired into one router.
//!
//! Handlers are thin: they authenticate, parse, resolve the route and hand over to the module
//! that owns the rest (`chat`, `embeddings`).

mod admin;
mod audited;
pub(crate) mod body;
mod catalog;
mod chat;
mod console;
pub use console::{Console, cookie_in as console_cookie, same_origin_of as console_same_origin};
mod context;
mod embeddings;
mod mcp_auth;
mod mcp_edge;
mod oauth;
pub use mcp_edge::method_asked as mcp_method_asked;
mod messages;
mod models;
mod ops;
mod path;
pub mod reload;
mod responses;
mod surface;
mod tools;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use axum::extract::FromRef;

use axum::Router;
use axum::http::{Method, Uri};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use crate::auth::{Caller, KeyStore};
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::quota::{Admission, Door};
use crate::routing::{Route, Routes};
use crate::telemetry::{self, Metrics, RequestLabels};

/// The gateway's state as of now. Each request takes the snapshot current when it arrives (any
/// handler's `State<Arc<AppState>>` is that load) and keeps it to its end, streams included; a
/// reload stores the next, so new requests see it.
#[derive(Clone)]
pub struct Current(Arc<ArcSwap<AppState>>);

impl Current {
    pub fn new(state: AppState) -> Current {
        Current(Arc::new(ArcSwap::from_pointee(state)))
    }

    /// The snapshot new requests get.
    pub fn load(&self) -> Arc<AppState> {
        self.0.load_full()
    }

    /// Makes `state` the snapshot of every request from now on.
    pub fn store(&self, state: AppState) {
        self.0.store(Arc::new(state));
    }
}

impl FromRef<Current> for Arc<AppState> {
    fn from_ref(current: &Current) -> Arc<AppState> {
        current.load()
    }
}

/// Everything a handler needs: the parts a reload replaces (keys, routes, clients, the admin
/// key, body bounds, what was loaded), and handles on what lives as long as the process.
pub struct AppState {
    pub keys: KeyStore,
    /// Usage and spend of every key.
    pub ledger: Arc<crate::usage::Ledger>,
    /// With `state.redis`: the quotas and spend the replicas share.
    pub shared: Option<Arc<crate::quota::Shared>>,
    /// With `state.redis`: tools and instances registered through any replica.
    pub registrations: Option<Arc<Registrations>>,
    pub routes: Routes,
    /// HTTP clients by connect timeout.
    pub clients: crate::upstream::Clients,
    pub metrics: Arc<Metrics>,
    /// The response cache, when `cache:` enables it.
    pub cache: Option<Arc<ResponseCache>>,
    /// SHA-256 of `server.admin_key`; `None` disables `/admin`.
    pub admin_key: Option<[u8; 32]>,
    /// How request bodies are read: `server.max_body` and `server.body_timeout`.
    pub bodies: body::Bodies,
    /// Unix seconds at start, reported as models' `created`.
    pub started: u64,
    /// Set once shutdown begins, so `/ready` sends traffic elsewhere.
    pub draining: Arc<AtomicBool>,
    /// The config this snapshot runs, and where reloads are asked for.
    pub loaded: Arc<Loaded>,
    pub reloads: Option<tokio::sync::mpsc::Sender<reload::Asked>>,
    /// The shared context store, behind `/v1/context` and `/mcp`.
    pub context: Arc<crate::context::ContextStore>,
    /// The MCP server mounted at `/mcp`.
    pub mcp: crate::mcp::McpService,
    /// What MCP sessions share: configured tools and upstream servers, swapped by a reload.
    pub mcp_shared: Arc<crate::mcp::Shared>,
    /// MCP tools registered at run time through `/admin/tools`.
    pub tool_registry: Arc<crate::mcp::Registry>,
    /// The key that opened each MCP session.
    pub mcp_sessions: Arc<crate::mcp::SessionOwners>,
    /// With `state.redis`: every replica's MCP sessions, their owners and subscriptions.
    pub shared_sessions: Option<Arc<crate::mcp::SharedSessions>>,
    /// Responses API responses clients stored, for `previous_response_id` and `GET`.
    pub responses: Arc<crate::stored_responses::StoredResponses>,
    /// The audit log (`audit:`); off when not configured.
    pub audit: crate::audit::Audit,
    /// What the gateway publishes: lifecycle changes and subscriptions.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// The web console's sessions and the samples its charts draw.
    pub console: Arc<Console>,
}

/// Registrations the replicas share: written to Redis first, then applied here; every other
/// replica follows them within a second.
pub struct Registrations {
    pub tools: crate::state::redis::registrations::SharedRegistrations,
    pub instances: crate::state::redis::registrations::SharedRegistrations,
}

/// The Redis entry name of an upstream instance registration.
pub fn instance_name(provider: &str, url: &str) -> String {
    format!("{provider} {url}")
}

/// The config a snapshot runs: as loaded (secrets inside, never shown unmasked), the SHA-256 of
/// the file it came from, when, and what differs in the file but needs a restart.
pub struct Loaded {
    pub config: crate::config::Config,
    pub hash: String,
    pub at: u64,
    /// YAML paths whose new values wait for a restart (`server.listen`, `state`, ...).
    pub restart_required: Vec<String>,
}

/// The gateway's routes, each request served on the snapshot current when it arrived.
pub fn router(current: Current) -> Router {
    let state = current.load();
    let mcp = Router::new()
        .route_service("/mcp", state.mcp.clone())
        .layer(axum::middleware::from_fn_with_state(
            current.clone(),
            mcp_auth::authenticate,
        ));
    let routes = Router::new()
        .merge(mcp)
        .merge(console::routes(current.clone()))
        .route(
            "/v1/context/{namespace}/{key}",
            get(context::get)
                .put(context::put)
                .delete(context::delete)
                .route_layer(axum::middleware::from_fn_with_state(
                    current.clone(),
                    context::admitted,
                )),
        )
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route("/v1/embeddings", post(embeddings::create))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(oauth::mcp_metadata),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/admin/cache", delete(admin::clear_cache))
        .route("/admin/usage", get(admin::usage))
        .route(
            "/admin/upstreams",
            get(admin::upstreams)
                .post(admin::register_upstream)
                .delete(admin::unregister_upstream),
        )
        .route("/admin/tools", get(tools::list).post(tools::register))
        .route("/admin/tools/{name}", delete(tools::remove))
        .route("/v1/catalog", get(catalog::list))
        .route("/v1/catalog/{entry}", get(catalog::one))
        .route("/v1/catalog/{entry}/subscription", post(catalog::subscribe))
        .route("/admin/subscriptions", get(catalog::subscriptions))
        .route("/admin/subscriptions/{id}", post(catalog::decide))
        .route("/admin/catalog/{entry}", post(catalog::change))
        .route("/admin/reload", post(reload::reload))
        .route("/admin/config", get(reload::config))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            current.clone(),
            audited::audited,
        ));
    framed(routes).with_state(current)
}

/// What every request passes through around its handler: its span and request id outside, and
/// inside, a panic turned into that request's 500.
fn framed<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(telemetry::request_span))
}

/// The answer to a request whose handler panicked: a 500 for that request alone, in OpenAI's
/// shape, on a connection that stays open. The panic hook has logged it.
fn panicked(_: Box<dyn std::any::Any + Send>) -> Response {
    ApiError::internal("The gateway failed on this request; the failure is logged.").into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::unknown_route(method.as_str(), uri.path())
}

async fn wrong_method(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

/// What the metrics need to know about a request, filled in as it is routed.
#[derive(Default)]
pub(crate) struct Served {
    pub model: String,
    pub provider: String,
    /// The provider was sent the client's own body (see `switchboard_providers::Native`).
    pub native: bool,
}

/// The frame of every model endpoint: authenticate, admit under the key's limits (before any
/// other work, so a refused request costs nothing and reaches no provider), answer, and count the
/// outcome once, labelled with the route that served it.
async fn model_endpoint(
    state: &AppState,
    endpoint: &'static str,
    request: Request,
    answer: impl AsyncFnOnce(&Caller, &HeaderMap, Body, &mut Served) -> Result<Response, ApiError>,
) -> Response {
    let started = Instant::now();
    // Taking the request whole avoids the copy of the headers a `HeaderMap` extractor makes.
    let (parts, body) = request.into_parts();
    let admitted = admitted(state, &parts.headers, Door::Model).await;
    serve_admitted(
        state,
        endpoint,
        started,
        (&parts.headers, body),
        admitted,
        answer,
    )
    .await
}

/// The rest of [`model_endpoint`] once the caller is known and admitted (or refused): the
/// console's playground joins here with the caller of its session.
async fn serve_admitted(
    state: &AppState,
    endpoint: &'static str,
    started: Instant,
    (headers, body): (&HeaderMap, Body),
    admitted: Result<(Arc<Caller>, Admission), Box<Response>>,
    answer: impl AsyncFnOnce(&Caller, &HeaderMap, Body, &mut Served) -> Result<Response, ApiError>,
) -> Response {
    let mut served = Served::default();
    let response = match admitted {
        Err(refused) => *refused,
        Ok((caller, admission)) => {
            let mut response = answer(&caller, headers, body, &mut served)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            if !served.model.is_empty() {
                catalog::mark_deprecated(state, &caller, &served.model, response.headers_mut());
            }
            if response.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
                note_limited(state, &caller);
            }
            admission.hold_until_sent(response)
        }
    };
    crate::audit::note(|line| {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        line.target = header("x-switchboard-target").map(str::to_owned);
        line.cache = match header("x-switchboard-cache") {
            Some("hit") => Some("hit"),
            Some("miss") => Some("miss"),
            Some("bypass") => Some("bypass"),
            _ => None,
        };
        if !served.model.is_empty() {
            line.model = Some(served.model.clone());
        }
    });
    let streamed = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streamed && response.status().is_success() {
        let seconds = started.elapsed().as_secs_f64();
        (state.metrics.genai).first_token(&served.model, &served.provider, seconds);
    }
    let labels = RequestLabels {
        endpoint,
        model: served.model,
        provider: served.provider,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .request(labels, started.elapsed().as_secs_f64());
    response
}

/// Notes a 429 of a model request against its key, for the console.
fn note_limited(state: &AppState, caller: &Caller) {
    if let Some(name) = &caller.name {
        state.metrics.totals.limited(name, crate::clock::unix_now());
    }
}

/// The caller of a request, authenticated and admitted under its key's request rate and
/// in-flight cap, or the answer that refuses it: the first step of every keyed endpoint.
async fn admitted(
    state: &AppState,
    headers: &HeaderMap,
    door: Door,
) -> Result<(Arc<Caller>, Admission), Box<Response>> {
    let caller =
        state.keys.authenticate(headers).await.map_err(|error| {
            Box::new(oauth::challenged(state, headers, "", error.into_response()))
        })?;
    let model = matches!(door, Door::Model);
    let admission = caller.admit(door).await.inspect_err(|refused| {
        if model && refused.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
            note_limited(state, &caller);
        }
    })?;
    Ok((caller, admission))
}

/// The route for a requested model, if it exists and the caller may use it.
async fn route_for(state: &AppState, caller: &Caller, model: &str) -> Result<Arc<Route>, ApiError> {
    let route = state
        .routes
        .resolve(model)
        .ok_or_else(|| ApiError::model_not_found(model))?;
    // Existence first: an unknown model is 404 for every key, as OpenAI's SDKs expect; a
    // retired one is 410 for every key, naming what replaces it.
    catalog::refuse_retired(state, model)?;
    // A refusal first asks whether another replica approved a subscription since.
    let allowed =
        caller.may_use(model) || (state.catalog.changed_elsewhere().await && caller.may_use(model));
    if !allowed {
        return Err(ApiError::model_not_allowed(model));
    }
    Ok(route)
}

/// A route and its fallbacks, in the order they are tried; unknown fallback names were refused
/// when the config loaded.
fn with_fallbacks(state: &AppState, route: &Arc<Route>) -> Vec<Arc<Route>> {
    std::iter::once(route.clone())
        .chain(
            route
                .fallbacks
                .iter()
                .filter_map(|name| state.routes.resolve(name)),
        )
        .collect()
}

/// When a request through `route` must be over, retries and fallbacks included.
fn route_deadline(route: &Route) -> Instant {
    Instant::now() + route.timeouts.total.map_or(DEFAULT_TOTAL, |t| t.0)
}

/// A request's whole budget when its model sets no `timeouts.total`: as long as OpenAI's SDKs wait.
const DEFAULT_TOTAL: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    /// A bug in one handler costs that request a 500 in OpenAI's shape; the next is served.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_router_goes_on() {
        async fn buggy() -> &'static str {
            panic!("a bug")
        }
        let mut router = framed(Router::new().route("/bug", get(buggy)));
        let request = || Request::get("/bug").body(Body::empty()).unwrap();
        for _ in 0..2 {
            let response = router.call(request()).await.unwrap();
            assert_eq!(response.status(), 500);
            assert!(response.headers().contains_key(&telemetry::REQUEST_ID));
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["error"]["type"], "api_error", "{error}");
        }
    }
}
