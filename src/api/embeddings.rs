//! `POST /v1/embeddings`: the same path as chat, minus streaming.
//!
//! The mock answers with deterministic unit vectors; HTTP providers go through their adapter.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use switchboard_providers::embeddings::EmbeddingsRequest;
use switchboard_providers::mock;

use super::chat::{json_response, scrub};
use super::{AppState, body};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::telemetry::RequestLabels;
use crate::upstream::{self, Backend};

/// The handler.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    // Taking the request whole avoids the copy of the headers a `HeaderMap` extractor makes.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let mut served = (String::new(), String::new());
    let response = match handle(&state, &headers, body, &mut served).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let labels = RequestLabels {
        endpoint: "embeddings",
        model: served.0,
        provider: served.1,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .request(labels, started.elapsed().as_secs_f64());
    response
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    served: &mut (String, String),
) -> Result<Response, ApiError> {
    let caller = state.keys.authenticate(headers)?;
    // Limits first: a refused request costs nothing and reaches no provider.
    let admission = match caller.admit() {
        Ok(admission) => admission,
        Err(refused) => return Ok(*refused),
    };
    let response = answer(state, &caller, body, served)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    Ok(admission.hold_until_sent(response))
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    body: Body,
    served: &mut (String, String),
) -> Result<Response, ApiError> {
    let mut request: EmbeddingsRequest = body::parse(&body::read(body, state.max_body).await?)?;
    let route = state
        .routes
        .resolve(&request.model)
        .ok_or_else(|| ApiError::model_not_found(&request.model))?;
    // Existence first: an unknown model is 404 for every key, as OpenAI's SDKs expect.
    if !caller.may_use(&request.model) {
        return Err(ApiError::model_not_allowed(&request.model));
    }
    let target = route
        .pick()
        .ok_or_else(|| ApiError::bad_gateway(format!("model '{}' has no targets", route.name)))?;
    served.0.clone_from(&route.label);
    served.1.clone_from(&target.upstream.name);
    request.model.clone_from(&target.model);
    let answer = match &target.upstream.backend {
        Backend::Mock(_) => mock::embeddings(&request),
        Backend::Http(backend) => {
            let name = target.upstream.name.as_str();
            let outgoing = backend
                .adapter
                .embeddings_request(&backend.endpoint, &request)?;
            let response = upstream::send(&state.client, name, backend, outgoing).await?;
            let status = response.status();
            let bytes = upstream::read_body(name, response).await?;
            if !status.is_success() {
                return Err(scrub(
                    backend
                        .adapter
                        .error_response(status.as_u16(), &bytes)
                        .into(),
                    backend,
                ));
            }
            backend.adapter.embeddings_response(&bytes)?
        }
    };
    state.metrics.tokens(
        &route.label,
        &target.upstream.name,
        answer.usage.prompt_tokens,
        0,
    );
    Ok(json_response(&answer))
}
