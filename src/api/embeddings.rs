//! `POST /v1/embeddings`: the same path as chat, minus streaming.
//!
//! The mock answers with deterministic unit vectors; HTTP providers go through their adapter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use switchboard_providers::embeddings::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use switchboard_providers::mock;

use super::chat::json_response;
use super::{AppState, Served, body, model_endpoint, route_deadline, route_for, with_fallbacks};
use crate::auth::Caller;
use crate::charge::{self, Charge};
use crate::error::ApiError;
use crate::resilience::{self, Plan};
use crate::routing::Target;
use crate::tokens;
use crate::upstream::instances::InstanceLease;
use crate::upstream::{self, Backend, Failure, exchange};

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
    let mut request: EmbeddingsRequest = body::parse(&state.bodies.read(body).await?)?;
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
    let route = route_for(state, caller, &request.model).await?;
    served.model.clone_from(&route.label);
    let routes = with_fallbacks(state, &route);
    let planned = Charge::plan(caller, &routes, || tokens::embeddings(&request), |_| 0);
    let client = state
        .clients
        .for_connect(route.timeouts.connect.map(|c| c.0));
    let first_token = route.timeouts.first_token.map(|t| t.0);
    let deadline = route_deadline(&route);
    let plan = Plan::new(&routes, deadline, &state.metrics).operation("embeddings");
    let mut tries = EmbeddingsTry {
        client,
        request: &mut request,
        first_token,
        deadline,
    };
    let call =
        async { resilience::first_answer!(plan, |target, lease| tries.attempt(target, lease)) };
    let (charge, tried) = match charge::reserve_and_call(planned, call).await {
        Ok(both) => both,
        Err(refused) => return Ok(*refused),
    };
    let (answer, target) = tried?;
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
        // Spend is on record before the answer goes out.
        charge
            .retarget(target)
            .settle_tokens(answer.usage.prompt_tokens, 0);
    }
    Ok(response)
}

/// The tries of one embeddings request; each names its target's upstream model in the request.
struct EmbeddingsTry<'a> {
    client: &'a upstream::Client,
    request: &'a mut EmbeddingsRequest,
    first_token: Option<Duration>,
    deadline: Instant,
}

impl EmbeddingsTry<'_> {
    /// One try: the mock, or an exchange with the provider within `first_token`; the lease's
    /// breaker hears how it went.
    async fn attempt(
        &mut self,
        target: &Target,
        mut lease: InstanceLease,
    ) -> Result<EmbeddingsResponse, Failure> {
        self.request.model.clone_from(&target.model);
        let name = target.upstream.name.as_str();
        let backend = match &target.upstream.backend {
            Backend::Mock(mock) => {
                let outcome = mock.try_once(name);
                lease.settle(&outcome);
                outcome?;
                mock::check_embeddings(self.request).map_err(ApiError::from)?;
                return Ok(mock::embeddings(self.request));
            }
            Backend::Http(backend) => backend,
        };
        let endpoint = &lease.instance().endpoint;
        let tried = resilience::within(
            resilience::first_token_due(self.first_token, self.deadline),
            || format!("provider '{name}' did not answer in time"),
            exchange::embeddings(
                self.client,
                name,
                backend,
                endpoint,
                self.request,
                self.deadline,
            ),
        )
        .await;
        lease.settle(&tried);
        tried
    }
}
