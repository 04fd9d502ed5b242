//! The configured providers at run time: each one's backend (an adapter over HTTP, or the mock),
//! its instances with their breakers, and the sending, streaming and scrubbing below them.
//!
//! Translation stays in `switchboard-providers`; this layer owns every socket to a provider.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use switchboard_providers::anthropic::{self, Anthropic};
use switchboard_providers::azure::Azure;
use switchboard_providers::bedrock::{self, AwsCredentials, Bedrock};
use switchboard_providers::cohere::{self, Cohere};
use switchboard_providers::gemini::{self, Gemini};
use switchboard_providers::mistral::{self, Mistral};
use switchboard_providers::openai::{self, OpenAi};
use switchboard_providers::{Adapter, Endpoint};

use crate::config::{
    Allowed, BedrockConfig, HttpProviderConfig, MockConfig, MockLatency, ProviderConfig,
};
use crate::error::ApiError;

/// Whole-call limit when a provider sets no `timeout:`, as long as the OpenAI SDKs wait.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

mod breaker;
pub mod discovery;
pub mod exchange;
mod failure;
pub mod holds;
pub mod instances;
mod plain;
mod pool;
pub mod rebuild;
mod redact;
mod send;
mod stream;

#[cfg(test)]
pub use crate::tls::install_tls_provider;
pub use breaker::State as BreakerState;
pub use failure::Failure;
pub use plain::{Response, TransportError};
pub use redact::redact;
pub use send::{Client, Clients, read_body, send};
pub use stream::Pace;

use send::UrlCache;

use instances::Instances;

/// One entry of `providers:`, ready to serve.
pub struct Upstream {
    pub name: String,
    pub backend: Backend,
    /// Where tries go: the configured endpoint, discovered addresses, registered services.
    pub instances: Instances,
    /// Models this provider rate limited (429), left alone until its `Retry-After` passes.
    pub holds: holds::Holds,
    /// Its entry of `providers:`, which a reload compares with the new one.
    config: ProviderConfig,
}

/// How an upstream answers.
pub enum Backend {
    /// A real provider over HTTP, spoken to through its adapter.
    Http(Box<HttpBackend>),
    /// The built-in mock model.
    Mock(MockBackend),
}

/// A provider reached over HTTP.
pub struct HttpBackend {
    pub adapter: Box<dyn Adapter>,
    pub endpoint: Endpoint,
    pub timeout: Duration,
    /// Every credential this backend sends (key and header values), to scrub from errors.
    pub secrets: Arc<[String]>,
    /// Where instances may be registered at run time; `None`: nowhere.
    pub registration: Option<Allowed>,
    urls: UrlCache,
}

impl HttpBackend {
    /// A backend speaking through `adapter`, at `base_url` unless the config names another.
    fn backend(
        http: &HttpProviderConfig,
        adapter: Box<dyn Adapter>,
        default_base_url: &str,
    ) -> Result<Backend, String> {
        let mut headers = HeaderMap::new();
        for (key, value) in &http.headers {
            let key =
                HeaderName::from_bytes(key.as_bytes()).map_err(|e| format!("header {key}: {e}"))?;
            let mut value =
                HeaderValue::from_str(value.expose()).map_err(|e| format!("header {key}: {e}"))?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        let base_url = http.base_url.as_deref().unwrap_or(default_base_url);
        // Short values would redact ordinary words; real credentials are long. The credential
        // of an `Authorization: Bearer …` header is a secret of its own, so that a masked echo
        // of it is caught as an `api_key`'s is.
        let secrets: Vec<String> = http
            .api_key
            .iter()
            .chain(http.headers.values())
            .map(|s| s.expose())
            .flat_map(|s| {
                let credential = s
                    .strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("Basic "));
                std::iter::once(s).chain(credential)
            })
            .map(str::trim)
            .filter(|s| s.len() >= 8)
            .map(str::to_owned)
            .collect();
        let registration = match &http.registration {
            Some(config) => Some(Allowed::parse(&config.allow)?),
            None => None,
        };
        Ok(Backend::Http(Box::new(HttpBackend {
            adapter,
            endpoint: Endpoint {
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key: http
                    .api_key
                    .as_ref()
                    .filter(|k| !k.is_empty())
                    .map(|k| k.expose().to_owned()),
                headers,
            },
            timeout: http.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
            secrets: secrets.into(),
            registration,
            urls: UrlCache::default(),
        })))
    }

    /// Whether an instance may be registered at `url` (already checked to be an http(s) URL with
    /// a host); the refusal says why, naming the rule, to show the operator.
    pub fn admits(&self, provider: &str, url: &http::Uri) -> Result<(), String> {
        let host = url.host().unwrap_or_default();
        match &self.registration {
            None => Err(format!(
                "Provider '{provider}' takes no registrations: set \
                 providers.{provider}.registration.allow to the networks or hosts its instances \
                 may be at (they are sent its credentials)."
            )),
            Some(allowed) if !allowed.admits(host) => Err(format!(
                "'{url}' may not be registered for provider '{provider}': {host} is in none of \
                 providers.{provider}.registration.allow {:?}.",
                allowed.written()
            )),
            Some(_) => Ok(()),
        }
    }

