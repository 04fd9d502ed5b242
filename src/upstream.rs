//! The configured providers at run time, and the one place the gateway sends HTTP to them.
//!
//! Translation stays in `switchboard-providers`; here live the client, timeouts and the mapping
//! of transport failures to 502/504.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
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
    BedrockConfig, HttpProviderConfig, MockConfig, MockLatency, ModelConfig, ProviderConfig,
};
use crate::error::ApiError;
use crate::resilience::Failure;
use crate::routing::Route;

/// Whole-call limit when a provider sets no `timeout:`, as long as the OpenAI SDKs wait.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub mod discovery;
pub mod instances;
mod plain;
mod pool;

pub use plain::{Response, TransportError};

use instances::Instances;

/// One entry of `providers:`, ready to serve.
pub struct Upstream {
    pub name: String,
    pub backend: Backend,
    /// Where tries go: the configured endpoint, discovered addresses, registered services.
    pub instances: Instances,
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
            urls: UrlCache::default(),
        })))
    }

    /// Removes this backend's credentials from an error, in case the provider echoed them.
    pub fn scrub(&self, error: ApiError) -> ApiError {
        redact(error, &self.secrets)
    }
}

/// Replaces every secret in every text field of an error.
pub fn redact(mut error: ApiError, secrets: &[String]) -> ApiError {
    for secret in secrets {
        for text in [
            Some(&mut error.message),
            Some(&mut error.kind),
            error.param.as_mut(),
            error.code.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            redact_text(text, secret);
        }
    }
    error
}

/// How much of a long secret identifies it when a provider echoes it masked, as OpenAI does
/// (`Incorrect API key provided: sk-proj-********abcd`).
const ECHOED_PREFIX: usize = 8;

const REDACTED: &str = "<redacted>";

/// Takes `secret` out of `text`, whole or masked: a word that hides part of it behind `*`, `...`
/// or `…` but shows only its beginning and end (`sk-****1Vwx`, `sk-tes...3456`, `****1Vwx`), and,
/// for a secret shaped like an API key, any word that starts with its first characters
/// (`sk-proj-…`). Other secrets (URLs, `Bearer …` header values) are not matched by prefix, as
/// their first characters would match ordinary words.
fn redact_text(text: &mut String, secret: &str) {
    if secret.is_empty() {
        return;
    }
    if text.contains(secret) {
        *text = text.replace(secret, REDACTED);
    }
    let key_like = secret.len() >= 2 * ECHOED_PREFIX
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let prefix = secret.get(..ECHOED_PREFIX).filter(|_| key_like);
    // Forward only: what was put in is never searched again.
    let mut from = 0;
    while let Some((start, end)) = next_word(text, from) {
        let word = &text[start..end];
        let put_in = text[..start].ends_with('<') && text[end..].starts_with('>');
        let hit = prefix.is_some_and(|p| word.starts_with(p)) || masks(word, secret);
        if hit && !put_in {
            text.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        } else {
            from = end;
        }
    }
}

/// The next run of characters a key or its mask is written with, from `from`; a `.` ending it
/// ends the sentence, unless it is part of an ellipsis.
fn next_word(text: &str, from: usize) -> Option<(usize, usize)> {
    let in_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '…');
    let start = from + text[from..].find(in_word)?;
    let end = text[start..]
        .find(|c: char| !in_word(c))
        .map_or(text.len(), |n| start + n);
    let word = &text[start..end];
    let end = if word.ends_with('.') && !word.ends_with("...") {
        end - 1
    } else {
        end
    };
    Some((start, end.max(start + 1)))
}

/// Whether `word` is `secret` with its middle masked: what shows before the mask begins it, what
/// shows after ends it, and at least four of its characters show.
fn masks(word: &str, secret: &str) -> bool {
    let is_mask = |c: char| matches!(c, '*' | '…');
    let word = word.replace("...", "…");
    let (Some(first), Some(last)) = (word.find(is_mask), word.rfind(is_mask)) else {
        return false;
    };
    let head = &word[..first];
    let tail = &word[last + word[last..].chars().next().map_or(1, char::len_utf8)..];
    tail.len() >= 2
        && head.len() + tail.len() >= 4
        && head.len() + tail.len() < secret.len()
        && secret.starts_with(head)
        && secret.ends_with(tail)
}

