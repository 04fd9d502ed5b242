//! Properties of the inbound Messages surface:
//! - a client's conversation, translated to the canonical form and sent to Anthropic by the
//!   Anthropic adapter, is the conversation the client wrote (turns, text, tool uses and results
//!   with their ids, tools, tool choice, sampling);
//! - a streamed answer's events, accumulated as Anthropic's SDKs do, are the message object the
//!   same answer gives whole.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::anthropic::Anthropic;
use switchboard_providers::assemble;
use switchboard_providers::chat::{
    ChatResponse, Choice, FinishReason, FunctionCall, FunctionType, ResponseMessage, ToolCall,
    Usage,
};
use switchboard_providers::messages::{self, EventWriter, MessagesRequest};
use switchboard_providers::{Adapter, Endpoint};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é]{1,16}"
}

fn input() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", "[a-z]{0,6}", 0..3)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect()))
}

/// A conversation that alternates user and assistant turns, starting and ending with the user;
/// every tool use is answered by a tool result in the next user turn, results first.
fn conversation() -> impl Strategy<Value = Vec<Value>> {
    let assistant = (
        prop::option::of(text()),
        prop::collection::vec(("[a-z_]{1,8}", input()), 0..3),
    )
        .prop_filter("says something", |(t, calls)| {
            t.is_some() || !calls.is_empty()
        });
    let rounds = prop::collection::vec(
        (
            prop::collection::vec(text(), 1..3),
            assistant,
            prop::collection::vec(text(), 0..2),
        ),
        0..3,
    );
    (rounds, prop::collection::vec(text(), 1..3)).prop_map(|(rounds, last)| {
        let mut turns = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut n = 0;
        for (user, (said, calls), after) in rounds {
            let mut blocks: Vec<Value> = pending
                .drain(..)
                .map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": "done"}))
                .collect();
            blocks.extend(user.iter().map(|t| json!({"type": "text", "text": t})));
            turns.push(json!({"role": "user", "content": blocks}));
            let mut blocks: Vec<Value> = said
                .into_iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            for (name, input) in calls {
                n += 1;
                let id = format!("toolu_{n:04}");
                pending.push(id.clone());
                blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            turns.push(json!({"role": "assistant", "content": blocks}));
            let _ = after;
        }
        let mut blocks: Vec<Value> = pending
            .drain(..)
            .map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": "done"}))
            .collect();
        blocks.extend(last.iter().map(|t| json!({"type": "text", "text": t})));
        turns.push(json!({"role": "user", "content": blocks}));
        turns
    })
}

prop_compose! {
    fn request()(
        messages in conversation(),
        system in prop::option::of(text()),
        tools in prop::collection::vec(("[a-z_]{1,8}", prop::option::of(text())), 0..3),
        choice in 0..4u8,
        temperature in prop::option::of((0..=100u32).prop_map(|n| f64::from(n) / 100.0)),
        stop in prop::option::of(prop::collection::vec(text(), 1..3)),
        max_tokens in 1..100_000u32,
    ) -> Value {
        let mut body = json!({"model": "claude", "max_tokens": max_tokens, "messages": messages});
        if let Some(system) = system {
            body["system"] = json!(system);
        }
        if !tools.is_empty() {
            body["tools"] = tools.iter().map(|(name, description)| {
                let mut tool = json!({"name": name, "input_schema": {"type": "object", "properties": {}}});
                if let Some(description) = description {
                    tool["description"] = json!(description);
                }
                tool
            }).collect();
            body["tool_choice"] = match choice {
                0 => json!({"type": "auto"}),
                1 => json!({"type": "any", "disable_parallel_tool_use": true}),
                2 => json!({"type": "none"}),
                _ => json!({"type": "tool", "name": tools[0].0}),
            };
        }
        if let Some(t) = temperature {
            body["temperature"] = json!(t);
        }
        if let Some(stop) = stop {
            body["stop_sequences"] = json!(stop);
        }
        body
    }
}

/// Content as blocks, whichever form it was written in.
fn blocks(content: &Value) -> Value {
    match content {
        Value::String(text) => json!([{"type": "text", "text": text}]),
        other => other.clone(),
    }
}

/// An assistant turn's text blocks as one (the canonical form has one text per message).
fn joined(turn: &Value) -> Value {
    let blocks = blocks(&turn["content"]);
    if turn["role"] != "assistant" {
        return json!({"role": turn["role"], "content": blocks});
    }
    let items = blocks.as_array().unwrap();
    let text: String = items.iter().filter_map(|b| b["text"].as_str()).collect();
    let mut out: Vec<Value> = Vec::new();
    if !text.is_empty() {
        out.push(json!({"type": "text", "text": text}));
    }
    out.extend(items.iter().filter(|b| b["type"] == "tool_use").cloned());
    json!({"role": "assistant", "content": out})
}

proptest! {
    #[test]
    fn a_conversation_reaches_anthropic_as_the_client_wrote_it(body in request()) {
        let parsed: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        let chat = messages::translate(&parsed, true).unwrap().request;
        let endpoint = Endpoint { base_url: "http://a".into(), ..Endpoint::default() };
        let sent = Anthropic.chat_request(&endpoint, &chat).unwrap();
        let sent: Value = serde_json::from_slice(sent.body()).unwrap();
        let want: Vec<Value> = body["messages"].as_array().unwrap().iter().map(joined).collect();
        let got: Vec<Value> = sent["messages"].as_array().unwrap().iter().map(joined).collect();
        prop_assert_eq!(got, want);
        let system = sent["system"].as_array().map(|s| s[0]["text"].clone());
        prop_assert_eq!(system, body.get("system").cloned());
        prop_assert_eq!(&sent["max_tokens"], &body["max_tokens"]);
        prop_assert_eq!(sent.get("temperature"), body.get("temperature"));
        prop_assert_eq!(sent.get("stop_sequences"), body.get("stop_sequences"));
        prop_assert_eq!(sent.get("tools"), body.get("tools"));
        prop_assert_eq!(sent.get("tool_choice"), body.get("tool_choice"));
    }

    #[test]
    fn a_streamed_answer_accumulates_to_the_whole_message(response in answer()) {
        let whole = messages::encode_answer(&response);
        let mut writer = EventWriter::new(whole["usage"]["input_tokens"].as_u64().unwrap());
        let mut out = Vec::new();
        for chunk in assemble::replay(&response, true) {
            writer.chunk(&chunk, &mut out);
        }
        writer.finish(&mut out);
        let streamed = accumulate(std::str::from_utf8(&out).unwrap());
        prop_assert_eq!(&streamed["content"], &whole["content"]);
        prop_assert_eq!(&streamed["stop_reason"], &whole["stop_reason"]);
        prop_assert_eq!(&streamed["usage"], &whole["usage"]);
        prop_assert_eq!(&streamed["id"], &whole["id"]);
    }
}

prop_compose! {
    fn answer()(
        reasoning in prop::option::of(text()),
        said in prop::option::of(text()),
        calls in prop::collection::vec(("[a-z_]{1,8}", input()), 0..3),
        prompt in 0..10_000u64,
        cached in 0..100u64,
        completion in 0..10_000u64,
    ) -> ChatResponse {
        let tool_calls: Vec<ToolCall> = calls.into_iter().enumerate().map(|(i, (name, input))| ToolCall {
            id: format!("call_{i}"),
            kind: FunctionType::Function,
            function: FunctionCall { name, arguments: input.to_string() },
        }).collect();
        let finish = if tool_calls.is_empty() { FinishReason::Stop } else { FinishReason::ToolCalls };
        let mut message = ResponseMessage {
            content: said,
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            ..ResponseMessage::default()
        };
        if let Some(reasoning) = reasoning {
            message.extra.insert("reasoning_content".into(), json!(reasoning));
        }
        let mut usage = Usage::new(prompt + cached, completion);
        usage.prompt_tokens_details = Some(switchboard_providers::chat::PromptTokensDetails {
            cached_tokens: Some(cached),
            ..Default::default()
        });
        ChatResponse {
            id: "msg_0123".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "m".into(),
            choices: vec![Choice { index: 0, message, finish_reason: Some(finish), logprobs: None, extra: Default::default() }],
            usage: Some(usage),
            system_fingerprint: None,
            extra: Default::default(),
        }
    }
}

/// Anthropic's events folded into the message they spell out, as its SDKs do.
fn accumulate(stream: &str) -> Value {
    let mut message = Value::Null;
    let mut partial: Vec<String> = Vec::new();
    for event in stream.split("\n\n").filter(|e| !e.is_empty()) {
        let name = event
            .lines()
            .next()
            .unwrap()
            .strip_prefix("event: ")
            .unwrap();
        let data: Value = serde_json::from_str(
            event
                .lines()
                .nth(1)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["type"], name);
        match name {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let content = message["content"].as_array_mut().unwrap();
                assert_eq!(content.len(), index, "blocks are numbered in order");
                content.push(data["content_block"].clone());
                partial.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                let append = |block: &mut Value, field: &str, piece: &Value| {
                    let now =
                        block[field].as_str().unwrap_or("").to_owned() + piece.as_str().unwrap();
                    block[field] = json!(now);
                };
                match delta["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &delta["text"]),
                    "thinking_delta" => append(block, "thinking", &delta["thinking"]),
                    "signature_delta" => append(block, "signature", &delta["signature"]),
                    "input_json_delta" => partial[index] += delta["partial_json"].as_str().unwrap(),
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                if message["content"][index]["type"] == "tool_use" && !partial[index].is_empty() {
                    message["content"][index]["input"] =
                        serde_json::from_str(&partial[index]).unwrap();
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["usage"] = data["usage"].clone();
            }
            "message_stop" => {}
            other => panic!("unknown event {other}"),
        }
    }
    message
}