    /// Removes this backend's credentials from an error, in case the provider echoed them.
    pub fn scrub(&self, error: ApiError) -> ApiError {
        redact(error, &self.secrets)
    }
}

/// The built-in mock: its delays, and the share of tries it fails.
#[derive(Debug, Default)]
pub struct MockBackend {
    pub delays: MockDelays,
    /// Share of tries that fail, for testing resilience.
    error_rate: f64,
    /// Tries so far. Failures are spread evenly over them rather than drawn by chance, so a
    /// rate holds exactly and tests built on it never hit an unlucky run (five failures in a
    /// row at 50% would open a breaker about 3% of the time).
    tries: AtomicU64,
}

/// How long the mock takes to answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockDelays {
    pub first_token: Duration,
    pub per_chunk: Duration,
}

impl MockBackend {
    /// This try's outcome before the mock answers: try `n` fails when it takes the count of
    /// failures, `floor(n × error_rate)`, one higher.
    pub fn try_once(&self, provider: &str) -> Result<(), Failure> {
        if self.error_rate <= 0.0 {
            return Ok(());
        }
        let n = self.tries.fetch_add(1, Ordering::Relaxed);
        let failures = |tries: u64| (tries as f64 * self.error_rate).floor() as u64;
        if failures(n + 1) > failures(n) {
            return Err(Failure::from(ApiError::bad_gateway(format!(
                "provider '{provider}' failed (injected by error_rate)"
            ))));
        }
        Ok(())
    }
}

/// A provider's config that cannot be turned into a working upstream.
#[derive(Debug, thiserror::Error)]
#[error("providers.{provider}: {message}")]
pub struct UpstreamError {
    provider: String,
    message: String,
}

/// Builds every upstream from `providers:`.
pub fn build_all(
    configs: &BTreeMap<String, ProviderConfig>,
) -> Result<BTreeMap<String, Arc<Upstream>>, UpstreamError> {
    rebuild::rebuild_all(configs, &BTreeMap::new())
}

impl Upstream {
    fn new(name: &str, config: &ProviderConfig) -> Result<Self, UpstreamError> {
        let error = |message: String| UpstreamError {
            provider: name.to_owned(),
            message,
        };
        let backend = match config {
            ProviderConfig::Mock(mock) => Backend::Mock(MockBackend::from(mock)),
            ProviderConfig::Openai(config) => {
                let adapter: Box<dyn Adapter> = if config.serves_responses() {
                    Box::new(openai::WithResponses)
                } else {
                    Box::new(OpenAi)
                };
                HttpBackend::backend(&config.http, adapter, openai::DEFAULT_BASE_URL)
                    .map_err(error)?
            }
            ProviderConfig::Bedrock(config) => bedrock_backend(config).map_err(error)?,
            ProviderConfig::Gemini(http) => {
                HttpBackend::backend(http, Box::new(Gemini), gemini::DEFAULT_BASE_URL)
                    .map_err(error)?
            }
            ProviderConfig::Anthropic(http) => {
                HttpBackend::backend(http, Box::new(Anthropic), anthropic::DEFAULT_BASE_URL)
                    .map_err(error)?
            }
            ProviderConfig::Cohere(http) => {
                HttpBackend::backend(http, Box::new(Cohere), cohere::DEFAULT_BASE_URL)
                    .map_err(error)?
            }
            // `base_url` is required for Azure, so the default is never used.
            ProviderConfig::Azure(azure) => HttpBackend::backend(
                &azure.http(),
                Box::new(Azure::new(azure.api_version.clone())),
                "",
            )
            .map_err(error)?,
            ProviderConfig::Mistral(http) => {
                HttpBackend::backend(http, Box::new(Mistral), mistral::DEFAULT_BASE_URL)
                    .map_err(error)?
            }
        };
        let breaker = config.http().map(|h| h.breaker).unwrap_or_default();
        let discovered = config.http().is_some_and(|h| h.discovery.is_some());
        let instances = match &backend {
            // Discovery fills the list once the gateway serves.
            Backend::Http(_) if discovered => Instances::empty(breaker),
            Backend::Http(http) => Instances::fixed(http.endpoint.clone(), breaker),
            Backend::Mock(_) => Instances::fixed(
                Endpoint {
                    base_url: format!("mock://{name}"),
                    ..Endpoint::default()
                },
                breaker,
            ),
        };
        Ok(Upstream {
            name: name.to_owned(),
            backend,
            instances,
            holds: holds::Holds::default(),
            config: config.clone(),
        })
    }
}

