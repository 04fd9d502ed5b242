//! Canonical stream chunks as Anthropic's event sequence: `message_start`, then for each block
//! `content_block_start`, its deltas and `content_block_stop`, then `message_delta` with the stop
//! reason and usage, and `message_stop`.
//!
//! Blocks never interleave: a new kind of delta closes the open block first, as Anthropic's own
//! streams do. The stop reason and the usage come before `[DONE]` and are written at the end.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::answer::{message_id, stop_reason, usage};
use super::errors::error_body;
use crate::anthropic::{REASONING_FIELD, THINKING_BLOCKS};
use crate::chat::{ChatChunk, FinishReason, ToolCallDelta, Usage};

/// The block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its OpenAI tool-call index.
    Tool(u32),
}

/// Writes one answer's events, chunk by chunk.
#[derive(Debug, Default)]
pub struct EventWriter {
    started: bool,
    finished: bool,
    open: Option<(Open, u32)>,
    next_index: u32,
    /// Block index of each tool call, by its OpenAI index.
    tools: HashMap<u32, u32>,
    stop: Option<FinishReason>,
    usage: Option<Usage>,
    /// Counted locally, for `message_start` (the provider reports it only at the end).
    input_tokens: u64,
}

impl EventWriter {
    /// A writer for an answer whose prompt counts `input_tokens` by the gateway's count.
    pub fn new(input_tokens: u64) -> Self {
        EventWriter {
            input_tokens,
            ..EventWriter::default()
        }
    }

    /// Writes the events one chunk adds; only the first choice is read (Messages has no `n`).
    pub fn chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        if !self.started {
            self.start(chunk, out);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return;
        };
        let delta = &choice.delta;
        if let Some(Value::String(text)) = delta.extra.get(REASONING_FIELD)
            && !text.is_empty()
        {
            self.open_block(
                Open::Thinking,
                out,
                || json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
            self.delta(json!({"type": "thinking_delta", "thinking": text}), out);
        }
        if let Some(Value::Array(blocks)) = delta.extra.get(THINKING_BLOCKS) {
            for block in blocks {
                self.thinking_block(block, out);
            }
        }
        for text in [&delta.content, &delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.open_block(Open::Text, out, || json!({"type": "text", "text": ""}));
                self.delta(json!({"type": "text_delta", "text": text}), out);
            }
        }
        for call in delta.tool_calls.iter().flatten() {
            self.tool_call(call, out);
        }
        if let Some(reason) = &choice.finish_reason {
            self.stop = Some(reason.clone());
        }
    }

    /// Closes the answer: the open block, `message_delta` and `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if !self.started {
            self.start(&ChatChunk::default_for_start(), out);
        }
        self.close_block(out);
        self.finished = true;
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.stop.as_ref()), "stop_sequence": null},
            "usage": usage(self.usage.as_ref()),
        });
        event(out, "message_delta", &delta);
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    /// Ends the stream with an `error` event, as Anthropic does when an answer fails midway.
    pub fn error(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        self.finished = true;
        frame(out, "error", &error_body(kind, message));
    }

    /// Anthropic's keep-alive event.
    pub fn ping(out: &mut Vec<u8>) {
        event(out, "ping", &json!({"type": "ping"}));
    }

    fn start(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        self.started = true;
        let message = json!({
            "type": "message_start",
            "message": {
                "id": message_id(&chunk.id),
                "type": "message",
                "role": "assistant",
                "model": chunk.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
            },
        });
        event(out, "message_start", &message);
    }

    /// A thinking block the provider completed: its signature ends the open thinking block, or
    /// the whole block is written when none is open (a replayed answer, a redacted block).
    fn thinking_block(&mut self, block: &Value, out: &mut Vec<u8>) {
        let signature = block.get("signature").and_then(Value::as_str);
        let is_thinking = block.get("type").and_then(Value::as_str) == Some("thinking");
        if is_thinking && matches!(self.open, Some((Open::Thinking, _))) {
            if let Some(signature) = signature {
                let delta = json!({"type": "signature_delta", "signature": signature});
                self.delta(delta, out);
            }
            self.close_block(out);
            return;
        }
        self.close_block(out);
        let index = self.take_index();
        if is_thinking {
            let start = json!({"type": "thinking", "thinking": "", "signature": ""});
            block_start(out, index, &start);
            let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
            let delta = json!({"type": "thinking_delta", "thinking": text});
            block_delta(out, index, &delta);
            if let Some(signature) = signature {
                let delta = json!({"type": "signature_delta", "signature": signature});
                block_delta(out, index, &delta);
            }
        } else {
            block_start(out, index, block);
        }
        block_stop(out, index);
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let function = call.function.as_ref();
        if let Some(id) = &call.id {
            let name = function.and_then(|f| f.name.as_deref()).unwrap_or("");
            let start = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
            self.open_block(Open::Tool(call.index), out, || start);
            if let Some((_, index)) = self.open {
                self.tools.insert(call.index, index);
            }
        }
        let Some(arguments) = function.and_then(|f| f.arguments.as_deref()) else {
            return;
        };
        if arguments.is_empty() {
            return;
        }
        let Some(&index) = self.tools.get(&call.index) else {
            return;
        };
        let delta = json!({"type": "input_json_delta", "partial_json": arguments});
        block_delta(out, index, &delta);
    }

    /// Opens a block of `kind` unless one is open: the open block of another kind is closed.
    fn open_block(&mut self, kind: Open, out: &mut Vec<u8>, start: impl FnOnce() -> Value) {
        if matches!(self.open, Some((open, _)) if open == kind) {
            return;
        }
        self.close_block(out);
        let index = self.take_index();
        block_start(out, index, &start());
        self.open = Some((kind, index));
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            block_stop(out, index);
        }
    }

    fn take_index(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    /// A delta of the open block.
    fn delta(&self, delta: Value, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open {
            block_delta(out, index, &delta);
        }
    }
}

impl ChatChunk {
    /// The chunk `message_start` is written from when an answer ends before its first chunk.
    fn default_for_start() -> ChatChunk {
        ChatChunk {
            id: String::new(),
            object: String::new(),
            created: 0,
            model: String::new(),
            choices: Vec::new(),
            usage: None,
            system_fingerprint: None,
            extra: Default::default(),
        }
    }
}

fn block_start(out: &mut Vec<u8>, index: u32, block: &Value) {
    let data = json!({"type": "content_block_start", "index": index, "content_block": block});
    event(out, "content_block_start", &data);
}

fn block_delta(out: &mut Vec<u8>, index: u32, delta: &Value) {
    let data = json!({"type": "content_block_delta", "index": index, "delta": delta});
    event(out, "content_block_delta", &data);
}

fn block_stop(out: &mut Vec<u8>, index: u32) {
    let data = json!({"type": "content_block_stop", "index": index});
    event(out, "content_block_stop", &data);
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    frame(out, name, data.to_string().as_bytes());
}

fn frame(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}
