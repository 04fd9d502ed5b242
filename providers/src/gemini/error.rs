//! Google's error envelope (`{"error": {"code", "message", "status"}}`) in OpenAI's vocabulary:
//! the canonical gRPC status names the HTTP status, and an invalid key is a 401 even though
//! Gemini sends it as a 400.

use super::wire::{ErrorBody, ErrorDetail};
use crate::error::ProviderError;

/// An error answer with HTTP `status` and `body`.
pub fn from_body(status: u16, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => translate(error, status),
        Err(_) => ProviderError::from_status(status, format!("upstream returned HTTP {status}")),
    }
}

/// One error detail; `status` is the HTTP status it came with, used when the detail names none.
pub fn translate(error: ErrorDetail, status: u16) -> ProviderError {
    let key_invalid = error
        .details
        .iter()
        .any(|detail| detail.get("reason").and_then(|r| r.as_str()) == Some("API_KEY_INVALID"));
    let http = match (key_invalid, error.status.as_deref()) {
        (true, _) => 401,
        (false, Some(name)) => status_of(name).unwrap_or(error.code.unwrap_or(status)),
        (false, None) => error.code.unwrap_or(status),
    };
    let code = if key_invalid {
        Some("invalid_api_key".to_owned())
    } else {
        error.status.as_deref().map(str::to_ascii_lowercase)
    };
    let message = error
        .message
        .unwrap_or_else(|| format!("upstream returned HTTP {http}"));
    ProviderError {
        code,
        ..ProviderError::from_status(http, message)
    }
}

/// The HTTP status Google maps each canonical status to.
fn status_of(name: &str) -> Option<u16> {
    Some(match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ABORTED" | "ALREADY_EXISTS" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}
