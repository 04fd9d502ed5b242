//! A fake Anthropic Messages API. It validates what the gateway sends (path, `x-api-key`,
//! `anthropic-version`, required fields, role alternation, tool results answering the previous
//! turn's calls) and answers 400 in Anthropic's error format when a rule is broken.
//!
//! Behaviour by upstream model name: `ok` (text, or a call of the first tool with
//! `{"city": "Paris"}` when tools are offered), `parallel` (text then two calls of the first tool),
//! `error-<status>` (Anthropic's error body echoing the key), `cut` (the connection breaks
//! mid-stream), `unknown-event` (an undocumented event and block mid-stream), `refusal`. With
//! `thinking` enabled the answer opens with a signed thinking block; thinking blocks sent back
//! must carry their signature. `/v1/messages/count_tokens` answers 42 for any valid body.

use super::fake::{Received, Recorder, error_status};
use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The API key the fake expects in `x-api-key`.
pub const KEY: &str = "sk-ant-api03-fake-secret-0123456789";

/// Usage every answer reports: prompt tokens are 20 + 5 + 3 in OpenAI's terms.
const USAGE: &str = r#"{"input_tokens": 20, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 12}"#;

/// A running fake.
#[derive(Clone)]
pub struct FakeAnthropic {
    pub addr: SocketAddr,
    received: Recorder,
}

impl FakeAnthropic {
    pub async fn start() -> FakeAnthropic {
        let received = Recorder::default();
        let app = axum::Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeAnthropic { addr, received }
    }

    /// The API root, as Anthropic's SDK spells `base_url` (no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
    (status, Json(body)).into_response()
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

async fn messages(State(received): State<Recorder>, headers: HeaderMap, body: String) -> Response {
    let parsed: Result<Value, _> = serde_json::from_str(&body);
    received.record(Received {
        path: "/v1/messages".to_owned(),
        headers: headers.clone(),
        body: parsed.as_ref().map_or(Value::Null, Clone::clone),
        raw: body.clone(),
        ..Received::default()
    });
    if header_is(&headers, "x-api-key", KEY).is_err() {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return invalid("send the key as x-api-key, not Authorization");
    }
    let checks = header_is(&headers, "anthropic-version", "2023-06-01")
        .and_then(|()| header_is(&headers, "content-type", "application/json"));
    let body = match (checks, parsed) {
        (Err(message), _) => return invalid(&message),
        (Ok(()), Err(e)) => return invalid(&format!("invalid JSON: {e}")),
        (Ok(()), Ok(body)) => body,
    };
    if let Err(message) = validate(&body) {
        return invalid(&message);
    }
    answer(&body)
}

/// The signature the fake gives its thinking blocks, and checks on the way back.
pub const SIGNATURE: &str = "EqQBCkYIBxgCKkBsig0123456789";

async fn count_tokens(
    State(received): State<Recorder>,
    headers: HeaderMap,
    body: String,
) -> Response {
    received.record(Received {
        path: "/v1/messages/count_tokens".to_owned(),
        headers: headers.clone(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        raw: body,
        ..Received::default()
    });
    if header_is(&headers, "x-api-key", KEY).is_err() {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    Json(json!({"input_tokens": 42})).into_response()
}

fn header_is(headers: &HeaderMap, name: &str, want: &str) -> Result<(), String> {
    match headers.get(name).and_then(|v| v.to_str().ok()) {
        Some(value) if value == want => Ok(()),
        other => Err(format!("{name}: expected {want:?}, got {other:?}")),
    }
}

/// The rules of the Messages API reference that a translation can break.
fn validate(body: &Value) -> Result<(), String> {
    let object = body.as_object().ok_or("body must be an object")?;
    const FIELDS: &[&str] = &[
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "stream",
        "thinking",
        // Documented too, and sent by Claude Code.
        "output_config",
        "context_management",
        "service_tier",
        "container",
        "mcp_servers",
    ];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("{unknown}: Extra inputs are not permitted"));
    }
    if !body["model"].is_string() {
        return Err("model: Field required".into());
    }
    if body["max_tokens"].as_u64().is_none_or(|n| n == 0) {
        return Err("max_tokens: Field required".into());
    }
    if let Some(system) = body.get("system") {
        let blocks_ok = system.as_array().is_some_and(|b| {
            b.iter()
                .all(|b| b["type"] == "text" && b["text"].is_string())
        });
        if !system.is_string() && !blocks_ok {
            return Err("system: must be a string or text blocks".into());
        }
    }
    validate_messages(
        body["messages"]
            .as_array()
            .ok_or("messages: Field required")?,
    )?;
    validate_tools(body)
}

fn validate_messages(messages: &[Value]) -> Result<(), String> {
    if messages.first().is_none_or(|m| m["role"] != "user") {
        return Err("messages: first message must use the \"user\" role".into());
    }
    let mut previous_calls: Vec<String> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"]
            .as_str()
            .ok_or(format!("messages.{i}.role: Field required"))?;
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if role != expected {
            return Err(format!(
                "messages: roles must alternate between \"user\" and \"assistant\" (messages.{i})"
            ));
        }
        let blocks = blocks(&message["content"]).ok_or(format!("messages.{i}.content: invalid"))?;
        let mut calls = Vec::new();
        for block in &blocks {
            validate_block(block, role, &previous_calls)
                .map_err(|e| format!("messages.{i}.content: {e}"))?;
            if let Some(id) = block["id"].as_str().filter(|_| block["type"] == "tool_use") {
                calls.push(id.to_owned());
            }
        }
        previous_calls = calls;
    }
    Ok(())
}