/// Parsed upstream URLs by URI. reqwest wants a `Url`; parsing one (IDNA and all) for every
/// request cost more than the rest of building the request, and an upstream has few distinct URLs.
#[derive(Default)]
struct UrlCache(Mutex<HashMap<http::Uri, reqwest::Url>>);

/// More distinct URLs than this (model names in paths) and the cache starts over.
const URL_CACHE_LIMIT: usize = 1024;

impl UrlCache {
    fn get(&self, uri: &http::Uri) -> Result<reqwest::Url, String> {
        if let Some(url) = self.0.lock().ok().and_then(|urls| urls.get(uri).cloned()) {
            return Ok(url);
        }
        let url = reqwest::Url::parse(&uri.to_string()).map_err(|e| e.to_string())?;
        if let Ok(mut urls) = self.0.lock() {
            if urls.len() >= URL_CACHE_LIMIT {
                urls.clear();
            }
            urls.insert(uri.clone(), url.clone());
        }
        Ok(url)
    }
}

/// The mock's delays.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockBackend {
    pub first_token: Duration,
    pub per_chunk: Duration,
    /// Share of tries that fail with a 500, for testing resilience.
    pub error_rate: f64,
}

impl MockBackend {
    /// Whether this try fails, by `error_rate`.
    pub fn injects_failure(&self) -> bool {
        self.error_rate > 0.0 && rand::random::<f64>() < self.error_rate
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
    configs
        .iter()
        .map(|(name, config)| Ok((name.clone(), Arc::new(Upstream::new(name, config)?))))
        .collect()
}

impl Upstream {
    fn new(name: &str, config: &ProviderConfig) -> Result<Self, UpstreamError> {
        let error = |message: String| UpstreamError {
            provider: name.to_owned(),
            message,
        };
        let backend = match config {
            ProviderConfig::Mock(mock) => Backend::Mock(MockBackend::from(mock)),
            ProviderConfig::Openai(http) => {
                HttpBackend::backend(http, Box::new(OpenAi), openai::DEFAULT_BASE_URL)
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
            first_token: latency.first_token.map(|s| s.0).unwrap_or_default(),
            per_chunk: latency.per_chunk.map(|s| s.0).unwrap_or_default(),
            error_rate: config.error_rate,
        }
    }
}

/// HTTP clients by connect timeout: reqwest sets it per client, and models may differ.
pub struct Clients {
    default: Client,
    by_connect: HashMap<Duration, Client>,
}

/// The clients for one connect timeout: hyper's own for plain HTTP, reqwest for the rest.
pub struct Client {
    reqwest: reqwest::Client,
    /// The most a non-streamed answer may hold.
    max_answer: usize,
    /// `None` when a proxy is configured, which only reqwest honours.
    plain: Option<plain::PlainClient>,
}

impl Clients {
    /// One client per distinct `timeouts.connect` in `models`, and the default one; none reads
    /// a non-streamed answer past `max_answer` bytes.
    pub fn new(models: &[ModelConfig], max_answer: usize) -> Result<Self, reqwest::Error> {
        let mut by_connect = HashMap::new();
        for connect in models.iter().filter_map(|m| m.timeouts.connect) {
            if let std::collections::hash_map::Entry::Vacant(slot) = by_connect.entry(connect.0) {
                slot.insert(Client::new(connect.0, max_answer)?);
            }
        }
        Ok(Clients {
            default: Client::new(DEFAULT_CONNECT_TIMEOUT, max_answer)?,
            by_connect,
        })
    }

    /// The reqwest client used when nothing asks for another connect timeout.
    pub fn default_client(&self) -> &reqwest::Client {
        &self.default.reqwest
    }

