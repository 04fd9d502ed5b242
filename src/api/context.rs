//! `GET/PUT/DELETE /v1/context/{namespace}/{key}`: the context store for services that do not
//! speak MCP. Versions travel as strong ETags; `If-Match` guards writes (412 when stale).
//!
//! `PUT ?ttl=30s` gives a document a lifetime. Namespaces outside the key's `context:` globs: 403.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::path::Segments;
use crate::auth::Caller;
use crate::context::{ContextError, Document, Precondition};
use crate::error::ApiError;

/// The `ttl` query parameter of a PUT; any other parameter is an error, not silently ignored.
fn ttl_of(query: Option<&str>) -> Result<Option<std::time::Duration>, ApiError> {
    let mut ttl = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "ttl" {
            return Err(ApiError::invalid_request(
                format!("Unknown query parameter '{name}'; only 'ttl' is accepted."),
                Some(name.to_owned()),
            ));
        }
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        let parsed = crate::context::parse_ttl(&value.replace('+', " "))
            .map_err(|message| ApiError::invalid_request(message, Some("ttl".into())))?;
        ttl = Some(parsed);
    }
    Ok(ttl)
}

/// The caller, if it may use `namespace`.
fn admit(state: &AppState, headers: &HeaderMap, namespace: &str) -> Result<Arc<Caller>, ApiError> {
    let caller = state.keys.authenticate(headers)?;
    if caller.may_use_context(namespace) {
        Ok(caller)
    } else {
        Err(ApiError::forbidden(format!(
            "This API key may not use the context namespace '{namespace}'."
        )))
    }
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: header::HeaderName| {
        headers
            .get(&name)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::invalid_request(format!("The {name} header is not text."), None)
                })
            })
            .transpose()
    };
    Ok(Precondition::from_headers(
        text(header::IF_MATCH)?,
        text(header::IF_NONE_MATCH)?,
    ))
}

fn translate(error: ContextError) -> ApiError {
    match error {
        ContextError::InvalidName { field, .. } => {
            ApiError::invalid_request(error.to_string(), Some(field.to_owned()))
        }
        ContextError::NotFound { .. } => ApiError::not_found(format!("{error}.")),
        ContextError::Stale { .. } => ApiError::precondition_failed(format!("{error}.")),
        ContextError::TooLarge { size, limit } => ApiError::document_too_large(Some(size), limit),
        ContextError::Storage(e) => {
            tracing::error!(error = %e, "context store write failed");
            ApiError::internal("The context store could not save the document.")
        }
    }
}

fn with_etag(mut response: Response, document: &Document) -> Response {
    if let Ok(etag) = HeaderValue::from_str(&document.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `GET`: the bare document, with its ETag.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Segments((namespace, key)): Segments<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admit(&state, &headers, &namespace)?;
    let document = state.context.get(&namespace, &key).map_err(translate)?;
    let response = (
        [(header::CONTENT_TYPE, "application/json")],
        document.json.to_string(),
    )
        .into_response();
    Ok(with_etag(response, &document))
}

/// `PUT`: creates (201) or replaces (200) the document; answers with its new ETag.
pub async fn put(
    State(state): State<Arc<AppState>>,
    Segments((namespace, key)): Segments<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    admit(&state, &headers, &namespace)?;
    let ttl = ttl_of(query.as_deref())?;
    let precondition = precondition(&headers)?;
    let limit = state.context.max_document();
    // A document is stored compact, so its body may carry some whitespace beyond the limit.
    let bytes = state
        .bodies
        .read_up_to(body, (limit as u64).saturating_mul(2))
        .await
        .map_err(|e| {
            if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::document_too_large(None, limit)
            } else {
                e
            }
        })?;
    let value: serde_json::Value = super::body::parse(&bytes)?;
    let (document, created) = state
        .context
        .put(&namespace, &key, &value, &precondition, ttl)
        .await
        .map_err(translate)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "namespace": namespace, "key": key, "version": document.version,
        "expires_at_ms": document.expires_ms,
    });
    Ok(with_etag(
        (status, axum::Json(body)).into_response(),
        &document,
    ))
}

/// `DELETE`: removes the document (204); a missing one is 404.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Segments((namespace, key)): Segments<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    admit(&state, &headers, &namespace)?;
    let precondition = precondition(&headers)?;
    state
        .context
        .delete(&namespace, &key, &precondition)
        .await
        .map_err(translate)?;
    Ok(StatusCode::NO_CONTENT)
}
