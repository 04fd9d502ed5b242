//! `POST /v1/embeddings`: the same path as chat, minus streaming.
//!
//! The mock answers with deterministic unit vectors; HTTP providers go through their adapter.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{StreamExt, TryStreamExt};
use switchboard_providers::embeddings::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use switchboard_providers::mock;

use super::chat::json_response;
use super::{AppState, Served, body, model_endpoint, route_deadline, route_for, with_fallbacks};
use crate::auth::Caller;
use crate::charge::Charge;
use crate::error::ApiError;
use crate::resilience::{Failure, Plan};
use crate::tokens;
use crate::upstream::HttpBackend;
use crate::upstream::instances::Lease;
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
    let nothing = match &request.input {
        EmbeddingInput::Text(text) => text.is_empty(),
        EmbeddingInput::Tokens(tokens) => tokens.is_empty(),
        batch => batch.is_empty(),
    };
    if nothing {
        // As OpenAI answers it, and before any provider is paid to say the same.
        return Err(ApiError::invalid_request(
            "'input' must not be empty.",
            Some("input".into()),
        ));
    }
    let route = route_for(state, caller, &request.model)?;
    served.model.clone_from(&route.label);
    let routes = with_fallbacks(state, &route);
    let charge = match Charge::reserve(caller, &routes, || tokens::embeddings(&request), |_| 0) {
        Ok(charge) => charge,
        Err(refused) => return Ok(*refused),
    };
    let client = state.clients.for_route(&route);
    let first_token = route.timeouts.first_token.map(|t| t.0);
    let deadline = route_deadline(&route);
    let mut plan = Plan::new(&routes, deadline, &state.metrics);
    let (answer, target) = loop {
        let (target, mut lease) = plan.next()?;
        request.model.clone_from(&target.model);
        let backend = match &target.upstream.backend {
            Backend::Mock(mock) if mock.injects_failure() => {
                let failure = Failure::from(ApiError::bad_gateway(format!(
                    "provider '{}' failed (injected by error_rate)",
                    target.upstream.name
                )));
                lease.fail(&failure.error.message);
                plan.failed(target, failure).await?;
                continue;
            }
            Backend::Mock(_) => {
                lease.succeed();
                mock::check_embeddings(&request).map_err(ApiError::from)?;
                break (mock::embeddings(&request), target);
            }
            Backend::Http(backend) => backend,
        };
        let until = first_token.map_or(deadline, |t| (Instant::now() + t).min(deadline));
        let tried = tokio::time::timeout_at(
            until.into(),
            embed(
                client,
                &target.upstream.name,
                backend,
                &lease,
                &request,
                deadline,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Failure::timeout(format!(
                "provider '{}' did not answer in time",
                target.upstream.name
            )))
        });
        match tried {
            Ok(answer) => {
                lease.succeed();
                break (answer, target);
            }
            Err(failure) => {
                if failure.retryable {
                    lease.fail(&failure.error.message);
                } else {
                    lease.succeed();
                }
                plan.failed(target, failure).await?;
            }
        }
    };
    served.provider.clone_from(&target.upstream.name);
    let mut answer = answer;
    if answer.usage.prompt_tokens == 0 && !request.input.is_empty() {
        // Gemini reports no token counts for embeddings: count them as chat streams without
        // usage are counted, so limits and spend still see them.
        let counted = tokens::embeddings(&request);
        answer.usage.prompt_tokens = counted;
        answer.usage.total_tokens = counted;
    }
    state.metrics.tokens(
        &route.label,
        &target.upstream.name,
        answer.usage.prompt_tokens,
        0,
    );
    let mut response = json_response(&answer);
    if let Some(charge) = charge {
        charge.headers().apply(&mut response);
        charge
            .retarget(target)
            .settle_tokens(answer.usage.prompt_tokens, 0);
    }
    Ok(response)
}

/// How many batches of one request are in flight at once, for providers that take few inputs
/// per call (Titan takes one).
const BATCHES_IN_FLIGHT: usize = 4;

/// OpenAI's limit on inputs per request, enforced where the gateway itself splits a request.
const MAX_BATCHED_INPUTS: usize = 2048;

/// One try: the request encoded for the lease's instance, sent, and its answer decoded. A request
/// with more inputs than the provider takes per call goes in batches, whose answers are joined
/// in order; any batch failing fails the try.
async fn embed(
    client: &crate::upstream::Client,
    name: &str,
    backend: &HttpBackend,
    lease: &Lease,
    request: &EmbeddingsRequest,
    deadline: Instant,
) -> Result<EmbeddingsResponse, Failure> {
    let batch = backend.adapter.embeddings_batch();
    let mut answer = match batch.filter(|&size| request.input.len() > size) {
        None => embed_batch(client, name, backend, lease, request, deadline).await?,
        Some(size) => {
            if request.input.len() > MAX_BATCHED_INPUTS {
                return Err(Failure::from(ApiError::invalid_request(
                    format!(
                        "'input' may hold at most {MAX_BATCHED_INPUTS} items for provider '{name}', which embeds {size} per call; got {}.",
                        request.input.len()
                    ),
                    Some("input".into()),
                )));
            }
            // The other fields are cloned once, not once per batch with the whole input.
            let mut template = request.clone();
            template.input = EmbeddingInput::Texts(Vec::new());
            let requests: Vec<EmbeddingsRequest> = request
                .input
                .batches(size)
                .into_iter()
                .map(|input| EmbeddingsRequest {
                    input,
                    ..template.clone()
                })
                .collect();
            // The futures are made up front: a closure inside the stream would make the handler's
            // future too general for axum to name.
            let calls: Vec<_> = requests
                .iter()
                .map(|part| embed_batch(client, name, backend, lease, part, deadline))
                .collect();
            let answers: Vec<EmbeddingsResponse> = futures_util::stream::iter(calls)
                .buffered(BATCHES_IN_FLIGHT)
                .try_collect()
                .await?;
            // A batch that came back short would shift every later vector onto the wrong input.
            for (part, answer) in requests.iter().zip(&answers) {
                if answer.data.len() != part.input.len() {
                    return Err(Failure::from(ApiError::bad_gateway(format!(
                        "provider '{name}' returned {} embeddings for {} inputs",
                        answer.data.len(),
                        part.input.len()
                    ))));
                }
            }
            let mut answers = answers.into_iter();
            let mut whole = answers.next().ok_or_else(|| {
                Failure::from(ApiError::bad_gateway("no embeddings came back".to_owned()))
            })?;
            answers.for_each(|next| whole.append(next));
            whole
        }
    };
    answer.fit_to(request);
    Ok(answer)
}

async fn embed_batch(
    client: &crate::upstream::Client,
    name: &str,
    backend: &HttpBackend,
    lease: &Lease,
    request: &EmbeddingsRequest,
    deadline: Instant,
) -> Result<EmbeddingsResponse, Failure> {
    let outgoing = backend
        .adapter
        .embeddings_request(&lease.instance().endpoint, request)
        .map_err(ApiError::from)?;
    let response = upstream::send(client, name, backend, outgoing, deadline).await?;
    let bytes = upstream::read_body(client, name, response).await?;
    // A malformed answer's error quotes it, and it may echo a credential back.
    Ok(backend
        .adapter
        .embeddings_response(&bytes)
        .map_err(|e| backend.scrub(e.into()))?)
}
