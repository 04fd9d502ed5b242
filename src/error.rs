//! The gateway's one error type, rendered in OpenAI's shape with the status an OpenAI SDK expects.
//!
//! Every failure a client can see passes through [`ApiError`], so the shape never varies and no
//! provider body is forwarded raw.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_providers::{ErrorKind, ProviderError};

/// An error answer: `{"error": {"message", "type", "param", "code"}}` and a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: String,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Sent as `Retry-After` (whole seconds, rounded up) when the caller should wait.
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, code: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind: kind.to_owned(),
            message: message.into(),
            param: None,
            code: code.map(str::to_owned),
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `param` names the offending field when known.
    pub fn invalid_request(message: impl Into<String>, param: Option<String>) -> Self {
        ApiError {
            param,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                message,
            )
        }
    }

    /// 401: no key, or not a key this gateway knows.
    pub fn invalid_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided. Send a key configured in the gateway as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
        )
    }

    /// 401: a bearer JWT that did not prove valid, saying why.
    pub fn invalid_token(why: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            format!("The bearer token is not accepted: {why}."),
        )
    }

    /// 403: the key may not use this model.
    pub fn model_not_allowed(model: &str) -> Self {
        ApiError {
            param: Some("model".to_owned()),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                Some("model_not_allowed"),
                format!("This API key is not allowed to use the model '{model}'."),
            )
        }
    }

    /// 410: the entry was retired from the catalog; the message names what replaces it.
    pub fn gone(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param.to_owned()),
            ..Self::new(
                StatusCode::GONE,
                "invalid_request_error",
                Some("retired"),
                message,
            )
        }
    }

    /// 409: the request conflicts with what is already there.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            Some("conflict"),
            message,
        )
    }

    /// 403: the caller may not use this endpoint.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            Some("forbidden"),
            message,
        )
    }

    /// 404: the thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("not_found"),
            message,
        )
    }

    /// 404: no such model.
    pub fn model_not_found(model: &str) -> Self {
        ApiError {
            param: Some("model".to_owned()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model '{model}' does not exist or you do not have access to it."),
            )
        }
    }

    /// 404 for a path the gateway does not serve.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("unknown_url"),
            format!("Unrecognized request URL ({method} {path})."),
        )
    }

    /// 405 for a known path used with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("{method} is not supported on {path}."),
        )
    }

    /// 408: the client did not finish sending its body in time.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            Some("request_timeout"),
            format!(
                "The request body did not arrive within {} (server.body_timeout).",
                humantime::format_duration(limit)
            ),
        )
    }

    /// 413: the body is over `server.max_body`.
    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("The request body is larger than the gateway's limit of {limit} bytes."),
        )
    }

    /// 412: a conditional write's `If-Match` or `If-None-Match` does not hold.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "invalid_request_error",
            Some("precondition_failed"),
            message,
        )
    }

    /// 413: a context document over `mcp.max_document`.
    pub fn document_too_large(size: Option<usize>, limit: usize) -> Self {
        let size = size.map_or_else(|| "over".to_owned(), |s| format!("{s} bytes, over"));
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("document_too_large"),
            format!("The document is {size} the limit of {limit} bytes (mcp.max_document)."),
        )
    }

    /// 429: a limit of the caller's key refused the request.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            Some("rate_limit_exceeded"),
            message,
        )
    }

    /// 429: the provider rate limited the model, and no other target could answer.
    pub fn upstream_rate_limited(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            Some("rate_limit_exceeded"),
            message,
        )
    }

    /// 429 over a token limit: typed `tokens`, as OpenAI types its TPM refusals.
    pub fn tokens_limited(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "tokens",
            Some("rate_limit_exceeded"),
            message,
        )
    }

    /// 429: a budget or a daily token allowance of the caller's key is used up.
    pub fn insufficient_quota(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            Some("insufficient_quota"),
            message,
        )
    }

    /// 502: the provider could not be reached or answered nonsense.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            Some("upstream_error"),
            message,
        )
    }

    /// 504: the provider did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "api_error",
            Some("upstream_timeout"),
            message,
        )
    }

    /// 503: every target failed or is held off by its circuit breaker.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("upstream_unavailable"),
            message,
        )
    }

    /// 503: the state the replicas share (Redis) cannot be reached, and limits fail closed.
    /// `Retry-After: 1`: an outage is probed again within the second.
    pub fn state_unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("state_unavailable"),
            message,
        );
        error.retry_after = Some(std::time::Duration::from_secs(1));
        error
    }

    /// 500: a fault of the gateway itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            message,
        )
    }

    /// The JSON body, as sent on its own or inside a stream's error event.
    pub fn body(&self) -> Vec<u8> {
        let envelope = Envelope {
            error: Body {
                message: &self.message,
                kind: &self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        // Serializing strings and options into a Vec cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

impl From<ProviderError> for ApiError {
    /// Keeps the provider's status and vocabulary, filling OpenAI's defaults where it gave none.
    fn from(error: ProviderError) -> Self {
        let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let default_kind = match error.kind {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::BadResponse | ErrorKind::Upstream => "api_error",
        };
        ApiError {
            status,
            kind: error.error_type.unwrap_or_else(|| default_kind.to_owned()),
            message: error.message,
            param: error.param,
            code: error.code,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // HTTP requires a challenge with every 401; MCP clients read it to tell a missing
            // key from a server that wants OAuth.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn renders_openai_shape() {
        let body: Value =
            serde_json::from_slice(&ApiError::model_not_found("gpt-9").body()).unwrap();
        assert_eq!(
            body,
            json!({"error": {
                "message": "The model 'gpt-9' does not exist or you do not have access to it.",
                "type": "invalid_request_error", "param": "model", "code": "model_not_found"
            }})
        );
    }

    #[test]
    fn provider_errors_keep_status() {
        let api: ApiError = ProviderError::from_status(503, "busy".into()).into();
        assert_eq!(
            (api.status, api.kind.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "api_error")
        );
    }
}
