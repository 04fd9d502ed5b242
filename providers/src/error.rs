//! Errors of translation and of upstream answers, in the categories the gateway maps to statuses.
//!
//! A provider's own error payload is parsed into a [`ProviderError`] that carries OpenAI's error
//! vocabulary, so the gateway never forwards a provider's raw body.

use serde::Deserialize;

/// What went wrong, in the categories an OpenAI client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request cannot be expressed for this provider or was refused as invalid (400).
    InvalidRequest,
    /// The provider refused the credentials the gateway holds for it.
    Authentication,
    /// The provider's quota or rate limit was hit.
    RateLimited,
    /// The provider answered with something that is not its documented format (502).
    BadResponse,
    /// The provider reported a failure of its own.
    Upstream,
}

/// An error from translating to or from a provider, or one the provider reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The HTTP status to answer with.
    pub status: u16,
    pub message: String,
    /// OpenAI's `error.type`, when the provider gave one.
    pub error_type: Option<String>,
    /// OpenAI's `error.code`.
    pub code: Option<String>,
    /// OpenAI's `error.param`.
    pub param: Option<String>,
}

impl ProviderError {
    /// A body that does not match the provider's documented format.
    pub fn bad_response(what: impl std::fmt::Display) -> Self {
        ProviderError {
            kind: ErrorKind::BadResponse,
            status: 502,
            message: format!("upstream sent an invalid response: {what}"),
            error_type: None,
            code: None,
            param: None,
        }
    }

    /// A request this provider cannot carry.
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        ProviderError {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            message: message.into(),
            error_type: None,
            code: None,
            param: param.map(str::to_owned),
        }
    }

    /// A request the gateway failed to build: its own fault, not the client's (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ProviderError {
            kind: ErrorKind::Upstream,
            status: 500,
            message: message.into(),
            error_type: None,
            code: None,
            param: None,
        }
    }

    /// An error status from the provider, classified by status alone.
    pub fn from_status(status: u16, message: String) -> Self {
        let kind = match status {
            401 | 403 => ErrorKind::Authentication,
            429 => ErrorKind::RateLimited,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Upstream,
        };
        // Anything but a 4xx or 5xx (a redirect, say) is not an answer a client can act on.
        let status = if (400..=599).contains(&status) {
            status
        } else {
            502
        };
        ProviderError {
            kind,
            status,
            message,
            error_type: None,
            code: None,
            param: None,
        }
    }
}

/// OpenAI's error envelope, as OpenAI-compatible servers send it.
#[derive(Deserialize)]
pub(crate) struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Deserialize)]
pub(crate) struct OpenAiErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

impl OpenAiErrorDetail {
    /// The error with `status`, keeping OpenAI's vocabulary; `fallback` when it has no message.
    pub fn into_error(self, status: u16, fallback: impl FnOnce() -> String) -> ProviderError {
        ProviderError {
            error_type: self.error_type,
            code: self.code,
            param: self.param,
            ..ProviderError::from_status(status, self.message.unwrap_or_else(fallback))
        }
    }
}

/// Some servers send `code` as a number; OpenAI's clients expect a string or null.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}
