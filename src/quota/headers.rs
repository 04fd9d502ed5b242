//! OpenAI's rate-limit headers (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`) and the
//! 429 answers that carry them with a `Retry-After` in whole seconds.
//!
//! OpenAI's SDKs read these to pace and retry; their format follows OpenAI's own (`20ms`, `1.5s`).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Headers to attach to a response.
#[derive(Debug, Clone, Default)]
pub struct RateHeaders(Vec<(HeaderName, HeaderValue)>);

/// Which trio a limit reports in.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Requests,
    Tokens,
}

impl RateHeaders {
    /// Adds the headers to a response.
    pub fn apply(&self, response: &mut Response) {
        for (name, value) in &self.0 {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }

    /// Adds one trio: the limit, what is left after this request, and when it is whole again.
    pub fn push(&mut self, unit: Unit, limit: u64, remaining: u64, reset: Duration) {
        let [limit_name, remaining_name, reset_name] = match unit {
            Unit::Requests => [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
            Unit::Tokens => [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        };
        self.0.extend([
            (
                HeaderName::from_static(limit_name),
                HeaderValue::from(limit),
            ),
            (
                HeaderName::from_static(remaining_name),
                HeaderValue::from(remaining),
            ),
            (HeaderName::from_static(reset_name), duration_header(reset)),
        ]);
    }

    pub fn extend(&mut self, other: RateHeaders) {
        self.0.extend(other.0);
    }
}

/// A refusal: the error, the headers known so far, and `Retry-After` in whole seconds rounded up
/// (retrying earlier would only be refused again).
pub fn rejection(error: ApiError, wait: Option<Duration>, headers: &RateHeaders) -> Response {
    let mut response = error.into_response();
    headers.apply(&mut response);
    // No `Retry-After` for a request that can never fit: an SDK would wait it out for nothing.
    if let Some(wait) = wait {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// OpenAI's duration style: `20ms`, `1.5s`, `6m0s`.
pub fn openai_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else if ms < 3_600_000 {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!(
            "{}h{}m{}s",
            ms / 3_600_000,
            (ms % 3_600_000) / 60_000,
            (ms % 60_000) / 1000
        )
    }
}

fn duration_header(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&openai_duration(d)).unwrap_or_else(|_| HeaderValue::from_static("0ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_openai_s() {
        assert_eq!(openai_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(openai_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(openai_duration(Duration::from_secs(2)), "2s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(openai_duration(Duration::from_secs(7322)), "2h2m2s");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = rejection(
            ApiError::rate_limited("x"),
            Some(Duration::from_millis(1200)),
            &RateHeaders::default(),
        );
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let never = rejection(ApiError::rate_limited("x"), None, &RateHeaders::default());
        assert!(never.headers().get(header::RETRY_AFTER).is_none());
    }
}
