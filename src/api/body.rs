//! Request bodies: read within `server.max_body` and `server.body_timeout`, parsed as JSON with
//! the path of a bad field.
//!
//! Errors name the offending parameter the way OpenAI's do, so SDK users see `param` filled in.

use std::time::Duration;

use axum::body::Body;
use http_body::Body as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// How request bodies are read: at most `max` bytes (`server.max_body`), all of it within
/// `timeout` (`server.body_timeout`), so that a trickle never holds a slot forever.
#[derive(Debug, Clone, Copy)]
pub struct Bodies {
    pub max: u64,
    pub timeout: Duration,
}

impl Bodies {
    /// Reads a body of at most `server.max_body` bytes.
    pub async fn read(&self, body: Body) -> Result<bytes::Bytes, ApiError> {
        self.read_up_to(body, self.max).await
    }

    /// Reads a whole body of at most `limit` bytes. A declared `Content-Length` above the limit
    /// is refused with 413 before a byte is read; a body still arriving after the timeout gets
    /// 408. Callers authenticate first: nothing is read for a caller who may not call.
    pub async fn read_up_to(&self, body: Body, limit: u64) -> Result<bytes::Bytes, ApiError> {
        // hyper reports the declared length as the exact size hint.
        if body.size_hint().lower() > limit {
            return Err(ApiError::body_too_large(limit));
        }
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let read = tokio::time::timeout(self.timeout, axum::body::to_bytes(body, limit_usize));
        let Ok(result) = read.await else {
            return Err(ApiError::request_timeout(self.timeout));
        };
        result.map_err(|e| {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::body_too_large(limit)
            } else {
                ApiError::invalid_request(format!("could not read the request body: {inner}"), None)
            }
        })
    }
}

/// Parses a JSON body into `T`; a field of the wrong type is reported with its path as `param`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path of every value costs on every request; bad bodies are rare, so parse
    // plainly first and parse again with tracking only to explain a failure. One UTF-8 check
    // of the whole body is cheaper than the check `from_slice` makes of every string.
    match std::str::from_utf8(bytes).map(serde_json::from_str) {
        Ok(Ok(value)) => Ok(value),
        _ => parse_explained(bytes),
    }
}

/// Parses with path tracking, for the error message and `param` of a body that failed.
fn parse_explained<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => ApiError::invalid_request(
                format!("Invalid value for '{path}': {inner}"),
                Some(path),
            ),
            serde_json::error::Category::Data => {
                ApiError::invalid_request(format!("Invalid request body: {inner}"), None)
            }
            _ => syntax_error(&inner),
        }
    })?;
    deserializer.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

fn syntax_error(error: &serde_json::Error) -> ApiError {
    ApiError::invalid_request(
        format!(
            "We could not parse the JSON body of your request ({error}). The body must be valid JSON."
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_providers::chat::ChatRequest;

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse::<ChatRequest>(br#"{"model": "m", "messages": [], "temperature": "hot"}"#)
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("temperature"));
        let err =
            parse::<ChatRequest>(br#"{"model": "m", "messages": [{"role": "user"}]}"#).unwrap_err();
        assert_eq!(err.status, 400);
        let err = parse::<ChatRequest>(br#"{"model": "m", "messages": [] } trailing"#).unwrap_err();
        assert!(err.message.contains("parse the JSON"), "{}", err.message);
    }

    /// A role of the wrong type is a type error naming the field, like every other one.
    #[test]
    fn a_role_that_is_no_string_names_its_field() {
        for role in ["5", "null", "[]", "\"robot\""] {
            let body =
                format!(r#"{{"model": "m", "messages": [{{"role": {role}, "content": "x"}}]}}"#);
            let err = parse::<ChatRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(
                err.param.as_deref(),
                Some("messages[0].role"),
                "{role}: {}",
                err.message
            );
            assert!(!err.message.contains("valid JSON"), "{}", err.message);
        }
    }

    #[test]
    fn missing_field_is_invalid_request() {
        let err = parse::<ChatRequest>(br#"{"messages": []}"#).unwrap_err();
        assert!(err.message.contains("model"), "{}", err.message);
    }
}