fn blocks(content: &Value) -> Option<Vec<Value>> {
    match content {
        Value::String(text) if !text.is_empty() => {
            Some(vec![json!({"type": "text", "text": text})])
        }
        Value::Array(blocks) if !blocks.is_empty() => Some(blocks.clone()),
        _ => None,
    }
}

fn validate_block(block: &Value, role: &str, previous_calls: &[String]) -> Result<(), String> {
    match (block["type"].as_str(), role) {
        (Some("text"), _) if block["text"].as_str().is_some_and(|t| !t.is_empty()) => Ok(()),
        (Some("text"), _) => Err("text content blocks must be non-empty".into()),
        (Some("image"), "user") => match block["source"]["type"].as_str() {
            Some("base64")
                if block["source"]["media_type"].as_str().is_some_and(|m| {
                    ["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&m)
                }) && block["source"]["data"].is_string() =>
            {
                Ok(())
            }
            Some("base64") => Err(format!(
                "image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp', not {}",
                block["source"]["media_type"]
            )),
            Some("url") if block["source"]["url"].is_string() => Ok(()),
            _ => Err("image.source: invalid".into()),
        },
        (Some("tool_use"), "assistant")
            if !block["id"].as_str().is_some_and(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }) =>
        {
            Err(
                "messages.content.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                    .into(),
            )
        }
        (Some("tool_use"), "assistant")
            if block["id"].is_string()
                && block["name"].is_string()
                && block["input"].is_object() =>
        {
            Ok(())
        }
        (Some("thinking"), "assistant") if block["signature"] == SIGNATURE => Ok(()),
        (Some("thinking"), "assistant") => Err("thinking.signature: invalid signature".into()),
        (Some("tool_result"), "user") => match block["tool_use_id"].as_str() {
            Some(id) if previous_calls.iter().any(|c| c == id) => Ok(()),
            _ => Err(
                "tool_result blocks must answer a tool_use block of the previous message".into(),
            ),
        },
        (kind, role) => Err(format!("block {kind:?} is not allowed in a {role} message")),
    }
}

fn validate_tools(body: &Value) -> Result<(), String> {
    let tools = body["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        if !tool["name"].is_string() || tool["input_schema"]["type"] != "object" {
            return Err(format!(
                "tools.{i}: name and an object input_schema are required"
            ));
        }
    }
    match body.get("tool_choice").map(|c| c["type"].as_str()) {
        None | Some(Some("auto" | "any" | "none")) => Ok(()),
        Some(Some("tool"))
            if tools
                .iter()
                .any(|t| t["name"] == body["tool_choice"]["name"]) =>
        {
            Ok(())
        }
        Some(_) => Err("tool_choice: invalid".into()),
    }
}

/// What the model "says", as content blocks and a stop reason.
fn script(body: &Value) -> (Vec<Value>, &'static str) {
    let model = body["model"].as_str().unwrap_or("ok");
    let first_tool = body["tools"][0]["name"].as_str();
    let call = |id: &str, name: &str, city: &str| json!({"type": "tool_use", "id": id, "name": name, "input": {"city": city}});
    // A tool's result is answered in words, as a model would.
    let answered = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    if model == "agent" {
        return agent(body, answered);
    }
    match (model, first_tool) {
        _ if answered => (
            vec![json!({"type": "text", "text": "It is 18C in Paris."})],
            "end_turn",
        ),
        ("refusal", _) => (
            vec![json!({"type": "text", "text": "I can't help"})],
            "refusal",
        ),
        ("parallel", Some(name)) => (
            vec![
                json!({"type": "text", "text": "Checking both."}),
                call("toolu_01Paris", name, "Paris"),
                call("toolu_02Tokyo", name, "Tokyo"),
            ],
            "tool_use",
        ),
        (_, Some(name)) => (vec![call("toolu_01Paris", name, "Paris")], "tool_use"),
        _ => (
            vec![json!({"type": "text", "text": "Hello! How can I help?"})],
            "end_turn",
        ),
    }
}

