//! The one place the gateway sends HTTP to a provider: clients per connect timeout, the send
//! itself with its deadline, `Retry-After`, bounded body reads and transport errors as 502/504.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::plain::{self, Response, TransportError};
use super::{Failure, HttpBackend};
use crate::config::ModelConfig;
use crate::error::ApiError;

/// Parsed upstream URLs by URI. reqwest wants a `Url`; parsing one (IDNA and all) for every
/// request cost more than the rest of building the request, and an upstream has few distinct URLs.
#[derive(Default)]
pub(super) struct UrlCache(Mutex<HashMap<http::Uri, reqwest::Url>>);

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

/// HTTP clients by connect timeout: reqwest sets it per client, and models may differ.
pub struct Clients {
    default: Arc<Client>,
    by_connect: HashMap<Duration, Arc<Client>>,
}

/// The clients for one connect timeout: hyper's own for plain HTTP, reqwest for the rest.
pub struct Client {
    reqwest: reqwest::Client,
    /// The most a non-streamed answer may hold.
    max_answer: usize,
    connect: Duration,
    /// `None` when a proxy is configured, which only reqwest honours.
    plain: Option<plain::PlainClient>,
}

impl Clients {
    /// One client per distinct `timeouts.connect` in `models`, and the default one; none reads
    /// a non-streamed answer past `max_answer` bytes. Those `previous` (the clients before a
    /// reload) has for the same timeout and bound are kept, with their pooled connections.
    pub fn new(
        models: &[ModelConfig],
        max_answer: usize,
        previous: Option<&Clients>,
    ) -> Result<Self, reqwest::Error> {
        let client = |connect: Duration| -> Result<Arc<Client>, reqwest::Error> {
            let kept = previous.map(|p| p.for_connect_arc(connect));
            match kept.filter(|c| c.max_answer == max_answer && c.connect == connect) {
                Some(client) => Ok(client),
                None => Client::new(connect, max_answer).map(Arc::new),
            }
        };
        let mut by_connect = HashMap::new();
        for connect in models.iter().filter_map(|m| m.timeouts.connect) {
            if let std::collections::hash_map::Entry::Vacant(slot) = by_connect.entry(connect.0) {
                slot.insert(client(connect.0)?);
            }
        }
        Ok(Clients {
            default: client(DEFAULT_CONNECT_TIMEOUT)?,
            by_connect,
        })
    }

    fn for_connect_arc(&self, connect: Duration) -> Arc<Client> {
        match self.by_connect.get(&connect) {
            Some(client) => client.clone(),
            None => self.default.clone(),
        }
    }

    /// The reqwest client used when nothing asks for another connect timeout.
    pub fn default_client(&self) -> &reqwest::Client {
        &self.default.reqwest
    }

    /// The client for a connect timeout (`None`: the default one).
    pub fn for_connect(&self, connect: Option<Duration>) -> &Client {
        connect
            .and_then(|c| self.by_connect.get(&c))
            .unwrap_or(&self.default)
            .as_ref()
    }
}

impl Client {
    fn new(connect_timeout: Duration, max_answer: usize) -> Result<Self, reqwest::Error> {
        let plain = (!plain::proxy_configured())
            .then(|| plain::PlainClient::new(connect_timeout, POOL_IDLE_TIMEOUT));
        Ok(Client {
            reqwest: reqwest_client(connect_timeout)?,
            max_answer,
            connect: connect_timeout,
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
    crate::tls::install_tls_provider();
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
    let mut request = request;
    // The provider sees the try's span as its parent.
    crate::telemetry::traces::inject(request.headers_mut());
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
}
