//! An upstream's Responses event stream (answering a body passed through) read as canonical
//! chunks, for usage and the cache; the client gets the provider's events themselves.
//!
//! A role chunk at `response.created`, text, refusal, reasoning-summary and function-call deltas
//! as they come (each function call gets the next tool index, numbered by its output index),
//! then at `response.completed` or `response.incomplete` a finish chunk, a usage chunk and
//! `Done`. `response.failed` and `error` end the stream as an error.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::decode::{Incomplete, WireUsage, failure, finish_reason};
use crate::adapter::{ChunkDecoder, StreamItem};
use crate::anthropic::REASONING_FIELD;
use crate::chat::{
    ChatChunk, ChunkChoice, Delta, Extra, FinishReason, FunctionCallDelta, FunctionType,
    ToolCallDelta,
};
use crate::error::ProviderError;

/// The events the canonical form reads; any other is skipped unparsed.
const READ: &[&str] = &[
    "response.created",
    "response.output_item.added",
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
];

/// The `type` of an event that came without an `event:` name.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Created {
    response: Head,
}

#[derive(Deserialize)]
struct ItemAdded {
    output_index: u32,
    item: AddedItem,
}

/// A text, refusal or reasoning delta.
#[derive(Deserialize)]
struct Said {
    delta: String,
}

#[derive(Deserialize)]
struct Arguments {
    output_index: u32,
    delta: String,
}

#[derive(Deserialize)]
struct Ended {
    response: EndState,
}

/// What the last event adds to the deltas: the output itself streamed already, so it is
/// skipped unread.
#[derive(Deserialize)]
struct EndState {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    incomplete_details: Option<Incomplete>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct FailedEvent {
    response: Failed,
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    created_at: Option<f64>,
}

/// An item just added: only a function call's name and call id are read.
#[derive(Deserialize)]
struct AddedItem {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Failed {
    #[serde(default)]
    error: Option<FailedError>,
}

#[derive(Deserialize)]
struct FailedError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// The state of one streamed response.
#[derive(Default)]
pub struct Decoder {
    id: String,
    model: String,
    created: u64,
    /// The tool index of each function call, by its output index.
    calls: HashMap<u32, u32>,
}

/// Parses one event's data as `T`.
fn read<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, ProviderError> {
    serde_json::from_str(data).map_err(ProviderError::bad_response)
}

impl ChunkDecoder for Decoder {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        if (!event.is_empty() && !READ.contains(&event)) || data.trim().is_empty() {
            return Ok(Vec::new());
        }
        // Each event is read straight into its own shape: its name says which, or else its type.
        let typed;
        let name = if event.is_empty() {
            typed = read::<Typed<'_>>(data)?;
            typed.kind.as_ref()
        } else {
            event
        };
        Ok(match name {
            "response.created" => {
                let response = read::<Created>(data)?.response;
                self.id = response.id;
                self.model = response.model;
                self.created = response.created_at.map_or(0, |t| t as u64);
                let delta = Delta {
                    role: Some("assistant".to_owned()),
                    content: Some(String::new()),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            "response.output_item.added" => {
                let added = read::<ItemAdded>(data)?;
                match (
                    added.item.kind.as_str(),
                    added.item.call_id,
                    added.item.name,
                ) {
                    ("function_call", Some(call_id), Some(name)) => {
                        let index = self.calls.len() as u32;
                        self.calls.insert(added.output_index, index);
                        let call = ToolCallDelta {
                            index,
                            id: Some(call_id),
                            kind: Some(FunctionType::Function),
                            function: Some(FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            }),
                        };
                        vec![self.calls_chunk(call)]
                    }
                    _ => Vec::new(),
                }
            }
            "response.function_call_arguments.delta" => {
                let arguments = read::<Arguments>(data)?;
                match self.calls.get(&arguments.output_index) {
                    Some(&index) => {
                        let call = ToolCallDelta {
                            index,
                            function: Some(FunctionCallDelta {
                                name: None,
                                arguments: Some(arguments.delta),
                            }),
                            ..ToolCallDelta::default()
                        };
                        vec![self.calls_chunk(call)]
                    }
                    None => Vec::new(),
                }
            }
            "response.output_text.delta" => {
                let delta = Delta {
                    content: Some(read::<Said>(data)?.delta),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            "response.refusal.delta" => {
                let delta = Delta {
                    refusal: Some(read::<Said>(data)?.delta),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            "response.reasoning_summary_text.delta" => {
                let mut extra = Extra::new();
                extra.insert(REASONING_FIELD.to_owned(), json!(read::<Said>(data)?.delta));
                let delta = Delta {
                    extra,
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            "response.completed" | "response.incomplete" => self.end(read::<Ended>(data)?.response),
            "response.failed" => {
                let error = read::<FailedEvent>(data)?.response.error;
                let (message, code) = error.map_or((None, None), |e| (e.message, e.code));
                return Err(failure(message.as_deref(), code.as_deref()));
            }
            "error" => {
                let error = read::<FailedError>(data)?;
                return Err(failure(error.message.as_deref(), error.code.as_deref()));
            }
            _ => Vec::new(),
        })
    }
}

impl Decoder {
    fn end(&mut self, response: EndState) -> Vec<StreamItem> {
        let reason = finish_reason(
            response.status.as_deref(),
            response
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref()),
            !self.calls.is_empty(),
        );
        let mut items = vec![self.chunk(Delta::default(), Some(reason))];
        if let Some(usage) = &response.usage {
            let mut last = self.chunk_of(Vec::new());
            last.usage = Some(usage.canonical());
            items.push(StreamItem::Chunk(Box::new(last)));
        }
        items.push(StreamItem::Done);
        items
    }

    fn calls_chunk(&self, call: ToolCallDelta) -> StreamItem {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        };
        self.chunk(delta, None)
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> StreamItem {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
            extra: Extra::new(),
        };
        StreamItem::Chunk(Box::new(self.chunk_of(vec![choice])))
    }

    fn chunk_of(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            system_fingerprint: None,
            extra: Extra::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::Assembler;

    fn events() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                "response.created",
                r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":7,"status":"in_progress","model":"gpt-x","output":[]}}"#,
            ),
            (
                "response.in_progress",
                r#"{"type":"response.in_progress","sequence_number":1,"response":{}}"#,
            ),
            (
                "response.reasoning_summary_text.delta",
                r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs","output_index":0,"summary_index":0,"delta":"Hm."}"#,
            ),
            (
                "response.output_text.delta",
                r#"{"type":"response.output_text.delta","item_id":"m","output_index":1,"content_index":0,"delta":"Hel"}"#,
            ),
            (
                "response.output_text.delta",
                r#"{"type":"response.output_text.delta","item_id":"m","output_index":1,"content_index":0,"delta":"lo"}"#,
            ),
            (
                "response.output_item.added",
                r#"{"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","id":"fc","call_id":"call_1","name":"f","arguments":""}}"#,
            ),
            (
                "response.function_call_arguments.delta",
                r#"{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":2,"delta":"{\"a\":"}"#,
            ),
            (
                "response.function_call_arguments.delta",
                r#"{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":2,"delta":"1}"}"#,
            ),
            (
                "response.completed",
                r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8}}}"#,
            ),
        ]
    }

