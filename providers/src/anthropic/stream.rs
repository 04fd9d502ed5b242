//! Anthropic's streamed events as canonical chunks. Content blocks are numbered across text and
//! tool calls; OpenAI numbers tool calls alone, so each `tool_use` block gets the next tool index.
//!
//! Order out: a role chunk at `message_start`, deltas, a `finish_reason` chunk at `message_delta`,
//! then a usage-only chunk and `Done` at `message_stop`. An `error` event ends the stream as an error.
//! Thinking streams as `reasoning_content`, and each thinking block, once complete and signed,
//! follows as `thinking_blocks` for the client to send back.

use std::collections::HashMap;

use serde_json::Value;

use crate::adapter::{ChunkDecoder, StreamItem};
use crate::chat::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, FunctionType, ToolCallDelta,
};
use crate::error::ProviderError;

use super::error::from_detail;
use super::request::JSON_TOOL;
use super::response::{REASONING_FIELD, finish_reason, unix_now, usage};
use super::thinking;
use super::wire::{Block, BlockDelta, StreamEvent, WireUsage};

/// Event names Anthropic documents; anything else is skipped unread.
const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

/// What one content block turns into.
#[derive(Debug, Clone, Copy)]
enum BlockKind {
    Text,
    Thinking,
    /// A client tool call, with its OpenAI tool-call index and whether any of its input has
    /// streamed yet.
    Tool {
        index: u32,
        has_input: bool,
    },
    /// The forced JSON-mode tool: its input is the answer's content.
    Json,
    /// Server tools and unknown blocks.
    Skipped,
}

/// The state of one streamed answer.
#[derive(Default)]
pub struct Decoder {
    id: String,
    model: String,
    created: u64,
    usage: WireUsage,
    blocks: HashMap<u32, BlockKind>,
    tool_calls: u32,
    answered_as_json: bool,
    /// The thinking block being streamed: its text so far and its signature, sent whole as
    /// `thinking_blocks` when it ends.
    thinking: Option<(String, Option<String>)>,
}

impl ChunkDecoder for Decoder {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        if (!event.is_empty() && !KNOWN_EVENTS.contains(&event)) || data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let parsed: StreamEvent =
            serde_json::from_str(data).map_err(ProviderError::bad_response)?;
        Ok(match parsed {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.created = unix_now();
                self.usage = message.usage;
                let delta = Delta {
                    role: Some("assistant".to_owned()),
                    content: Some(String::new()),
                    ..Delta::default()
                };
                vec![self.chunk(delta, None)]
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(later) = usage {
                    self.usage.update(later);
                }
                let reason = delta
                    .stop_reason
                    .as_deref()
                    .map(|r| finish_reason(r, self.answered_as_json && self.tool_calls == 0));
                reason
                    .map(|r| self.chunk(Delta::default(), Some(r)))
                    .into_iter()
                    .collect()
            }
            StreamEvent::MessageStop {} => vec![self.usage_chunk(), StreamItem::Done],
            StreamEvent::Error { error } => return Err(from_detail(None, error)),
            StreamEvent::ContentBlockStop { index } => index
                .and_then(|index| self.block_stop(index))
                .into_iter()
                .collect(),
            StreamEvent::Ping {} | StreamEvent::Unknown => Vec::new(),
        })
    }
}

impl Decoder {
    fn block_start(&mut self, index: u32, block: Block) -> Vec<StreamItem> {
        let (kind, first) = match block {
            Block::Text { text } => (BlockKind::Text, content(text)),
            Block::Thinking {
                thinking,
                signature,
            } => {
                self.thinking = Some((thinking.clone(), signature));
                (BlockKind::Thinking, reasoning(thinking))
            }
            Block::RedactedThinking { .. } => {
                (BlockKind::Skipped, thinking::to_client(&block).map(blocks))
            }
            Block::ToolUse { name, .. } if name == JSON_TOOL => {
                self.answered_as_json = true;
                (BlockKind::Json, None)
            }
            Block::ToolUse { id, name, .. } => {
                let tool_index = self.tool_calls;
                self.tool_calls += 1;
                (
                    BlockKind::Tool {
                        index: tool_index,
                        has_input: false,
                    },
                    Some(tool_start(tool_index, id, name)),
                )
            }
            _ => (BlockKind::Skipped, None),
        };
        self.blocks.insert(index, kind);
        first.map(|d| self.chunk(d, None)).into_iter().collect()
    }

