//! Streams and whole answers, one into the other: assembling a streamed answer into the
//! completion it amounts to, and replaying a completion as a well-formed stream.
//!
//! The cache stores one form and serves both: a streamed miss feeds a plain hit, and the reverse.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::chat::{
    ChatChunk, ChatResponse, Choice, ChunkChoice, Delta, FinishReason, FunctionCall, FunctionType,
    ResponseMessage, ToolCall, ToolCallDelta, Usage,
};

/// Collects chunks into the completion they spell out.
#[derive(Debug, Default)]
pub struct Assembler {
    head: Option<(String, u64, String, Option<String>)>,
    choices: BTreeMap<u32, PartialChoice>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct PartialChoice {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, PartialCall>,
    finish_reason: Option<FinishReason>,
    /// Fields beyond OpenAI's (`reasoning_content`, `thinking_blocks`, a legacy
    /// `function_call`), gathered by [`merge`].
    extra: Map<String, Value>,
    /// The choice's `logprobs`, its per-token lists joined chunk by chunk.
    logprobs: Option<Map<String, Value>>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl Assembler {
    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        self.head.get_or_insert_with(|| {
            (
                chunk.id.clone(),
                chunk.created,
                chunk.model.clone(),
                chunk.system_fingerprint.clone(),
            )
        });
        if chunk.usage.is_some() {
            self.usage.clone_from(&chunk.usage);
        }
        for choice in &chunk.choices {
            let partial = self.choices.entry(choice.index).or_default();
            append(&mut partial.content, choice.delta.content.as_deref());
            append(&mut partial.refusal, choice.delta.refusal.as_deref());
            for (key, value) in &choice.delta.extra {
                merge(&mut partial.extra, key, value);
            }
            if let Some(Value::Object(logprobs)) = &choice.logprobs {
                let into = partial.logprobs.get_or_insert_with(Map::new);
                for (key, value) in logprobs {
                    merge(into, key, value);
                }
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                let target = partial.tool_calls.entry(call.index).or_default();
                if let Some(id) = &call.id {
                    target.id.clone_from(id);
                }
                if let Some(function) = &call.function {
                    target
                        .name
                        .push_str(function.name.as_deref().unwrap_or_default());
                    target
                        .arguments
                        .push_str(function.arguments.as_deref().unwrap_or_default());
                }
            }
            if choice.finish_reason.is_some() {
                partial.finish_reason.clone_from(&choice.finish_reason);
            }
        }
    }

    /// Whether every choice has finished; a stream cut short has not.
    pub fn is_complete(&self) -> bool {
        !self.choices.is_empty() && self.choices.values().all(|c| c.finish_reason.is_some())
    }

    /// The completion the chunks spell out.
    pub fn finish(self) -> ChatResponse {
        let (id, created, model, system_fingerprint) = self.head.unwrap_or_default();
        let choices = self
            .choices
            .into_iter()
            .map(|(index, partial)| {
                let tool_calls: Vec<ToolCall> = partial
                    .tool_calls
                    .into_values()
                    .map(|call| ToolCall {
                        id: call.id,
                        kind: FunctionType::Function,
                        function: FunctionCall {
                            name: call.name,
                            arguments: call.arguments,
                        },
                    })
                    .collect();
                Choice {
                    index,
                    message: ResponseMessage {
                        content: partial.content,
                        refusal: partial.refusal,
                        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                        extra: partial.extra,
                        ..ResponseMessage::default()
                    },
                    finish_reason: partial.finish_reason,
                    logprobs: partial.logprobs.map(Value::Object),
                    extra: Map::new(),
                }
            })
            .collect();
        ChatResponse {
            id,
            object: "chat.completion".to_owned(),
            created,
            model,
            choices,
            usage: self.usage,
            system_fingerprint,
            extra: Map::new(),
        }
    }
}

/// Adds one delta's field to what earlier deltas said: text joins, lists grow, objects merge
/// field by field (a legacy `function_call` streams its name, then its arguments in pieces), and
/// a `null` after a value (DeepSeek's `reasoning_content` once the reasoning is over) is nothing.
fn merge(into: &mut Map<String, Value>, key: &str, value: &Value) {
    match (into.get_mut(key), value) {
        (Some(_), Value::Null) => {}
        (Some(Value::String(text)), Value::String(piece)) => text.push_str(piece),
        (Some(Value::Array(items)), Value::Array(more)) => items.extend(more.iter().cloned()),
        (Some(Value::Object(fields)), Value::Object(more)) => {
            for (name, piece) in more {
                merge(fields, name, piece);
            }
        }
        _ => {
            into.insert(key.to_owned(), value.clone());
        }
    }
}

fn append(target: &mut Option<String>, piece: Option<&str>) {
    if let Some(piece) = piece {
        target.get_or_insert_with(String::new).push_str(piece);
    }
}

/// A completion as a stream: per choice a role chunk carrying the text, one chunk per tool call,
/// a finish chunk; then a usage chunk when the client asked for one.
pub fn replay(response: &ChatResponse, include_usage: bool) -> Vec<ChatChunk> {
    let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatChunk {
        id: response.id.clone(),
        object: "chat.completion.chunk".to_owned(),
        created: response.created,
        model: response.model.clone(),
        choices,
        usage,
        system_fingerprint: response.system_fingerprint.clone(),
        extra: Map::new(),
    };
    let one = |index: u32, delta: Delta, finish_reason: Option<FinishReason>| ChunkChoice {
        index,
        delta,
        finish_reason,
        logprobs: None,
        extra: Map::new(),
    };
    let mut out = Vec::new();
    for choice in &response.choices {
        let message = &choice.message;
        let first = Delta {
            role: Some("assistant".to_owned()),
            content: message
                .content
                .clone()
                .or_else(|| message.tool_calls.is_none().then(String::new)),
            refusal: message.refusal.clone(),
            // Reasoning and thinking blocks travel beside the text.
            extra: message.extra.clone(),
            ..Delta::default()
        };
        let mut opening = one(choice.index, first, None);
        // The text's tokens travel with the text.
        opening.logprobs.clone_from(&choice.logprobs);
        out.push(chunk(vec![opening], None));
        for (i, call) in message.tool_calls.iter().flatten().enumerate() {
            let delta = Delta {
                tool_calls: Some(vec![ToolCallDelta::whole(i as u32, call.clone())]),
                ..Delta::default()
            };
            out.push(chunk(vec![one(choice.index, delta, None)], None));
        }
        out.push(chunk(
            vec![one(
                choice.index,
                Delta::default(),
                choice.finish_reason.clone(),
            )],
            None,
        ));
    }
    if include_usage {
        out.push(chunk(
            Vec::new(),
            Some(response.usage.clone().unwrap_or_default()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockAnswer;
    use serde_json::json;

    fn request(extra: serde_json::Value) -> crate::chat::ChatRequest {
        let mut body = json!({"model": "m", "n": 2, "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Rome"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn assembling_a_stream_gives_the_plain_answer() {
        for extra in [
            json!({}),
            json!({"tools": [{"type": "function", "function": {"name": "f",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}),
        ] {
            let req = request(extra);
            let answer = MockAnswer::for_request(&req);
            let mut assembler = Assembler::default();
            for chunk in answer.chunks(&req, "id", 7) {
                assembler.push(&chunk);
            }
            assert!(assembler.is_complete());
            assert_eq!(assembler.finish(), answer.response(&req, "id", 7));
        }
    }

    /// Reasoning streams in pieces and thinking blocks one by one; the whole answer holds all
    /// of them, and its replay gives them back.
    #[test]
    fn reasoning_and_thinking_blocks_survive_assembly_and_replay() {
        let chunk = |delta: serde_json::Value| -> ChatChunk {
            serde_json::from_value(json!({"id": "c", "object": "chat.completion.chunk",
                "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta}]}))
            .unwrap()
        };
        let mut assembler = Assembler::default();
        for delta in [
            json!({"role": "assistant", "content": ""}),
            json!({"reasoning_content": "Let me "}),
            json!({"reasoning_content": "think."}),
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "Let me think.", "signature": "s1"}]}),
            json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "d"}]}),
            json!({"content": "42"}),
        ] {
            assembler.push(&chunk(delta));
        }
        let whole = assembler.finish();
        let message = &whole.choices[0].message;
        assert_eq!(message.extra["reasoning_content"], "Let me think.");
        assert_eq!(
            message.extra["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Let me think.", "signature": "s1"},
                   {"type": "redacted_thinking", "data": "d"}])
        );
        let mut again = Assembler::default();
        replay(&whole, false).iter().for_each(|c| again.push(c));
        assert_eq!(again.finish(), whole);

        let mut legacy = Assembler::default();
        for delta in [
            json!({"role": "assistant", "content": null, "reasoning_content": "Hm."}),
            json!({"function_call": {"name": "get_weather", "arguments": ""}, "reasoning_content": null}),
            json!({"function_call": {"arguments": "{\"city\":"}, "reasoning_content": null}),
            json!({"function_call": {"arguments": "\"Paris\"}"}}),
        ] {
            legacy.push(&chunk(delta));
        }
        let message = legacy.finish().choices[0].message.extra.clone();
        assert_eq!(
            message["reasoning_content"], "Hm.",
            "a later null is nothing"
        );
        assert_eq!(
            message["function_call"],
            json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
    }

    #[test]
    fn logprobs_join_in_assembly_and_travel_with_the_text_in_replay() {
        let chunk = |content: &str, logprobs: serde_json::Value| -> ChatChunk {
            serde_json::from_value(json!({"id": "c", "object": "chat.completion.chunk",
                "created": 1, "model": "m", "choices": [{"index": 0,
                "delta": {"content": content}, "logprobs": logprobs}]}))
            .unwrap()
        };
        let token = |t: &str| json!({"token": t, "logprob": -0.1, "bytes": t.as_bytes(), "top_logprobs": []});
        let mut assembler = Assembler::default();
        assembler.push(&chunk(
            "Hel",
            json!({"content": [token("Hel")], "refusal": null}),
        ));
        assembler.push(&chunk(
            "lo",
            json!({"content": [token("lo")], "refusal": null}),
        ));
        assembler.push(&chunk("", json!(null)));
        let whole = assembler.finish();
        assert_eq!(
            whole.choices[0].logprobs,
            Some(json!({"content": [token("Hel"), token("lo")], "refusal": null}))
        );
        let replayed = replay(&whole, false);
        assert_eq!(replayed[0].choices[0].logprobs, whole.choices[0].logprobs);
        let mut again = Assembler::default();
        replayed.iter().for_each(|c| again.push(c));
        assert_eq!(again.finish(), whole);
    }

    #[test]
    fn replay_then_assemble_is_identity() {
        let req = request(json!({"tools": [{"type": "function", "function": {"name": "f"}}]}));
        let plain = MockAnswer::for_request(&req).response(&req, "id", 7);
        let chunks = replay(&plain, true);
        assert!(chunks.last().unwrap().is_usage_only());
        let mut assembler = Assembler::default();
        chunks.iter().for_each(|c| assembler.push(c));
        assert_eq!(assembler.finish(), plain);
    }

    #[test]
    fn a_cut_stream_is_incomplete() {
        let req = request(json!({}));
        let chunks = MockAnswer::for_request(&req).chunks(&req, "id", 7);
        let mut assembler = Assembler::default();
        chunks[..3].iter().for_each(|c| assembler.push(c));
        assert!(!assembler.is_complete());
    }
}
