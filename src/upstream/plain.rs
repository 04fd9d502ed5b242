//! Plain-HTTP upstreams (a local or in-cluster inference server) sent through hyper's pooled
//! client directly, and the response either client hands back.
//!
//! reqwest re-parses the URL twice per request for its redirect layer and wraps every call in
//! retry and redirect services the gateway turns off anyway; on the one-connection hot path that
//! was a tenth of the gateway's CPU. TLS and proxies stay with reqwest.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::CertificateError;

use super::pool::{LeasedBody, Pool, PooledConnection};

/// A pooled HTTP/1.1 client for `http://` upstreams.
pub struct PlainClient(Pool);

/// Whether the environment names a proxy for plain HTTP, which only reqwest honours.
pub fn proxy_configured() -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

impl PlainClient {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        // reqwest's defaults, so a peer that dies silently mid-stream or in the pool is noticed.
        connector.set_keepalive(Some(Duration::from_secs(15)));
        connector.set_keepalive_interval(Some(Duration::from_secs(15)));
        connector.set_keepalive_retries(Some(3));
        #[cfg(target_os = "linux")]
        connector.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        PlainClient(Pool::new(connector, idle_timeout))
    }

    /// Sends one request; the whole exchange, body included, must be over by `until`.
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
        until: Instant,
    ) -> Result<Response, TransportError> {
        let (mut parts, body) = request.into_parts();
        let uri = std::mem::take(&mut parts.uri);
        let host = host(&uri).ok_or(TransportError::Connect)?;
        // As reqwest does: a provider that cares about Accept gets the usual default.
        parts
            .headers
            .entry(header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        if !parts.headers.contains_key(header::HOST) {
            let value = HeaderValue::from_str(host).map_err(|_| TransportError::Connect)?;
            parts.headers.insert(header::HOST, value);
        }
        // HTTP/1.1 names the resource in origin form (`/v1/chat/completions`) to a server.
        parts.uri = uri
            .path_and_query()
            .cloned()
            .map_or_else(Uri::default, Uri::from);
        let request = http::Request::from_parts(parts, Full::new(body));
        let exchange = self.0.exchange(&uri, host, request);
        match tokio::time::timeout_at(until.into(), exchange).await {
            Err(_) => Err(TransportError::Timeout),
            Ok(Err(error)) => Err(error),
            Ok(Ok((response, lease))) => Ok(Response::Plain {
                response: Box::new(response),
                until,
                lease,
            }),
        }
    }
}

/// The `Host` an upstream URL names, and the key of its idle connections: `host[:port]`,
/// without credentials and without the default port, as hyper-util's client sent it.
fn host(uri: &Uri) -> Option<&str> {
    let authority = uri.authority()?;
    if authority.port_u16() == Some(80) {
        return Some(authority.host());
    }
    let text = authority.as_str();
    Some(text.rsplit_once('@').map_or(text, |(_, host)| host))
}

/// An upstream's answer, whichever client fetched it.
pub enum Response {
    Reqwest(reqwest::Response),
    Plain {
        response: Box<http::Response<Incoming>>,
        /// When the provider's timeout runs out for the rest of the body.
        until: Instant,
        /// The connection, back to the pool when dropped after the body's end.
        lease: PooledConnection,
    },
}

impl Response {
    pub fn status(&self) -> StatusCode {
        match self {
            Response::Reqwest(response) => response.status(),
            Response::Plain { response, .. } => response.status(),
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        match self {
            Response::Reqwest(response) => response.headers(),
            Response::Plain { response, .. } => response.headers(),
        }
    }

    /// The whole body, refused once it passes `limit` bytes: a provider that never stops
    /// sending must not take the gateway's memory with it.
    pub async fn bytes(self, limit: usize) -> Result<Bytes, TransportError> {
        let declared = self
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(TransportError::TooLarge(limit));
        }
        let mut pieces = self.bytes_stream();
        // Most answers arrive in one piece, which is handed on without a copy.
        let mut whole: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            let held = whole.as_ref().map_or(0, Bytes::len) + joined.len();
            if held + piece.len() > limit {
                return Err(TransportError::TooLarge(limit));
            }
            if whole.is_none() && joined.is_empty() {
                whole = Some(piece);
                continue;
            }
            if let Some(first) = whole.take() {
                joined.extend_from_slice(&first);
            }
            joined.extend_from_slice(&piece);
        }
        Ok(whole.unwrap_or_else(|| joined.freeze()))
    }

    /// The body as it arrives.
    pub fn bytes_stream(self) -> BoxStream<'static, Result<Bytes, TransportError>> {
        match self {
            Response::Reqwest(response) => response
                .bytes_stream()
                .map(|piece| piece.map_err(TransportError::from))
                .boxed(),
            Response::Plain {
                response,
                until,
                lease,
            } => {
                let body = LeasedBody::new(response.into_body(), lease);
                futures_util::stream::unfold(Some(body), move |body| async move {
                    let mut body = body?;
                    loop {
                        let frame = tokio::time::timeout_at(until.into(), body.frame()).await;
                        return match frame {
                            Err(_) => Some((Err(TransportError::Timeout), None)),
                            Ok(None) => None,
                            Ok(Some(Err(error))) => {
                                Some((Err(TransportError::hyper(&error)), None))
                            }
                            Ok(Some(Ok(frame))) => match frame.into_data() {
                                Ok(data) => Some((Ok(data), Some(body))),
                                // Trailers carry nothing a relay forwards.
                                Err(_) => continue,
                            },
                        };
                    }
                })
                .boxed()
            }
        }
    }
}

