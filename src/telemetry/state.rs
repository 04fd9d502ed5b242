//! The metrics of shared state: Redis calls and their failures, time spent degraded, settlements
//! waiting for Redis or dropped, and what became of reservations made ahead of a request.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The operation a Redis call performed (`reserve`, `settle`, `cache_get`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

/// What became of a reservation made ahead of a key's next request: `used` or `unused`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AheadLabels {
    pub outcome: &'static str,
}

type Durations = Family<OpLabels, Histogram, fn() -> Histogram>;

pub struct StateMetrics {
    calls: Durations,
    errors: Family<OpLabels, Counter>,
    degraded: Gauge,
    degraded_seconds: Counter<f64, AtomicU64>,
    queued: Gauge,
    dropped: Counter,
    ahead: Family<AheadLabels, Counter>,
}

fn call_histogram() -> Histogram {
    // From 50 µs to about 1.6 s: a loopback round trip up to a Redis far away and struggling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl StateMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = StateMetrics {
            calls: Durations::new_with_constructor(call_histogram as fn() -> Histogram),
            errors: Family::default(),
            degraded: Gauge::default(),
            degraded_seconds: Counter::default(),
            queued: Gauge::default(),
            dropped: Counter::default(),
            ahead: Family::default(),
        };
        registry.register(
            "redis_call_duration_seconds",
            "Time of each Redis call that got an answer or failed, by operation",
            metrics.calls.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis calls that failed or timed out, by operation",
            metrics.errors.clone(),
        );
        registry.register(
            "state_degraded",
            "1 while Redis is unreachable and shared state is degraded",
            metrics.degraded.clone(),
        );
        registry.register(
            "state_degraded_seconds",
            "Time spent degraded, counted when each outage ends",
            metrics.degraded_seconds.clone(),
        );
        registry.register(
            "settlements_queued",
            "Settled usage waiting to be written to Redis",
            metrics.queued.clone(),
        );
        registry.register(
            "settlements_dropped",
            "Settled usage dropped because the queue for Redis was full",
            metrics.dropped.clone(),
        );
        registry.register(
            "reservations_ahead",
            "Reservations made in Redis ahead of a key's next request, by whether one used it",
            metrics.ahead.clone(),
        );
        metrics
    }

    pub fn redis_call(&self, op: &'static str, seconds: f64) {
        self.calls.get_or_create(&OpLabels { op }).observe(seconds);
    }

    pub fn redis_error(&self, op: &'static str) {
        self.errors.get_or_create(&OpLabels { op }).inc();
    }

    pub fn degraded(&self, degraded: bool) {
        self.degraded.set(i64::from(degraded));
    }

    pub fn degraded_for(&self, seconds: f64) {
        self.degraded_seconds.inc_by(seconds);
    }

    pub fn queued(&self, waiting: usize) {
        self.queued.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// A reservation made ahead was used by a request (`true`) or given back unused.
    pub fn ahead(&self, used: bool) {
        let outcome = if used { "used" } else { "unused" };
        self.ahead.get_or_create(&AheadLabels { outcome }).inc();
    }
}
