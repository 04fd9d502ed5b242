//! An Anthropic message as a canonical chat completion: text blocks joined, `tool_use` blocks as
//! tool calls, thinking as `reasoning_content` (and whole, signed, as `thinking_blocks`),
//! `stop_reason` and usage in OpenAI's terms.
//!
//! The stream decoder shares the stop-reason and usage mappings defined here.

use serde_json::Value;

use crate::chat::{
    ChatResponse, Choice, CompletionTokensDetails, FinishReason, FunctionCall, FunctionType,
    PromptTokensDetails, ResponseMessage, ToolCall, Usage,
};
use crate::error::ProviderError;

use super::request::JSON_TOOL;
use super::thinking;
use super::wire::{Block, MessagesResponse, WireUsage};

/// Where OpenAI-compatible servers (DeepSeek, vLLM, LiteLLM) put a model's visible reasoning.
pub const REASONING_FIELD: &str = "reasoning_content";

/// Decodes a non-streamed answer.
pub fn decode(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let message: MessagesResponse =
        serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    let mut answered_as_json = false;
    for block in message.content {
        thinking_blocks.extend(thinking::to_client(&block));
        match block {
            Block::Text { text: piece } => text.get_or_insert_with(String::new).push_str(&piece),
            Block::Thinking { thinking, .. } => reasoning
                .get_or_insert_with(String::new)
                .push_str(&thinking),
            Block::ToolUse { name, input, .. } if name == JSON_TOOL => {
                answered_as_json = true;
                text.get_or_insert_with(String::new)
                    .push_str(&input.to_string());
            }
            Block::ToolUse { id, name, input } => calls.push(tool_call(id, name, &input)),
            _ => {}
        }
    }
    let mut response_message = ResponseMessage {
        content: text,
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ResponseMessage::default()
    };
    if let Some(reasoning) = reasoning {
        response_message
            .extra
            .insert(REASONING_FIELD.to_owned(), Value::String(reasoning));
    }
    if !thinking_blocks.is_empty() {
        response_message.extra.insert(
            thinking::THINKING_BLOCKS.to_owned(),
            Value::Array(thinking_blocks),
        );
    }
    Ok(ChatResponse {
        id: message.id,
        object: "chat.completion".to_owned(),
        created: unix_now(),
        model: message.model,
        choices: vec![Choice {
            index: 0,
            message: response_message,
            finish_reason: message
                .stop_reason
                .as_deref()
                .map(|r| finish_reason(r, answered_as_json)),
            logprobs: None,
            extra: Default::default(),
        }],
        usage: Some(usage(&message.usage)),
        system_fingerprint: None,
        extra: Default::default(),
    })
}

fn tool_call(id: String, name: String, input: &Value) -> ToolCall {
    ToolCall {
        id,
        kind: FunctionType::Function,
        function: FunctionCall {
            name,
            arguments: input.to_string(),
        },
    }
}

/// `stop_reason` as `finish_reason`. A forced [`JSON_TOOL`] call is the answer itself, so it
/// finishes with `stop`, not `tool_calls`.
pub fn finish_reason(stop_reason: &str, answered_as_json: bool) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => FinishReason::Stop,
        "tool_use" if answered_as_json => FinishReason::Stop,
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Anthropic counts cache reads and writes apart from `input_tokens`; OpenAI's `prompt_tokens`
/// includes them, with reads reported as `cached_tokens`.
pub fn usage(wire: &WireUsage) -> Usage {
    let cache_read = wire.cache_read_input_tokens.unwrap_or(0);
    let prompt =
        wire.input_tokens.unwrap_or(0) + cache_read + wire.cache_creation_input_tokens.unwrap_or(0);
    let mut usage = Usage::new(prompt, wire.output_tokens.unwrap_or(0));
    let mut details = PromptTokensDetails {
        cached_tokens: Some(cache_read),
        ..PromptTokensDetails::default()
    };
    // OpenAI has no field for cache writes; the Messages surface gives them back to its clients.
    if let Some(written) = wire.cache_creation_input_tokens.filter(|&n| n > 0) {
        details.extra.insert(
            crate::messages::CACHE_CREATION_FIELD.to_owned(),
            Value::from(written),
        );
    }
    usage.prompt_tokens_details = Some(details);
    usage.completion_tokens_details = wire
        .output_tokens_details
        .and_then(|d| d.thinking_tokens)
        .map(|reasoning| CompletionTokensDetails {
            reasoning_tokens: Some(reasoning),
            ..CompletionTokensDetails::default()
        });
    usage
}

/// Anthropic's answers carry no timestamp; OpenAI's `created` is the time of answering.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
