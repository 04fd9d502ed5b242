//! A fake Cohere v2 API. It validates what the gateway sends (path, bearer key, known fields,
//! role order, tool-call ids) and answers as Cohere's API reference documents, streamed or not;
//! anything invalid gets a 400 in Cohere's error format.
//!
//! Behaviours by model: `ok` (text, or a call of the first tool when tools are offered),
//! `parallel` (two calls of the first tool), `error-<status>` (echoes the key), `cut` (the
//! connection breaks mid-stream), `unknown-event` (an event type no adapter knows, then a normal
//! finish), `refusal` (Cohere's safety stop).

use super::fake::{Received, Recorder, error_status, event_body};
use std::net::SocketAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The API key the fake expects.
pub const KEY: &str = "co-upstream-secret-0123456789";

type Shared = Recorder;

/// A running fake.
#[derive(Clone)]
pub struct FakeCohere {
    pub addr: SocketAddr,
    received: Shared,
}

const CHAT_FIELDS: [&str; 19] = [
    "model",
    "messages",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "stream",
];

impl FakeCohere {
    pub async fn start() -> FakeCohere {
        let received = Shared::default();
        let app = axum::Router::new()
            .route("/v2/chat", post(chat))
            .route("/v2/embed", post(embed))
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeCohere { addr, received }
    }

    /// The `base_url` to configure: the API root, as Cohere's SDK spells it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }
}

/// Cohere's error body.
fn cohere_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"id": "6f2a2c1e-0000-4000-8000-000000000000", "message": message})),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> Result<(), String> {
    Err(message.into())
}

fn check_auth(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return Err(Box::new(cohere_error(
            StatusCode::UNAUTHORIZED,
            "invalid api token",
        )));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        == Some("application/json");
    if !json {
        return Err(Box::new(cohere_error(
            StatusCode::BAD_REQUEST,
            "content-type must be application/json",
        )));
    }
    Ok(())
}

fn check_chat(body: &Value) -> Result<(), String> {
    let Some(fields) = body.as_object() else {
        return invalid("body must be an object");
    };
    if let Some(unknown) = fields.keys().find(|k| !CHAT_FIELDS.contains(&k.as_str())) {
        return invalid(format!(
            "invalid request: unknown field: parameter {unknown} is not a valid field"
        ));
    }
    if !body["model"].is_string() {
        return invalid("invalid request: model must be a string");
    }
    if let Some(choice) = body.get("tool_choice")
        && !matches!(choice.as_str(), Some("REQUIRED" | "NONE"))
    {
        return invalid("invalid request: tool_choice must be REQUIRED or NONE");
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        if tool["type"] != "function" || !tool["function"]["name"].is_string() {
            return invalid("invalid request: tools must be functions with a name");
        }
    }
    check_messages(body)
}

fn check_messages(body: &Value) -> Result<(), String> {
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return invalid("invalid request: messages must not be empty");
    };
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m["role"].as_str() {
            Some("system" | "user") if m["content"].is_string() || m["content"].is_array() => {}
            Some("assistant") => {
                open_calls.clear();
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    if call["type"] != "function" || !call["function"]["arguments"].is_string() {
                        return invalid(format!(
                            "invalid request: messages[{i}].tool_calls are malformed"
                        ));
                    }
                    open_calls.push(call["id"].as_str().unwrap_or_default().to_owned());
                }
                if m.get("tool_calls").is_none() && m.get("content").is_none() {
                    return invalid(format!(
                        "invalid request: messages[{i}] needs content or tool_calls"
                    ));
                }
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                if !open_calls.iter().any(|c| c == id) {
                    return invalid(format!(
                        "invalid request: messages[{i}].tool_call_id {id:?} answers no tool call"
                    ));
                }
            }
            _ => {
                return invalid(format!(
                    "invalid request: messages[{i}] has an invalid role or content"
                ));
            }
        }
    }
    Ok(())
}

fn record(received: &Shared, path: &str, headers: &HeaderMap, body: &Value) {
    received.record(Received {
        path: path.to_owned(),
        headers: headers.clone(),
        body: body.clone(),
        ..Received::default()
    });
}

async fn chat(
    State(received): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&received, "/v2/chat", &headers, &body);
    if let Err(response) = check_auth(&headers) {
        return *response;
    }
    if let Err(message) = check_chat(&body) {
        return cohere_error(StatusCode::BAD_REQUEST, &message);
    }
    let model = body["model"].as_str().unwrap_or("ok").to_owned();
    if let Some(status) = error_status(&model) {
        return cohere_error(
            status,
            &format!("fake failure {} for key {KEY}", status.as_u16()),
        );
    }
    let tool = body["tools"][0]["function"]["name"]
        .as_str()
        .map(str::to_owned);
    let answer = Answer::new(&model, tool);
    if body["stream"] == json!(true) {
        return stream(&model, &answer);
    }
    Json(answer.whole()).into_response()
}

/// What the fake model answers: text, or tool calls with their argument documents.
struct Answer {
    calls: Vec<(String, String, String)>,
    finish: &'static str,
}

