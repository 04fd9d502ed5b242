//! Running totals the console samples into its charts (requests, errors, latency, tokens,
//! spend, cache lookups, refusals by key), and the calls of deprecated catalog entries.
//!
//! Plain atomics beside the Prometheus families: those are split by label, and the console
//! wants one sum every few seconds without walking them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Latency buckets: the upper bound of bucket `i` is `2^i` ms (the last takes the rest).
pub const LATENCY_BUCKETS: usize = 20;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeprecatedLabels {
    entry: String,
    key: String,
}

/// The totals since start.
pub struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
    limited: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
    tokens: AtomicU64,
    /// Micro-dollars: an atomic integer sums exactly.
    spend_micros: AtomicU64,
    cache_hits: AtomicU64,
    cache_lookups: AtomicU64,
    /// 429s by key name: how many, and the last (Unix seconds). Bounded by the keys there are.
    limited_keys: Mutex<HashMap<String, (u64, u64)>>,
    deprecated: Family<DeprecatedLabels, Counter>,
}

/// The totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub requests: u64,
    /// Answers with a 5xx status.
    pub errors: u64,
    /// 429 answers.
    pub limited: u64,
    pub latency: [u64; LATENCY_BUCKETS],
    pub tokens: u64,
    pub spend_micros: u64,
    pub cache_hits: u64,
    pub cache_lookups: u64,
}

impl Totals {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let deprecated = Family::<DeprecatedLabels, Counter>::default();
        registry.register(
            "deprecated_calls",
            "Calls of deprecated catalog entries, by entry and key",
            deprecated.clone(),
        );
        Totals {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            tokens: AtomicU64::new(0),
            spend_micros: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_lookups: AtomicU64::new(0),
            limited_keys: Mutex::new(HashMap::new()),
            deprecated,
        }
    }

    pub(super) fn request(&self, status: u16, seconds: f64) {
        self.requests.fetch_add(1, Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Relaxed);
        } else if status == 429 {
            self.limited.fetch_add(1, Relaxed);
        }
        self.latency[bucket(seconds)].fetch_add(1, Relaxed);
    }

    pub(super) fn tokens(&self, tokens: u64) {
        self.tokens.fetch_add(tokens, Relaxed);
    }

    /// Adds one call's cost.
    pub fn spend(&self, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            self.spend_micros
                .fetch_add((usd * 1e6).round() as u64, Relaxed);
        }
    }

    pub(super) fn cache(&self, hit: bool) {
        self.cache_lookups.fetch_add(1, Relaxed);
        if hit {
            self.cache_hits.fetch_add(1, Relaxed);
        }
    }

    /// Notes a 429 answered to the key named `key`.
    pub fn limited(&self, key: &str, now: u64) {
        let mut keys = self
            .limited_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match keys.get_mut(key) {
            Some((count, last)) => {
                *count += 1;
                *last = now;
            }
            None => {
                keys.insert(key.to_owned(), (1, now));
            }
        }
    }

    /// 429s by key since start: (count, last at).
    pub fn limited_keys(&self) -> HashMap<String, (u64, u64)> {
        self.limited_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts a call of the deprecated entry `entry` by `key`.
    pub fn deprecated_call(&self, entry: &str, key: &str) {
        self.deprecated
            .get_or_create(&DeprecatedLabels {
                entry: entry.to_owned(),
                key: key.to_owned(),
            })
            .inc();
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Relaxed),
            errors: self.errors.load(Relaxed),
            limited: self.limited.load(Relaxed),
            latency: std::array::from_fn(|i| self.latency[i].load(Relaxed)),
            tokens: self.tokens.load(Relaxed),
            spend_micros: self.spend_micros.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_lookups: self.cache_lookups.load(Relaxed),
        }
    }
}

fn bucket(seconds: f64) -> usize {
    let ms = (seconds * 1000.0).max(0.0);
    let mut bound = 1.0;
    for i in 0..LATENCY_BUCKETS - 1 {
        if ms <= bound {
            return i;
        }
        bound *= 2.0;
    }
    LATENCY_BUCKETS - 1
}

/// The latency (ms, the bucket's upper bound) under which `quantile` of `counts` fall.
pub fn quantile_ms(counts: &[u64; LATENCY_BUCKETS], quantile: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let wanted = (quantile * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            return Some(f64::from(1u32 << i));
        }
    }
    Some(f64::from(1u32 << (LATENCY_BUCKETS - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut registry = Registry::default();
        let totals = Totals::register(&mut registry);
        for _ in 0..98 {
            totals.request(200, 0.003);
        }
        totals.request(500, 0.5);
        totals.request(429, 0.0001);
        let snapshot = totals.snapshot();
        assert_eq!(
            (snapshot.requests, snapshot.errors, snapshot.limited),
            (100, 1, 1)
        );
        assert_eq!(quantile_ms(&snapshot.latency, 0.5), Some(4.0));
        assert_eq!(quantile_ms(&snapshot.latency, 1.0), Some(512.0));
        assert_eq!(quantile_ms(&[0; LATENCY_BUCKETS], 0.5), None);
        totals.spend(0.0000015);
        totals.spend(f64::NAN);
        assert_eq!(totals.snapshot().spend_micros, 2);
    }
}
