//! `/admin`: operator endpoints, opened by `server.admin_key` or by a client key holding the
//! grant an endpoint needs (`keys[].grants`); without either, the admin API is off.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use std::time::Instant;

use serde::Deserialize;
use switchboard_providers::Endpoint;

use super::AppState;
use crate::auth::{self, Caller};
use crate::config::{Grant, Span};
use crate::error::ApiError;
use crate::upstream::Backend;
use crate::upstream::instances::{Instance, Origin};

/// Who acts on the admin surface.
pub(super) enum Actor {
    /// The admin key, which holds every grant.
    Admin,
    /// A client key holding the grant the endpoint asked for.
    Key(Arc<Caller>),
}

impl Actor {
    /// The key's name, `None` for the admin key: what a registration records as its owner.
    pub(super) fn owner(&self) -> Option<&str> {
        match self {
            Actor::Admin => None,
            Actor::Key(caller) => caller.name.as_deref(),
        }
    }

    pub(super) fn holds(&self, grant: Grant) -> bool {
        match self {
            Actor::Admin => true,
            Actor::Key(caller) => caller.holds(grant),
        }
    }
}

/// The admin key, or a client key holding any of `grants` (an empty list: the admin key only).
/// A key without the grant is told which one it lacks.
pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    grants: &[Grant],
) -> Result<Actor, ApiError> {
    if let Some(digest) = &state.admin_key
        && auth::is_admin(headers, digest)
    {
        crate::audit::note(|line| line.grant = Some("admin"));
        return Ok(Actor::Admin);
    }
    match state.keys.presented(headers) {
        Some(caller) if grants.iter().any(|g| caller.holds(*g)) => {
            let used = grants.iter().find(|g| caller.holds(**g)).map(|g| g.name());
            crate::audit::note(|line| line.grant = used);
            Ok(Actor::Key(caller))
        }
        Some(caller) => {
            let key = caller.name.as_deref().unwrap_or_default();
            Err(ApiError::forbidden(match grants.first() {
                Some(grant) => format!(
                    "The key '{key}' lacks the '{}' grant this endpoint needs.",
                    grant.name()
                ),
                None => "Only the admin key may use this endpoint.".to_owned(),
            }))
        }
        None if state.admin_key.is_none() => Err(ApiError::forbidden(
            "The admin API is disabled: set server.admin_key to enable it.",
        )),
        None => Err(ApiError::invalid_api_key()),
    }
}

/// Refuses the request unless it carries the admin key.
pub(super) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    authorize(state, headers, &[]).map(drop)
}

/// The largest body an admin request needs: a tool entry with its schema, a registration.
const MAX_ADMIN_BODY: u64 = 1024 * 1024;

/// An admin request's body, read only once its sender is authorized for `grant`.
pub(super) async fn admin_body(
    state: &AppState,
    headers: &HeaderMap,
    grant: Grant,
    body: axum::body::Body,
) -> Result<(Actor, bytes::Bytes), ApiError> {
    let actor = authorize(state, headers, &[grant])?;
    let limit = state.bodies.max.min(MAX_ADMIN_BODY);
    Ok((actor, state.bodies.read_up_to(body, limit).await?))
}

/// An admin request's body, read only once it is known to carry the admin key.
pub(super) async fn admin_only_body(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<bytes::Bytes, ApiError> {
    require_admin(state, headers)?;
    let limit = state.bodies.max.min(MAX_ADMIN_BODY);
    state.bodies.read_up_to(body, limit).await
}

/// `DELETE /admin/cache`: empties the response cache (`cache:purge`).
pub async fn clear_cache(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&state, &headers, &[Grant::CachePurge])?;
    let cache = state
        .cache
        .as_ref()
        .ok_or_else(|| ApiError::not_found("The response cache is not enabled."))?;
    cache.clear().await;
    Ok((StatusCode::OK, Json(json!({"cleared": true}))))
}

/// `GET /admin/usage`: per key and per model, requests, tokens and cost, and what is left of
/// each limit; with `state.redis`, the figures every replica shares. A key holding
/// `usage:read` sees its own row; `usage:read:*`, every row.
pub async fn usage(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let actor = authorize(&state, &headers, &[Grant::UsageRead, Grant::UsageReadAll])?;
    let everyone = actor.holds(Grant::UsageReadAll);
    let reports = state
        .keys
        .callers()
        .iter()
        .filter(|caller| everyone || caller.name.as_deref() == actor.owner())
        .filter_map(|caller| caller.quota.as_ref().map(|q| q.report()));
    let keys = futures_util::future::try_join_all(reports)
        .await
        .map_err(|failure| {
            ApiError::state_unavailable(format!("Usage is kept in Redis: {failure}"))
        })?;
    Ok(Json(json!({"keys": keys})))
}

/// `GET /admin/upstreams`: every model's targets, and every provider's instances with breaker
/// state, requests in flight, moving-average latency and recent errors.
pub async fn upstreams(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    Ok(Json(upstreams_report(&state)))
}

