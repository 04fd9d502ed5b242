//! Whether Redis answers: the outage's start and cause, one warning per outage, and the probe
//! schedule that keeps calls from piling up on a Redis that does not answer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::telemetry::Metrics;

/// While degraded, one call in this long goes through to see whether Redis is back; the others
/// fail at once instead of each waiting out the timeout.
const PROBE_EVERY: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct Health {
    outage: Mutex<Option<Outage>>,
}

struct Outage {
    since: Instant,
    cause: Arc<str>,
    last_probe: Instant,
}

impl Health {
    pub fn new() -> Self {
        Health::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Outage>> {
        // Every update replaces the whole value: a panic cannot leave it half-written.
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cause of the outage, if Redis is being treated as unreachable.
    pub fn cause(&self) -> Option<Arc<str>> {
        self.lock().as_ref().map(|o| o.cause.clone())
    }

    /// `Some(cause)` when this call must fail without trying: degraded, and a probe went out
    /// less than [`PROBE_EVERY`] ago. Otherwise the call is (or may be) the probe.
    pub fn fail_fast(&self) -> Option<Arc<str>> {
        let mut outage = self.lock();
        let outage = outage.as_mut()?;
        if outage.last_probe.elapsed() < PROBE_EVERY {
            return Some(outage.cause.clone());
        }
        outage.last_probe = Instant::now();
        None
    }

    /// A call failed on the way to Redis: an outage starts, or goes on.
    pub fn failed(&self, cause: &str, metrics: &Metrics) {
        let mut outage = self.lock();
        if outage.is_none() {
            tracing::warn!(cause, "Redis is unreachable: shared state is degraded");
            metrics.state.degraded(true);
            let now = Instant::now();
            *outage = Some(Outage {
                since: now,
                cause: cause.into(),
                last_probe: now,
            });
        }
    }

    /// Redis answered: an outage, if any, is over.
    pub fn answered(&self, metrics: &Metrics) {
        let mut outage = self.lock();
        if let Some(over) = outage.take() {
            let lasted = over.since.elapsed();
            tracing::info!(
                seconds = lasted.as_secs_f64(),
                "Redis answers again: shared state recovered"
            );
            metrics.state.degraded(false);
            metrics.state.degraded_for(lasted.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_fails_calls_fast_between_probes_and_ends_on_an_answer() {
        let metrics = Metrics::default();
        let health = Health::new();
        assert!(health.fail_fast().is_none(), "healthy: every call goes");
        health.failed("connection refused", &metrics);
        assert_eq!(health.cause().as_deref(), Some("connection refused"));
        assert!(health.fail_fast().is_some(), "just probed: fail fast");
        health.failed("another cause", &metrics);
        assert_eq!(
            health.cause().as_deref(),
            Some("connection refused"),
            "an outage keeps its first cause"
        );
        health.answered(&metrics);
        assert!(health.cause().is_none());
        assert!(health.fail_fast().is_none());
        assert!(metrics.render().contains("switchboard_state_degraded 0"));
    }
}
