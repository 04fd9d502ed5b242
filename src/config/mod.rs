//! config.yaml: its shape (the field names are a contract with users), loading with `${VAR}`
//! interpolation, and validation that names the YAML path of every problem.
//!
//! A [`Config`] that loaded is valid: every reference resolves and every value parses.

mod interpolate;
mod mcp;
mod mcp_servers;
mod sections;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use mcp::valid_tool_name;
pub use mcp::{
    BUILT_IN_TOOLS, HttpCallConfig, HttpToolConfig, McpConfig, ToolAnnotationsConfig, placeholders,
    tool_errors,
};
pub use mcp_servers::{McpServerConfig, McpServerTransport, TOOL_SEPARATOR};
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
    /// Largest non-streamed answer read from a provider: a provider that never stops sending
    /// fails the try instead of filling the gateway's memory.
    #[serde(default = "default_max_answer")]
    pub max_answer: Size,
    /// How long a shutdown waits for in-flight requests, streams included.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Span,
    /// How long a client has to send a request's headers, counted from when the connection
    /// is ready for the next one: slow-header clients and idle keep-alive connections are
    /// closed after it.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Span,
    /// Client connections open at once; beyond it the gateway stops accepting until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin_key: None,
            max_body: default_max_body(),
            max_answer: default_max_answer(),
            shutdown_timeout: default_shutdown_timeout(),
            header_timeout: default_header_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_header_timeout() -> Span {
    Span(Duration::from_secs(30))
}

/// Well under the 20k+ descriptors a server is usually allowed, leaving room for upstream
/// connections, state files and MCP children.
fn default_max_connections() -> u32 {
    8192
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> Size {
    Size(32 * 1024 * 1024)
}

/// Embeddings answers grow with inputs times dimensions: 2048 inputs of 3072 floats is well
/// over 100 MB of JSON.
fn default_max_answer() -> Size {
    Size(256 * 1024 * 1024)
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
    /// Google's Gemini API; `base_url` is the API root, the adapter appends `/v1beta/...`.
    Gemini(HttpProviderConfig),
    /// Anthropic's Messages API; `base_url` is the API root, without `/v1`.
    Anthropic(HttpProviderConfig),
    /// Cohere's v2 API; `base_url` is the API root (default `https://api.cohere.com`).
    Cohere(HttpProviderConfig),
    /// Mistral's API; `base_url` includes `/v1` (default `https://api.mistral.ai/v1`).
    Mistral(HttpProviderConfig),
    /// Azure OpenAI: a resource's deployments, addressed by the target's model name.
    Azure(AzureConfig),
    /// The built-in deterministic model.
    Mock(MockConfig),
    /// AWS Bedrock's Converse API, signed with SigV4.
    Bedrock(BedrockConfig),
}

impl ProviderConfig {
    /// The HTTP fields of an HTTP provider (instances, breaker); `None` for the mock.
    pub fn http(&self) -> Option<HttpProviderConfig> {
        match self {
            ProviderConfig::Openai(http)
            | ProviderConfig::Gemini(http)
            | ProviderConfig::Anthropic(http)
            | ProviderConfig::Cohere(http)
            | ProviderConfig::Mistral(http) => Some(http.clone()),
            ProviderConfig::Bedrock(bedrock) => Some(bedrock.http()),
            ProviderConfig::Azure(azure) => Some(azure.http()),
            ProviderConfig::Mock(_) => None,
        }
    }
}

/// `kind: bedrock`. Credentials and region missing here are read once from the standard AWS
/// environment variables when the config loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Defaults to `https://bedrock-runtime.{region}.amazonaws.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub timeout: Option<Span>,
    #[serde(default)]
    pub breaker: BreakerConfig,
}

impl BedrockConfig {
    /// Fills what the file left out from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` and `AWS_REGION` (or `AWS_DEFAULT_REGION`). A session token is taken
    /// from the environment only with the environment's keys, never paired with the file's.
    fn fill_from_env(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if self.region.as_deref().is_none_or(str::is_empty) {
            self.region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
        }
        let unset = |s: &Option<Secret>| s.as_ref().is_none_or(Secret::is_empty);
        if unset(&self.access_key_id) && unset(&self.secret_access_key) {
            self.access_key_id = var("AWS_ACCESS_KEY_ID").map(|v| Secret::from(v.as_str()));
            self.secret_access_key = var("AWS_SECRET_ACCESS_KEY").map(|v| Secret::from(v.as_str()));
            if unset(&self.session_token) {
                self.session_token = var("AWS_SESSION_TOKEN").map(|v| Secret::from(v.as_str()));
            }
        }
    }

