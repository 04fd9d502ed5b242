//! config.yaml: its shape (the field names are a contract with users), loading with `${VAR}`
//! interpolation, and validation that names the YAML path of every problem.
//!
//! A [`Config`] that loaded is valid: every reference resolves and every value parses.

mod interpolate;
mod mcp;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use mcp::{
    BUILT_IN_TOOLS, HttpCallConfig, HttpToolConfig, McpConfig, ToolAnnotationsConfig, placeholders,
};
pub use units::{Secret, Size, Span};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Absent: no response cache.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    #[serde(default)]
    pub state: StateConfig,
    /// The MCP server at `/mcp` and the context store.
    #[serde(default)]
    pub mcp: McpConfig,
}

/// `state:`: where state that must survive a restart (usage and spend) is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// A directory the gateway creates if needed and owns.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            data_dir: default_data_dir(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

/// `cache:`: the exact-match response cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long an answer stays servable.
    #[serde(default = "default_cache_ttl")]
    pub ttl: Span,
    /// Bytes of cached answers held at most.
    #[serde(default = "default_cache_size")]
    pub max_size: Size,
    #[serde(default)]
    pub scope: CacheScope,
    /// Cache only requests whose answer is meant to repeat: temperature 0 or a seed.
    #[serde(default)]
    pub only_deterministic: bool,
    /// Also cache answers cut off by the output limit (`finish_reason: length`).
    #[serde(default)]
    pub store_truncated: bool,
}

/// Who shares cached answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Each virtual key has its own cache.
    #[default]
    Key,
    /// Every key shares one cache.
    Global,
}

fn enabled() -> bool {
    true
}

fn default_cache_ttl() -> Span {
    Span(Duration::from_secs(600))
}

fn default_cache_size() -> Size {
    Size(256 * 1024 * 1024)
}

/// `server:`: where to listen and how the HTTP surface behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Guards `/admin`; empty or absent disables the admin API.
    #[serde(default)]
    pub admin_key: Option<Secret>,
    /// Largest request body accepted.
    #[serde(default = "default_max_body")]
    pub max_body: Size,
    /// How long a shutdown waits for in-flight requests, streams included.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Span,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin_key: None,
            max_body: default_max_body(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> Size {
    Size(32 * 1024 * 1024)
}

fn default_shutdown_timeout() -> Span {
    Span(Duration::from_secs(30))
}

/// One entry of `providers:`, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// OpenAI or any server that speaks its API.
    Openai(HttpProviderConfig),
    /// The built-in deterministic model.
    Mock(MockConfig),
}

/// A provider reached over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    /// Defaults per kind; for `openai` it includes `/v1`.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Extra headers sent on every request; values may hold secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Limit on a whole upstream call, streams included.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Where this provider's instances come from besides `base_url`: DNS records.
    #[serde(default)]
    pub discovery: Option<DiscoveryConfig>,
    /// The circuit breaker of each instance.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

/// `discovery:` of a provider: every A/AAAA record of a name is an instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// `host:port` to resolve; each address replaces the host and port of `base_url`.
    pub dns: String,
    /// How often the name is resolved again.
    #[serde(default = "default_refresh")]
    pub refresh: Span,
    /// The DNS server to ask, instead of the system's resolver configuration.
    #[serde(default)]
    pub nameserver: Option<SocketAddr>,
}

fn default_refresh() -> Span {
    Span(Duration::from_secs(10))
}

/// `breaker:` of a provider, applied to each of its instances.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failed tries within `window` that open the breaker.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    #[serde(default = "default_breaker_window")]
    pub window: Span,
    /// How long an open breaker waits before one probe request may try again.
    #[serde(default = "default_breaker_cooldown")]
    pub cooldown: Span,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: default_breaker_failures(),
            window: default_breaker_window(),
            cooldown: default_breaker_cooldown(),
        }
    }
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_window() -> Span {
    Span(Duration::from_secs(30))
}

fn default_breaker_cooldown() -> Span {
    Span(Duration::from_secs(15))
}

/// The built-in mock provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    #[serde(default)]
    pub latency: MockLatency,
}

/// Delays that let the mock stand in for a real model in load tests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockLatency {
    /// Before the first token (or the whole answer, when not streamed).
    #[serde(default)]
    pub first_token: Option<Span>,
    /// Between two chunks of a stream.
    #[serde(default)]
    pub per_chunk: Option<Span>,
}

/// One entry of `models:`: a public model name and where it is served.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    pub input: f64,
    pub output: f64,
}

fn default_weight() -> u32 {
    1
}

/// One entry of `keys:`: a virtual key handed to a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    #[serde(default)]
    pub key: Option<Secret>,
    /// The hex SHA-256 of the key, for operators who keep no plaintext in the file.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// Globs of model names this key may use; absent means every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// What this key may spend; absent means no limit.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// Globs of MCP tool names this key may list and call; absent means every tool.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Globs of context namespaces this key may read and write; absent means every namespace.
    #[serde(default)]
    pub context: Option<Vec<String>>,
}

