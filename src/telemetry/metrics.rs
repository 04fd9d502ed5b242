//! Prometheus metrics: requests and latency by endpoint, model, provider and status, and tokens.
//!
//! Labels only ever carry names from config.yaml or resolved routes, never raw client input, so a
//! caller cannot blow up the series count by inventing model names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};

/// Labels of one answered request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub model: String,
    pub provider: String,
    pub status: u16,
}

/// Labels of a token count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub provider: String,
    /// `prompt` or `completion`.
    pub kind: &'static str,
}

/// Labels of a cache lookup (`hit`, `miss`, `bypass`) or eviction (`size`, `expired`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Labels of a model-level event (a retry, a fallback).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

/// Labels of one upstream instance.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub provider: String,
    pub instance: String,
}

/// What `/metrics` shows of one instance at scrape time.
pub struct InstanceView<'a> {
    pub provider: &'a str,
    pub instance: &'a str,
    pub in_flight: u32,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker: u8,
    pub latency_seconds: Option<f64>,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    tokens: Family<TokenLabels, Counter>,
    cache_lookups: Family<OutcomeLabels, Counter>,
    cache_evictions: Family<OutcomeLabels, Counter>,
    cache_bytes: Gauge,
    cache_entries: Gauge,
    retries: Family<ModelLabels, Counter>,
    fallbacks: Family<ModelLabels, Counter>,
    in_flight: Family<InstanceLabels, Gauge>,
    breaker: Family<InstanceLabels, Gauge>,
    ewma: Family<InstanceLabels, Gauge<f64, AtomicU64>>,
    /// The request and token series of each (model, provider), reached by one fast hash:
    /// prometheus_client finds a series by hashing all its labels with SipHash, and every
    /// request updates four. These are handles on the same series, not copies.
    routes: RwLock<hashbrown::HashMap<RouteKey, RouteSeries>>,
    /// Redis and the settlements waiting for it.
    pub state: super::StateMetrics,
    /// Config reloads.
    pub reloads: super::ReloadMetrics,
    /// The audit log's drops and failures.
    pub audit: Arc<super::AuditMetrics>,
    /// GenAI operations, spend, tool calls, cache lookups by model.
    pub genai: super::GenAiMetrics,
    /// One sum of each for the console, and calls of deprecated catalog entries.
    pub totals: super::Totals,
    /// Series named by the OpenTelemetry conventions, without the `switchboard_` prefix.
    conventions: Registry,
}

#[derive(Hash, PartialEq, Eq)]
struct RouteKey {
    model: String,
    provider: String,
}

/// A [`RouteKey`] borrowed: it hashes the same, so a lookup allocates nothing.
#[derive(Hash)]
struct RouteKeyRef<'a> {
    model: &'a str,
    provider: &'a str,
}

impl hashbrown::Equivalent<RouteKey> for RouteKeyRef<'_> {
    fn equivalent(&self, key: &RouteKey) -> bool {
        self.model == key.model && self.provider == key.provider
    }
}

#[derive(Default)]
struct RouteSeries {
    /// Prompt and completion tokens, once the route has reported any.
    tokens: Option<(Counter, Counter)>,
    /// By endpoint and status: a route sees a handful.
    answered: Vec<Answered>,
}

impl RouteSeries {
    fn answered(&self, endpoint: &str, status: u16) -> Option<&Answered> {
        self.answered
            .iter()
            .find(|a| a.endpoint == endpoint && a.status == status)
    }
}

struct Answered {
    endpoint: &'static str,
    status: u16,
    count: Counter,
    latency: Histogram,
}

