//! Tests of the parent module.

use super::*;
use serde_json::json;

#[test]
fn full_request_round_trips_with_unknown_fields() {
    let body = json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": true}},
        "stop": ["END"], "n": 2, "seed": 7, "logprobs": true, "top_logprobs": 3,
        "stream": true, "stream_options": {"include_usage": true},
        "reasoning_effort": "low",
        "metadata": {"team": "a"}
    });
    let req: ChatRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(req.extra.get("reasoning_effort"), Some(&json!("low")));
    assert!(req.wants_stream_usage());
    assert!(matches!(req.messages[1], Message::User(_)));
    assert_eq!(serde_json::to_value(&req).unwrap(), body);
}

#[test]
fn tool_choice_forms_parse() {
    let auto: ToolChoice = serde_json::from_value(json!("required")).unwrap();
    assert_eq!(auto, ToolChoice::Mode(ToolChoiceMode::Required));
    assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
}

#[test]
fn response_with_usage_details_round_trips() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
                  "prompt_tokens_details": {"cached_tokens": 2},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
        "service_tier": "default"
    });
    let resp: ChatResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&resp).unwrap(), body);
}

#[test]
fn unknown_finish_reason_is_kept() {
    let reason: FinishReason = serde_json::from_value(json!("abort")).unwrap();
    assert_eq!(reason, FinishReason::Other("abort".into()));
    assert_eq!(
        serde_json::to_value(FinishReason::ToolCalls).unwrap(),
        json!("tool_calls")
    );
}

#[test]
fn what_an_assistant_said_includes_its_refusals() {
    let message: AssistantMessage = serde_json::from_value(serde_json::json!({
        "content": [{"type": "text", "text": "Well."}, {"type": "refusal", "refusal": "I can't."}],
        "refusal": "Not that."
    }))
    .unwrap();
    assert_eq!(message.said(), "Well.\nI can't.\nNot that.");
    let silent: AssistantMessage =
        serde_json::from_value(serde_json::json!({"content": ""})).unwrap();
    assert_eq!(silent.said(), "");
}