/// Why an exchange with a provider failed, without the URL (it may carry a credential).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("operation timed out")]
    Timeout,
    #[error("connection failed")]
    Connect,
    /// The TLS handshake failed, most often on a certificate the system does not trust.
    #[error("TLS failed: {0}")]
    Tls(&'static str),
    /// The body passed this many bytes.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    pub(super) fn hyper(error: &dyn std::error::Error) -> Self {
        match causes(error) {
            Some(causes) => TransportError::Other(format!("{error}: {causes}")),
            None => TransportError::Other(error.to_string()),
        }
    }
}

impl From<reqwest::Error> for TransportError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            TransportError::Timeout
        } else if let Some(tls) = tls_failure(&error) {
            TransportError::Tls(tls)
        } else if error.is_connect() {
            TransportError::Connect
        } else {
            // reqwest's own text names the URL, which could carry a credential in its query.
            TransportError::Other(causes(&error).unwrap_or_else(|| "transport error".to_owned()))
        }
    }
}

/// The error and every cause under it. An `io::Error` hides the error it wraps from `source()`
/// (it answers with that error's own source), so it is opened instead.
fn chain<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| {
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        }
    })
}

/// Whether an I/O timeout is somewhere in the error's cause chain.
pub(super) fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    chain(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// Why the TLS handshake failed, in words that name neither the upstream's host nor its
/// certificate's names (rustls's own text carries both; it goes to the log only).
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let tls = chain(error).find_map(|cause| cause.downcast_ref::<rustls::Error>())?;
    tracing::warn!(error = %tls, "TLS with an upstream failed");
    let why = match tls {
        rustls::Error::InvalidCertificate(refused) => match refused {
            CertificateError::UnknownIssuer => "certificate not trusted (unknown issuer)",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate does not match the host"
            }
            CertificateError::Revoked => "certificate revoked",
            _ => "certificate refused",
        },
        _ => "handshake failed",
    };
    Some(why)
}

/// The error's cause chain, if it has one.
fn causes(error: &dyn std::error::Error) -> Option<String> {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_tls_error_inside_an_io_error_is_found() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As reqwest's connector nests it: an I/O error inside an I/O error.
        let wrapped = Wrapper(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            refused,
        )));
        assert_eq!(
            tls_failure(&wrapped),
            Some("certificate not trusted (unknown issuer)")
        );
        // rustls names the host it expected; the client is told only that it did not match.
        let wrong_name =
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("internal.example")
                    .unwrap()
                    .to_owned(),
                presented: vec!["DnsName(\"other.example\")".to_owned()],
            });
        let told = tls_failure(&Wrapper(std::io::Error::other(wrong_name))).unwrap();
        assert_eq!(told, "certificate does not match the host");
        assert_eq!(
            tls_failure(&Wrapper(std::io::ErrorKind::ConnectionRefused.into())),
            None
        );
    }

    #[test]
    fn the_host_header_names_host_and_port_without_credentials_or_the_default_port() {
        for (url, expected) in [
            ("http://up.test/v1", "up.test"),
            ("http://up.test:80/v1", "up.test"),
            ("http://up.test:080/v1", "up.test"),
            ("http://up.test:8080/v1", "up.test:8080"),
            ("http://user:secret@up.test:8000/v1", "up.test:8000"),
            ("http://user:secret@up.test/v1", "up.test"),
            ("http://[::1]:80/v1", "[::1]"),
            ("http://[::1]:8000/v1", "[::1]:8000"),
        ] {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(host(&uri), Some(expected), "{url}");
        }
    }

    #[test]
    fn a_timeout_deep_in_the_cause_chain_is_a_timeout() {
        let timeout = Wrapper(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ));
        assert!(timed_out(&timeout));
        let refused = Wrapper(std::io::ErrorKind::ConnectionRefused.into());
        assert!(!timed_out(&refused));
    }
}