    fn block_delta(&mut self, index: u32, delta: BlockDelta) -> Vec<StreamItem> {
        let Some(kind) = self.blocks.get_mut(&index) else {
            return Vec::new();
        };
        let out = match (kind, delta) {
            (BlockKind::Text, BlockDelta::TextDelta { text }) => content(text),
            (BlockKind::Json, BlockDelta::InputJsonDelta { partial_json }) => content(partial_json),
            (BlockKind::Thinking, BlockDelta::ThinkingDelta { thinking }) => {
                if let Some((text, _)) = &mut self.thinking {
                    text.push_str(&thinking);
                }
                reasoning(thinking)
            }
            (BlockKind::Thinking, BlockDelta::SignatureDelta { signature }) => {
                if let Some((_, signed)) = &mut self.thinking {
                    signed.get_or_insert_with(String::new).push_str(&signature);
                }
                None
            }
            (BlockKind::Tool { index, has_input }, BlockDelta::InputJsonDelta { partial_json }) => {
                *has_input |= !partial_json.is_empty();
                (!partial_json.is_empty()).then(|| arguments(*index, partial_json))
            }
            _ => None,
        };
        out.map(|d| self.chunk(d, None)).into_iter().collect()
    }

    /// A call without arguments streams its input as one empty fragment, or none; OpenAI sends
    /// `{}` for it, and a client parsing the arguments as JSON needs that.
    fn block_stop(&mut self, index: u32) -> Option<StreamItem> {
        match self.blocks.get(&index)? {
            &BlockKind::Tool {
                index,
                has_input: false,
            } => Some(self.chunk(arguments(index, "{}".to_owned()), None)),
            BlockKind::Thinking => {
                let (thinking, signature) = self.thinking.take()?;
                let block = Block::Thinking {
                    thinking,
                    signature,
                };
                let delta = blocks(thinking::to_client(&block)?);
                Some(self.chunk(delta, None))
            }
            _ => None,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> StreamItem {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
            extra: Default::default(),
        };
        StreamItem::Chunk(Box::new(self.frame(vec![choice])))
    }

    fn usage_chunk(&self) -> StreamItem {
        let mut chunk = self.frame(Vec::new());
        chunk.usage = Some(usage(&self.usage));
        StreamItem::Chunk(Box::new(chunk))
    }

    fn frame(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            system_fingerprint: None,
            extra: Default::default(),
        }
    }
}

fn content(text: String) -> Option<Delta> {
    (!text.is_empty()).then(|| Delta {
        content: Some(text),
        ..Delta::default()
    })
}

fn reasoning(text: String) -> Option<Delta> {
    (!text.is_empty()).then(|| {
        let mut delta = Delta::default();
        delta
            .extra
            .insert(REASONING_FIELD.to_owned(), Value::String(text));
        delta
    })
}

/// A delta carrying one whole thinking block.
fn blocks(block: Value) -> Delta {
    let mut delta = Delta::default();
    delta.extra.insert(
        thinking::THINKING_BLOCKS.to_owned(),
        Value::Array(vec![block]),
    );
    delta
}

fn tool_start(index: u32, id: String, name: String) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            id: Some(id),
            kind: Some(FunctionType::Function),
            function: Some(FunctionCallDelta {
                name: Some(name),
                arguments: Some(String::new()),
            }),
        }]),
        ..Delta::default()
    }
}

fn arguments(index: u32, fragment: String) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            function: Some(FunctionCallDelta {
                name: None,
                arguments: Some(fragment),
            }),
            ..ToolCallDelta::default()
        }]),
        ..Delta::default()
    }
}
