//! A fake Azure OpenAI resource. It validates what the gateway sends as Azure does (deployment
//! path, `api-version` query, `api-key` header and no bearer token) and answers in OpenAI's
//! format with Azure's content-filter annotations; errors use Azure's `{"error": {...}}` body.
//!
//! Behaviours by deployment: `ok` (text, or a call of the first tool when tools are offered,
//! streamed in fragments), `parallel` (two calls), `error-<status>` (echoes the key), `cut`
//! (the connection breaks mid-stream), `unknown-event` (a named event that is no chunk),
//! `refusal` (`finish_reason: content_filter`), `filtered-prompt` (Azure's 400 content_filter).

use super::fake::{Received, Recorder, error_status};
use super::openai_answer;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The API key the fake expects.
pub const KEY: &str = "az-upstream-secret-0123456789";
/// The `api-version` the fake expects.
pub const API_VERSION: &str = "2024-10-21";

type Shared = Recorder;

/// A running fake.
#[derive(Clone)]
pub struct FakeAzure {
    pub addr: SocketAddr,
    received: Shared,
}

impl FakeAzure {
    pub async fn start() -> FakeAzure {
        let received = Shared::default();
        let app = axum::Router::new()
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(chat),
            )
            .route(
                "/openai/deployments/{deployment}/embeddings",
                post(embeddings),
            )
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeAzure { addr, received }
    }

    /// The resource endpoint to configure as `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }
}

fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn check(
    received: &Shared,
    path: String,
    query: Option<String>,
    headers: &HeaderMap,
    body: &Value,
) -> Result<(), Box<Response>> {
    let query = query.unwrap_or_default();
    received.record(Received {
        path,
        query: query.clone(),
        body: body.clone(),
        ..Received::default()
    });
    if query != format!("api-version={API_VERSION}") {
        return Err(Box::new(azure_error(
            StatusCode::NOT_FOUND,
            "404",
            "Resource not found",
        )));
    }
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    if key != Some(KEY) || headers.contains_key(header::AUTHORIZATION) {
        return Err(Box::new(azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        )));
    }
    Ok(())
}

async fn chat(
    State(received): State<Shared>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/openai/deployments/{deployment}/chat/completions");
    if let Err(response) = check(&received, path, query, &headers, &body) {
        return *response;
    }
    if body["messages"].as_array().is_none_or(Vec::is_empty) {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "'messages' is a required property",
        );
    }
    if let Some(status) = error_status(&deployment) {
        return azure_error(
            status,
            "fake_code",
            &format!("fake failure {} for key {KEY}", status.as_u16()),
        );
    }
    if deployment == "filtered-prompt" {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400}}))).into_response();
    }
    openai_answer::answer(&deployment, &body, openai_answer::Flavor::Azure)
}

async fn embeddings(
    State(received): State<Shared>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/openai/deployments/{deployment}/embeddings");
    if let Err(response) = check(&received, path, query, &headers, &body) {
        return *response;
    }
    Json(json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}],
        "model": "text-embedding-3-small", "usage": {"prompt_tokens": 2, "total_tokens": 2}}))
    .into_response()
}
