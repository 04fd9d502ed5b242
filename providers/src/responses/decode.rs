//! An upstream's response object (OpenAI's Responses API, answering a body passed through) read
//! as a canonical chat completion, for usage, the cache and the stored conversation.
//!
//! The client gets the provider's bytes; this reading only has to be faithful to what the
//! canonical form models: text, refusals, reasoning summaries, function calls, status and usage.
//! Built-in tool items (`web_search_call`, …) ran upstream and are not part of it.

use serde::Deserialize;
use serde_json::json;

use crate::anthropic::REASONING_FIELD;
use crate::chat::{
    ChatResponse, Choice, CompletionTokensDetails, Extra, FinishReason, FunctionCall, FunctionType,
    PromptTokensDetails, ResponseMessage, ToolCall, Usage,
};
use crate::error::ProviderError;

/// A response object, as far as the canonical form reads it.
#[derive(Debug, Deserialize)]
pub(super) struct WireResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub created_at: Option<f64>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub incomplete_details: Option<Incomplete>,
    #[serde(default)]
    pub output: Vec<OutputItem>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Incomplete {
    #[serde(default)]
    pub reason: Option<String>,
}

/// One output item; the kinds the canonical form has no place for are `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutputItem {
    Message {
        #[serde(default)]
        content: Vec<Part>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    Reasoning {
        #[serde(default)]
        summary: Vec<Part>,
    },
    #[serde(other)]
    Other,
}

/// A part of a message's content or of a reasoning summary.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part {
    OutputText {
        text: String,
    },
    SummaryText {
        text: String,
    },
    Refusal {
        refusal: String,
    },
    #[serde(other)]
    Other,
}

/// `usage` in the Responses API's names.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct InputDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub(super) fn canonical(&self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: self
                .total_tokens
                .unwrap_or(self.input_tokens + self.output_tokens),
            prompt_tokens_details: self.input_tokens_details.as_ref().map(|d| {
                PromptTokensDetails {
                    cached_tokens: d.cached_tokens,
                    ..PromptTokensDetails::default()
                }
            }),
            completion_tokens_details: self.output_tokens_details.as_ref().map(|d| {
                CompletionTokensDetails {
                    reasoning_tokens: d.reasoning_tokens,
                    ..CompletionTokensDetails::default()
                }
            }),
            extra: Extra::new(),
        }
    }
}

/// Reads a whole response object.
pub fn decode(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    Ok(wire.canonical())
}

impl WireResponse {
    pub(super) fn canonical(self) -> ChatResponse {
        let mut text = String::new();
        let mut refusal = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for item in self.output {
            match item {
                OutputItem::Message { content } => {
                    for part in content {
                        match part {
                            Part::OutputText { text: t } => text.push_str(&t),
                            Part::Refusal { refusal: r } => refusal.push_str(&r),
                            Part::SummaryText { .. } | Part::Other => {}
                        }
                    }
                }
                OutputItem::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => calls.push(ToolCall {
                    id: call_id,
                    kind: FunctionType::Function,
                    function: FunctionCall { name, arguments },
                }),
                OutputItem::Reasoning { summary } => {
                    for part in summary {
                        if let Part::SummaryText { text: t } = part {
                            reasoning.push_str(&t);
                        }
                    }
                }
                OutputItem::Other => {}
            }
        }
        let finish = finish_reason(
            self.status.as_deref(),
            self.incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref()),
            !calls.is_empty(),
        );
        let mut extra = Extra::new();
        if !reasoning.is_empty() {
            extra.insert(REASONING_FIELD.to_owned(), json!(reasoning));
        }
        let message = ResponseMessage {
            content: (!text.is_empty()).then_some(text),
            refusal: (!refusal.is_empty()).then_some(refusal),
            tool_calls: (!calls.is_empty()).then_some(calls),
            extra,
            ..ResponseMessage::default()
        };
        ChatResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: self.created_at.map_or(0, |t| t as u64),
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish),
                logprobs: None,
                extra: Extra::new(),
            }],
            usage: self.usage.as_ref().map(WireUsage::canonical),
            system_fingerprint: None,
            extra: Extra::new(),
        }
    }
}

/// The chat finish reason of a response's status.
pub(super) fn finish_reason(
    status: Option<&str>,
    incomplete: Option<&str>,
    calls: bool,
) -> FinishReason {
    match (status, incomplete) {
        (Some("incomplete"), Some("content_filter")) => FinishReason::ContentFilter,
        (Some("incomplete"), _) => FinishReason::Length,
        _ if calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// A failed response's `error`, or an `error` event, as the provider's error: its code kept,
/// its status the one OpenAI would have answered with before the stream began.
pub(super) fn failure(message: Option<&str>, code: Option<&str>) -> ProviderError {
    let message = message
        .unwrap_or("the provider's response failed")
        .to_owned();
    let status = match code {
        Some("rate_limit_exceeded") => 429,
        Some("invalid_prompt") => 400,
        _ => 502,
    };
    let mut error = ProviderError::from_status(status, message);
    error.code = code.map(str::to_owned);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_reads_as_its_completion() {
        let body = br#"{"id":"resp_1","object":"response","created_at":1741476542,"status":"completed",
            "model":"gpt-4.1","output":[
              {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Think."}]},
              {"type":"web_search_call","id":"ws_1","status":"completed"},
              {"type":"message","id":"msg_1","status":"completed","role":"assistant",
               "content":[{"type":"output_text","text":"Hi","annotations":[]},{"type":"output_text","text":"!"}]},
              {"type":"function_call","id":"fc_1","call_id":"call_9","name":"f","arguments":"{}"}],
            "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},
                     "output_tokens":87,"output_tokens_details":{"reasoning_tokens":7},"total_tokens":123}}"#;
        let response = decode(body).unwrap();
        assert_eq!(response.id, "resp_1");
        assert_eq!(response.created, 1741476542);
        let choice = &response.choices[0];
        assert_eq!(choice.message.content.as_deref(), Some("Hi!"));
        assert_eq!(choice.message.extra[REASONING_FIELD], "Think.");
        assert_eq!(choice.message.tool_calls.as_ref().unwrap()[0].id, "call_9");
        assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
        let usage = response.usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (36, 87, 123)
        );
        assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, Some(4));
        assert_eq!(
            usage.completion_tokens_details.unwrap().reasoning_tokens,
            Some(7)
        );
    }

    #[test]
    fn an_incomplete_response_was_cut_short() {
        let body = br#"{"id":"r","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}"#;
        assert_eq!(
            decode(body).unwrap().choices[0].finish_reason,
            Some(FinishReason::Length)
        );
        assert!(decode(b"[1]").is_err());
    }
}
