//! `providers:` of config.yaml: one entry per provider, tagged by `kind`, with the HTTP fields
//! every kind shares, DNS discovery targets, breakers, and the mock's latency.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{Secret, Span};

/// One entry of `providers:`, tagged by `kind` (read by `sections`, which names each field's
/// YAML path in its errors).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// OpenAI or any server that speaks its API.
    Openai(OpenaiConfig),
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
            ProviderConfig::Openai(openai) => Some(openai.http.clone()),
            ProviderConfig::Gemini(http)
            | ProviderConfig::Anthropic(http)
            | ProviderConfig::Cohere(http)
            | ProviderConfig::Mistral(http) => Some(http.clone()),
            ProviderConfig::Bedrock(bedrock) => Some(bedrock.http()),
            ProviderConfig::Azure(azure) => Some(azure.http()),
            ProviderConfig::Mock(_) => None,
        }
    }
}

/// `kind: openai`: the HTTP fields, and whether the server serves the Responses API too.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpenaiConfig {
    #[serde(flatten)]
    pub http: HttpProviderConfig,
    /// `responses_api`: whether `/v1/responses` clients' bodies go to `{base_url}/responses` as
    /// written (built-in tools run, reasoning items survive) rather than translated to chat.
    pub responses_api: Option<bool>,
}

impl OpenaiConfig {
    /// `responses_api`, by default on for OpenAI's own API (no `base_url`, or one on
    /// `api.openai.com`) and off elsewhere: most compatible servers have no Responses API.
    pub fn serves_responses(&self) -> bool {
        self.responses_api.unwrap_or_else(|| {
            self.http.base_url.as_deref().is_none_or(|url| {
                reqwest::Url::parse(url).is_ok_and(|u| u.host_str() == Some("api.openai.com"))
            })
        })
    }
}

/// `kind: bedrock`. Credentials and region missing here are read once from the standard AWS
/// environment variables when the config loads.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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
    #[serde(default)]
    pub registration: Option<RegistrationConfig>,
}

impl BedrockConfig {
    /// Fills what the file left out from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` and `AWS_REGION` (or `AWS_DEFAULT_REGION`). A session token is taken
    /// from the environment only with the environment's keys, never paired with the file's.
    pub(super) fn fill_from_env(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
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
            registration: self.registration.clone(),
        }
    }
}

/// A provider reached over HTTP.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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
    /// Where instances may be registered at run time; absent: nowhere.
    #[serde(default)]
    pub registration: Option<RegistrationConfig>,
}

/// `registration:` of a provider: the hosts a service may register an instance at through
/// `POST /admin/upstreams`. An instance is sent the provider's credentials.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// CIDRs (`10.0.0.0/8`), addresses, and host globs (`*.svc.cluster.local`).
    pub allow: Vec<String>,
}

/// `discovery:` of a provider: every A/AAAA record of a name is an instance.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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

/// A `discovery.dns` value read as what it names: a DNS host and the port its instances listen on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsTarget {
    pub host: String,
    pub port: u16,
}

impl DnsTarget {
    /// Splits `host:port`; the host must be a DNS name (or an IPv4 address) and the port not 0.
    pub fn parse(dns: &str) -> Result<DnsTarget, String> {
        let (host, port) = dns
            .rsplit_once(':')
            .ok_or_else(|| format!("{dns:?} must be host:port"))?;
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{port:?} is not a port (1-65535)")),
            Ok(port) => port,
        };
        let labels = host.strip_suffix('.').unwrap_or(host);
        let valid = !labels.is_empty()
            && labels.len() <= 253
            && labels.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid {
            Ok(DnsTarget {
                host: host.to_owned(),
                port,
            })
        } else {
            Err(format!("{host:?} is not a DNS name"))
        }
    }
}

impl DiscoveryConfig {
    /// The parsed `dns` field; a loaded config's always parses (validation checked it).
    pub fn target(&self) -> Result<DnsTarget, String> {
        DnsTarget::parse(&self.dns)
    }
}

fn default_refresh() -> Span {
    Span(Duration::from_secs(10))
}

/// `breaker:` of a provider, applied to each of its instances.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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
    #[serde(default)]
    pub registration: Option<RegistrationConfig>,
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
            registration: self.registration.clone(),
        }
    }
}

/// The built-in mock provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    #[serde(default)]
    pub latency: MockLatency,
    /// Share of tries (0 to 1) answered with a 500, to exercise retries and breakers.
    #[serde(default)]
    pub error_rate: f64,
}

/// Delays that let the mock stand in for a real model in load tests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockLatency {
    /// Before the first token (or the whole answer, when not streamed).
    #[serde(default)]
    pub first_token: Option<Span>,
    /// Between two chunks of a stream.
    #[serde(default)]
    pub per_chunk: Option<Span>,
}

#[cfg(test)]
mod tests {
    use super::DnsTarget;

    #[test]
    fn dns_targets_are_host_and_port() {
        let target = |host: &str, port| {
            Ok(DnsTarget {
                host: host.to_owned(),
                port,
            })
        };
        assert_eq!(
            DnsTarget::parse("llm.svc.local:8000"),
            target("llm.svc.local", 8000)
        );
        assert_eq!(
            DnsTarget::parse("_vllm.example.:80"),
            target("_vllm.example.", 80)
        );
        for bad in [
            "llm",
            "llm:",
            "llm:0",
            "llm:70000",
            ":80",
            "a..b:80",
            "[::1]:80",
            "a b:1",
        ] {
            assert!(DnsTarget::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
