//! A `generateContent` answer as a chat completion: candidates to choices, function calls to tool
//! calls with generated ids, finish and block reasons to OpenAI's, `usageMetadata` to usage.

use std::time::{SystemTime, UNIX_EPOCH};

use super::wire::{Candidate, GenerateContentResponse, Part, UsageMetadata};
use super::{calls, logprobs};
use crate::chat::{
    ChatResponse, Choice, CompletionTokensDetails, Extra, FinishReason, FunctionCall, FunctionType,
    PromptTokensDetails, ResponseMessage, ToolCall, Usage,
};
use crate::error::ProviderError;

/// The completion `response` spells out.
pub fn translate(response: GenerateContentResponse) -> Result<ChatResponse, ProviderError> {
    let head = Head::of(&response);
    let mut choices: Vec<Choice> = response
        .candidates
        .iter()
        .enumerate()
        .map(|(position, candidate)| choice(position, candidate))
        .collect::<Result<_, _>>()?;
    if choices.is_empty() {
        // No candidate at all: the prompt itself was blocked, or nothing came back.
        choices.push(Choice {
            index: 0,
            message: ResponseMessage::default(),
            finish_reason: Some(blocked_or_stop(&response)),
            logprobs: None,
            extra: Extra::new(),
        });
    }
    Ok(ChatResponse {
        id: head.id,
        object: "chat.completion".into(),
        created: head.created,
        model: head.model,
        choices,
        usage: response.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

/// What every chunk or completion of one answer shares.
pub struct Head {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Head {
    pub fn of(response: &GenerateContentResponse) -> Head {
        let id = match &response.response_id {
            Some(id) => format!("chatcmpl-{id}"),
            None => calls::new_id(None).replacen("call_", "chatcmpl-", 1),
        };
        Head {
            id,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: response.model_version.clone().unwrap_or_default(),
        }
    }
}

fn choice(position: usize, candidate: &Candidate) -> Result<Choice, ProviderError> {
    let parts = candidate.content.as_ref().map_or(&[][..], |c| &c.parts[..]);
    let answer = Answer::of(parts);
    let finish_reason = candidate
        .finish_reason
        .as_deref()
        .map(|reason| finish_reason(reason, !answer.tool_calls.is_empty()))
        .transpose()?;
    let mut extra = Extra::new();
    if let Some(reasoning) = answer.reasoning {
        extra.insert("reasoning_content".into(), reasoning.into());
    }
    Ok(Choice {
        index: candidate.index.unwrap_or(position as u32),
        message: ResponseMessage {
            content: answer.text,
            tool_calls: (!answer.tool_calls.is_empty()).then_some(answer.tool_calls),
            extra,
            ..ResponseMessage::default()
        },
        finish_reason,
        logprobs: candidate.logprobs_result.as_ref().map(logprobs::translate),
        extra: Extra::new(),
    })
}

/// The parts of one candidate (or one streamed piece of it), sorted by what they become.
#[derive(Default)]
pub struct Answer {
    pub text: Option<String>,
    /// Thought summaries, kept apart from the answer as `reasoning_content`.
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

impl Answer {
    pub fn of(parts: &[Part]) -> Answer {
        let mut answer = Answer::default();
        for part in parts {
            if let Some(call) = &part.function_call {
                answer
                    .tool_calls
                    .push(tool_call(call, part.thought_signature.as_deref()));
            } else if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                let target = if part.thought == Some(true) {
                    &mut answer.reasoning
                } else {
                    &mut answer.text
                };
                target.get_or_insert_with(String::new).push_str(text);
            }
            // Other part kinds (code execution, inline media...) have no Chat Completions form.
        }
        answer
    }
}

fn tool_call(call: &super::wire::FunctionCall, signature: Option<&str>) -> ToolCall {
    let arguments = match &call.args {
        Some(args) => args.to_string(),
        None => "{}".to_owned(),
    };
    ToolCall {
        id: calls::new_id(signature),
        kind: FunctionType::Function,
        function: FunctionCall {
            name: call.name.clone(),
            arguments,
        },
    }
}

/// Gemini's finish reason in OpenAI's words; a stop after function calls is `tool_calls`. A
/// function call the model wrote but could not finish (`MALFORMED_FUNCTION_CALL`), or wrote with
/// no tools offered, fails the try: as a plain stop it would look like a finished answer with
/// nothing in it, and a retry usually gets a good call.
pub fn finish_reason(reason: &str, called_tools: bool) -> Result<FinishReason, ProviderError> {
    Ok(match reason {
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => {
            return Err(ProviderError::bad_response(format!(
                "gemini ended the answer with {reason}: the model's function call could not be used"
            )));
        }
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    })
}

/// Why an answer without candidates ended: a blocked prompt is filtered content.
pub fn blocked_or_stop(response: &GenerateContentResponse) -> FinishReason {
    let blocked = response
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    if blocked {
        FinishReason::ContentFilter
    } else {
        FinishReason::Stop
    }
}

/// `usageMetadata` as usage: thinking counts as completion, tool-use prompts as prompt.
pub fn usage(metadata: &UsageMetadata) -> Usage {
    let thoughts = metadata.thoughts_token_count.unwrap_or(0);
    let prompt = metadata.prompt_token_count + metadata.tool_use_prompt_token_count.unwrap_or(0);
    let completion = metadata.candidates_token_count + thoughts;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: metadata
            .total_token_count
            .filter(|total| *total > 0)
            .unwrap_or(prompt + completion),
        prompt_tokens_details: metadata.cached_content_token_count.map(|cached| {
            PromptTokensDetails {
                cached_tokens: Some(cached),
                ..PromptTokensDetails::default()
            }
        }),
        completion_tokens_details: metadata.thoughts_token_count.map(|reasoning| {
            CompletionTokensDetails {
                reasoning_tokens: Some(reasoning),
                ..CompletionTokensDetails::default()
            }
        }),
        extra: Extra::new(),
    }
}
