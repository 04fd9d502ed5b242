//! Cohere Chat v2 stream events (`message-start` … `message-end`) turned into canonical chunks:
//! text deltas, tool calls opened then filled in fragments, a finish chunk and a usage chunk.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::response::{CohereUsage, WireToolCall, finish_reason};
use crate::adapter::{ChunkDecoder, StreamItem};
use crate::chat::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, FunctionType, ToolCallDelta,
    Usage,
};
use crate::error::ProviderError;

/// One stream event; which fields are set depends on `type`.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    delta: Option<EventDelta>,
    /// An error body sent in place of an event.
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(default)]
    message: Option<DeltaMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<DeltaContent>,
    /// One call per event, not a list, in `tool-call-start` and `tool-call-delta`.
    #[serde(default)]
    tool_calls: Option<WireToolCall>,
    /// `tool-plan-delta`: text the model writes before its calls.
    #[serde(default)]
    tool_plan: Option<String>,
}

#[derive(Deserialize)]
struct DeltaContent {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

/// The decoder of one streamed answer.
pub struct CohereStream {
    id: String,
    created: u64,
    /// How many tool calls have started: the OpenAI index of the current one is this minus one.
    tool_calls: u32,
}

impl CohereStream {
    pub fn new(created: u64) -> Self {
        CohereStream {
            id: String::new(),
            created,
            tool_calls: 0,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> StreamItem {
        StreamItem::Chunk(Box::new(ChatChunk {
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
                extra: Map::new(),
            }],
            ..self.empty_chunk(None)
        }))
    }

    fn empty_chunk(&self, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            // Cohere's events do not name the model; the gateway fills in the one it asked for.
            model: String::new(),
            choices: Vec::new(),
            usage,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn tool_call(&self, call: ToolCallDelta) -> StreamItem {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Delta::default()
        };
        self.chunk(delta, None)
    }

    fn start_tool_call(&mut self, call: Option<WireToolCall>) -> Vec<StreamItem> {
        let index = self.tool_calls;
        self.tool_calls += 1;
        let (id, name, arguments) = match call {
            Some(call) => {
                let function = call.function;
                let (name, arguments) = function.map(|f| (f.name, f.arguments)).unwrap_or_default();
                (call.id, name, arguments)
            }
            None => (None, None, None),
        };
        let mut items = vec![self.tool_call(ToolCallDelta {
            index,
            id: Some(id.unwrap_or_default()),
            kind: Some(FunctionType::Function),
            function: Some(FunctionCallDelta {
                name: Some(name.unwrap_or_default()),
                arguments: Some(String::new()),
            }),
        })];
        // The canonical opening carries no arguments; any that came with it follow as a fragment.
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            items.push(self.arguments(index, arguments));
        }
        items
    }

    fn arguments(&self, index: u32, arguments: String) -> StreamItem {
        self.tool_call(ToolCallDelta {
            index,
            function: Some(FunctionCallDelta {
                name: None,
                arguments: Some(arguments),
            }),
            ..ToolCallDelta::default()
        })
    }

    fn content(&self, content: Option<DeltaContent>) -> Vec<StreamItem> {
        let Some(content) = content else {
            return Vec::new();
        };
        let mut delta = Delta::default();
        if let Some(text) = content.text.filter(|t| !t.is_empty()) {
            delta.content = Some(text);
        }
        if let Some(thinking) = content.thinking.filter(|t| !t.is_empty()) {
            delta
                .extra
                .insert("reasoning_content".into(), Value::String(thinking));
        }
        if delta == Delta::default() {
            return Vec::new();
        }
        vec![self.chunk(delta, None)]
    }

    fn end(&self, delta: Option<EventDelta>) -> Result<Vec<StreamItem>, ProviderError> {
        let (reason, usage) = delta.map_or((None, None), |d| (d.finish_reason, d.usage));
        let reason = match reason.as_deref() {
            Some(reason) => finish_reason(reason)?,
            None => FinishReason::Stop,
        };
        let mut items = vec![self.chunk(Delta::default(), Some(reason))];
        if let Some(usage) = usage {
            items.push(StreamItem::Chunk(Box::new(
                self.empty_chunk(Some(usage.canonical())),
            )));
        }
        items.push(StreamItem::Done);
        Ok(items)
    }
}

impl ChunkDecoder for CohereStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let parsed: Event = serde_json::from_str(data).map_err(ProviderError::bad_response)?;
        // An error body sent mid-stream has no `type`, only a message.
        if let (None, Some(Value::String(message))) = (&parsed.kind, &parsed.message) {
            return Err(ProviderError::from_status(502, message.clone()));
        }
        let kind = parsed.kind.as_deref().unwrap_or(event);
        Ok(match kind {
            "message-start" => {
                self.id = parsed.id.unwrap_or_default();
                let delta = Delta {
                    role: Some("assistant".into()),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            "content-start" | "content-delta" => {
                self.content(parsed.delta.and_then(|d| d.message).and_then(|m| m.content))
            }
            "tool-plan-delta" => self.content(
                parsed
                    .delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_plan)
                    .map(|text| DeltaContent {
                        text: Some(text),
                        thinking: None,
                    }),
            ),
            "tool-call-start" => self.start_tool_call(
                parsed
                    .delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls),
            ),
            "tool-call-delta" => {
                let arguments = parsed
                    .delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls)
                    .and_then(|c| c.function)
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty());
                match arguments {
                    Some(arguments) if self.tool_calls > 0 => {
                        vec![self.arguments(self.tool_calls - 1, arguments)]
                    }
                    Some(_) => {
                        return Err(ProviderError::bad_response(
                            "tool-call-delta before any tool-call-start",
                        ));
                    }
                    None => Vec::new(),
                }
            }
            "message-end" => self.end(parsed.delta)?,
            // content-end, tool-call-end, citations, debug, and whatever Cohere
            // adds next: nothing a Chat Completions client can show.
            _ => Vec::new(),
        })
    }
}
