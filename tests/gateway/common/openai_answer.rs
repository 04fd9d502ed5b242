//! The scripted answers of the fakes that speak OpenAI's format (OpenAI itself and Azure): text,
//! one or two tool calls with their arguments streamed in halves (text once a tool's result is
//! last), a refusal, an unknown event and
//! a cut stream, picked by the behaviour name; Azure's flavour adds its content-filter annotations.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake::event_body;

/// Whose answer it is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    /// With `prompt_filter_results` and `content_filter_results`, as Azure OpenAI answers.
    Azure,
}

impl Flavor {
    fn text(self) -> [&'static str; 3] {
        match self {
            Flavor::OpenAi => ["Hello", " from", " OpenAI!"],
            Flavor::Azure => ["Hello", " from", " Azure!"],
        }
    }

    fn id(self) -> &'static str {
        match self {
            Flavor::OpenAi => "call_oa",
            Flavor::Azure => "call_az",
        }
    }

    fn chunk(self, delta: Value, finish: Value) -> String {
        let mut choice =
            json!({"delta": delta, "finish_reason": finish, "index": 0, "logprobs": null});
        if self == Flavor::Azure {
            choice["content_filter_results"] = json!({});
        }
        let chunk = json!({"choices": [choice], "created": 1709000000, "id": "chatcmpl-az1",
            "model": "gpt-4o-2024-08-06", "object": "chat.completion.chunk", "system_fingerprint": "fp_az"});
        format!("data: {chunk}\n\n")
    }
}

/// The answer to `body` for `behaviour`: `parallel` (two calls of the first tool), `refusal`
/// (`finish_reason: content_filter`), `unknown-event` (a named event that is no chunk), `cut`
/// (the connection breaks mid-stream); otherwise text, or one call when tools are offered.
pub fn answer(behaviour: &str, body: &Value, flavor: Flavor) -> Response {
    let tool = body["tools"][0]["function"]["name"]
        .as_str()
        .map(str::to_owned);
    // A tool's result is answered in words, as a model would.
    let answered = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    let cities: &[&str] = match (behaviour, &tool) {
        _ if answered => &[],
        ("parallel", Some(_)) => &["Paris", "Tokyo"],
        (_, Some(_)) => &["Paris"],
        _ => &[],
    };
    let calls: Vec<(String, String, String)> = cities
        .iter()
        .enumerate()
        .map(|(i, city)| {
            (
                format!("{}{i}", flavor.id()),
                tool.clone().unwrap_or_default(),
                format!("{{\"city\": \"{city}\"}}"),
            )
        })
        .collect();
    let finish = match (behaviour, calls.is_empty()) {
        ("refusal", _) => "content_filter",
        (_, false) => "tool_calls",
        _ => "stop",
    };
    let usage = json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13});
    if body["stream"] != json!(true) {
        let text = flavor.text().concat();
        let message = if calls.is_empty() {
            json!({"role": "assistant", "content": if finish == "stop" { json!(text) } else { Value::Null }})
        } else {
            let calls: Vec<Value> = calls.iter().map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})).collect();
            json!({"role": "assistant", "content": null, "tool_calls": calls})
        };
        let mut choice = json!({"index": 0, "finish_reason": finish, "message": message});
        let mut answer = json!({"id": "chatcmpl-az1", "object": "chat.completion", "created": 1709000000,
            "model": "gpt-4o-2024-08-06", "usage": usage});
        if flavor == Flavor::Azure {
            choice["content_filter_results"] = json!({});
            answer["prompt_filter_results"] =
                json!([{"prompt_index": 0, "content_filter_results": {}}]);
        }
        answer["choices"] = json!([choice]);
        return Json(answer).into_response();
    }
    let mut events = Vec::new();
    if flavor == Flavor::Azure {
        // Azure opens a stream with the prompt's filter results and no choices.
        events.push(format!(
            "data: {}\n\n",
            json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})
        ));
    }
    events.push(flavor.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    if calls.is_empty() && finish == "stop" {
        for piece in flavor.text() {
            events.push(flavor.chunk(json!({"content": piece}), Value::Null));
        }
        if behaviour == "unknown-event" {
            events.push("event: ping\ndata: {}\n\n".to_owned());
        }
    }
    for (i, (id, name, args)) in calls.iter().enumerate() {
        events.push(flavor.chunk(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}), Value::Null));
        let (head, tail) = args.split_at(args.len() / 2);
        for piece in [head, tail] {
            events.push(flavor.chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(flavor.chunk(json!({}), json!(finish)));
    if body["stream_options"]["include_usage"] == json!(true) {
        events.push(format!("data: {}\n\n", json!({"choices": [], "created": 1709000000, "id": "chatcmpl-az1", "model": "gpt-4o-2024-08-06",
            "object": "chat.completion.chunk", "usage": usage})));
    }
    let cut = behaviour == "cut";
    if cut {
        // What arrived before the cut: the opening chunks and the first word.
        events.truncate(if flavor == Flavor::Azure { 3 } else { 2 });
    } else {
        events.push("data: [DONE]\n\n".to_owned());
    }
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        event_body(events, cut),
    )
        .into_response()
}
