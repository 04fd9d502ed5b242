//! Bedrock's errors in OpenAI's vocabulary: `{"message": ...}` bodies classified by HTTP status
//! (the `x-amzn-errortype` header is not seen here), and stream exceptions by their type.
//!
//! The exception name is kept as the error's `code`, so a client can still tell them apart.

use super::wire::ErrorBody;
use crate::error::ProviderError;

/// The documented exceptions: name, the status Bedrock answers with, the status to answer with.
const EXCEPTIONS: &[(&str, u16, u16)] = &[
    ("ValidationException", 400, 400),
    ("AccessDeniedException", 403, 403),
    ("ResourceNotFoundException", 404, 404),
    // A model timing out is the upstream being too slow: a gateway timeout, not a client one.
    ("ModelTimeoutException", 408, 504),
    ("ServiceQuotaExceededException", 400, 400),
    ("ThrottlingException", 429, 429),
    ("ModelErrorException", 424, 502),
    ("ModelStreamErrorException", 424, 502),
    ("InternalServerException", 500, 500),
    ("ServiceUnavailableException", 503, 503),
    ("ModelNotReadyException", 429, 503),
];

/// An error answer with HTTP `status` and `body`.
pub fn error_response(status: u16, body: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_else(|| format!("Bedrock returned HTTP {status}"));
    // ModelNotReady shares 429 with Throttling; a status alone says throttling.
    let known = EXCEPTIONS
        .iter()
        .find(|(name, from, _)| *from == status && *name != "ModelNotReadyException");
    let (status, code) = match known {
        Some((name, _, to)) => (*to, Some((*name).to_owned())),
        None => (status, None),
    };
    ProviderError {
        code,
        ..ProviderError::from_status(status, message)
    }
}

/// A stream exception, named as the event stream names it (`throttlingException`).
pub fn exception_error(name: &str, message: Option<String>) -> ProviderError {
    let known = EXCEPTIONS
        .iter()
        .find(|(known, _, _)| known.eq_ignore_ascii_case(name));
    let (status, code) = match known {
        Some((known, _, to)) => (*to, (*known).to_owned()),
        None => (502, name.to_owned()),
    };
    let message = message.unwrap_or_else(|| format!("Bedrock stream failed: {code}"));
    ProviderError {
        code: Some(code),
        ..ProviderError::from_status(status, message)
    }
}
