//! The OpenTelemetry GenAI client metrics in Prometheus naming (token usage and operation
//! duration histograms), time to first token, spend per key and model, MCP tool calls by tool
//! and outcome, and cache lookups by model.
//!
//! Labels come from config only (a model's configured name or `provider/*`, a key's name, a
//! tool the gateway serves), so clients cannot mint series.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
    gen_ai_token_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
    /// Empty on success; the HTTP status otherwise.
    error_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    model: String,
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    key: String,
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    model: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct GenAiMetrics {
    tokens: Histograms<TokenLabels>,
    duration: Histograms<OperationLabels>,
    first_token: Histograms<RouteLabels>,
    spend: Family<SpendLabels, Counter<f64, AtomicU64>>,
    tools: Family<ToolLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
}

/// The GenAI conventions' advised buckets for token counts: 1 to 4¹³, by powers of 4.
fn token_histogram() -> Histogram {
    Histogram::new((0..14).map(|i| 4f64.powi(i)))
}

/// The GenAI conventions' advised buckets for durations: 10 ms to about 82 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new((0..14).map(|i| 0.01 * 2f64.powi(i)))
}

impl GenAiMetrics {
    /// Registers the conventions' histograms in `conventions` (no prefix: their names are the
    /// conventions'), the gateway's own series in `registry`.
    pub fn register(registry: &mut Registry, conventions: &mut Registry) -> Self {
        let metrics = GenAiMetrics {
            tokens: Histograms::new_with_constructor(token_histogram as fn() -> Histogram),
            duration: Histograms::new_with_constructor(duration_histogram as fn() -> Histogram),
            first_token: Histograms::new_with_constructor(duration_histogram as fn() -> Histogram),
            spend: Family::default(),
            tools: Family::default(),
            cache: Family::default(),
        };
        conventions.register(
            "gen_ai_client_token_usage",
            "Tokens used per operation (GenAI semantic conventions), by token type",
            metrics.tokens.clone(),
        );
        conventions.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of each GenAI operation, to its last byte",
            metrics.duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from a streamed request to its first token",
            metrics.first_token.clone(),
        );
        registry.register(
            "spend_usd",
            "Spend in USD by key and model, at the catalog's or the target's prices",
            metrics.spend.clone(),
        );
        registry.register(
            "mcp_tool_calls",
            "MCP tool calls by tool and outcome (ok, error)",
            metrics.tools.clone(),
        );
        registry.register(
            "cache_lookups_by_model",
            "Response cache lookups by model and outcome (hit, miss, bypass)",
            metrics.cache.clone(),
        );
        metrics
    }

    /// One finished operation (`chat`, `embeddings`): its duration and its tokens.
    pub fn operation(
        &self,
        operation: &'static str,
        model: &str,
        provider: &str,
        error_type: Option<u16>,
        seconds: f64,
        tokens: (Option<u64>, Option<u64>),
    ) {
        let labels = OperationLabels {
            gen_ai_operation_name: operation,
            gen_ai_request_model: model.to_owned(),
            gen_ai_provider_name: provider.to_owned(),
            error_type: error_type.map(|s| s.to_string()).unwrap_or_default(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
        for (kind, count) in [("input", tokens.0), ("output", tokens.1)] {
            if let Some(count) = count {
                let labels = TokenLabels {
                    gen_ai_operation_name: operation,
                    gen_ai_request_model: model.to_owned(),
                    gen_ai_provider_name: provider.to_owned(),
                    gen_ai_token_type: kind,
                };
                self.tokens.get_or_create(&labels).observe(count as f64);
            }
        }
    }

    /// A stream's first token came `seconds` after its request.
    pub fn first_token(&self, model: &str, provider: &str, seconds: f64) {
        let labels = RouteLabels {
            model: model.to_owned(),
            provider: provider.to_owned(),
        };
        self.first_token.get_or_create(&labels).observe(seconds);
    }

    /// What a key spent on a model.
    pub fn spend(&self, key: &str, model: &str, usd: f64) {
        let labels = SpendLabels {
            key: key.to_owned(),
            model: model.to_owned(),
        };
        self.spend.get_or_create(&labels).inc_by(usd);
    }

    /// One MCP tool call; `tool` is `unknown` for a name the gateway does not serve.
    pub fn tool_call(&self, tool: &str, outcome: &'static str) {
        let labels = ToolLabels {
            tool: tool.to_owned(),
            outcome,
        };
        self.tools.get_or_create(&labels).inc();
    }

    /// One cache lookup for a model.
    pub fn cache(&self, model: &str, outcome: &'static str) {
        let labels = CacheLabels {
            model: model.to_owned(),
            outcome,
        };
        self.cache.get_or_create(&labels).inc();
    }
}
