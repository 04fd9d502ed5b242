//! `POST /v1/embeddings`: the same path as chat, minus streaming.
//!
//! The mock answers with deterministic unit vectors; HTTP providers go through their adapter.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use switchboard_providers::embeddings::EmbeddingsRequest;
use switchboard_providers::mock;

use super::chat::json_response;
use super::{AppState, Served, body, model_endpoint, pick, route_for};
use crate::auth::Caller;
use crate::charge::Charge;
use crate::error::ApiError;
use crate::tokens;
use crate::upstream::{self, Backend};

/// The handler.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let answer = async |caller: &Caller, _: &HeaderMap, body: Body, served: &mut Served| {
        answer(&state, caller, body, served).await
    };
    model_endpoint(&state, "embeddings", request, answer).await
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    body: Body,
    served: &mut Served,
) -> Result<Response, ApiError> {
    let mut request: EmbeddingsRequest = body::parse(&body::read(body, state.max_body).await?)?;
    let route = route_for(state, caller, &request.model)?;
    let target = pick(&route)?;
    served.model.clone_from(&route.label);
    served.provider.clone_from(&target.upstream.name);
    let charge = match Charge::reserve(caller, target, || tokens::embeddings(&request), 0) {
        Ok(charge) => charge,
        Err(refused) => return Ok(*refused),
    };
    request.model.clone_from(&target.model);
    let answer = match &target.upstream.backend {
        Backend::Mock(_) => mock::embeddings(&request),
        Backend::Http(backend) => {
            let name = target.upstream.name.as_str();
            let outgoing = backend
                .adapter
                .embeddings_request(&backend.endpoint, &request)?;
            let response = upstream::send(&state.client, name, backend, outgoing).await?;
            let bytes = upstream::read_body(name, response).await?;
            backend
                .adapter
                .embeddings_response(&bytes)?
                .fit_to(&request)
        }
    };
    state.metrics.tokens(
        &route.label,
        &target.upstream.name,
        answer.usage.prompt_tokens,
        0,
    );
    let mut response = json_response(&answer);
    if let Some(charge) = charge {
        charge.headers().apply(&mut response);
        charge.settle_tokens(answer.usage.prompt_tokens, 0);
    }
    Ok(response)
}
