//! `GET/PUT/DELETE /v1/context/{namespace}/{key}`: the context store for services that do not
//! speak MCP. Versions travel as strong ETags; `If-Match` guards writes (412 when stale).
//!
//! `PUT ?ttl=30s` gives a document a lifetime. Namespaces outside the key's `context:` globs: 403.

use std::sync::Arc;

use axum::Extension;
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
use crate::quota::Door;

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

/// Middleware of every context route: the key authenticated and admitted under its
/// `requests_per_minute` and `max_concurrent` (held until the answer is sent), before the
/// handler reads anything; the caller goes on in the request's extensions.
pub async fn admitted(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (caller, admission) = match super::admitted(&state, request.headers(), Door::Other).await {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    request.extensions_mut().insert(caller);
    admission.hold_until_sent(next.run(request).await)
}

/// The caller, if it may use `namespace`.
fn admit(caller: &Caller, namespace: &str) -> Result<(), ApiError> {
    if caller.may_use_context(namespace) {
        Ok(())
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
        ContextError::TooManyDocuments { .. } => ApiError {
            code: Some("context_documents".into()),
            ..ApiError::rate_limited(format!("{error}."))
        },
        ContextError::OverBytes { .. } => ApiError {
            code: Some("context_bytes".into()),
            message: format!("{error}."),
            ..ApiError::body_too_large(0)
        },
        ContextError::Storage(e) => {
            tracing::error!(error = %e, "context store write failed");
            ApiError::internal("The context store could not save the document.")
        }
        ContextError::Unavailable(failure) => ApiError::state_unavailable(format!(
            "The context store is kept in Redis, which cannot be reached: {failure}"
        )),
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
    Extension(caller): Extension<Arc<Caller>>,
    Segments((namespace, key)): Segments<(String, String)>,
) -> Result<Response, ApiError> {
    admit(&caller, &namespace)?;
    let document = state
        .context
        .get(&namespace, &key)
        .await
        .map_err(translate)?;
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
    Extension(caller): Extension<Arc<Caller>>,
    Segments((namespace, key)): Segments<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    admit(&caller, &namespace)?;
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
        .put(
            &caller.author(),
            &namespace,
            &key,
            &value,
            &precondition,
            ttl,
        )
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
    Extension(caller): Extension<Arc<Caller>>,
    Segments((namespace, key)): Segments<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    admit(&caller, &namespace)?;
    let precondition = precondition(&headers)?;
    state
        .context
        .delete(&namespace, &key, &precondition)
        .await
        .map_err(translate)?;
    Ok(StatusCode::NO_CONTENT)
}
