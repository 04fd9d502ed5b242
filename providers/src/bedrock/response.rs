//! A Converse answer in canonical form: text and tool uses become the assistant message, the stop
//! reason a finish reason, Bedrock's token counts OpenAI's usage.
//!
//! A call of the JSON-mode tool is the answer itself, so it comes back as text.

use serde_json::Value;

use super::request::JSON_TOOL;
use super::wire::{ConverseResponse, TokenUsage};
use crate::chat::{
    ChatResponse, Choice, Extra, FinishReason, FunctionCall, FunctionType, PromptTokensDetails,
    ResponseMessage, ToolCall, Usage,
};
use crate::error::ProviderError;

/// Decodes a Converse body; `id` and `created` are the gateway's, as Bedrock sends neither.
pub fn chat_response(body: &[u8], id: String, created: u64) -> Result<ChatResponse, ProviderError> {
    let answer: ConverseResponse =
        serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in answer.output.message.content {
        if let Some(piece) = block.text {
            text.push_str(&piece);
        }
        if let Some(thought) = block.reasoning_content.and_then(|r| r.reasoning_text) {
            reasoning.push_str(&thought.text);
        }
        if let Some(tool) = block.tool_use {
            if tool.name == JSON_TOOL {
                text.push_str(&tool.input.to_string());
                continue;
            }
            tool_calls.push(ToolCall {
                id: tool.tool_use_id,
                kind: FunctionType::Function,
                function: FunctionCall {
                    name: tool.name,
                    arguments: tool.input.to_string(),
                },
            });
        }
    }
    let mut extra = Extra::new();
    if !reasoning.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let finish = finish_reason(&answer.stop_reason, !tool_calls.is_empty())?;
    Ok(ChatResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: String::new(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                extra,
                ..ResponseMessage::default()
            },
            finish_reason: Some(finish),
            logprobs: None,
            extra: Extra::new(),
        }],
        usage: answer.usage.as_ref().map(usage),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

/// Bedrock's stop reason in OpenAI's words. A tool use that was only the JSON-mode answer ends
/// the turn like text does.
pub fn finish_reason(stop_reason: &str, called_tools: bool) -> Result<FinishReason, ProviderError> {
    Ok(match stop_reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" if called_tools => FinishReason::ToolCalls,
        "tool_use" => FinishReason::Stop,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // The model's output could not be read as text or a tool call: the try failed (and is
        // retried), as Gemini's MALFORMED_FUNCTION_CALL does; as a stop it would be cached.
        "malformed_model_output" | "malformed_tool_use" => {
            return Err(ProviderError::bad_response(format!(
                "bedrock ended the answer with {stop_reason}: the model's output could not be used"
            )));
        }
        other => FinishReason::Other(other.to_owned()),
    })
}

/// OpenAI counts cached tokens inside `prompt_tokens`; Bedrock reports them beside `inputTokens`.
pub fn usage(usage: &TokenUsage) -> Usage {
    let read = usage.cache_read_input_tokens.unwrap_or(0);
    let written = usage.cache_write_input_tokens.unwrap_or(0);
    let mut canonical = Usage::new(usage.input_tokens + read + written, usage.output_tokens);
    if usage.cache_read_input_tokens.is_some() || usage.cache_write_input_tokens.is_some() {
        canonical.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(read),
            ..PromptTokensDetails::default()
        });
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_stop_reason_is_one_openai_knows_or_a_failed_try() {
        for (bedrock, openai) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_reason(bedrock, false).unwrap(), openai, "{bedrock}");
        }
        assert_eq!(
            finish_reason("tool_use", true).unwrap(),
            FinishReason::ToolCalls
        );
        for malformed in ["malformed_model_output", "malformed_tool_use"] {
            assert!(finish_reason(malformed, true).is_err(), "{malformed}");
        }
    }
}