const TEXT: [&str; 3] = ["Hello", " from", " Cohere!"];

impl Answer {
    fn new(model: &str, tool: Option<String>) -> Answer {
        let cities: &[&str] = match (model, &tool) {
            ("parallel", Some(_)) => &["Paris", "Tokyo"],
            ("ok", Some(_)) => &["Paris"],
            _ => &[],
        };
        let calls = cities
            .iter()
            .enumerate()
            .map(|(i, city)| {
                let name = tool.clone().unwrap_or_default();
                (
                    format!("{name}_call{i}"),
                    name,
                    format!("{{\"city\": \"{city}\"}}"),
                )
            })
            .collect::<Vec<_>>();
        let finish = match model {
            "refusal" => "CONTENT_BLOCKED",
            _ if !calls.is_empty() => "TOOL_CALL",
            _ => "COMPLETE",
        };
        Answer { calls, finish }
    }

    fn usage() -> Value {
        json!({"billed_units": {"input_tokens": 10, "output_tokens": 5}, "tokens": {"input_tokens": 12, "output_tokens": 6}})
    }

    fn whole(&self) -> Value {
        let mut message = json!({"role": "assistant"});
        if self.calls.is_empty() {
            let text = if self.finish == "CONTENT_BLOCKED" {
                String::new()
            } else {
                TEXT.concat()
            };
            message["content"] = json!([{"type": "text", "text": text}]);
        } else {
            message["tool_plan"] = json!("I will look up the weather.");
            message["tool_calls"] = self
                .calls
                .iter()
                .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                .collect();
        }
        json!({"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finish_reason": self.finish,
            "message": message, "usage": Answer::usage()})
    }

    fn events(&self, model: &str) -> Vec<Value> {
        let mut events = vec![
            json!({"id": "a8fc192e-4bb8-4e15-ae1f-a174e8b02ae8", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        ];
        if self.calls.is_empty() && self.finish != "CONTENT_BLOCKED" {
            events.push(json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}));
            for piece in TEXT {
                events.push(json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}));
            }
            if model == "unknown-event" {
                events.push(
                    json!({"type": "x-future-event", "index": 0, "delta": {"surprise": true}}),
                );
            }
            events.push(json!({"type": "content-end", "index": 0}));
        } else if !self.calls.is_empty() {
            events.push(json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up the weather."}}}));
        }
        for (i, (id, name, args)) in self.calls.iter().enumerate() {
            events.push(
                json!({"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls":
                {"id": id, "type": "function", "function": {"name": name, "arguments": ""}}}}}),
            );
            // Several fragments, split inside the JSON as Cohere does.
            let (head, tail) = args.split_at(args.len() / 2);
            for piece in [&args[..1], &head[1..], tail] {
                events.push(json!({"type": "tool-call-delta", "index": i, "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}}));
            }
            events.push(json!({"type": "tool-call-end", "index": i}));
        }
        events.push(json!({"type": "message-end", "delta": {"finish_reason": self.finish, "usage": Answer::usage()}}));
        events
    }
}

fn stream(model: &str, answer: &Answer) -> Response {
    let mut events: Vec<String> = answer
        .events(model)
        .into_iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let cut = model == "cut";
    if cut {
        events.truncate(3);
    }
    // Paced like a real provider, which also shows the gateway relays as events arrive.
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        event_body(events, cut),
    )
        .into_response()
}

async fn embed(
    State(received): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&received, "/v2/embed", &headers, &body);
    if let Err(response) = check_auth(&headers) {
        return *response;
    }
    let Some(texts) = body["texts"].as_array().filter(|t| !t.is_empty()) else {
        return cohere_error(
            StatusCode::BAD_REQUEST,
            "invalid request: texts must not be empty",
        );
    };
    if texts.len() > 96 {
        return cohere_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "invalid request: total number of texts must be at most 96 - received {}",
                texts.len()
            ),
        );
    }
    let input_types = [
        "search_document",
        "search_query",
        "classification",
        "clustering",
        "image",
    ];
    if !input_types.contains(&body["input_type"].as_str().unwrap_or_default()) {
        return cohere_error(
            StatusCode::BAD_REQUEST,
            "invalid request: input_type is required for embed-v3 and newer",
        );
    }
    if body["embedding_types"] != json!(["float"]) {
        return cohere_error(
            StatusCode::BAD_REQUEST,
            "the fake only serves float embeddings",
        );
    }
    // A numeric text is its own last value, so a test can tell the vectors apart.
    let float: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mark = text.as_str().and_then(|t| t.parse::<f64>().ok());
            json!([0.5, -0.25, mark.unwrap_or(i as f64)])
        })
        .collect();
    Json(json!({
        "id": "da6e531f-7f6d-4f5e-9a5f-e8a3c4bbd7f2",
        "embeddings": {"float": float},
        "texts": texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 7}},
        "response_type": "embeddings_by_type"
    }))
    .into_response()
}