fn latency_histogram() -> Histogram {
    // From 1 ms to about 65 s: gateway-only answers up to long generations.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 17,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("requests", "Requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers (first byte of a stream)",
            latency.clone(),
        );
        registry.register("tokens", "Tokens reported by providers", tokens.clone());
        let cache_lookups = Family::<OutcomeLabels, Counter>::default();
        let cache_evictions = Family::<OutcomeLabels, Counter>::default();
        let cache_bytes = Gauge::default();
        let cache_entries = Gauge::default();
        registry.register(
            "cache_lookups",
            "Response cache lookups by outcome",
            cache_lookups.clone(),
        );
        registry.register(
            "cache_evictions",
            "Cached answers evicted, by cause",
            cache_evictions.clone(),
        );
        registry.register(
            "cache_bytes",
            "Bytes of cached answers held",
            cache_bytes.clone(),
        );
        registry.register(
            "cache_entries",
            "Cached answers held",
            cache_entries.clone(),
        );
        let retries = Family::<ModelLabels, Counter>::default();
        let fallbacks = Family::<ModelLabels, Counter>::default();
        let in_flight = Family::<InstanceLabels, Gauge>::default();
        let breaker = Family::<InstanceLabels, Gauge>::default();
        let ewma = Family::<InstanceLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "retries",
            "Tries after the first, by model",
            retries.clone(),
        );
        registry.register(
            "fallbacks",
            "Fallback models tried, by requested model",
            fallbacks.clone(),
        );
        registry.register(
            "upstream_in_flight",
            "Requests in flight per upstream instance",
            in_flight.clone(),
        );
        registry.register(
            "upstream_breaker_state",
            "Circuit breaker per upstream instance: 0 closed, 1 open, 2 half-open",
            breaker.clone(),
        );
        registry.register(
            "upstream_latency_ewma_seconds",
            "Moving average of time to first token per upstream instance",
            ewma.clone(),
        );
        let state = super::StateMetrics::register(&mut registry);
        let reloads = super::ReloadMetrics::register(&mut registry);
        let audit = Arc::new(super::AuditMetrics::register(&mut registry));
        let mut conventions = Registry::default();
        let genai = super::GenAiMetrics::register(&mut registry, &mut conventions);
        let totals = super::Totals::register(&mut registry);
        Metrics {
            totals,
            state,
            reloads,
            audit,
            genai,
            conventions,
            registry,
            retries,
            fallbacks,
            in_flight,
            breaker,
            ewma,
            requests,
            latency,
            tokens,
            cache_lookups,
            cache_evictions,
            cache_bytes,
            cache_entries,
            routes: RwLock::default(),
        }
    }
}

impl Metrics {
    /// Counts one answered request and its latency.
    pub fn request(&self, labels: RequestLabels, seconds: f64) {
        self.totals.request(labels.status, seconds);
        let key = RouteKeyRef {
            model: &labels.model,
            provider: &labels.provider,
        };
        let counted = self.read_routes(|routes| {
            let answered = routes.get(&key)?.answered(labels.endpoint, labels.status)?;
            answered.latency.observe(seconds);
            answered.count.inc();
            Some(())
        });
        if counted.is_some() {
            return;
        }
        let count = self.requests.get_or_create(&labels).clone();
        let latency = self.latency.get_or_create(&labels).clone();
        latency.observe(seconds);
        count.inc();
        self.write_route(labels.model, labels.provider, |series| {
            // Another request may have added it between the two locks.
            if series.answered(labels.endpoint, labels.status).is_none() {
                series.answered.push(Answered {
                    endpoint: labels.endpoint,
                    status: labels.status,
                    count,
                    latency,
                });
            }
        });
    }

    /// Adds the tokens of one call.
    pub fn tokens(&self, model: &str, provider: &str, prompt: u64, completion: u64) {
        self.totals.tokens(prompt + completion);
        let key = RouteKeyRef { model, provider };
        let counted = self.read_routes(|routes| {
            let (prompt_count, completion_count) = routes.get(&key)?.tokens.as_ref()?;
            prompt_count.inc_by(prompt);
            completion_count.inc_by(completion);
            Some(())
        });
        if counted.is_some() {
            return;
        }
        let mut labels = TokenLabels {
            model: model.to_owned(),
            provider: provider.to_owned(),
            kind: "prompt",
        };
        let prompt_count = self.tokens.get_or_create(&labels).clone();
        labels.kind = "completion";
        let completion_count = self.tokens.get_or_create(&labels).clone();
        prompt_count.inc_by(prompt);
        completion_count.inc_by(completion);
        self.write_route(labels.model, labels.provider, |series| {
            series.tokens = Some((prompt_count, completion_count));
        });
    }

