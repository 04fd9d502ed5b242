//! Operational endpoints: liveness, readiness and Prometheus metrics.
//!
//! None of them needs a key: load balancers and scrapers call them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::resilience::breaker::State as Breaker;
use crate::telemetry::metrics::InstanceView;

/// `GET /health`: the process is up.
pub async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /ready`: config loaded and not draining.
pub async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.draining.load(Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
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
    state
        .metrics
        .instances(instances.iter().flat_map(|(provider, list)| {
            list.iter().map(move |i| InstanceView {
                provider,
                instance: i.shown_url(),
                in_flight: i.in_flight(),
                breaker: match i.breaker_state() {
                    Breaker::Closed => 0,
                    Breaker::Open => 1,
                    Breaker::HalfOpen => 2,
                },
                latency_seconds: i.latency().map(|l| l.as_secs_f64()),
            })
        }));
    (
        [(
            header::CONTENT_TYPE,
            // What prometheus-client writes: OpenMetrics (counters typed without `_total`).
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
