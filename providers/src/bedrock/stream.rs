//! ConverseStream events as canonical chunks: the role on `messageStart`, text and tool-call
//! fragments on `contentBlockDelta`, the finish reason on `messageStop`, usage then the end on
//! `metadata`. Exceptions are errors; event types this decoder does not know are skipped.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::exception_error;
use super::request::JSON_TOOL;
use super::response::{finish_reason, usage};
use super::wire::{BlockDelta, BlockStart, BlockStop, ErrorBody, MessageStop, Metadata};
use crate::adapter::{ChunkDecoder, StreamItem};
use crate::chat::{
    ChatChunk, ChunkChoice, Delta, Extra, FinishReason, FunctionCallDelta, FunctionType,
    ToolCallDelta, Usage,
};
use crate::error::ProviderError;

/// What a content block streams into.
#[derive(Clone, Copy)]
enum Block {
    /// A tool call, at its index among the answer's tool calls, and whether any of its input
    /// has streamed yet.
    Tool { index: u32, has_input: bool },
    /// The JSON-mode tool: its input is the answer's text.
    Json,
}

/// One ConverseStream's decoding state.
pub struct ConverseStream {
    id: String,
    created: u64,
    blocks: HashMap<u32, Block>,
    tool_calls: u32,
    stopped: bool,
    done: bool,
}

impl ConverseStream {
    pub fn new(id: String, created: u64) -> Self {
        ConverseStream {
            id,
            created,
            blocks: HashMap::new(),
            tool_calls: 0,
            stopped: false,
            done: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> StreamItem {
        StreamItem::Chunk(Box::new(ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: String::new(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
                extra: Extra::new(),
            }],
            usage: None,
            system_fingerprint: None,
            extra: Extra::new(),
        }))
    }

    fn usage_chunk(&self, usage: Usage) -> StreamItem {
        StreamItem::Chunk(Box::new(ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: String::new(),
            choices: Vec::new(),
            usage: Some(usage),
            system_fingerprint: None,
            extra: Extra::new(),
        }))
    }

    fn block_start(&mut self, start: BlockStart) -> Vec<StreamItem> {
        let Some(tool) = start.start.and_then(|s| s.tool_use) else {
            return Vec::new();
        };
        if tool.name == JSON_TOOL {
            self.blocks.insert(start.content_block_index, Block::Json);
            return Vec::new();
        }
        let index = self.tool_calls;
        self.tool_calls += 1;
        self.blocks.insert(
            start.content_block_index,
            Block::Tool {
                index,
                has_input: false,
            },
        );
        let call = ToolCallDelta {
            index,
            id: Some(tool.tool_use_id),
            kind: Some(FunctionType::Function),
            function: Some(FunctionCallDelta {
                name: Some(tool.name),
                arguments: Some(String::new()),
            }),
        };
        vec![self.chunk(tool_delta(call), None)]
    }

    fn block_delta(&mut self, delta: BlockDelta) -> Result<Vec<StreamItem>, ProviderError> {
        let mut items = Vec::new();
        if let Some(text) = delta.delta.text {
            items.push(self.chunk(text_delta(text), None));
        }
        if let Some(thought) = delta.delta.reasoning_content.and_then(|r| r.text) {
            let mut extra = Extra::new();
            extra.insert("reasoning_content".into(), Value::String(thought));
            items.push(self.chunk(
                Delta {
                    extra,
                    ..Delta::default()
                },
                None,
            ));
        }
        if let Some(tool) = delta.delta.tool_use {
            match self.blocks.get_mut(&delta.content_block_index) {
                Some(Block::Json) => items.push(self.chunk(text_delta(tool.input), None)),
                Some(Block::Tool { .. }) if tool.input.is_empty() => {}
                Some(Block::Tool { index, has_input }) => {
                    *has_input = true;
                    let index = *index;
                    items.push(self.chunk(tool_delta(arguments(index, tool.input)), None));
                }
                None => {
                    return Err(ProviderError::bad_response(
                        "a tool input fragment arrived for a block that never started",
                    ));
                }
            }
        }
        Ok(items)
    }

    /// A call without arguments may stream no input at all; OpenAI sends `{}` for it, and a
    /// client parsing the arguments as JSON needs that.
    fn block_stop(&mut self, stop: BlockStop) -> Vec<StreamItem> {
        match self.blocks.get(&stop.content_block_index) {
            Some(&Block::Tool {
                index,
                has_input: false,
            }) => vec![self.chunk(tool_delta(arguments(index, "{}".to_owned())), None)],
            _ => Vec::new(),
        }
    }

    fn metadata(&mut self, metadata: Metadata) -> Vec<StreamItem> {
        self.done = true;
        let mut items: Vec<StreamItem> = metadata
            .usage
            .as_ref()
            .map(|u| self.usage_chunk(usage(u)))
            .into_iter()
            .collect();
        items.push(StreamItem::Done);
        items
    }
}

fn text_delta(text: String) -> Delta {
    Delta {
        content: Some(text),
        ..Delta::default()
    }
}

fn arguments(index: u32, fragment: String) -> ToolCallDelta {
    ToolCallDelta {
        index,
        function: Some(FunctionCallDelta {
            name: None,
            arguments: Some(fragment),
        }),
        ..ToolCallDelta::default()
    }
}

fn tool_delta(call: ToolCallDelta) -> Delta {
    Delta {
        tool_calls: Some(vec![call]),
        ..Delta::default()
    }
}

fn parse<T: DeserializeOwned>(event: &str, data: &str) -> Result<T, ProviderError> {
    serde_json::from_str(data).map_err(|e| ProviderError::bad_response(format!("{event}: {e}")))
}

impl ChunkDecoder for ConverseStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        match event {
            "messageStart" => Ok(vec![self.chunk(
                Delta {
                    role: Some("assistant".to_owned()),
                    ..Delta::default()
                },
                None,
            )]),
            "contentBlockStart" => Ok(self.block_start(parse(event, data)?)),
            "contentBlockDelta" => self.block_delta(parse(event, data)?),
            "contentBlockStop" => Ok(self.block_stop(parse(event, data)?)),
            "messageStop" => {
                let stop: MessageStop = parse(event, data)?;
                self.stopped = true;
                let reason = finish_reason(&stop.stop_reason, self.tool_calls > 0)?;
                Ok(vec![self.chunk(Delta::default(), Some(reason))])
            }
            "metadata" => Ok(self.metadata(parse(event, data)?)),
            name if name.ends_with("Exception") => {
                let message = serde_json::from_str::<ErrorBody>(data)
                    .ok()
                    .and_then(|body| body.message);
                Err(exception_error(name, message))
            }
            // Event types added after this was written.
            _ => Ok(Vec::new()),
        }
    }

    /// A stream that stopped but lost its `metadata` still spelled a whole answer; one that never
    /// stopped was cut.
    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        match (self.done, self.stopped) {
            (true, _) => Ok(Vec::new()),
            (false, true) => {
                self.done = true;
                Ok(vec![StreamItem::Done])
            }
            (false, false) => Err(ProviderError::bad_response(
                "the Bedrock stream ended before messageStop",
            )),
        }
    }
}
