//! Per-key request limits: a GCRA rate (`governor`) and a cap on requests in flight, with the
//! `x-ratelimit-*-requests` headers OpenAI's SDKs read.
//!
//! Admission happens before any other work, so a rejected request costs nothing and reaches no
//! provider; the concurrency permit lives as long as the response body.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitsConfig;
use crate::error::ApiError;

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The limits of one key.
pub struct KeyLimits {
    rate: Option<(NonZeroU32, Gcra)>,
    concurrency: Option<(NonZeroU32, Arc<Semaphore>)>,
    clock: DefaultClock,
}

/// The headers to attach to every response of an admitted or rejected request.
#[derive(Debug, Clone, Default)]
pub struct RateHeaders(Vec<(HeaderName, HeaderValue)>);

impl RateHeaders {
    /// Adds the headers to a response.
    pub fn apply(&self, response: &mut Response) {
        for (name, value) in &self.0 {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

/// An admitted request: its headers, and the concurrency slot it holds.
pub struct Admission {
    pub headers: RateHeaders,
    permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// The admission of a key without limits.
    pub fn unlimited() -> Self {
        Admission {
            headers: RateHeaders::default(),
            permit: None,
        }
    }

    /// Ties the concurrency slot to the response body, released when the body is done or dropped.
    pub fn hold_until_sent(self, mut response: Response) -> Response {
        self.headers.apply(&mut response);
        match self.permit {
            None => response,
            Some(permit) => response.map(|body| {
                Body::new(PermitBody {
                    body,
                    _permit: permit,
                })
            }),
        }
    }
}

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");

impl KeyLimits {
    /// The limits from `keys[].limits`.
    pub fn new(config: &LimitsConfig) -> Self {
        let rate = config.requests_per_minute.map(|n| {
            (
                n,
                RateLimiter::direct(Quota::per_minute(n))
                    .with_middleware::<StateInformationMiddleware>(),
            )
        });
        let concurrency = config
            .max_concurrent
            .map(|n| (n, Arc::new(Semaphore::new(n.get() as usize))));
        KeyLimits {
            rate,
            concurrency,
            clock: DefaultClock::default(),
        }
    }

    /// Admits a request or says which limit refused it and when to retry.
    pub fn admit(&self) -> Result<Admission, Box<Response>> {
        let mut headers = RateHeaders::default();
        if let Some((limit, gcra)) = &self.rate {
            let per_request = Duration::from_secs(60) / limit.get();
            let (remaining, retry) = match gcra.check() {
                Ok(state) => (state.remaining_burst_capacity(), None),
                Err(not_until) => (0, Some(not_until.wait_time_from(self.clock.now()))),
            };
            let reset = per_request * (limit.get() - remaining.min(limit.get()));
            headers
                .0
                .push((LIMIT.clone(), HeaderValue::from(limit.get())));
            headers
                .0
                .push((REMAINING.clone(), HeaderValue::from(remaining)));
            headers.0.push((RESET.clone(), duration_header(reset)));
            if let Some(wait) = retry {
                let message = format!(
                    "Rate limit reached: requests_per_minute is {limit} for this key. Try again in {}.",
                    openai_duration(wait)
                );
                return Err(Box::new(rejection(message, wait, &headers)));
            }
        }
        let permit = match &self.concurrency {
            None => None,
            Some((limit, semaphore)) => match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let message = format!(
                        "Rate limit reached: max_concurrent is {limit} requests in flight for this key. Try again when one finishes."
                    );
                    return Err(Box::new(rejection(
                        message,
                        Duration::from_secs(1),
                        &headers,
                    )));
                }
            },
        };
        Ok(Admission { headers, permit })
    }
}

fn rejection(message: String, wait: Duration, headers: &RateHeaders) -> Response {
    let mut response = ApiError::rate_limited(message).into_response();
    headers.apply(&mut response);
    // Whole seconds, rounded up: retrying earlier would only be refused again.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// OpenAI's duration style: `20ms`, `1.5s`, `6m0s`.
fn openai_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        if tenths % 10 == 0 {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn duration_header(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&openai_duration(d)).unwrap_or_else(|_| HeaderValue::from_static("0ms"))
}

/// A response body that holds a concurrency permit until it is finished or dropped.
struct PermitBody {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn limits(rpm: Option<u32>, concurrent: Option<u32>) -> KeyLimits {
        KeyLimits::new(&LimitsConfig {
            requests_per_minute: rpm.and_then(NonZeroU32::new),
            max_concurrent: concurrent.and_then(NonZeroU32::new),
        })
    }

    fn header(response: &Response, name: &str) -> String {
        response.headers()[name].to_str().unwrap().to_owned()
    }

    #[test]
    fn rate_admits_exactly_the_limit_then_refuses_with_retry_after() {
        let key = limits(Some(3), None);
        let remaining: Vec<String> = (0..3)
            .map(|_| {
                let admission = key.admit().ok().unwrap();
                let mut response = Response::new(Body::empty());
                admission.headers.apply(&mut response);
                header(&response, "x-ratelimit-remaining-requests")
            })
            .collect();
        assert_eq!(remaining, ["2", "1", "0"]);
        let refused = key.admit().err().unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = header(&refused, "retry-after").parse().unwrap();
        assert!(
            (1..=20).contains(&retry),
            "one request frees up every 20 s: {retry}"
        );
        assert_eq!(header(&refused, "x-ratelimit-limit-requests"), "3");
    }

    #[test]
    fn concurrency_slots_return_when_the_body_is_dropped() {
        let key = limits(None, Some(1));
        let first = key.admit().ok().unwrap();
        let response = first.hold_until_sent(Response::new(Body::empty()));
        assert!(key.admit().is_err());
        drop(response);
        assert!(key.admit().is_ok());
    }

    #[test]
    fn durations_read_like_openai_s() {
        assert_eq!(openai_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(openai_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(openai_duration(Duration::from_secs(2)), "2s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
    }
}
