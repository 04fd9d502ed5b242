//! The samples the console's charts draw: the gateway's totals every few seconds over the last
//! hour, and each key's usage every half minute, in rings held in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use crate::telemetry::totals::{LATENCY_BUCKETS, Snapshot, quantile_ms};

/// Seconds between two samples of the totals.
pub const EVERY: u64 = 5;
/// Samples of the totals kept: one hour.
const KEPT: usize = 720;
/// Samples of each key kept: an hour at every sixth tick.
const KEPT_PER_KEY: usize = 120;
/// Keys sampled at most (each read costs a Redis call in shared mode).
pub const MAX_KEYS: usize = 1000;

/// One interval of the totals.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: u64,
    /// What changed since the previous sample.
    delta: Snapshot,
}

/// One key's usage at a moment (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeyPoint {
    pub at: u64,
    pub requests: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

#[derive(Default)]
pub struct Series {
    inner: Mutex<Rings>,
}

#[derive(Default)]
struct Rings {
    last: Option<Snapshot>,
    samples: VecDeque<Sample>,
    /// The totals at the first sample of the current UTC day, and that day.
    day_start: Option<(u64, Snapshot)>,
    keys: HashMap<String, VecDeque<KeyPoint>>,
}

/// Figures over a window of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub rps: f64,
    /// Share of answers with a 5xx status.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
}

impl Series {
    /// Takes a sample of the totals at `now` (Unix seconds).
    pub fn sample(&self, now: u64, totals: Snapshot) {
        let mut rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = rings.last.replace(totals).unwrap_or_default();
        let today = now / 86_400;
        if rings.day_start.is_none_or(|(day, _)| day != today) {
            rings.day_start = Some((today, previous));
        }
        rings.samples.push_back(Sample {
            at: now,
            delta: minus(&totals, &previous),
        });
        while rings.samples.len() > KEPT {
            rings.samples.pop_front();
        }
    }

    /// Keeps a point of each key's usage, forgetting keys no longer sampled.
    pub fn sample_keys(&self, points: Vec<(String, KeyPoint)>) {
        let mut rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let names: std::collections::HashSet<&String> = points.iter().map(|(n, _)| n).collect();
        rings.keys.retain(|name, _| names.contains(name));
        for (name, point) in points {
            let ring = rings.keys.entry(name).or_default();
            ring.push_back(point);
            while ring.len() > KEPT_PER_KEY {
                ring.pop_front();
            }
        }
    }

    /// The totals since 00:00 UTC (or since start, if later): tokens and micro-dollars.
    pub fn today(&self, now: Snapshot) -> Snapshot {
        let rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        rings
            .day_start
            .map_or(now, |(_, start)| minus(&now, &start))
    }

    /// Figures over the last `seconds`.
    pub fn window(&self, seconds: u64) -> Window {
        let rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let n = (seconds / EVERY).max(1) as usize;
        let recent: Vec<&Sample> = rings.samples.iter().rev().take(n).collect();
        if recent.is_empty() {
            return Window::default();
        }
        let mut sum = Snapshot::default();
        for sample in &recent {
            sum = plus(&sum, &sample.delta);
        }
        let span = (recent.len() as u64 * EVERY) as f64;
        Window {
            rps: sum.requests as f64 / span,
            error_rate: ratio(sum.errors, sum.requests).unwrap_or(0.0),
            p50_ms: quantile_ms(&sum.latency, 0.5),
            p99_ms: quantile_ms(&sum.latency, 0.99),
            cache_hit_ratio: ratio(sum.cache_hits, sum.cache_lookups),
        }
    }

    /// The chart data of the last hour: times and one array per series.
    pub fn json(&self) -> Value {
        let rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = &rings.samples;
        let per_second = |v: u64| v as f64 / EVERY as f64;
        let t: Vec<u64> = samples.iter().map(|s| s.at).collect();
        let of = |f: &dyn Fn(&Snapshot) -> Option<f64>| -> Vec<Option<f64>> {
            samples.iter().map(|s| f(&s.delta)).collect()
        };
        json!({
            "t": t,
            "series": {
                "requests": of(&|d| Some(per_second(d.requests))),
                "errors": of(&|d| Some(per_second(d.errors))),
                "limited": of(&|d| Some(per_second(d.limited))),
                "p50_ms": of(&|d| quantile_ms(&d.latency, 0.5)),
                "p99_ms": of(&|d| quantile_ms(&d.latency, 0.99)),
                "tokens": of(&|d| Some(d.tokens as f64)),
                "spend_usd": of(&|d| Some(d.spend_micros as f64 / 1e6)),
                "cache_hit_ratio": of(&|d| ratio(d.cache_hits, d.cache_lookups)),
            }
        })
    }