    /// The client for a route's connect timeout.
    pub fn for_route(&self, route: &Route) -> &Client {
        route
            .timeouts
            .connect
            .and_then(|c| self.by_connect.get(&c.0))
            .unwrap_or(&self.default)
    }
}

impl Client {
    fn new(connect_timeout: Duration, max_answer: usize) -> Result<Self, reqwest::Error> {
        let plain = (!plain::proxy_configured())
            .then(|| plain::PlainClient::new(connect_timeout, POOL_IDLE_TIMEOUT));
        Ok(Client {
            reqwest: reqwest_client(connect_timeout)?,
            max_answer,
            plain,
        })
    }
}

/// How long connecting may take when a model sets no `timeouts.connect`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle upstream connection is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A reqwest client for upstreams.
fn reqwest_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default TLS provider; installing one twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        // Retries and fallbacks are the gateway's decision, and a POST must not be redirected.
        .retry(reqwest::retry::never())
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .connect_timeout(connect_timeout)
        .build()
}

/// Sends one request and returns the provider's successful response. Transport failures become
/// 502 (unreachable) or 504 (too slow); an error status is translated by the adapter and scrubbed
/// of this backend's credentials.
pub async fn send(
    client: &Client,
    upstream: &str,
    backend: &HttpBackend,
    request: http::Request<Bytes>,
    deadline: Instant,
) -> Result<Response, Failure> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let timeout = backend.timeout.min(remaining);
    let response = match &client.plain {
        Some(plain) if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) => plain
            .send(request, Instant::now() + timeout)
            .await
            .map_err(|e| transport_error(upstream, &e))?,
        _ => via_reqwest(&client.reqwest, upstream, backend, request, timeout).await?,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let body = read_body(client, upstream, response).await?;
    let error = backend.adapter.error_response(status.as_u16(), &body);
    let mut error = backend.scrub(error.into());
    // The translated status: Gemini says a key is invalid with a 400 its adapter makes a 401.
    if matches!(error.status.as_u16(), 401 | 403) {
        // Said plainly: the provider's own words ("Incorrect API key provided") would tell the
        // client its key is wrong.
        error.message = format!(
            "provider '{upstream}' refused the gateway's credentials (HTTP {}): {}",
            error.status.as_u16(),
            error.message
        );
    }
    let mut failure = Failure::from_error(error);
    failure.retry_after = retry_after;
    Err(failure)
}

