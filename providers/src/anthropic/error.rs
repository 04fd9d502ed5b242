//! Anthropic's error envelope (`{"type":"error","error":{"type","message"}}`) in OpenAI's
//! vocabulary, with the status an OpenAI client expects for each error type.
//!
//! Anthropic's own `type` is kept as `code`, so a client can still tell, say, overload apart.

use crate::error::{ErrorKind, ProviderError};

use super::wire::{ErrorBody, ErrorDetail};

/// Status 529 is Anthropic's "overloaded"; OpenAI clients know it as 503.
const OVERLOADED: u16 = 529;

/// Translates an error answer given its HTTP status and body.
pub fn from_http(status: u16, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => from_detail(Some(status), error),
        Err(_) => {
            let status = if status == OVERLOADED { 503 } else { status };
            ProviderError::from_status(status, format!("upstream returned HTTP {status}"))
        }
    }
}

/// Translates an error, from a body or from a stream's `error` event (no status).
pub fn from_detail(status: Option<u16>, detail: ErrorDetail) -> ProviderError {
    let kind = detail.kind.unwrap_or_default();
    let (status, error_kind, error_type) = classify(&kind, status);
    let message = detail
        .message
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    ProviderError {
        kind: error_kind,
        status,
        message,
        error_type: Some(error_type.to_owned()),
        code: (!kind.is_empty()).then_some(kind),
        param: None,
    }
}

/// Status, kind and OpenAI `type` for an Anthropic error type. A stream's error has no HTTP
/// status of its own: a failure the provider reported mid-answer is a bad gateway (502).
fn classify(kind: &str, status: Option<u16>) -> (u16, ErrorKind, &'static str) {
    use ErrorKind::*;
    match kind {
        "invalid_request_error" => (400, InvalidRequest, "invalid_request_error"),
        "authentication_error" => (401, Authentication, "authentication_error"),
        "billing_error" => (402, InvalidRequest, "insufficient_quota"),
        "permission_error" => (403, Authentication, "permission_error"),
        "not_found_error" => (404, InvalidRequest, "invalid_request_error"),
        "request_too_large" => (413, InvalidRequest, "invalid_request_error"),
        "rate_limit_error" => (429, RateLimited, "rate_limit_exceeded"),
        "overloaded_error" => (503, Upstream, "server_error"),
        "timeout_error" => (504, Upstream, "server_error"),
        "api_error" => match status {
            Some(status @ 500..=599) if status != OVERLOADED => (status, Upstream, "server_error"),
            _ => (502, Upstream, "server_error"),
        },
        _ => {
            let fallback = match status {
                Some(OVERLOADED) => 503,
                Some(status) => status,
                None => 502,
            };
            let error = ProviderError::from_status(fallback, String::new());
            let error_type = match error.kind {
                InvalidRequest => "invalid_request_error",
                Authentication => "authentication_error",
                RateLimited => "rate_limit_exceeded",
                BadResponse | Upstream => "server_error",
            };
            (error.status, error.kind, error_type)
        }
    }
}
