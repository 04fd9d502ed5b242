//! Mistral's OpenAI-style stream, decoded by the OpenAI adapter and brought to the canonical
//! shape: a tool call opens before its arguments, usage rides in its own final chunk, and
//! thinking arrives as `reasoning_content`.

use serde_json::Value;

use super::answer;
use crate::adapter::{ChunkDecoder, StreamItem, VerbatimChunk};
use crate::chat::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta, Usage};
use crate::error::ProviderError;

/// Wraps the OpenAI decoder; most chunks pass through untouched.
pub struct MistralStream {
    inner: Box<dyn ChunkDecoder>,
    /// Ids of the tool calls opened so far, in order: a call's position is its index.
    calls: Vec<String>,
}

impl MistralStream {
    pub fn new(inner: Box<dyn ChunkDecoder>) -> Self {
        MistralStream {
            inner,
            calls: Vec::new(),
        }
    }

    fn item(&mut self, item: StreamItem) -> Result<Vec<StreamItem>, ProviderError> {
        let StreamItem::Verbatim(chunk) = item else {
            return Ok(vec![item]);
        };
        let has_calls = memchr::memmem::find(&chunk.data, b"\"tool_calls\"").is_some();
        let usage_with_choices = chunk.has_choices && chunk.usage.is_some();
        if !has_calls && !usage_with_choices && !answer::needs_normalizing(&chunk.data) {
            return Ok(vec![StreamItem::Verbatim(chunk)]);
        }
        self.rebuild(&chunk)
    }

    fn rebuild(&mut self, verbatim: &VerbatimChunk) -> Result<Vec<StreamItem>, ProviderError> {
        let mut value: Value =
            serde_json::from_slice(&verbatim.data).map_err(ProviderError::bad_response)?;
        answer::normalize(&mut value)?;
        let mut chunk: ChatChunk =
            serde_json::from_value(value).map_err(ProviderError::bad_response)?;
        let usage = chunk.usage.take();
        let mut fragments = Vec::new();
        for choice in &mut chunk.choices {
            let Some(calls) = choice.delta.tool_calls.take() else {
                continue;
            };
            let (opened, arguments) = self.calls(calls);
            if opened.is_empty() {
                choice.delta.tool_calls = Some(arguments);
                continue;
            }
            choice.delta.tool_calls = Some(opened);
            if !arguments.is_empty() {
                // The arguments follow in a chunk of their own, which also takes the finish.
                fragments.push(ChunkChoice {
                    index: choice.index,
                    delta: Delta {
                        tool_calls: Some(arguments),
                        ..Delta::default()
                    },
                    finish_reason: choice.finish_reason.take(),
                    logprobs: None,
                    extra: Default::default(),
                });
            }
        }
        let follow = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatChunk {
            choices,
            usage,
            ..chunk.clone()
        };
        let mut chunks = Vec::new();
        if !fragments.is_empty() {
            chunks.push(follow(fragments, None));
        }
        // The last chunk carries the finish reason and usage together; the gateway relays usage
        // as a chunk of its own.
        if let Some(usage) = usage {
            chunks.push(follow(Vec::new(), Some(usage)));
        }
        if !chunk.choices.is_empty() {
            chunks.insert(0, chunk);
        }
        Ok(chunks
            .into_iter()
            .map(|c| StreamItem::Chunk(Box::new(c)))
            .collect())
    }

    /// Mistral sends each call whole (id, name and arguments at once), sometimes several with
    /// the same index: each new id is opened at its own index, and its arguments split off.
    fn calls(&mut self, calls: Vec<ToolCallDelta>) -> (Vec<ToolCallDelta>, Vec<ToolCallDelta>) {
        let mut opened = Vec::new();
        let mut fragments = Vec::new();
        for mut call in calls {
            let Some(id) = call.id.clone() else {
                // Calls stream one after another: a fragment continues the latest one, whatever
                // index Mistral wrote on it.
                if let Some(latest) = self.calls.len().checked_sub(1) {
                    call.index = u32::try_from(latest).unwrap_or(u32::MAX);
                }
                fragments.push(call);
                continue;
            };
            let index = match self.calls.iter().position(|c| *c == id) {
                Some(i) => i,
                None => {
                    self.calls.push(id);
                    self.calls.len() - 1
                }
            };
            call.index = u32::try_from(index).unwrap_or(u32::MAX);
            let function = call.function.take().unwrap_or_default();
            let arguments = function.arguments.unwrap_or_default();
            call.function = Some(FunctionCallDelta {
                name: Some(function.name.unwrap_or_default()),
                arguments: Some(String::new()),
            });
            if !arguments.is_empty() {
                fragments.push(ToolCallDelta {
                    index: call.index,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(arguments),
                    }),
                    ..ToolCallDelta::default()
                });
            }
            opened.push(call);
        }
        (opened, fragments)
    }
}

impl ChunkDecoder for MistralStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        // Chunks come as unnamed events; a named one (a keep-alive, say) is not a chunk.
        if !matches!(event, "" | "message") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for item in self.inner.decode(event, data)? {
            out.extend(self.item(item)?);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        self.inner.finish()
    }
}
