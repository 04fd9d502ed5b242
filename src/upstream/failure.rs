//! A failed try on an upstream, classified once: whether another try may succeed, whether it
//! timed out, and how long the upstream asked to be left alone.

use std::time::Duration;

use axum::http::StatusCode;

use crate::error::ApiError;

/// A failed try, and whether another may succeed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: Box<ApiError>,
    /// What the upstream asked for in `Retry-After`.
    pub retry_after: Option<Duration>,
    /// Not the client's fault: a connection error, a timeout, 429 or 5xx.
    pub retryable: bool,
    pub timed_out: bool,
}

impl Failure {
    /// Classifies an error by its status.
    pub fn from_error(error: ApiError) -> Self {
        let status = error.status;
        let timed_out = status == StatusCode::GATEWAY_TIMEOUT;
        // 401 and 403 from a provider are the gateway's credentials, not the client's.
        let retryable =
            status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408 | 409 | 429);
        Failure {
            error: Box::new(error),
            retry_after: None,
            retryable,
            timed_out,
        }
    }

    /// The provider answered 429: a tenant over its quota there, not a sick instance.
    pub fn rate_limited(&self) -> bool {
        self.error.status == StatusCode::TOO_MANY_REQUESTS
    }

    pub fn timeout(message: String) -> Self {
        Failure::from_error(ApiError::gateway_timeout(message))
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::from_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_are_not_the_clients_are_retried() {
        let retryable = |status: u16| {
            let mut error = ApiError::bad_gateway("x");
            error.status = StatusCode::from_u16(status).unwrap();
            Failure::from_error(error).retryable
        };
        assert!(retryable(500) && retryable(503) && retryable(429) && retryable(502));
        assert!(!retryable(400) && !retryable(404) && !retryable(422));
    }
}
