//! `models:` of config.yaml: public model names, their targets, strategy, retries, timeouts
//! and fallbacks.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use super::Span;

/// One entry of `models:`: a public model name and where it is served.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub strategy: Strategy,
    /// Other model names tried in order once every target of this one has failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// How a model's requests are spread over its targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In proportion to `weight`, by smooth weighted round robin.
    #[default]
    Weighted,
    /// The target with the fewest requests in flight.
    LeastBusy,
    /// The faster of two targets picked at random, by moving average of time to first token.
    LowestLatency,
}

/// `retry:` of a model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Tries in all, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The first pause; each next one doubles, with jitter, up to `max_backoff`.
    #[serde(default = "default_backoff")]
    pub backoff: Span,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Span,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

fn default_attempts() -> u32 {
    2
}

fn default_backoff() -> Span {
    Span(Duration::from_millis(100))
}

fn default_max_backoff() -> Span {
    Span(Duration::from_secs(2))
}

/// `timeouts:` of a model; each absent one is unbounded except `total` (10 minutes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// To open a connection to an upstream.
    #[serde(default)]
    pub connect: Option<Span>,
    /// From sending a try until its first token (a whole answer when not streamed).
    #[serde(default)]
    pub first_token: Option<Span>,
    /// Longest silence between two chunks of a stream.
    #[serde(default)]
    pub idle: Option<Span>,
    /// The whole request, every retry and fallback included.
    #[serde(default)]
    pub total: Option<Span>,
}

/// One place a model is served: a provider and its own name for the model.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Overrides the catalog's prices for this model.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// Overrides the catalog's output limit, reserved when a request names no `max_tokens`.
    #[serde(default)]
    pub max_output_tokens: Option<NonZeroU32>,
}

/// `pricing:` of a target, in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    pub input: f64,
    pub output: f64,
}

fn default_weight() -> u32 {
    1
}
