//! The metrics of config reloads: how many applied and how many were refused, and when the
//! running config was loaded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a reload ended: `applied` or `refused`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

pub struct ReloadMetrics {
    reloads: Family<ResultLabels, Counter>,
    loaded_at: Gauge,
}

impl ReloadMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ReloadMetrics {
            reloads: Family::default(),
            loaded_at: Gauge::default(),
        };
        registry.register(
            "config_reloads",
            "Config reloads, by result: applied, or refused for a problem in the file",
            metrics.reloads.clone(),
        );
        registry.register(
            "config_loaded_timestamp_seconds",
            "Unix time the running config was loaded",
            metrics.loaded_at.clone(),
        );
        metrics.loaded(crate::clock::unix_now());
        metrics
    }

    /// A reload ran: `applied` says whether its config now serves.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The running config was loaded at `unix` seconds.
    pub fn loaded(&self, unix: u64) {
        self.loaded_at.set(i64::try_from(unix).unwrap_or(i64::MAX));
    }
}
