//! `streamGenerateContent?alt=sse` as canonical chunks. Each event is a whole
//! `GenerateContentResponse` piece; function calls arrive whole, so each becomes one delta.
//!
//! Gemini sends no `[DONE]`: the stream is done when the bytes end after every candidate
//! finished. Bytes that end before that yield nothing, so the cut reaches the client as an error.

use std::collections::BTreeMap;

use super::logprobs;
use super::response::{Answer, Head, blocked_or_stop, finish_reason, usage};
use super::wire::{Candidate, ErrorDetail, GenerateContentResponse};
use crate::adapter::{ChunkDecoder, StreamItem};
use crate::chat::{ChatChunk, ChunkChoice, Delta, Extra, FinishReason, ToolCallDelta, Usage};
use crate::error::ProviderError;

/// The decoder of one streamed answer.
#[derive(Default)]
pub struct GeminiStream {
    head: Option<Head>,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
}

#[derive(Default)]
struct ChoiceState {
    started: bool,
    tool_calls: u32,
    finished: bool,
}

/// A streamed piece, with an `error` when Gemini fails mid-stream.
#[derive(serde::Deserialize)]
struct Event {
    #[serde(default)]
    error: Option<ErrorDetail>,
    #[serde(flatten)]
    response: GenerateContentResponse,
}

impl ChunkDecoder for GeminiStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        // Gemini names no events; a named one is something this adapter does not know.
        if !matches!(event, "" | "message") || data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let event: Event = serde_json::from_str(data).map_err(ProviderError::bad_response)?;
        if let Some(error) = event.error {
            return Err(super::error::translate(error, 502));
        }
        self.pieces(event.response)
    }

    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        let complete = !self.choices.is_empty() && self.choices.values().all(|c| c.finished);
        if !complete {
            return Ok(Vec::new());
        }
        let mut items = Vec::with_capacity(2);
        if let Some(usage) = self.usage.take() {
            let mut chunk = self.chunk(Vec::new());
            chunk.usage = Some(usage);
            items.push(StreamItem::Chunk(Box::new(chunk)));
        }
        items.push(StreamItem::Done);
        Ok(items)
    }
}

impl GeminiStream {
    fn pieces(
        &mut self,
        response: GenerateContentResponse,
    ) -> Result<Vec<StreamItem>, ProviderError> {
        if self.head.is_none() {
            self.head = Some(Head::of(&response));
        }
        if let Some(metadata) = &response.usage_metadata {
            // Each piece reports the running count; the last one is the total.
            self.usage = Some(usage(metadata));
        }
        let mut items = Vec::new();
        for (position, candidate) in response.candidates.iter().enumerate() {
            let index = candidate.index.unwrap_or(position as u32);
            items.extend(self.candidate(index, candidate)?);
        }
        if response.candidates.is_empty() && self.choices.is_empty() {
            let blocked = blocked_or_stop(&response);
            if blocked == FinishReason::ContentFilter {
                items.push(self.finish_chunk(0, blocked));
            }
        }
        Ok(items
            .into_iter()
            .map(|chunk| StreamItem::Chunk(Box::new(chunk)))
            .collect())
    }

    fn candidate(
        &mut self,
        index: u32,
        candidate: &Candidate,
    ) -> Result<Vec<ChatChunk>, ProviderError> {
        let parts = candidate.content.as_ref().map_or(&[][..], |c| &c.parts[..]);
        let answer = Answer::of(parts);
        let state = self.choices.entry(index).or_default();
        let mut delta = Delta {
            role: (!state.started).then(|| "assistant".to_owned()),
            content: answer.text,
            ..Delta::default()
        };
        if let Some(reasoning) = answer.reasoning {
            delta
                .extra
                .insert("reasoning_content".into(), reasoning.into());
        }
        if !answer.tool_calls.is_empty() {
            let calls = answer.tool_calls.into_iter().map(|call| {
                state.tool_calls += 1;
                ToolCallDelta::whole(state.tool_calls - 1, call)
            });
            delta.tool_calls = Some(calls.collect());
        }
        let says_something =
            delta.content.is_some() || delta.tool_calls.is_some() || !delta.extra.is_empty();
        state.started |= says_something;
        let called_tools = state.tool_calls > 0;
        let mut chunks = Vec::with_capacity(2);
        if says_something {
            let mut choice = choice(index, delta, None);
            choice.logprobs = candidate.logprobs_result.as_ref().map(logprobs::translate);
            chunks.push(self.chunk(vec![choice]));
        }
        if let Some(reason) = &candidate.finish_reason {
            chunks.push(self.finish_chunk(index, finish_reason(reason, called_tools)?));
        }
        Ok(chunks)
    }

    fn finish_chunk(&mut self, index: u32, reason: FinishReason) -> ChatChunk {
        let state = self.choices.entry(index).or_default();
        state.finished = true;
        let role = (!state.started).then(|| "assistant".to_owned());
        state.started = true;
        let delta = Delta {
            role,
            ..Delta::default()
        };
        self.chunk(vec![choice(index, delta, Some(reason))])
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        let (id, created, model) = match &self.head {
            Some(head) => (head.id.clone(), head.created, head.model.clone()),
            None => (String::new(), 0, String::new()),
        };
        ChatChunk {
            id,
            object: "chat.completion.chunk".into(),
            created,
            model,
            choices,
            usage: None,
            system_fingerprint: None,
            extra: Extra::new(),
        }
    }
}

fn choice(index: u32, delta: Delta, finish_reason: Option<FinishReason>) -> ChunkChoice {
    ChunkChoice {
        index,
        delta,
        finish_reason,
        logprobs: None,
        extra: Extra::new(),
    }
}
