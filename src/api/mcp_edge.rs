//! What `/mcp` handles beside rmcp, whose typed model cannot carry it: 2025-11-25 task requests
//! (answered here whole), the `tasks` capability in a 2025-11-25 `initialize` answer, and every
//! field an upstream server lists of a tool put back into `tools/list` answers.
//!
//! Only a request's method is read here, from the body the auth layer already holds; rmcp's
//! answers are edited only when there is something to add.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::JsonObject;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::Caller;
use crate::mcp::TASK_METHODS;

/// The most of rmcp's answer read to edit it (a tool list is far smaller).
const MAX_EDITED: usize = 64 * 1024 * 1024;

/// What a POST asks, as far as the edge cares.
pub enum Asked {
    /// A task request, answered here: its id, method and params.
    Task(Value, String, Option<Value>),
    Initialize,
    ListTools,
    Other,
}

/// Reads the method of one JSON-RPC request; anything else (a batch, a notification, an
/// answer, bytes that are not JSON) is [`Asked::Other`], for rmcp to judge.
pub fn asked(body: &[u8]) -> Asked {
    let worth_reading = [&b"\"task"[..], b"\"initialize\"", b"\"tools/list\""]
        .iter()
        .any(|needle| memchr::memmem::find(body, needle).is_some());
    if !worth_reading {
        return Asked::Other;
    }
    #[derive(Deserialize)]
    struct Envelope {
        id: Option<Value>,
        method: Option<String>,
        params: Option<Value>,
    }
    let Ok(Envelope {
        id: Some(id),
        method: Some(method),
        params,
    }) = serde_json::from_slice(body)
    else {
        return Asked::Other;
    };
    let augmented = || {
        params
            .as_ref()
            .and_then(|p| p.get("task"))
            .is_some_and(Value::is_object)
    };
    match method.as_str() {
        "initialize" => Asked::Initialize,
        "tools/list" => Asked::ListTools,
        "tools/call" if augmented() => Asked::Task(id, method, params),
        m if TASK_METHODS.contains(&m) => Asked::Task(id, method, params),
        _ => Asked::Other,
    }
}

/// The method of a body the edge answers or edits, if it is one (for the fuzz target).
pub fn method_asked(body: &[u8]) -> Option<String> {
    match asked(body) {
        Asked::Task(_, method, _) => Some(method),
        Asked::Initialize => Some("initialize".to_owned()),
        Asked::ListTools => Some("tools/list".to_owned()),
        Asked::Other => None,
    }
}

/// The answer to a task request on `session`, or `None` when that session does not live here.
pub async fn answer_task(
    state: &AppState,
    caller: &Caller,
    session: &str,
    (id, method, params): (Value, String, Option<Value>),
) -> Option<Response> {
    let shared = &state.mcp_shared;
    let answer = shared
        .task_request(caller, session, (&method, params))
        .await?;
    let message = match answer {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    };
    let kind = [(header::CONTENT_TYPE, "application/json")];
    Some((kind, message.to_string()).into_response())
}

/// rmcp's answer to what was `asked`, with what its typed model could not say added.
/// `stateless`: the request was of the sessionless revision, whose clients see each server's
/// 2026-07-28 face.
pub async fn completed(
    state: &AppState,
    (asked, stateless): (&Asked, bool),
    response: Response,
) -> Response {
    let shared = &state.mcp_shared;
    let era = match stateless {
        true => crate::mcp::Era::Stateless,
        false => crate::mcp::Era::Session,
    };
    match asked {
        Asked::Initialize if shared.runs_tasks() => edited(response, declare_tasks).await,
        Asked::ListTools if shared.any_tool_extras() => {
            edited(response, |result| {
                restore_tools(result, |n| shared.tool_extras(era, n))
            })
            .await
        }
        _ => response,
    }
}

/// The `tasks` capability (2025-11-25): upstream tools may run as tasks, listed and cancelled.
fn declare_tasks(result: &mut JsonObject) {
    if result.get("protocolVersion").and_then(Value::as_str) != Some("2025-11-25") {
        return;
    }
    if let Some(Value::Object(capabilities)) = result.get_mut("capabilities") {
        let tasks = json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
        capabilities.insert("tasks".to_owned(), tasks);
    }
}

fn restore_tools(result: &mut JsonObject, extras: impl Fn(&str) -> Option<JsonObject>) {
    let Some(Value::Array(tools)) = result.get_mut("tools") else {
        return;
    };
    for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(lost) = extras(name) {
            crate::mcp::restore_lost(tool, &lost);
        }
    }
}

/// `response` with `edit` applied to the result of each JSON-RPC answer in it, in a JSON body
/// or in the data of a server-sent event. An error status, or a body past [`MAX_EDITED`], is
/// passed on as it came.
async fn edited(response: Response, edit: impl Fn(&mut JsonObject)) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_EDITED).await else {
        let message = "an MCP answer too large to edit";
        tracing::warn!("{message}");
        return crate::error::ApiError::bad_gateway(message).into_response();
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let edit_message = |message: &str| -> Option<String> {
        let mut message: Value = serde_json::from_str(message).ok()?;
        edit(message.get_mut("result")?.as_object_mut()?);
        Some(message.to_string())
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let out = if is_json {
        edit_message(text).unwrap_or_else(|| text.to_owned())
    } else {
        let lines = text.split_inclusive('\n').map(|line| {
            let Some(data) = line.strip_prefix("data:") else {
                return line.to_owned();
            };
            let ending = &data[data.trim_end_matches(['\r', '\n']).len()..];
            match edit_message(data.trim()) {
                Some(message) => format!("data: {message}{ending}"),
                None => line.to_owned(),
            }
        });
        lines.collect()
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Ok(length) = HeaderValue::from_str(&out.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, length);
    }
    Response::from_parts(parts, Body::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_task_requests_are_taken_from_rmcp() {
        let task = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","task":{"ttl":1}}}"#;
        assert!(matches!(asked(task), Asked::Task(_, m, _) if m == "tools/call"));
        let plain = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"task","arguments":{"task":1}}}"#;
        assert!(matches!(asked(plain), Asked::Other));
        let get = br#"{"jsonrpc":"2.0","id":"x","method":"tasks/get","params":{"taskId":"t"}}"#;
        assert!(matches!(asked(get), Asked::Task(..)));
        let note = br#"{"jsonrpc":"2.0","method":"tasks/get"}"#;
        assert!(matches!(asked(note), Asked::Other));
        assert!(matches!(
            asked(b"[{\"id\":1,\"method\":\"tasks/get\"}]"),
            Asked::Other
        ));
        assert!(matches!(asked(b"{\"task"), Asked::Other));
        let list = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        assert!(matches!(asked(list), Asked::ListTools));
    }

    #[tokio::test]
    async fn an_event_stream_answer_is_edited_event_by_event() {
        let body = "id: 0\ndata: \n\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\r\n\r\n";
        let response = ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response();
        let response = edited(response, declare_tasks).await;
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with("id: 0\ndata: \n\nid: 1\ndata: {"),
            "{text}"
        );
        assert!(text.ends_with("}\r\n\r\n"), "{text}");
        let data = text.lines().nth(4).unwrap().strip_prefix("data: ").unwrap();
        let message: Value = serde_json::from_str(data).unwrap();
        let tasks = &message["result"]["capabilities"]["tasks"];
        assert_eq!(tasks["requests"]["tools"]["call"], json!({}));
    }
}