    #[test]
    fn a_stream_assembles_into_its_completion() {
        let mut decoder = Decoder::default();
        let mut assembler = Assembler::default();
        let mut done = false;
        for (name, data) in events() {
            for item in decoder.decode(name, data).unwrap() {
                match item {
                    StreamItem::Chunk(chunk) => assembler.push(&chunk),
                    StreamItem::Done => done = true,
                    _ => {}
                }
            }
        }
        assert!(done && assembler.is_complete());
        let response = assembler.finish();
        assert_eq!(response.id, "resp_1");
        let message = &response.choices[0].message;
        assert_eq!(message.content.as_deref(), Some("Hello"));
        assert_eq!(message.extra[REASONING_FIELD], "Hm.");
        let call = &message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (call.id.as_str(), call.function.arguments.as_str()),
            ("call_1", "{\"a\":1}")
        );
        assert_eq!(
            response.choices[0].finish_reason,
            Some(FinishReason::ToolCalls)
        );
        assert_eq!(response.usage.unwrap().total_tokens, 8);
    }

    #[test]
    fn a_failed_response_and_an_error_event_are_errors() {
        let mut decoder = Decoder::default();
        let failed = r#"{"type":"response.failed","response":{"error":{"code":"rate_limit_exceeded","message":"slow down"}}}"#;
        let error = decoder.decode("response.failed", failed).unwrap_err();
        assert_eq!((error.status, error.message.as_str()), (429, "slow down"));
        let event = r#"{"type":"error","code":"server_error","message":"boom"}"#;
        assert_eq!(decoder.decode("", event).unwrap_err().status, 502);
        assert!(
            decoder
                .decode("response.unknown", "{not json")
                .unwrap()
                .is_empty()
        );
    }
}
