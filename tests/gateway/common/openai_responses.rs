//! The fake OpenAI's Responses API (`POST /v1/responses`), answering as OpenAI's API reference
//! documents it: the response object, or its event sequence with `event:` names and sequence
//! numbers. It keeps the ids it wrote, as OpenAI does with `store`, and refuses a
//! `previous_response_id` it did not write.
//!
//! What it answers: a function call to the first function tool until the input holds a
//! `function_call_output`; a `web_search_call` then a message when `tool_choice` forces
//! `web_search`; otherwise a message naming the response it continues. A `reasoning` request
//! gets a reasoning item with a summary first. Models `error-<status>` fail; `cut` breaks the
//! stream after its first text delta.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake::{error_status, event_body};

/// The ids written so far, and a counter to write the next.
#[derive(Default)]
pub struct Written {
    ids: Mutex<HashSet<String>>,
    next: AtomicUsize,
}

fn error(status: StatusCode, message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
                                "param": param, "code": code}});
    (status, axum::Json(body)).into_response()
}

/// Answers one request whose body is `body` (already checked for a key and a model).
pub fn answer(written: &Written, body: &Value) -> Response {
    let model = body["model"].as_str().unwrap_or("ok");
    if let Some(status) = error_status(model) {
        return error(
            status,
            &format!("fake failure {}", status.as_u16()),
            None,
            None,
        );
    }
    if body.get("input").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'input'.",
            Some("input"),
            None,
        );
    }
    let previous = body["previous_response_id"].as_str();
    if let Some(id) = previous
        && !written.ids.lock().unwrap().contains(id)
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        );
    }
    let n = written.next.fetch_add(1, Ordering::SeqCst) + 1;
    let id = format!("resp_fake{n}");
    if body["store"] != json!(false) {
        written.ids.lock().unwrap().insert(id.clone());
    }
    let output = output(body, n, previous);
    let object = |status: &str, output: Vec<Value>, usage: Value| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000 + n, "status": status,
               "error": null, "incomplete_details": null, "model": format!("{model}-2025"),
               "output": output, "previous_response_id": previous, "store": body["store"] != json!(false),
               "tools": body["tools"].clone(), "usage": usage, "metadata": {}})
    };
    let usage = json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2},
                       "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 1},
                       "total_tokens": 17});
    if body["stream"] != json!(true) {
        return axum::Json(object("completed", output, usage)).into_response();
    }
    let mut events = Events::default();
    events.push(
        "response.created",
        json!({"response": object("in_progress", vec![], Value::Null)}),
    );
    events.push(
        "response.in_progress",
        json!({"response": object("in_progress", vec![], Value::Null)}),
    );
    let mut cut = false;
    for (index, item) in output.iter().enumerate() {
        cut = events.item(index, item, model == "cut");
        if cut {
            break;
        }
    }
    if !cut {
        events.push(
            "response.completed",
            json!({"response": object("completed", output, usage)}),
        );
    }
    let mut response = Response::new(event_body(events.0, cut));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
    response
}

/// The output items of response `n`.
fn output(body: &Value, n: usize, previous: Option<&str>) -> Vec<Value> {
    let mut items = Vec::new();
    if body.get("reasoning").is_some() {
        items.push(json!({"type": "reasoning", "id": format!("rs_{n}"),
                          "summary": [{"type": "summary_text", "text": "Thought it over."}],
                          "encrypted_content": "gAAAAB-opaque"}));
    }
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    let answered = inputs.iter().any(|i| i["type"] == "function_call_output");
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let function = tools.iter().find(|t| t["type"] == "function");
    if body["tool_choice"]["type"] == "web_search" {
        items.push(
            json!({"type": "web_search_call", "id": format!("ws_{n}"), "status": "completed",
                          "action": {"type": "search", "query": "news"}}),
        );
        items.push(message(n, "Searched the web."));
    } else if let (Some(function), false) = (function, answered) {
        items.push(json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": format!("call_fake{n}"),
                          "name": function["name"], "arguments": "{\"city\":\"Paris\"}", "status": "completed"}));
    } else {
        let text = match previous {
            Some(id) => format!("Hello again, continuing {id}."),
            None => "Hello from Responses.".to_owned(),
        };
        items.push(message(n, &text));
    }
    items
}

fn message(n: usize, text: &str) -> Value {
    json!({"type": "message", "id": format!("msg_{n}"), "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// Events with their names and sequence numbers, as OpenAI frames them.
#[derive(Default)]
struct Events(Vec<String>);

impl Events {
    fn push(&mut self, name: &str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.0.len());
        self.0.push(format!("event: {name}\ndata: {data}\n\n"));
    }

    /// One output item's events; with `cut`, true once a message's first delta is out.
    fn item(&mut self, index: usize, item: &Value, cut: bool) -> bool {
        let id = item["id"].clone();
        let mut added = item.clone();
        match item["type"].as_str() {
            Some("message") => added["content"] = json!([]),
            Some("function_call") => added["arguments"] = json!(""),
            Some("reasoning") => added["summary"] = json!([]),
            _ => {}
        }
        added["status"] = json!("in_progress");
        self.push(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        match item["type"].as_str() {
            Some("message") => {
                let text = item["content"][0]["text"].as_str().unwrap_or_default();
                let (head, tail) = text.split_at(text.len() / 2);
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let with = |extra: Value| {
                    let mut data = at.clone();
                    data.as_object_mut()
                        .unwrap()
                        .extend(extra.as_object().unwrap().clone());
                    data
                };
                self.push(
                    "response.content_part.added",
                    with(json!({"part": {"type": "output_text", "text": "", "annotations": []}})),
                );
                self.push(
                    "response.output_text.delta",
                    with(json!({"delta": head, "logprobs": []})),
                );
                if cut {
                    return true;
                }
                self.push(
                    "response.output_text.delta",
                    with(json!({"delta": tail, "logprobs": []})),
                );
                self.push(
                    "response.output_text.done",
                    with(json!({"text": text, "logprobs": []})),
                );
                self.push(
                    "response.content_part.done",
                    with(json!({"part": item["content"][0]})),
                );
            }
            Some("function_call") => {
                let arguments = item["arguments"].as_str().unwrap_or_default();
                let (head, tail) = arguments.split_at(arguments.len() / 2);
                for delta in [head, tail] {
                    self.push(
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": index, "delta": delta}),
                    );
                }
                self.push(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                );
            }
            Some("reasoning") => {
                let text = item["summary"][0]["text"].clone();
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                let mut delta = at.clone();
                delta["delta"] = text.clone();
                self.push("response.reasoning_summary_text.delta", delta);
                let mut done = at;
                done["text"] = text;
                self.push("response.reasoning_summary_text.done", done);
            }
            _ => {}
        }
        self.push(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        false
    }
}

/// The body of a request the fake could not read as JSON.
pub fn unreadable() -> Response {
    (StatusCode::BAD_REQUEST, Body::from("{\"error\":{\"message\":\"We could not parse the JSON body of your request.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}")).into_response()
}