    fn write_route(&self, model: String, provider: String, write: impl FnOnce(&mut RouteSeries)) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        write(routes.entry(RouteKey { model, provider }).or_default());
    }

    fn read_routes<T>(
        &self,
        read: impl FnOnce(&hashbrown::HashMap<RouteKey, RouteSeries>) -> Option<T>,
    ) -> Option<T> {
        // The map holds handles only; a panic elsewhere cannot leave one half-made.
        read(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts a cache lookup by outcome.
    pub fn cache_lookup(&self, outcome: &'static str) {
        self.totals.cache(outcome == "hit");
        self.cache_lookups
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts an eviction by cause.
    pub fn cache_eviction(&self, cause: &'static str) {
        self.cache_evictions
            .get_or_create(&OutcomeLabels { outcome: cause })
            .inc();
    }

    /// Publishes the cache's size.
    pub fn cache_size(&self, bytes: u64, entries: u64) {
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts a try after the first.
    pub fn retry(&self, model: &str) {
        let labels = ModelLabels {
            model: model.to_owned(),
        };
        self.retries.get_or_create(&labels).inc();
    }

    /// Counts a fallback model tried.
    pub fn fallback(&self, model: &str) {
        let labels = ModelLabels {
            model: model.to_owned(),
        };
        self.fallbacks.get_or_create(&labels).inc();
    }

    /// Replaces the per-instance gauges with the instances as they are now.
    pub fn instances<'a>(&self, views: impl IntoIterator<Item = InstanceView<'a>>) {
        self.in_flight.clear();
        self.breaker.clear();
        self.ewma.clear();
        for view in views {
            let labels = InstanceLabels {
                provider: view.provider.to_owned(),
                instance: view.instance.to_owned(),
            };
            self.in_flight
                .get_or_create(&labels)
                .set(i64::from(view.in_flight));
            self.breaker
                .get_or_create(&labels)
                .set(i64::from(view.breaker));
            if let Some(seconds) = view.latency_seconds {
                self.ewma.get_or_create(&labels).set(seconds);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &self.conventions);
        let _ = encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = Metrics::default();
        let labels = RequestLabels {
            endpoint: "chat",
            model: "fast".into(),
            provider: "demo".into(),
            status: 200,
        };
        metrics.request(labels.clone(), 0.003);
        metrics.request(labels.clone(), 0.004);
        // The second and later updates go through the handles kept per route: the same series.
        metrics.request(
            RequestLabels {
                status: 429,
                ..labels.clone()
            },
            0.001,
        );
        metrics.request(labels.clone(), 0.005);
        metrics.request(
            RequestLabels {
                endpoint: "embeddings",
                ..labels
            },
            0.002,
        );
        metrics.tokens("fast", "demo", 10, 5);
        metrics.tokens("fast", "demo", 1, 2);
        metrics.tokens("fast", "other", 7, 7);
        let text = metrics.render();
        assert!(text.contains(r#"switchboard_requests_total{endpoint="chat",model="fast",provider="demo",status="200"} 3"#), "{text}");
        assert!(text.contains(r#"switchboard_requests_total{endpoint="chat",model="fast",provider="demo",status="429"} 1"#), "{text}");
        assert!(text.contains(r#"switchboard_requests_total{endpoint="embeddings",model="fast",provider="demo",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"switchboard_request_duration_seconds_count{endpoint="chat",model="fast",provider="demo",status="200"} 3"#), "{text}");
        assert!(
            text.contains(
                r#"switchboard_tokens_total{model="fast",provider="demo",kind="prompt"} 11"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchboard_tokens_total{model="fast",provider="other",kind="prompt"} 7"#
            ),
            "{text}"
        );
        assert!(
            text.contains("switchboard_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchboard_tokens_total{model="fast",provider="demo",kind="completion"} 7"#
            ),
            "{text}"
        );
    }
}
