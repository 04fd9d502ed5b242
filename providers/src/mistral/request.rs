//! Canonical chat requests rewritten for Mistral, which speaks OpenAI's format but forbids any
//! field it does not know (422 `extra_forbidden`) and names a few things its own way.

use serde_json::{Map, Value, json};

use crate::chat::{ChatRequest, Message, ToolChoice, ToolChoiceMode, legacy_function_message};
use crate::error::ProviderError;

/// Top-level fields Mistral accepts; everything else is left out rather than refused upstream.
const ACCEPTED: [&str; 18] = [
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
    "reasoning_effort",
];

/// Fields each role's message may carry on Mistral.
fn message_fields(role: &str) -> &'static [&'static str] {
    match role {
        "assistant" => &["role", "content", "tool_calls", "prefix"],
        "tool" => &["role", "content", "tool_call_id", "name"],
        _ => &["role", "content"],
    }
}

/// The Mistral body for `request`.
pub fn encode(request: &ChatRequest) -> Result<Value, ProviderError> {
    if let Some(at) = request
        .messages
        .iter()
        .position(|m| matches!(m, Message::Function(_)))
    {
        return Err(legacy_function_message("mistral", at));
    }
    let mut body = match serde_json::to_value(request) {
        Ok(Value::Object(body)) => body,
        _ => {
            return Err(ProviderError::internal(
                "cannot encode request as an object",
            ));
        }
    };
    rename(&mut body, "seed", "random_seed");
    // Mistral only knows `max_tokens`; OpenAI's newer name means the same cap.
    if let Some(max) = body.remove("max_completion_tokens") {
        body.entry("max_tokens").or_insert(max);
    }
    tool_choice(request, &mut body);
    if let Some(effort) = body.get_mut("reasoning_effort") {
        *effort = reasoning_effort(effort);
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        messages.iter_mut().for_each(message);
    }
    body.retain(|key, _| ACCEPTED.contains(&key.as_str()));
    Ok(Value::Object(body))
}

/// Mistral reasons fully (`high`) or barely (`none`); OpenAI's finer levels fall on the nearer
/// side, so a client asking for any reasoning gets it.
fn reasoning_effort(effort: &Value) -> Value {
    match effort.as_str() {
        Some("none" | "minimal") => Value::from("none"),
        Some(_) => Value::from("high"),
        None => effort.clone(),
    }
}

fn rename(body: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = body.remove(from) {
        body.insert(to.into(), value);
    }
}

fn tool_choice(request: &ChatRequest, body: &mut Map<String, Value>) {
    match &request.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => {
            body.insert("tool_choice".into(), json!("any"));
        }
        // A named choice is forcing one tool. Mistral's `any` forces some tool, so offering only
        // the named one gives the same guarantee on every Mistral model, including those that
        // reject the object form.
        Some(ToolChoice::Named(named)) => {
            body.insert("tool_choice".into(), json!("any"));
            if let Some(Value::Array(tools)) = body.get_mut("tools") {
                tools.retain(|t| t["function"]["name"] == json!(named.function.name));
            }
        }
        _ => {}
    }
}

fn message(message: &mut Value) {
    let Some(fields) = message.as_object_mut() else {
        return;
    };
    // Mistral has no developer role; OpenAI treats it as the system prompt too.
    if fields.get("role") == Some(&json!("developer")) {
        fields.insert("role".into(), json!("system"));
    }
    let role = fields
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    fields.retain(|key, _| message_fields(&role).contains(&key.as_str()));
    if let Some(Value::String(id)) = fields.get_mut("tool_call_id") {
        *id = tool_call_id(id);
    }
    if let Some(Value::Array(calls)) = fields.get_mut("tool_calls") {
        for call in calls {
            if let Some(Value::String(id)) = call.get_mut("id") {
                *id = tool_call_id(id);
            }
        }
    }
}

/// Mistral refuses tool-call ids that are not exactly 9 letters or digits. Other ids (OpenAI's
/// `call_…`, Anthropic's `toolu_…`) are replaced by 9 characters of their hash, so a call and
/// its result, rewritten apart, still match.
pub fn tool_call_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    crate::tool_ids::base62(crate::tool_ids::fnv1a(id), 9)
}
