//! A canonical chat completion as Anthropic's message object: thinking, text and `tool_use`
//! blocks in the order Anthropic writes them, `stop_reason`, and usage with cache reads apart.
//!
//! The stop-reason and usage mappings are shared with the event stream (`events`).

use serde_json::{Map, Value, json};

use crate::anthropic::{REASONING_FIELD, THINKING_BLOCKS};
use crate::chat::{ChatResponse, Extra, FinishReason, ToolCall, Usage};

/// Where the Anthropic adapter keeps cache writes inside `prompt_tokens_details`, which OpenAI
/// has no field for.
pub const CACHE_CREATION_FIELD: &str = "cache_creation_input_tokens";

/// The message object for `response`, answering a request for `model`.
pub fn encode(response: &ChatResponse) -> Value {
    let choice = response.choices.first();
    let mut content = Vec::new();
    if let Some(choice) = choice {
        let message = &choice.message;
        content.extend(thinking(&message.extra));
        if let Some(text) = message.content.as_ref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": text}));
        }
        if let Some(refusal) = message.refusal.as_ref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": refusal}));
        }
        content.extend(message.tool_calls.iter().flatten().map(tool_use));
    }
    json!({
        "id": message_id(&response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(choice.and_then(|c| c.finish_reason.as_ref())),
        "stop_sequence": null,
        "usage": usage(response.usage.as_ref()),
    })
}

/// Anthropic's ids start with `msg_`; a translated answer's id keeps its own after that.
pub(super) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// The thinking a message carries: its signed blocks when the provider gave them (Anthropic
/// checks the signature when the block comes back), else its reasoning text as one block.
fn thinking(extra: &Extra) -> Vec<Value> {
    if let Some(Value::Array(blocks)) = extra.get(THINKING_BLOCKS) {
        return blocks.clone();
    }
    match extra.get(REASONING_FIELD) {
        Some(Value::String(text)) if !text.is_empty() => {
            vec![json!({"type": "thinking", "thinking": text, "signature": ""})]
        }
        _ => Vec::new(),
    }
}

fn tool_use(call: &ToolCall) -> Value {
    json!({
        "type": "tool_use",
        "id": call.id,
        "name": call.function.name,
        "input": tool_input(&call.function.arguments),
    })
}

/// A call's arguments as the JSON object Anthropic's `input` is; arguments that are not one
/// (a model may cut them short) are kept whole under `arguments`, never dropped.
pub(super) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({"arguments": arguments}),
    }
}

/// `finish_reason` as `stop_reason`.
pub(super) fn stop_reason(reason: Option<&FinishReason>) -> &'static str {
    match reason {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls | FinishReason::FunctionCall) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::Stop | FinishReason::Other(_)) | None => "end_turn",
    }
}

/// OpenAI's `prompt_tokens` holds cache reads (and, from Anthropic, cache writes); Anthropic
/// counts them apart from `input_tokens`.
pub(super) fn usage(usage: Option<&Usage>) -> Value {
    let Some(usage) = usage else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let details = usage.prompt_tokens_details.as_ref();
    let read = details.and_then(|d| d.cached_tokens).unwrap_or(0);
    let written = details
        .and_then(|d| d.extra.get(CACHE_CREATION_FIELD))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut out = Map::new();
    out.insert(
        "input_tokens".into(),
        json!(usage.prompt_tokens.saturating_sub(read + written)),
    );
    out.insert("cache_creation_input_tokens".into(), json!(written));
    out.insert("cache_read_input_tokens".into(), json!(read));
    out.insert("output_tokens".into(), json!(usage.completion_tokens));
    Value::Object(out)
}
