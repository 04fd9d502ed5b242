//! Operational endpoints: liveness, readiness and Prometheus metrics.
//!
//! None of them needs a key: load balancers and scrapers call them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::config::OnRedisError;
use crate::telemetry::metrics::InstanceView;
use crate::upstream::BreakerState as Breaker;

/// `GET /health`: the process is up.
pub async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /ready`: config loaded, not draining, and some provider able to take a request (an
/// instance its breaker lets through), with each provider's state listed. One such provider is
/// enough: a provider down for every replica at once is no reason to take them all out.
/// With `state.redis`, Redis is pinged: unreachable, the state is `degraded`, and the replica is
/// not ready when limits fail closed (`on_redis_error: deny`).
pub async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    let providers: serde_json::Map<String, serde_json::Value> = state
        .routes
        .upstreams()
        .iter()
        .map(|(name, upstream)| {
            let instances = upstream.instances.all();
            let status = if instances.is_empty() {
                "no instances"
            } else if instances.iter().any(|instance| instance.available()) {
                "available"
            } else {
                "unavailable"
            };
            (name.clone(), json!(status))
        })
        .collect();
    let any = providers.values().any(|status| status == "available");
    let (shared, closed) = shared_state(&state).await;
    let (code, status) = if any && !closed {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let mut body = json!({"status": status, "providers": providers});
    match shared {
        Some(Ok(())) => body["state"] = json!("ok"),
        Some(Err(cause)) => {
            body["state"] = json!("degraded");
            body["state_cause"] = json!(cause);
        }
        None => {}
    }
    (code, Json(body))
}

/// The shared state's health for `/ready` (`None` without Redis, else the cause of an outage),
/// and whether it makes the replica unready.
async fn shared_state(state: &AppState) -> (Option<Result<(), String>>, bool) {
    let Some(shared) = &state.shared else {
        return (None, false);
    };
    let redis = shared.redis();
    match redis.command::<String>("ping", &redis::cmd("PING")).await {
        Ok(_) => (Some(Ok(())), false),
        Err(failure) => {
            let cause = redis
                .degraded()
                .map_or_else(|| failure.to_string(), |cause| cause.to_string());
            let closed = shared.on_error() == OnRedisError::Deny;
            (Some(Err(cause)), closed)
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if let Some(cache) = &state.cache {
        cache.sync_metrics().await;
    }
    let instances: Vec<_> = state
        .routes
        .upstreams()
        .values()
        .map(|u| (u.name.as_str(), u.instances.all()))
        .collect();
    // Addresses shown without userinfo or query can coincide (two accounts on one host): the
    // later ones are numbered, so no instance's gauges overwrite another's.
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let labels: Vec<Vec<String>> = instances
        .iter()
        .map(|(provider, list)| {
            list.iter()
                .map(|i| {
                    let n = seen.entry((provider, i.shown_url())).or_default();
                    *n += 1;
                    match *n {
                        1 => i.shown_url().to_owned(),
                        n => format!("{} #{n}", i.shown_url()),
                    }
                })
                .collect()
        })
        .collect();
    state
        .metrics
        .instances(
            instances
                .iter()
                .zip(&labels)
                .flat_map(|((provider, list), labels)| {
                    list.iter().zip(labels).map(move |(i, label)| InstanceView {
                        provider,
                        instance: label,
                        in_flight: i.in_flight(),
                        breaker: match i.breaker_state() {
                            Breaker::Closed => 0,
                            Breaker::Open => 1,
                            Breaker::HalfOpen => 2,
                        },
                        latency_seconds: i.latency().map(|l| l.as_secs_f64()),
                    })
                }),
        );
    (
        [(
            header::CONTENT_TYPE,
            // What prometheus-client writes: OpenMetrics (counters typed without `_total`).
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