/// Every model's route and every provider's instances with their breakers.
pub(super) fn upstreams_report(state: &AppState) -> Value {
    let models: Vec<Value> = state
        .routes
        .configured()
        .map(|route| {
            json!({
                "name": route.name,
                "strategy": format!("{:?}", route.strategy).to_lowercase(),
                "fallbacks": route.fallbacks,
                "targets": route.targets.iter().map(|t| json!({
                    "provider": t.upstream.name, "model": t.model, "weight": t.weight,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let providers: serde_json::Map<String, Value> = state
        .routes
        .upstreams()
        .values()
        .map(|upstream| {
            let instances: Vec<Value> = upstream
                .instances
                .all()
                .iter()
                .map(|i| instance_report(i))
                .collect();
            (upstream.name.clone(), json!({"instances": instances}))
        })
        .collect();
    json!({"models": models, "providers": providers})
}

fn instance_report(instance: &Instance) -> Value {
    let (successes, failures) = instance.counts();
    let origin = match instance.origin() {
        Origin::Config => json!("config"),
        Origin::Dns => json!("dns"),
        Origin::Registered { expires } => json!({
            "registered": {"expires_in_ms": expires.saturating_duration_since(Instant::now()).as_millis() as u64}
        }),
    };
    json!({
        "url": instance.shown_url(),
        "origin": origin,
        "breaker": instance.breaker_state().name(),
        "in_flight": instance.in_flight(),
        "latency_ewma_ms": instance.latency().map(|l| l.as_secs_f64() * 1000.0),
        "owner": instance.owner(),
        "successes": successes,
        "failures": failures,
        "recent_errors": instance.recent_errors().into_iter()
            .map(|(at, message)| json!({"at": at, "message": message}))
            .collect::<Vec<_>>(),
    })
}

/// A run-time registration: a service announcing an instance of a provider for `ttl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub provider: String,
    /// The instance's base URL, as `base_url` is written for the provider's kind.
    pub url: String,
    pub ttl: Span,
}

/// `DELETE /admin/upstreams`: a service leaving before its TTL runs out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deregistration {
    pub provider: String,
    pub url: String,
}

/// `DELETE /admin/upstreams` (`upstreams:register`): removes an instance registered at run time (404 if there is none
/// at that URL; configured instances cannot be removed this way).
pub async fn unregister_upstream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (actor, body) = admin_body(&state, &headers, Grant::UpstreamsRegister, body).await?;
    let leaving: Deregistration = super::body::parse(&body)?;
    let upstream = state
        .routes
        .upstreams()
        .get(&leaving.provider)
        .ok_or_else(|| ApiError::not_found(format!("No provider named '{}'.", leaving.provider)))?;
    let url = leaving.url.trim_end_matches('/');
    if !upstream.instances.may_change(url, actor.owner()) {
        return Err(not_yours(url));
    }
    let shared = match &state.registrations {
        Some(shared) => shared
            .instances
            .remove(&super::instance_name(&leaving.provider, url))
            .await
            .map_err(shared_unavailable)?,
        None => false,
    };
    if !upstream.instances.unregister(url) && !shared {
        return Err(ApiError::not_found(format!(
            "No instance of '{}' was registered at '{url}'.",
            leaving.provider
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({"provider": leaving.provider, "url": url, "removed": true})),
    ))
}

/// Another key registered the instance at `url`.
fn not_yours(url: &str) -> ApiError {
    ApiError::forbidden(format!(
        "The instance at '{url}' was registered by another key; only that key or the admin key may change it."
    ))
}

fn shared_unavailable(failure: crate::state::redis::RedisFailure) -> ApiError {
    ApiError::state_unavailable(format!(
        "Registrations are shared through Redis, which cannot be reached: {failure}"
    ))
}

/// `POST /admin/upstreams` (`upstreams:register`): registers (or renews) an instance of an HTTP provider until its TTL
/// runs out. Services renew by posting again; one that stops disappears.
pub async fn register_upstream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (actor, body) = admin_body(&state, &headers, Grant::UpstreamsRegister, body).await?;
    let registration: Registration = super::body::parse(&body)?;
    let upstream = state
        .routes
        .upstreams()
        .get(&registration.provider)
        .ok_or_else(|| {
            ApiError::not_found(format!("No provider named '{}'.", registration.provider))
        })?;
    let Backend::Http(http) = &upstream.backend else {
        return Err(ApiError::invalid_request(
            "The built-in mock provider has no instances to register.",
            Some("provider".into()),
        ));
    };
    let url = registration.url.trim_end_matches('/');
    let uri = match url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            uri
        }
        _ => {
            return Err(ApiError::invalid_request(
                format!("'{url}' is not an http:// or https:// URL."),
                Some("url".into()),
            ));
        }
    };
    // The instance would be sent the provider's credentials.
    http.admits(&registration.provider, &uri)
        .map_err(ApiError::forbidden)?;
    if registration.ttl.0.is_zero() || registration.ttl.0 > crate::context::MAX_TTL {
        return Err(ApiError::invalid_request(
            format!(
                "'ttl' must be longer than 0s and at most {} days.",
                crate::context::MAX_TTL.as_secs() / 86_400
            ),
            Some("ttl".into()),
        ));
    }
    let owner = actor.owner();
    if !upstream.instances.may_change(url, owner) {
        return Err(not_yours(url));
    }
    let endpoint = Endpoint {
        base_url: url.to_owned(),
        ..http.endpoint.clone()
    };
    if let Some(shared) = &state.registrations {
        let name = super::instance_name(&registration.provider, url);
        // Other replicas learn the owner from the body.
        shared
            .instances
            .put(&name, owner.unwrap_or_default(), registration.ttl.0)
            .await
            .map_err(shared_unavailable)?;
    }
    upstream
        .instances
        .register(endpoint, registration.ttl.0, owner);
    Ok((
        StatusCode::OK,
        Json(
            json!({"provider": registration.provider, "url": url, "ttl_ms": registration.ttl.0.as_millis() as u64}),
        ),
    ))
}
