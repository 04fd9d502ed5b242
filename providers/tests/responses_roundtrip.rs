//! Properties of the inbound Responses surface:
//! - a streamed answer's events end in `response.completed` carrying exactly the object the
//!   whole answer is, numbered without gaps, every item added then done, the deltas spelling the
//!   item they belong to;
//! - input items become the canonical conversation in order: messages with their text, function
//!   calls under their call ids within one assistant turn, outputs as tool messages.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::assemble;
use switchboard_providers::chat::{
    ChatResponse, Choice, Content, FinishReason, FunctionCall, FunctionType, Message,
    ResponseMessage, ToolCall, Usage,
};
use switchboard_providers::responses::{self, Echo, EventWriter, ResponsesRequest};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é]{1,16}"
}

prop_compose! {
    fn answer()(
        reasoning in prop::option::of(text()),
        said in prop::option::of(text()),
        calls in prop::collection::vec(("[a-z_]{1,8}", "[a-z]{0,6}"), 0..3),
        length in any::<bool>(),
        prompt in 0..10_000u64,
        completion in 0..10_000u64,
    ) -> ChatResponse {
        let tool_calls: Vec<ToolCall> = calls.into_iter().enumerate().map(|(i, (name, v))| ToolCall {
            id: format!("call_{i}"),
            kind: FunctionType::Function,
            function: FunctionCall { name, arguments: json!({"v": v}).to_string() },
        }).collect();
        let finish = match (length, tool_calls.is_empty()) {
            (true, _) => FinishReason::Length,
            (false, true) => FinishReason::Stop,
            (false, false) => FinishReason::ToolCalls,
        };
        let mut message = ResponseMessage {
            content: said,
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            ..ResponseMessage::default()
        };
        if let Some(reasoning) = reasoning {
            message.extra.insert("reasoning_content".into(), json!(reasoning));
        }
        ChatResponse {
            id: "chatcmpl-1".into(),
            object: "chat.completion".into(),
            created: 0,
            model: "m".into(),
            choices: vec![Choice { index: 0, message, finish_reason: Some(finish), logprobs: None, extra: Default::default() }],
            usage: Some(Usage::new(prompt, completion)),
            system_fingerprint: None,
            extra: Default::default(),
        }
    }
}

fn echo() -> Echo {
    let request: ResponsesRequest =
        serde_json::from_value(json!({"model": "m", "input": "hi", "metadata": {"a": "b"}}))
            .unwrap();
    Echo::new("resp_0123".into(), 1_700_000_000, &request)
}

proptest! {
    #[test]
    fn a_streamed_response_completes_as_the_whole_one(response in answer()) {
        let (whole, _) = responses::encode_answer(&response, &echo());
        let mut writer = EventWriter::new(echo());
        let mut out = Vec::new();
        for chunk in assemble::replay(&response, true) {
            writer.chunk(&chunk, &mut out);
        }
        writer.finish(&mut out);
        let events: Vec<Value> = std::str::from_utf8(&out).unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let name = e.lines().next().unwrap().strip_prefix("event: ").unwrap();
                let data: Value = serde_json::from_str(e.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name);
                data
            })
            .collect();
        for (n, event) in events.iter().enumerate() {
            prop_assert_eq!(event["sequence_number"].as_u64(), Some(n as u64));
        }
        let last = events.last().unwrap();
        let kind = if whole["status"] == "completed" { "response.completed" } else { "response.incomplete" };
        prop_assert_eq!(&last["type"], kind);
        prop_assert_eq!(&last["response"], &whole);
        let added: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.added").collect();
        let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.done").map(|e| &e["item"]).collect();
        prop_assert_eq!(added.len(), done.len());
        prop_assert_eq!(json!(done), whole["output"].clone());
        // Every event names the place its item has in the output, as the SDKs look it up.
        for event in &events {
            let Some(index) = event["output_index"].as_u64() else { continue };
            let item = &whole["output"][index as usize];
            let id = event["item"]["id"].as_str().or(event["item_id"].as_str());
            prop_assert_eq!(id, item["id"].as_str(), "{}", event);
        }
        let text: String = events.iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str()).collect();
        let said = response.choices[0].message.content.clone().unwrap_or_default();
        prop_assert_eq!(text, said);
    }

    #[test]
    fn input_items_become_the_conversation_in_order(turns in prop::collection::vec((text(), prop::collection::vec("[a-z]{1,6}", 0..3)), 1..4)) {
        let mut items = Vec::new();
        for (t, (said, calls)) in turns.iter().enumerate() {
            items.push(json!({"role": "user", "content": [{"type": "input_text", "text": said}]}));
            for (c, name) in calls.iter().enumerate() {
                items.push(json!({"type": "function_call", "call_id": format!("call_{t}_{c}"), "name": name, "arguments": "{}"}));
            }
            for c in 0..calls.len() {
                items.push(json!({"type": "function_call_output", "call_id": format!("call_{t}_{c}"), "output": format!("out {t} {c}")}));
            }
        }
        let request: ResponsesRequest = serde_json::from_value(json!({"model": "m", "instructions": "Be brief.", "input": items})).unwrap();
        let translated = responses::translate(&request, Vec::new()).unwrap();
        let messages = &translated.request.messages;
        prop_assert_eq!(translated.conversation_from, 1);
        prop_assert!(matches!(&messages[0], Message::System(m) if m.content == Content::Text("Be brief.".into())));
        let mut at = 1;
        for (t, (said, calls)) in turns.iter().enumerate() {
            let Message::User(user) = &messages[at] else { panic!("a user message at {at}") };
            prop_assert_eq!(user.content.text(), said.clone());
            at += 1;
            if calls.is_empty() {
                continue;
            }
            let Message::Assistant(turn) = &messages[at] else { panic!("an assistant turn at {at}") };
            let ids: Vec<&str> = turn.tool_calls.iter().flatten().map(|c| c.id.as_str()).collect();
            let want: Vec<String> = (0..calls.len()).map(|c| format!("call_{t}_{c}")).collect();
            prop_assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
            at += 1;
            for c in 0..calls.len() {
                let Message::Tool(tool) = &messages[at] else { panic!("a tool message at {at}") };
                prop_assert_eq!(&tool.tool_call_id, &format!("call_{t}_{c}"));
                prop_assert_eq!(tool.content.text(), format!("out {t} {c}"));
                at += 1;
            }
        }
        prop_assert_eq!(at, messages.len());
    }
}
