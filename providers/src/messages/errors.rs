//! Anthropic's error envelope, `{"type":"error","error":{"type","message"}}`, and the error type
//! Anthropic uses for each status.

use serde_json::json;

/// Anthropic's error types; an upstream Anthropic error keeps its own (the adapter passes it on
/// as the OpenAI error's `code`).
const TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
];

/// The error type for an answer of `status`, or `code` when it already is one of Anthropic's.
pub fn error_type(status: u16, code: Option<&str>) -> &'static str {
    if let Some(known) = code.and_then(|c| TYPES.iter().find(|t| **t == c)) {
        return known;
    }
    match status {
        400 | 405 | 408 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// The error body.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}})
        .to_string()
        .into_bytes()
}
