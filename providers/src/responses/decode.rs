//! An upstream's response object (OpenAI's Responses API, answering a body passed through) read
//! as a canonical chat completion, for usage, the cache and the stored conversation.
//!
//! The client gets the provider's bytes; this reading only has to be faithful to what the
//! canonical form models: text, refusals, reasoning summaries, function calls, status and usage.
//! Built-in tool items (`web_search_call`, …) ran upstream and are not part of it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// One output item, flat: every kind's fields optional, read by its `type`. (An internally
/// tagged enum would buffer each item whole before reading it.)
#[derive(Debug, Deserialize)]
pub(super) struct OutputItem {
    #[serde(rename = "type")]
    pub kind: String,
    /// A message's parts.
    #[serde(default)]
    pub content: Parts,
    /// A reasoning item's summary parts.
    #[serde(default)]
    pub summary: Parts,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// A part of a message's content (`output_text`, `refusal`) or of a reasoning summary
/// (`summary_text`), flat as the items are.
#[derive(Debug, Deserialize)]
pub(super) struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
}

/// A list of parts; anything else a kind of item the gateway does not know puts under the same
/// name reads as no parts, so a new kind never fails the reading of an answer.
#[derive(Debug, Default)]
pub(super) struct Parts(pub Vec<Part>);

impl<'de> Deserialize<'de> for Parts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Parts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of parts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parts, A::Error> {
                let mut parts = Vec::new();
                while let Some(element) = seq.next_element()? {
                    if let IgnoredOrPart::Part(part) = element {
                        parts.push(part);
                    }
                }
                Ok(Parts(parts))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Parts, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Parts::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Parts, E> {
                Ok(Parts::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Parts, E> {
                Ok(Parts::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Parts, E> {
                Ok(Parts::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Parts, E> {
                Ok(Parts::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Parts, E> {
                Ok(Parts::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Parts, E> {
                Ok(Parts::default())
            }
        }
        deserializer.deserialize_any(List)
    }
}

/// An element of a list of parts: a part, or anything else, skipped.
#[derive(Deserialize)]
#[serde(untagged)]
enum IgnoredOrPart {
    Part(Part),
    Other(IgnoredAny),
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

/// Reads a response object already parsed.
pub fn read(object: &serde_json::Value) -> Result<ChatResponse, ProviderError> {
    let wire = WireResponse::deserialize(object).map_err(ProviderError::bad_response)?;
    Ok(wire.canonical())
}

impl WireResponse {
    pub(super) fn canonical(self) -> ChatResponse {
        let mut text = String::new();
        let mut refusal = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for item in self.output {
            match item.kind.as_str() {
                "message" => {
                    for part in item.content.0 {
                        match (part.kind.as_str(), part.text, part.refusal) {
                            ("output_text", Some(t), _) => text.push_str(&t),
                            ("refusal", _, Some(r)) => refusal.push_str(&r),
                            _ => {}
                        }
                    }
                }
                "function_call" => {
                    if let (Some(id), Some(name)) = (item.call_id, item.name) {
                        calls.push(ToolCall {
                            id,
                            kind: FunctionType::Function,
                            function: FunctionCall {
                                name,
                                arguments: item.arguments.unwrap_or_default(),
                            },
                        });
                    }
                }
                "reasoning" => {
                    for part in item.summary.0 {
                        if let ("summary_text", Some(t)) = (part.kind.as_str(), part.text) {
                            reasoning.push_str(&t);
                        }
                    }
                }
                _ => {}
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
    fn an_item_of_a_kind_not_known_yet_is_passed_over() {
        let body = br#"{"id":"r","status":"completed","output":[
            {"type":"future_call","content":"a string","summary":{"x":1}},
            {"type":"message","content":[7,{"type":"output_text","text":"ok"}]}]}"#;
        assert_eq!(
            decode(body).unwrap().choices[0].message.content.as_deref(),
            Some("ok")
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