    /// The HTTP fields every provider kind shares.
    pub fn http(&self) -> HttpProviderConfig {
        HttpProviderConfig {
            base_url: self.base_url.clone(),
            api_key: None,
            headers: self.headers.clone(),
            timeout: self.timeout,
            discovery: None,
            breaker: self.breaker,
        }
    }
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

/// `kind: azure`: an Azure OpenAI resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The resource's endpoint, e.g. `https://my-resource.openai.azure.com`; no default exists.
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// The `api-version` query every request carries.
    #[serde(default = "default_azure_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub timeout: Option<Span>,
    #[serde(default)]
    pub breaker: BreakerConfig,
}

fn default_azure_api_version() -> String {
    switchboard_providers::azure::DEFAULT_API_VERSION.to_owned()
}

impl AzureConfig {
    /// The fields every HTTP provider shares.
    pub fn http(&self) -> HttpProviderConfig {
        HttpProviderConfig {
            base_url: Some(self.base_url.clone()),
            api_key: self.api_key.clone(),
            headers: self.headers.clone(),
            timeout: self.timeout,
            discovery: None,
            breaker: self.breaker,
        }
    }
}

/// The built-in mock provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    #[serde(default)]
    pub latency: MockLatency,
    /// Share of tries (0 to 1) answered with a 500, to exercise retries and breakers.
    #[serde(default)]
    pub error_rate: f64,
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
    #[error("cannot read {path}: {cause}")]
    Read {
        path: String,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: std::io::Error,
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
        let text = std::fs::read_to_string(path).map_err(|cause| LoadError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Config::parse(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates config text, resolving variables through `lookup`.
    pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, LoadError> {
        // A byte-order mark (some Windows editors write one) is not part of the YAML.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
            LoadError::Invalid(vec![ConfigError::new("", format!("invalid YAML: {e}"))])
        })?;
        // An empty file is far more often a truncated or mis-mounted one than a wish for a
        // gateway with nothing configured.
        if document.is_null() {
            return Err(LoadError::Invalid(vec![ConfigError::new(
                "",
                "the configuration is empty (a gateway needs at least one provider)",
            )]));
        }
        let mut document = document;
        let mut errors = Vec::new();
        interpolate::interpolate(&mut document, "", lookup, &mut errors);
        if !errors.is_empty() {
            return Err(LoadError::Invalid(errors));
        }
        let serde_yaml_ng::Value::Mapping(document) = document else {
            return Err(LoadError::Invalid(vec![ConfigError::new(
                "",
                "the configuration must be a mapping of sections (server, providers, models, ...)",
            )]));
        };
        let mut config = sections::read(document).map_err(LoadError::Invalid)?;
        for provider in config.providers.values_mut() {
            if let ProviderConfig::Bedrock(bedrock) = provider {
                bedrock.fill_from_env(lookup);
            }
        }
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
    fn an_empty_file_is_refused_and_a_byte_order_mark_ignored() {
        for empty in ["", "# only a comment\n", "\u{feff}"] {
            let errors = parse(empty).unwrap_err();
            assert!(
                errors[0].contains("the configuration is empty"),
                "{errors:?}"
            );
        }
        let config = parse("\u{feff}providers:\n  demo: { kind: mock }\n").unwrap();
        assert_eq!(config.server.listen, default_listen());
        assert!(config.keys.is_empty());
    }

    /// One run reports a problem in each section and entry, each at the field it is about,
    /// inside a provider of any kind too.
    #[test]
    fn type_and_field_errors_are_all_reported_with_their_paths() {
        let errors = parse(
            r#"
server: { listn: 127.0.0.1:1 }
providers:
  a: { kind: mock, latency: { first_tokn: 1ms } }
  b: { kind: openai, timeout: soon }
  c: { kind: opnai }
  d: { kind: mock }
models:
  - { name: x, targets: [ { provider: d, model: m, weight: heavy } ] }
  - { name: y, targets: [ { provider: d, model: m } ], stratgy: weighted }
keys:
  - { name: k, key: sk-k, limits: { requests_per_minute: many } }
extra: 1
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = errors
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "extra",
                "server.listn",
                "providers.a.latency.first_tokn",
                "providers.b.timeout",
                "providers.c.kind",
                "models[0].targets[0].weight",
                "models[1].stratgy",
                "keys[0].limits.requests_per_minute",
            ],
            "{errors:#?}"
        );
    }

    /// A secret written where a mapping belongs is named by its path only: `check` output lands
    /// in CI logs.
    #[test]
    fn a_misplaced_secret_is_not_repeated_in_the_error() {
        let errors = parse(
            r#"
providers:
  a: { kind: openai, api_key: sk-fine, headers: "Authorization: Bearer sk-HEADER-SECRET" }
keys: [ sk-KEY-SECRET ]
"#,
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "providers.a.headers: invalid type: a string, expected a map",
                "keys[0]: invalid type: a string, expected a mapping",
            ]
        );
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
    fn gemini_provider_loads_with_the_common_fields() {
        let config = parse(
            "providers:\n  g: { kind: gemini, api_key: \"${TEAM_KEY}\", base_url: \"https://gemini.test\", headers: { x-goog-user-project: p }, timeout: 20s }\n",
        )
        .unwrap();
        let ProviderConfig::Gemini(http) = &config.providers["g"] else {
            panic!("gemini config")
        };
        assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
        assert_eq!(http.base_url.as_deref(), Some("https://gemini.test"));
        assert_eq!(http.timeout.unwrap().0, Duration::from_secs(20));
        let errors =
            parse("providers:\n  g: { kind: gemini, base_url: \"ftp://x\", project: p }\n")
                .unwrap_err();
        assert!(errors[0].starts_with("providers.g"), "{errors:?}");
        let errors =
            parse("providers:\n  g: { kind: gemini, base_url: \"ftp://x\" }\n").unwrap_err();
        assert_eq!(
            errors,
            ["providers.g.base_url: must be an http:// or https:// URL"]
        );
    }

    #[test]
    fn anthropic_provider_loads() {
        let config = parse(
            r#"
providers:
  claude: { kind: anthropic, api_key: "${TEAM_KEY}", headers: { anthropic-beta: files-api-2025-04-14 }, timeout: 2m }
  proxy: { kind: anthropic, base_url: "http://127.0.0.1:9000" }
models:
  - name: smart
    targets: [ { provider: claude, model: claude-sonnet-4-5 } ]
"#,
        )
        .unwrap();
        let ProviderConfig::Anthropic(http) = &config.providers["claude"] else {
            panic!("anthropic kind")
        };
        assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
        assert_eq!(http.timeout.unwrap().0, Duration::from_secs(120));
        assert!(matches!(
            config.providers["proxy"],
            ProviderConfig::Anthropic(_)
        ));
        let errors =
            parse("providers:\n  c: { kind: anthropic, base_url: \"ftp://x\", region: us }\n")
                .unwrap_err();
        assert!(errors[0].starts_with("providers.c"), "{errors:?}");
        assert!(errors[0].contains("region"), "{errors:?}");
        let errors =
            parse("providers:\n  c: { kind: anthropic, base_url: \"ftp://x\" }\n").unwrap_err();
        assert_eq!(
            errors,
            ["providers.c.base_url: must be an http:// or https:// URL"]
        );
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
    fn cohere_provider_loads_with_the_common_fields() {
        let config = parse(
            "providers:\n  co: { kind: cohere, api_key: \"${TEAM_KEY}\", base_url: \"https://api.cohere.com\", headers: { x-client-name: sb }, timeout: 20s }\n",
        )
        .unwrap();
        let ProviderConfig::Cohere(http) = &config.providers["co"] else {
            panic!("cohere kind")
        };
        assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
        assert_eq!(http.timeout, Some(Span(Duration::from_secs(20))));
        let errors = parse("providers:\n  co: { kind: cohere, base_url: \"ftp://x\", model: m }\n")
            .unwrap_err();
        assert!(errors[0].starts_with("providers.co"), "{errors:?}");
        let errors =
            parse("providers:\n  co: { kind: cohere, base_url: \"ftp://x\" }\n").unwrap_err();
        assert_eq!(
            errors,
            ["providers.co.base_url: must be an http:// or https:// URL"]
        );
    }

    #[test]
    fn mistral_provider_loads_with_the_common_fields() {
        let config =
            parse("providers:\n  mi: { kind: mistral, api_key: \"${TEAM_KEY}\", timeout: 5s }\n")
                .unwrap();
        let ProviderConfig::Mistral(http) = &config.providers["mi"] else {
            panic!("mistral kind")
        };
        assert_eq!(http.base_url, None);
        assert_eq!(http.api_key.as_ref().unwrap().expose(), "sk-team");
        let errors = parse("providers:\n  mi: { kind: mistral, timeout: 0s }\n").unwrap_err();
        assert_eq!(errors, ["providers.mi.timeout: must be longer than 0s"]);
    }

    #[test]
    fn azure_provider_loads_with_its_api_version() {
        let config = parse(
            "providers:\n  az: { kind: azure, base_url: \"https://r.openai.azure.com\", api_key: \"${TEAM_KEY}\", headers: { x-ms-client-request-id: a } }\n  az2: { kind: azure, base_url: \"https://r.openai.azure.com\", api_version: 2025-01-01-preview, timeout: 30s }\n",
        )
        .unwrap();
        let ProviderConfig::Azure(az) = &config.providers["az"] else {
            panic!("azure kind")
        };
        assert_eq!(az.api_version, "2024-10-21");
        assert_eq!(az.http().api_key.unwrap().expose(), "sk-team");
        let ProviderConfig::Azure(az2) = &config.providers["az2"] else {
            panic!("azure kind")
        };
        assert_eq!(az2.api_version, "2025-01-01-preview");
        let errors = parse("providers:\n  az: { kind: azure, api_key: k }\n").unwrap_err();
        assert!(
            errors[0].starts_with("providers.az") && errors[0].contains("base_url"),
            "{errors:?}"
        );
        let errors = parse("providers:\n  az: { kind: azure, base_url: \"https://r\", api_version: \"a b\", deployment: x }\n").unwrap_err();
        assert!(errors[0].contains("deployment"), "{errors:?}");
        let errors = parse(
            "providers:\n  az: { kind: azure, base_url: \"https://r\", api_version: \"a&b\" }\n",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            ["providers.az.api_version: must be a version such as 2024-10-21"]
        );
    }

    #[test]
    fn invalid_yaml_is_an_error_not_a_panic() {
        assert!(parse("models: [ {").is_err());
    }

    fn bedrock(config: &Config) -> &BedrockConfig {
        match &config.providers["aws"] {
            ProviderConfig::Bedrock(bedrock) => bedrock,
            other => panic!("not bedrock: {other:?}"),
        }
    }

    #[test]
    fn bedrock_loads_from_the_file() {
        let config = parse(
            r#"
providers:
  aws:
    kind: bedrock
    region: eu-west-1
    access_key_id: AKIAEXAMPLEKEY123456
    secret_access_key: "${TEAM_KEY}"
    session_token: token
    base_url: http://127.0.0.1:9999
    headers: { x-team: a }
    timeout: 30s
"#,
        )
        .unwrap();
        let aws = bedrock(&config);
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.secret_access_key.as_ref().unwrap().expose(), "sk-team");
        assert_eq!(aws.session_token.as_ref().unwrap().expose(), "token");
        assert_eq!(aws.http().timeout, Some(Span(Duration::from_secs(30))));
        assert!(parse("providers: { aws: { kind: bedrock, api_key: x } }").is_err());
    }

    #[test]
    fn bedrock_reads_missing_credentials_and_region_from_the_aws_environment() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
            "AWS_DEFAULT_REGION" => Some("us-west-2".to_owned()),
            _ => None,
        };
        let config = Config::parse("providers: { aws: { kind: bedrock } }", &env).unwrap();
        let aws = bedrock(&config);
        assert_eq!(aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKIAENV");
        assert_eq!(aws.session_token.as_ref().unwrap().expose(), "env-token");
        // Keys from the file are never paired with the environment's session token.
        let config = Config::parse(
            "providers: { aws: { kind: bedrock, region: eu-west-1, access_key_id: AKIAFILE, secret_access_key: file } }",
            &env,
        )
        .unwrap();
        let aws = bedrock(&config);
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKIAFILE");
        assert!(aws.session_token.is_none());
    }

    #[test]
    fn bedrock_without_region_or_keys_names_each_missing_field() {
        let errors = parse("providers: { aws: { kind: bedrock, region: US East } }").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("providers.aws.region: "),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("providers.aws.access_key_id: required"));
        assert!(errors[2].contains("AWS_SECRET_ACCESS_KEY"));
        let errors = parse("providers: { aws: { kind: bedrock } }").unwrap_err();
        assert!(errors[0].contains("AWS_REGION"), "{errors:?}");
    }
}