/// `keys[].limits`: request rate and concurrency per key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per minute, enforced by GCRA: a full minute's worth may come at once.
    #[serde(default)]
    pub requests_per_minute: Option<NonZeroU32>,
    /// Requests in flight at once, streams until their last byte.
    #[serde(default)]
    pub max_concurrent: Option<NonZeroU32>,
    /// Prompt plus completion tokens per minute, as a bucket that refills continuously.
    #[serde(default)]
    pub tokens_per_minute: Option<NonZeroU32>,
    /// Prompt plus completion tokens per UTC calendar day.
    #[serde(default)]
    pub tokens_per_day: Option<NonZeroU64>,
    /// Spend per UTC calendar period, at the catalog's (or the target's `pricing`) prices.
    #[serde(default)]
    pub budget_usd: Option<BudgetConfig>,
}

/// `budget_usd:` of a key.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub amount: f64,
    pub period: BudgetPeriod,
}

/// The calendar period a budget covers, in UTC; weeks start on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
}

/// One problem in the configuration, at a YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a configuration could not be loaded: every problem found, each with its path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<ConfigError>),
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and validates a config file, with variables from the process environment.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates config text, resolving variables through `lookup`.
    pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, LoadError> {
        let mut document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
            LoadError::Invalid(vec![ConfigError::new("", format!("invalid YAML: {e}"))])
        })?;
        if document.is_null() {
            document = serde_yaml_ng::Value::Mapping(Default::default());
        }
        let mut errors = Vec::new();
        interpolate::interpolate(&mut document, "", lookup, &mut errors);
        if !errors.is_empty() {
            return Err(LoadError::Invalid(errors));
        }
        let config: Config = serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            LoadError::Invalid(vec![ConfigError::new(path, e.into_inner().to_string())])
        })?;
        let errors = validate::validate(&config);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(LoadError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        Config::parse(text, &|name| {
            (name == "TEAM_KEY").then(|| "sk-team".to_owned())
        })
        .map_err(|e| match e {
            LoadError::Invalid(errors) => errors.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn empty_file_is_a_valid_open_gateway() {
        let config = parse("").unwrap();
        assert_eq!(config.server.listen, default_listen());
        assert!(config.keys.is_empty());
    }

    #[test]
    fn full_shape_loads() {
        let config = parse(
            r#"
server: { listen: 127.0.0.1:9000, max_body: 1MiB, admin_key: "${ADMIN:-}" }
providers:
  demo: { kind: mock, latency: { first_token: 10ms, per_chunk: 1ms } }
  local: { kind: openai, base_url: "http://127.0.0.1:11434/v1", headers: { x-team: a }, timeout: 30s }
models:
  - name: fast
    targets: [ { provider: demo, model: m, weight: 2 }, { provider: local, model: llama } ]
keys:
  - { name: team-a, key: "${TEAM_KEY}", models: ["fast", "local/*"] }
"#,
        )
        .unwrap();
        assert_eq!(config.server.max_body, Size(1024 * 1024));
        assert_eq!(config.keys[0].key.as_ref().unwrap().expose(), "sk-team");
        assert_eq!(config.models[0].targets[1].weight, 1);
    }

    #[test]
    fn unknown_field_names_its_path() {
        let errors = parse("providers:\n  demo: { kind: mock, latncy: {} }\n").unwrap_err();
        assert!(errors[0].starts_with("providers.demo"), "{errors:?}");
        assert!(errors[0].contains("latncy"), "{errors:?}");
        let errors = parse("sever: {}\n").unwrap_err();
        assert!(errors[0].contains("sever"), "{errors:?}");
    }

    #[test]
    fn wrong_type_and_bad_units_name_their_path() {
        let errors = parse("server: { max_body: lots }\n").unwrap_err();
        assert!(
            errors[0].starts_with("server.max_body: invalid size"),
            "{errors:?}"
        );
        let errors = parse(
            "models:\n  - name: a\n    targets: [ { provider: p, model: m, weight: heavy } ]\n",
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with("models[0].targets[0].weight"),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let errors = parse("providers:\n  x: { kind: opnai }\n").unwrap_err();
        assert!(errors[0].starts_with("providers.x"), "{errors:?}");
        assert!(errors[0].contains("opnai"), "{errors:?}");
    }

    #[test]
    fn missing_variables_are_all_reported() {
        let errors = parse("providers:\n  a: { kind: openai, api_key: \"${NOPE_A}\" }\n  b: { kind: openai, api_key: \"${NOPE_B}\" }\n").unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("providers.a.api_key: environment variable NOPE_A"));
    }

    #[test]
    fn invalid_yaml_is_an_error_not_a_panic() {
        assert!(parse("models: [ {").is_err());
    }
}