/// How long an upstream asked to be left alone: OpenAI's and Azure's `retry-after-ms`, else
/// `Retry-After` in seconds (fractions too, as the OpenAI SDKs read it) or as an HTTP date.
fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = |text: &str, scale: f64| {
        let value = text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)?;
        Duration::try_from_secs_f64(value / scale).ok()
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| seconds(v, 1000.0)) {
        return Some(ms);
    }
    let value = header("retry-after")?;
    seconds(value, 1.0).or_else(|| {
        let at = httpdate::parse_http_date(value).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

async fn via_reqwest(
    client: &reqwest::Client,
    upstream: &str,
    backend: &HttpBackend,
    request: http::Request<Bytes>,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let url = backend.urls.get(&parts.uri).map_err(|e| {
        ApiError::bad_gateway(format!("invalid URL for provider '{upstream}': {e}"))
    })?;
    let mut request = reqwest::Request::new(parts.method, url);
    *request.headers_mut() = parts.headers;
    *request.body_mut() = Some(reqwest::Body::from(body));
    *request.timeout_mut() = Some(timeout);
    let response = client
        .execute(request)
        .await
        .map_err(|e| transport_error(upstream, &e.into()))?;
    Ok(Response::Reqwest(response))
}

/// Reads a whole upstream body within the client's bound, mapping a failure midway like a
/// failed send.
pub async fn read_body(
    client: &Client,
    upstream: &str,
    response: Response,
) -> Result<Bytes, ApiError> {
    response
        .bytes(client.max_answer)
        .await
        .map_err(|e| transport_error(upstream, &e))
}

/// The client-facing error for a failed exchange with a provider.
pub fn transport_error(upstream: &str, error: &TransportError) -> ApiError {
    match error {
        TransportError::Timeout => {
            ApiError::gateway_timeout(format!("provider '{upstream}' did not answer in time"))
        }
        TransportError::Connect => {
            ApiError::bad_gateway(format!("cannot connect to provider '{upstream}'"))
        }
        TransportError::Tls(why) => {
            ApiError::bad_gateway(format!("TLS with provider '{upstream}' failed: {why}"))
        }
        TransportError::TooLarge(limit) => ApiError::bad_gateway(format!(
            "provider '{upstream}' answered with more than {} (server.max_answer)",
            bytesize::ByteSize::b(*limit as u64)
        )),
        TransportError::Other(text) => {
            ApiError::bad_gateway(format!("request to provider '{upstream}' failed: {text}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn retry_after_in_milliseconds_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let of = |pairs: &[(&'static str, &str)]| {
            let mut headers = http::HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            retry_after(&headers, now)
        };
        assert_eq!(of(&[("retry-after", "3")]), Some(Duration::from_secs(3)));
        assert_eq!(
            of(&[("retry-after", "1.5")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            of(&[("retry-after-ms", "250"), ("retry-after", "3")]),
            Some(Duration::from_millis(250))
        );
        let in_five = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(
            of(&[("retry-after", &in_five)]),
            Some(Duration::from_secs(5))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(of(&[("retry-after", &past)]), Some(Duration::ZERO));
        assert_eq!(of(&[("retry-after", "soon")]), None);
        assert_eq!(of(&[("retry-after", "-1")]), None);
        assert_eq!(of(&[]), None);
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
    fn a_masked_echo_of_a_long_secret_is_taken_out_too() {
        let secret = "sk-upstream-0123456789abcdef7d6c".to_owned();
        let error = ApiError::bad_gateway(
            "Incorrect API key provided: sk-upstr***************7d6c. You can find your API key \
             at https://platform.openai.com; or 'sk-upstream-01...', or sk-upstream-0123456789abcdef7d6c",
        );
        let message = redact(error, std::slice::from_ref(&secret)).message;
        assert_eq!(
            message,
            "Incorrect API key provided: <redacted>. You can find your API key at \
             https://platform.openai.com; or '<redacted>', or <redacted>",
            "the sentence keeps its full stop"
        );
        // Masks that show less of the beginning, or only the end.
        let secret = "sk-proj-Abc123def456ghi789jkl1Vwx".to_owned();
        let message = redact(
            ApiError::bad_gateway(
                "a sk-****1Vwx b sk-pro****1Vwx c sk-*****…1Vwx d ****1Vwx e [sk-proj-…901****] \
                 f sk-tes...3456 g ****9999 h sk-other-key",
            ),
            std::slice::from_ref(&secret),
        )
        .message;
        assert_eq!(
            message,
            "a <redacted> b <redacted> c <redacted> d <redacted> e [<redacted>] \
             f sk-tes...3456 g ****9999 h sk-other-key"
        );
        // A short secret is caught masked too.
        let message = redact(
            ApiError::bad_gateway("key sk-****etC or sk-secretC."),
            &["sk-secretC".to_owned()],
        )
        .message;
        assert_eq!(message, "key <redacted> or <redacted>.");
        let short = redact(
            ApiError::bad_gateway("the key abc123 and abc1234"),
            &["abc123".to_owned()],
        )
        .message;
        assert_eq!(
            short, "the key <redacted> and <redacted>4",
            "short keys: whole matches only"
        );
        // What is put in is never searched again, even when the key begins like it.
        let odd = "redacted-0123456789abcdef".to_owned();
        let message = redact(
            ApiError::bad_gateway("bad key redacted-01**** and redacted-0123456789abcdef"),
            std::slice::from_ref(&odd),
        )
        .message;
        assert_eq!(message, "bad key <redacted> and <redacted>");
        // A secret that is not key-shaped (a URL header) is matched whole only.
        let url = "https://myapp.example/path".to_owned();
        let message = redact(
            ApiError::bad_gateway("see https://docs.example and https://myapp.example/path"),
            std::slice::from_ref(&url),
        )
        .message;
        assert_eq!(message, "see https://docs.example and <redacted>");
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
