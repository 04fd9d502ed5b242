//! A fake Azure OpenAI resource. It validates what the gateway sends as Azure does (deployment
//! path, `api-version` query, `api-key` header and no bearer token) and answers in OpenAI's
//! format with Azure's content-filter annotations; errors use Azure's `{"error": {...}}` body.
//!
//! Behaviours by deployment: `ok` (text, or a call of the first tool when tools are offered,
//! streamed in fragments), `parallel` (two calls), `error-<status>` (echoes the key), `cut`
//! (the connection breaks mid-stream), `unknown-event` (a named event that is no chunk),
//! `refusal` (`finish_reason: content_filter`), `filtered-prompt` (Azure's 400 content_filter).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The API key the fake expects.
pub const KEY: &str = "az-upstream-secret-0123456789";
/// The `api-version` the fake expects.
pub const API_VERSION: &str = "2024-10-21";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub query: String,
    pub body: Value,
}

type Shared = Arc<Mutex<Vec<Received>>>;

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
        self.received.lock().expect("lock").clone()
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
    received.lock().expect("lock").push(Received {
        path,
        query: query.clone(),
        body: body.clone(),
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

fn chunk(delta: Value, finish: Value) -> String {
    let chunk = json!({"choices": [{"content_filter_results": {}, "delta": delta, "finish_reason": finish, "index": 0, "logprobs": null}],
        "created": 1709000000, "id": "chatcmpl-az1", "model": "gpt-4o-2024-08-06", "object": "chat.completion.chunk", "system_fingerprint": "fp_az"});
    format!("data: {chunk}\n\n")
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
    if let Some(status) = deployment.strip_prefix("error-") {
        let status =
            StatusCode::from_bytes(status.as_bytes()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
    let tool = body["tools"][0]["function"]["name"]
        .as_str()
        .map(str::to_owned);
    let cities: &[&str] = match (deployment.as_str(), &tool) {
        ("parallel", Some(_)) => &["Paris", "Tokyo"],
        (_, Some(_)) => &["Paris"],
        _ => &[],
    };
    let calls: Vec<(String, String, String)> = cities
        .iter()
        .enumerate()
        .map(|(i, city)| {
            (
                format!("call_az{i}"),
                tool.clone().unwrap_or_default(),
                format!("{{\"city\": \"{city}\"}}"),
            )
        })
        .collect();
    let finish = match (deployment.as_str(), calls.is_empty()) {
        ("refusal", _) => "content_filter",
        (_, false) => "tool_calls",
        _ => "stop",
    };
    let usage = json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13});
    if body["stream"] != json!(true) {
        let message = if calls.is_empty() {
            json!({"role": "assistant", "content": if finish == "stop" { json!("Hello from Azure!") } else { Value::Null }})
        } else {
            let calls: Vec<Value> = calls.iter().map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})).collect();
            json!({"role": "assistant", "content": null, "tool_calls": calls})
        };
        return Json(json!({"id": "chatcmpl-az1", "object": "chat.completion", "created": 1709000000, "model": "gpt-4o-2024-08-06",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "choices": [{"index": 0, "finish_reason": finish, "message": message, "content_filter_results": {}}],
            "usage": usage})).into_response();
    }
    // Azure opens a stream with the prompt's filter results and no choices.
    let mut events = vec![format!(
        "data: {}\n\n",
        json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})
    )];
    events.push(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    if calls.is_empty() && finish == "stop" {
        for piece in ["Hello", " from", " Azure!"] {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
        if deployment == "unknown-event" {
            events.push("event: ping\ndata: {}\n\n".to_owned());
        }
    }
    for (i, (id, name, args)) in calls.iter().enumerate() {
        events.push(chunk(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}), Value::Null));
        let (head, tail) = args.split_at(args.len() / 2);
        for piece in [head, tail] {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    if body["stream_options"]["include_usage"] == json!(true) {
        events.push(format!("data: {}\n\n", json!({"choices": [], "created": 1709000000, "id": "chatcmpl-az1", "model": "gpt-4o-2024-08-06",
            "object": "chat.completion.chunk", "usage": usage})));
    }
    let cut = deployment == "cut";
    if cut {
        events.truncate(3);
    } else {
        events.push("data: [DONE]\n\n".to_owned());
    }
    let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>))
        .chain(futures_util::stream::iter(
            cut.then(|| Err(std::io::Error::other("connection cut"))),
        ))
        .then(|event| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            event
        });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
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