/// A Bedrock backend: the common HTTP fields, an adapter holding the credentials, and every
/// credential among the secrets scrubbed from errors.
fn bedrock_backend(config: &BedrockConfig) -> Result<Backend, String> {
    let expose = |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.expose().to_owned());
    // Validation guarantees these; a missing one is a bug upstream of here, not a panic.
    let region = config.region.clone().ok_or("region is required")?;
    let credentials = AwsCredentials {
        access_key_id: expose(&config.access_key_id).ok_or("access_key_id is required")?,
        secret_access_key: expose(&config.secret_access_key)
            .ok_or("secret_access_key is required")?,
        session_token: expose(&config.session_token).filter(|t| !t.is_empty()),
    };
    let mut secrets = vec![
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
    ];
    secrets.extend(credentials.session_token.clone());
    let adapter = Box::new(Bedrock::new(credentials, region.as_str()));
    let mut backend =
        HttpBackend::backend(&config.http(), adapter, &bedrock::default_base_url(&region))?;
    if let Backend::Http(http) = &mut backend {
        secrets.extend(http.secrets.iter().cloned());
        http.secrets = secrets.into();
    }
    Ok(backend)
}

impl From<&MockConfig> for MockBackend {
    fn from(config: &MockConfig) -> Self {
        let latency: &MockLatency = &config.latency;
        MockBackend {
            delays: MockDelays {
                first_token: latency.first_token.map(|s| s.0).unwrap_or_default(),
                per_chunk: latency.per_chunk.map(|s| s.0).unwrap_or_default(),
            },
            error_rate: config.error_rate,
            tries: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_mock_fails_its_share_of_tries_evenly() {
        let config = MockConfig {
            error_rate: 0.5,
            ..MockConfig::default()
        };
        let mock = MockBackend::from(&config);
        let failed: Vec<bool> = (0..10).map(|_| mock.try_once("m").is_err()).collect();
        assert_eq!(failed.iter().filter(|f| **f).count(), 5);
        assert!(
            failed.windows(2).all(|pair| pair[0] != pair[1]),
            "{failed:?}"
        );
        let third = MockBackend::from(&MockConfig {
            error_rate: 0.3,
            ..MockConfig::default()
        });
        let failures = (0..1000).filter(|_| third.try_once("m").is_err()).count();
        assert_eq!(failures, 300);
        let never = MockBackend::from(&MockConfig::default());
        assert!((0..100).all(|_| never.try_once("m").is_ok()));
    }

    #[test]
    fn gemini_defaults_to_googles_api_root() {
        let config = Config::parse(
            "providers:\n  g: { kind: gemini, api_key: AIza-long-enough-key }\n",
            &|_| None,
        )
        .unwrap();
        let upstreams = build_all(&config.providers).unwrap();
        let Backend::Http(backend) = &upstreams["g"].backend else {
            panic!("http backend")
        };
        assert_eq!(
            backend.endpoint.base_url,
            "https://generativelanguage.googleapis.com"
        );
        assert_eq!(&backend.secrets[..], ["AIza-long-enough-key"]);
    }

    #[test]
    fn errors_are_scrubbed_of_the_key_and_every_header_value() {
        let config = Config::parse(
            "providers:\n  p: { kind: openai, api_key: sk-long-enough-key, headers: { api-key: azure-style-secret, x-team: a } }\n",
            &|_| None,
        )
        .unwrap();
        let upstreams = build_all(&config.providers).unwrap();
        let Backend::Http(backend) = &upstreams["p"].backend else {
            panic!("http backend")
        };
        let mut error =
            ApiError::bad_gateway("echo sk-long-enough-key and azure-style-secret, team a");
        error.code = Some("azure-style-secret".into());
        let scrubbed = backend.scrub(error);
        assert_eq!(
            scrubbed.message, "echo <redacted> and <redacted>, team a",
            "short values are left alone"
        );
        assert_eq!(scrubbed.code.as_deref(), Some("<redacted>"));

        // A key given as an `Authorization` header is caught masked too.
        let config = Config::parse(
            "providers:\n  p: { kind: openai, headers: { authorization: 'Bearer sk-proj-0123456789abcdef' } }\n",
            &|_| None,
        )
        .unwrap();
        let upstreams = build_all(&config.providers).unwrap();
        let Backend::Http(backend) = &upstreams["p"].backend else {
            panic!("http backend")
        };
        let scrubbed = backend.scrub(ApiError::bad_gateway(
            "Incorrect API key provided: sk-proj-********cdef.",
        ));
        assert_eq!(scrubbed.message, "Incorrect API key provided: <redacted>.");
    }

    #[test]
    fn bedrock_errors_are_scrubbed_of_the_secret_key_and_session_token() {
        let config = Config::parse(
            "providers:\n  aws: { kind: bedrock, region: us-east-1, access_key_id: AKIAEXAMPLEKEY123456, secret_access_key: wJalrXUtnFEMI/K7MDENG, session_token: FwoGZXIvYXdzEXAMPLE }\n",
            &|_| None,
        )
        .unwrap();
        let upstreams = build_all(&config.providers).unwrap();
        let Backend::Http(backend) = &upstreams["aws"].backend else {
            panic!("http backend")
        };
        assert_eq!(
            backend.endpoint.base_url,
            "https://bedrock-runtime.us-east-1.amazonaws.com"
        );
        let error = ApiError::bad_gateway(
            "key AKIAEXAMPLEKEY123456 secret wJalrXUtnFEMI/K7MDENG token FwoGZXIvYXdzEXAMPLE",
        );
        assert_eq!(
            backend.scrub(error).message,
            "key <redacted> secret <redacted> token <redacted>"
        );
    }
}
