//! A fake Mistral API. It validates what the gateway sends as Mistral does (bearer key, path,
//! no field Mistral does not know, 9-character tool-call ids, results answering calls) and
//! answers in Mistral's OpenAI-style format; invalid requests get Mistral's error bodies.
//!
//! Behaviours by model: `ok` (text, or a call of the first tool when tools are offered, its
//! arguments streamed in fragments), `parallel` (two calls), `error-<status>` (echoes the key),
//! `cut` (the connection breaks mid-stream), `unknown-event` (a named event that is no chunk).

use super::fake::{Received, Recorder, error_status, event_body};
use std::net::SocketAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The API key the fake expects.
pub const KEY: &str = "mi-upstream-secret-0123456789";

type Shared = Recorder;

/// A running fake.
#[derive(Clone)]
pub struct FakeMistral {
    pub addr: SocketAddr,
    received: Shared,
}

const FIELDS: [&str; 17] = [
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stream",
    "stop",
    "random_seed",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "prediction",
    "parallel_tool_calls",
    "safe_prompt",
];

impl FakeMistral {
    pub async fn start() -> FakeMistral {
        let received = Shared::default();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeMistral { addr, received }
    }

    /// The `base_url` to configure: includes `/v1`, as Mistral's SDK spells it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }
}

fn mistral_error(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        Json(json!({"object": "error", "message": message, "type": kind, "param": null, "code": null})),
    )
        .into_response()
}

/// The 422 Mistral's schema validation answers with.
fn extra_forbidden(loc: Vec<Value>) -> Response {
    let detail = json!([{"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted", "input": null}]);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"object": "error", "message": {"detail": detail}, "type": "invalid_request_error", "param": null, "code": null})),
    )
        .into_response()
}

fn valid_id(id: &str) -> bool {
    id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check(body: &Value) -> Result<(), Box<Response>> {
    let fields = body.as_object().into_iter().flatten();
    for (key, _) in fields {
        if !FIELDS.contains(&key.as_str()) {
            return Err(Box::new(extra_forbidden(vec![json!("body"), json!(key)])));
        }
    }
    let choice = body.get("tool_choice").and_then(Value::as_str);
    if body.get("tool_choice").is_some()
        && !matches!(choice, Some("auto" | "none" | "any" | "required"))
    {
        return Err(Box::new(mistral_error(
            StatusCode::BAD_REQUEST,
            "invalid tool_choice",
            "invalid_request_error",
        )));
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(Box::new(mistral_error(
            StatusCode::BAD_REQUEST,
            "messages must not be empty",
            "invalid_request_error",
        )));
    };
    let mut open: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        let allowed: &[&str] = match role {
            "system" | "user" => &["role", "content"],
            "assistant" => &["role", "content", "tool_calls", "prefix"],
            "tool" => &["role", "content", "tool_call_id", "name"],
            _ => {
                return Err(Box::new(mistral_error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid role {role}"),
                    "invalid_request_error",
                )));
            }
        };
        if let Some(key) = m
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| !allowed.contains(&k.as_str()))
        {
            return Err(Box::new(extra_forbidden(vec![
                json!("body"),
                json!("messages"),
                json!(i),
                json!(role),
                json!(key),
            ])));
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let id = call["id"].as_str().unwrap_or_default();
            if !valid_id(id) {
                return Err(Box::new(mistral_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."
                    ),
                    "invalid_request_message_error",
                )));
            }
            open.push(id);
        }
        if role == "tool" && !open.contains(&m["tool_call_id"].as_str().unwrap_or_default()) {
            return Err(Box::new(mistral_error(
                StatusCode::BAD_REQUEST,
                "Unexpected tool call id in tool message",
                "invalid_request_message_error",
            )));
        }
    }
    Ok(())
}

async fn chat(
    State(received): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    received.record(Received {
        path: "/v1/chat/completions".into(),
        headers: headers.clone(),
        body: body.clone(),
        ..Received::default()
    });
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Unauthorized", "request_id": "r1"})),
        )
            .into_response();
    }
    if let Err(response) = check(&body) {
        return *response;
    }
    let model = body["model"].as_str().unwrap_or("ok").to_owned();
    if let Some(status) = error_status(&model) {
        return mistral_error(
            status,
            &format!("fake failure {} for key {KEY}", status.as_u16()),
            "fake_error",
        );
    }
    let tool = body["tools"][0]["function"]["name"]
        .as_str()
        .map(str::to_owned);
    let cities: &[&str] = match (model.as_str(), &tool) {
        ("parallel", Some(_)) => &["Paris", "Tokyo"],
        (_, Some(_)) => &["Paris"],
        _ => &[],
    };
    let calls: Vec<(String, String, String)> = cities
        .iter()
        .enumerate()
        .map(|(i, city)| {
            (
                format!("Ca11{i}xYz9"),
                tool.clone().unwrap_or_default(),
                format!("{{\"city\": \"{city}\"}}"),
            )
        })
        .collect();
    if body["stream"] == json!(true) {
        return stream(&model, &calls);
    }
    let (message, finish) = if calls.is_empty() {
        (
            json!({"role": "assistant", "content": "Bonjour from Mistral!", "tool_calls": null, "prefix": false}),
            "stop",
        )
    } else {
        let calls: Vec<Value> = calls.iter().map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})).collect();
        (
            json!({"role": "assistant", "content": "", "tool_calls": calls, "prefix": false}),
            "tool_calls",
        )
    };
    Json(json!({"id": "cmpl-e5cc70bb28c444948073e77776eb30ef", "object": "chat.completion", "created": 1702256327,
        "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 16, "total_tokens": 50, "completion_tokens": 34}}))
    .into_response()
}

fn chunk(model: &str, delta: Value, finish: Value, usage: Option<Value>) -> String {
    let mut chunk = json!({"id": "cmpl-e5cc70bb28c444948073e77776eb30ef", "object": "chat.completion.chunk",
        "created": 1702256327, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    if let Some(usage) = usage {
        chunk["usage"] = usage;
    }
    format!("data: {chunk}\n\n")
}

fn stream(model: &str, calls: &[(String, String, String)]) -> Response {
    let usage = json!({"prompt_tokens": 16, "total_tokens": 50, "completion_tokens": 34});
    let mut events = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        None,
    )];
    if calls.is_empty() {
        for piece in ["Bonjour", " from", " Mistral!"] {
            events.push(chunk(model, json!({"content": piece}), Value::Null, None));
        }
        if model == "unknown-event" {
            events.push("event: ping\ndata: {\"type\": \"keep-alive\"}\n\n".to_owned());
        }
        events.push(chunk(
            model,
            json!({"content": ""}),
            json!("stop"),
            Some(usage),
        ));
    } else {
        for (id, name, args) in calls {
            // Mistral sends the call with the start of its arguments, the rest in fragments.
            let (head, tail) = args.split_at(args.len() / 2);
            events.push(chunk(model, json!({"tool_calls": [{"id": id, "function": {"name": name, "arguments": head}, "index": 0}]}), Value::Null, None));
            events.push(chunk(
                model,
                json!({"tool_calls": [{"function": {"arguments": tail}, "index": 0}]}),
                Value::Null,
                None,
            ));
        }
        events.push(chunk(
            model,
            json!({"content": ""}),
            json!("tool_calls"),
            Some(usage),
        ));
    }
    let cut = model == "cut";
    if cut {
        events.truncate(2);
    } else {
        events.push("data: [DONE]\n\n".to_owned());
    }
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        event_body(events, cut),
    )
        .into_response()
}
