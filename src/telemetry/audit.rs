//! The metrics of the audit log: lines dropped because the writer fell behind, and writes that
//! failed.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

pub struct AuditMetrics {
    dropped: Counter,
    failed: Counter,
}

impl AuditMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AuditMetrics {
            dropped: Counter::default(),
            failed: Counter::default(),
        };
        registry.register(
            "audit_dropped",
            "Audit lines dropped because the writer's queue was full",
            metrics.dropped.clone(),
        );
        registry.register(
            "audit_errors",
            "Audit log writes that failed (each batch counts once)",
            metrics.failed.clone(),
        );
        metrics
    }

    /// A line was dropped; returns how many have been.
    pub fn dropped(&self) -> u64 {
        self.dropped.inc() + 1
    }

    /// A write failed; returns how many have.
    pub fn failed(&self) -> u64 {
        self.failed.inc() + 1
    }
}