    /// One key's chart data: requests, tokens and spend per interval.
    pub fn key_json(&self, key: &str) -> Value {
        let rings = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let points: Vec<KeyPoint> = rings
            .keys
            .get(key)
            .map(|ring| ring.iter().copied().collect())
            .unwrap_or_default();
        let pairs = points.windows(2);
        let t: Vec<u64> = points.iter().skip(1).map(|p| p.at).collect();
        let requests: Vec<u64> = pairs
            .clone()
            .map(|w| w[1].requests.saturating_sub(w[0].requests))
            .collect();
        let tokens: Vec<u64> = pairs
            .clone()
            .map(|w| w[1].tokens.saturating_sub(w[0].tokens))
            .collect();
        let spend: Vec<f64> = pairs
            .map(|w| (w[1].cost_usd - w[0].cost_usd).max(0.0))
            .collect();
        json!({"t": t, "series": {"requests": requests, "tokens": tokens, "spend_usd": spend}})
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn minus(a: &Snapshot, b: &Snapshot) -> Snapshot {
    combine(a, b, u64::saturating_sub)
}

fn plus(a: &Snapshot, b: &Snapshot) -> Snapshot {
    combine(a, b, u64::saturating_add)
}

/// Every figure of `a` with the same of `b`, by `f`.
fn combine(a: &Snapshot, b: &Snapshot, f: fn(u64, u64) -> u64) -> Snapshot {
    Snapshot {
        requests: f(a.requests, b.requests),
        errors: f(a.errors, b.errors),
        limited: f(a.limited, b.limited),
        latency: std::array::from_fn::<u64, LATENCY_BUCKETS, _>(|i| f(a.latency[i], b.latency[i])),
        tokens: f(a.tokens, b.tokens),
        spend_micros: f(a.spend_micros, b.spend_micros),
        cache_hits: f(a.cache_hits, b.cache_hits),
        cache_lookups: f(a.cache_lookups, b.cache_lookups),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(requests: u64, errors: u64) -> Snapshot {
        let mut latency = [0; LATENCY_BUCKETS];
        latency[3] = requests;
        Snapshot {
            requests,
            errors,
            latency,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_window_is_the_sum_of_its_intervals_and_the_ring_is_bounded() {
        let series = Series::default();
        series.sample(1000, totals(0, 0));
        series.sample(1005, totals(50, 5));
        series.sample(1010, totals(100, 5));
        let window = series.window(10);
        assert_eq!(window.rps, 10.0);
        assert_eq!(window.error_rate, 0.05);
        assert_eq!(window.p50_ms, Some(8.0));
        for i in 0..2000 {
            series.sample(2000 + i * 5, totals(100 + i, 5));
        }
        let json = series.json();
        assert_eq!(json["t"].as_array().unwrap().len(), KEPT);
        assert_eq!(json["series"]["requests"][0], 0.2);
    }

    #[test]
    fn a_key_series_is_the_change_between_points() {
        let series = Series::default();
        let point = |at, requests, cost_usd| KeyPoint {
            at,
            requests,
            tokens: requests * 10,
            cost_usd,
        };
        series.sample_keys(vec![("dev".into(), point(0, 1, 0.5))]);
        series.sample_keys(vec![("dev".into(), point(30, 4, 0.75))]);
        let json = series.key_json("dev");
        assert_eq!(json["t"], json!([30]));
        assert_eq!(json["series"]["requests"], json!([3]));
        assert_eq!(json["series"]["spend_usd"], json!([0.25]));
        series.sample_keys(vec![]);
        assert_eq!(series.key_json("dev")["t"], json!([]));
    }
}