/// The `agent` behaviour, for coding agents: asked to read a file (a path ending in `.txt` in
/// the last user text) with a `Read` tool or a shell on offer, it calls that tool on it; given
/// the result, it answers with what the file says.
fn agent(body: &Value, answered: bool) -> (Vec<Value>, &'static str) {
    let last = &body["messages"][body["messages"]
        .as_array()
        .map_or(0, |m| m.len().saturating_sub(1))];
    let texts: Vec<String> = match &last["content"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match &b["content"] {
                Value::String(text) => text.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                _ => b["text"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let said = texts.join("\n");
    if answered {
        let text = format!("The file says: {said}");
        return (vec![json!({"type": "text", "text": text})], "end_turn");
    }
    let offered = |name: &str| {
        body["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == name))
    };
    let path = said
        .split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',']))
        .find(|w| w.starts_with('/') && w.ends_with(".txt"));
    // Claude Code's file reader, or one of the shells the Codex CLI has had.
    let call = path.and_then(|path| {
        let cat = format!("cat {path}");
        [
            ("Read", json!({"file_path": path})),
            ("shell", json!({"command": ["cat", path]})),
            ("shell_command", json!({"command": cat})),
            ("exec_command", json!({"cmd": cat})),
        ]
        .into_iter()
        .find(|(name, _)| offered(name))
    });
    match call {
        Some((name, input)) => (
            vec![
                json!({"type": "tool_use", "id": "toolu_01ReadFile", "name": name, "input": input}),
            ],
            "tool_use",
        ),
        None => (vec![json!({"type": "text", "text": "Ready."})], "end_turn"),
    }
}

fn answer(body: &Value) -> Response {
    let model = body["model"].as_str().unwrap_or("ok");
    let thinks = body["thinking"]["type"] == "enabled";
    if let Some(status) = error_status(model) {
        let kind = match status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        return error(
            status,
            kind,
            &format!("fake failure {} for key {KEY}", status.as_u16()),
        );
    }
    let (mut content, stop_reason) = script(body);
    if thinks {
        let block =
            json!({"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE});
        content.insert(0, block);
    }
    if body["stream"] == json!(true) {
        return stream(model, content, stop_reason);
    }
    let usage: Value = serde_json::from_str(USAGE).expect("usage");
    Json(json!({
        "id": "msg_01FakeAnthropic", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage
    }))
    .into_response()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Splits text into pieces of a few characters, as Anthropic streams deltas.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(5).map(|c| c.iter().collect()).collect()
}

fn block_events(index: usize, block: &Value) -> Vec<String> {
    let mut events = Vec::new();
    let (start, deltas) = if block["type"] == "tool_use" {
        let mut start = block.clone();
        start["input"] = json!({});
        let json = block["input"].to_string();
        let mut deltas = vec![json!({"type": "input_json_delta", "partial_json": ""})];
        deltas.extend(
            pieces(&json)
                .into_iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p})),
        );
        (start, deltas)
    } else if block["type"] == "thinking" {
        let text = block["thinking"].as_str().unwrap_or_default();
        let mut deltas: Vec<Value> = pieces(text)
            .into_iter()
            .map(|p| json!({"type": "thinking_delta", "thinking": p}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": block["signature"]}));
        (
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        )
    } else {
        let text = block["text"].as_str().unwrap_or_default();
        let deltas = pieces(text)
            .into_iter()
            .map(|p| json!({"type": "text_delta", "text": p}))
            .collect();
        (json!({"type": "text", "text": ""}), deltas)
    };
    events.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": start}),
    ));
    for delta in deltas {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    ));
    events
}

fn stream(model: &str, content: Vec<Value>, stop_reason: &str) -> Response {
    let start_usage = json!({"input_tokens": 20, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 1});
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01FakeStream", "type": "message",
            "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let mut offset = 0;
    if model == "unknown-event" {
        events.push(event(
            "future_event",
            json!({"type": "future_event", "detail": "not yet documented"}),
        ));
        let mut unknown = block_events(0, &json!({"type": "text", "text": "ignored"}));
        unknown[0] = event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "future_block", "payload": 1}}),
        );
        events.extend(unknown);
        offset = 1;
    }
    for (i, block) in content.iter().enumerate() {
        events.extend(block_events(i + offset, block));
    }
    let cut = model == "cut";
    if cut {
        events.truncate(4);
    } else {
        events.push(event("message_delta", json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 12}})));
        events.push(event("message_stop", json!({"type": "message_stop"})));
    }
    let body =
        futures_util::stream::unfold((events.into_iter(), cut), |(mut events, cut)| async move {
            // Real providers pace their events; without a pause hyper may abort a cut response
            // before the events ahead of the cut have left.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            match events.next() {
                Some(event) => Some((Ok::<_, std::io::Error>(event), (events, cut))),
                // An error from the body stream makes hyper abort the connection mid-response.
                None if cut => Some((
                    Err(std::io::Error::other("connection cut")),
                    (events, false),
                )),
                None => None,
            }
        });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
