//! The Mistral adapter against Mistral's documented payloads, and random requests surviving an
//! encode-then-decode round trip with Mistral's renames undone.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::assemble::Assembler;
use switchboard_providers::chat::{ChatChunk, ChatRequest};
use switchboard_providers::embeddings::EmbeddingsRequest;
use switchboard_providers::mistral::{Mistral, tool_call_id};
use switchboard_providers::{Adapter, ChatAnswer, Endpoint, ErrorKind, StreamItem};

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "https://api.mistral.ai/v1".into(),
        api_key: Some("mi-test-key".into()),
        headers: Default::default(),
    }
}

fn encode(request: &Value) -> (http::Request<Bytes>, Value) {
    let request: ChatRequest = serde_json::from_value(request.clone()).unwrap();
    let http = Mistral.chat_request(&endpoint(), &request).unwrap();
    let body = serde_json::from_slice(http.body()).unwrap();
    (http, body)
}

fn stream(sse: &str) -> Vec<StreamItem> {
    let mut decoder = Mistral.chat_stream();
    let mut items = Vec::new();
    for block in sse.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block.strip_prefix("data: ").unwrap();
        items.extend(decoder.decode("", data).unwrap());
    }
    items
}

fn parsed(items: &[StreamItem]) -> Vec<ChatChunk> {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Chunk(c) => Some((**c).clone()),
            StreamItem::Verbatim(v) => Some(v.parse().unwrap()),
            StreamItem::Done | StreamItem::KeepAlive | StreamItem::Native(_) => None,
        })
        .collect()
}

#[test]
fn openai_request_is_rewritten_in_mistral_words() {
    let (http, body) = encode(&json!({
        "model": "mistral-large-latest",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Pay?", "name": "alice"},
            {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"id": "call_abc123def456", "type": "function", "function": {"name": "retrieve_payment_status", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_abc123def456", "content": "paid"}
        ],
        "tools": [{"type": "function", "function": {"name": "retrieve_payment_status", "parameters": {"type": "object"}}},
                  {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "retrieve_payment_status"}},
        "parallel_tool_calls": false,
        "max_completion_tokens": 100, "seed": 7, "stream": true,
        "stream_options": {"include_usage": true},
        "logprobs": true, "top_logprobs": 2, "logit_bias": {"1": 2}, "user": "u", "store": true,
        "service_tier": "auto", "metadata": {"a": "b"}, "safe_prompt": true,
        "response_format": {"type": "json_object"}
    }));
    assert_eq!(http.uri(), "https://api.mistral.ai/v1/chat/completions");
    assert_eq!(http.headers()["authorization"], "Bearer mi-test-key");
    assert_eq!(http.headers()["accept"], "text/event-stream");
    let id = tool_call_id("call_abc123def456");
    assert_eq!(id.len(), 9);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        body,
        json!({
            "model": "mistral-large-latest",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Pay?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function", "function": {"name": "retrieve_payment_status", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": id, "content": "paid"}
            ],
            "tools": [{"type": "function", "function": {"name": "retrieve_payment_status", "parameters": {"type": "object"}}}],
            "tool_choice": "any",
            "parallel_tool_calls": false,
            "max_tokens": 100, "random_seed": 7, "stream": true, "safe_prompt": true,
            "response_format": {"type": "json_object"}
        })
    );
    let (_, body) = encode(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": "required"}),
    );
    assert_eq!(body["tool_choice"], "any");
}

#[test]
fn valid_ids_are_kept_and_others_mapped_stably() {
    assert_eq!(tool_call_id("D681PevKs"), "D681PevKs");
    assert_eq!(tool_call_id("toolu_01A"), tool_call_id("toolu_01A"));
    assert_ne!(tool_call_id("call_1"), tool_call_id("call_2"));
    assert_ne!(tool_call_id("D681PevK!"), "D681PevK!");
}

#[test]
fn answers_pass_through_verbatim() {
    let body = include_str!("fixtures/mistral/response_tool_calls.json");
    let answer = Mistral.chat_response(Bytes::from(body)).unwrap();
    assert_eq!(answer.usage().unwrap().total_tokens, 195);
    let ChatAnswer::Verbatim {
        body: forwarded, ..
    } = answer
    else {
        panic!("verbatim")
    };
    assert_eq!(&forwarded[..], body.as_bytes());
}

#[test]
fn text_stream_keeps_chunks_and_splits_usage_off_the_last() {
    let items = stream(include_str!("fixtures/mistral/stream_text.sse"));
    assert_eq!(items.last(), Some(&StreamItem::Done));
    let chunks = parsed(&items);
    assert!(
        matches!(items[0], StreamItem::Verbatim(_)),
        "untouched chunks stay verbatim"
    );
    let last = &chunks[chunks.len() - 1];
    assert!(last.is_usage_only());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 50);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.usage, None);
    assert_eq!(
        finish.choices[0].delta.content.as_deref(),
        Some(" is subjective.")
    );
}

#[test]
fn whole_tool_calls_are_opened_then_filled() {
    let items = stream(include_str!("fixtures/mistral/stream_tool_calls.sse"));
    let chunks = parsed(&items);
    let opening = &chunks[1].choices[0];
    let calls = opening.delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].index, calls[1].index),
        (0, 1),
        "same index, distinct ids"
    );
    assert!(
        calls
            .iter()
            .all(|c| c.function.as_ref().unwrap().arguments.as_deref() == Some(""))
    );
    assert_eq!(opening.finish_reason, None);
    assert_eq!(
        chunks[2].choices[0].finish_reason,
        Some(switchboard_providers::chat::FinishReason::ToolCalls)
    );
    let mut assembler = Assembler::default();
    chunks.iter().for_each(|c| assembler.push(c));
    let whole = assembler.finish();
    let calls = whole.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id, "D681PevKs");
    assert_eq!(calls[1].function.arguments, r#"{"city": "Tokyo"}"#);
    assert_eq!(whole.usage.unwrap().completion_tokens, 36);
}

/// Mistral streams thinking as a list of chunks in `content` and may stop with `model_length`;
/// an OpenAI client expects text in `content`, thinking in `reasoning_content`, and `length`.
#[test]
fn thinking_streams_as_reasoning_content_and_model_length_is_length() {
    let chunks = parsed(&stream(include_str!(
        "fixtures/mistral/stream_thinking.sse"
    )));
    let mut assembler = Assembler::default();
    chunks.iter().for_each(|c| assembler.push(c));
    let whole = serde_json::to_value(assembler.finish()).unwrap();
    let choice = &whole["choices"][0];
    assert_eq!(choice["message"]["content"], "John is 22.");
    assert_eq!(choice["finish_reason"], "length");
    let reasoning: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.extra.get("reasoning_content")?.as_str())
        .collect();
    assert_eq!(reasoning, "John has 3 sisters.");
}

#[test]
fn answers_with_thinking_are_rewritten_and_others_stay_verbatim() {
    let body = json!({"id": "a", "object": "chat.completion", "created": 1, "model": "mistral-medium-3-5",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "Two and two."}]},
            {"type": "text", "text": "4"}]}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}});
    let answer = Mistral
        .chat_response(Bytes::from(body.to_string()))
        .unwrap();
    assert_eq!(answer.usage().unwrap().total_tokens, 12);
    let ChatAnswer::Verbatim { body, .. } = answer else {
        panic!("verbatim")
    };
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        sent["choices"][0]["message"],
        json!({"role": "assistant", "content": "4", "reasoning_content": "Two and two."})
    );
    let failed = Mistral.chat_response(Bytes::from(
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Par"},
            "finish_reason": "error"}]})
        .to_string(),
    ));
    assert_eq!(failed.unwrap_err().kind, ErrorKind::BadResponse);
}

#[test]
fn reasoning_effort_is_sent_as_one_of_mistral_two_levels() {
    for (asked, sent) in [
        ("none", "none"),
        ("minimal", "none"),
        ("low", "high"),
        ("medium", "high"),
        ("high", "high"),
    ] {
        let (_, body) = encode(
            &json!({"model": "mistral-medium-3-5", "reasoning_effort": asked,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(body["reasoning_effort"], sent, "{asked}");
    }
}

#[test]
fn errors_keep_mistral_vocabulary() {
    let err = Mistral.error_response(422, include_bytes!("fixtures/mistral/error_422.json"));
    assert_eq!((err.status, err.kind), (400, ErrorKind::InvalidRequest));
    assert_eq!(
        err.message,
        "messages[0].user.name: Extra inputs are not permitted"
    );
    assert_eq!(err.param.as_deref(), Some("messages[0].user.name"));
    let err = Mistral.error_response(
        422,
        br#"{"detail":[{"type":"missing","loc":["body","model"],"msg":"Field required","input":{}}]}"#,
    );
    assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));
    let err = Mistral.error_response(
        400,
        br#"{"object":"error","message":"Invalid model: nope","type":"invalid_model","param":null,"code":"1500"}"#,
    );
    assert_eq!(err.message, "Invalid model: nope");
    assert_eq!(
        (err.error_type.as_deref(), err.code.as_deref()),
        (Some("invalid_model"), Some("1500"))
    );
    let err = Mistral.error_response(401, br#"{"message":"Unauthorized","request_id":"abc"}"#);
    assert_eq!((err.status, err.kind), (401, ErrorKind::Authentication));
    assert_eq!(err.message, "Unauthorized");
    let err = Mistral.error_response(
        429,
        br#"{"object":"error","message":"Requests rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}"#,
    );
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(
        Mistral
            .error_response(503, b"upstream connect error")
            .status,
        503
    );
}

#[test]
fn embeddings_rename_dimensions() {
    let request: EmbeddingsRequest = serde_json::from_value(
        json!({"model": "codestral-embed", "input": "x", "dimensions": 256, "user": "u", "encoding_format": "float"}),
    )
    .unwrap();
    let http = Mistral.embeddings_request(&endpoint(), &request).unwrap();
    assert_eq!(http.uri(), "https://api.mistral.ai/v1/embeddings");
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(
        body,
        json!({"model": "codestral-embed", "input": ["x"], "output_dimension": 256, "encoding_format": "float"})
    );
    let answer = Mistral
        .embeddings_response(br#"{"id":"e1","object":"list","data":[{"object":"embedding","embedding":[0.1,0.2],"index":0}],"model":"mistral-embed","usage":{"prompt_tokens":3,"total_tokens":3,"completion_tokens":0}}"#)
        .unwrap();
    assert_eq!(answer.usage.prompt_tokens, 3);
}

/// Reads a Mistral body back into OpenAI's words.
fn decode(body: &Value) -> Value {
    let mut out = body.clone();
    let map = out.as_object_mut().unwrap();
    if let Some(seed) = map.remove("random_seed") {
        map.insert("seed".into(), seed);
    }
    if map.get("tool_choice") == Some(&json!("any")) {
        map.insert("tool_choice".into(), json!("required"));
    }
    out
}

/// What Mistral can say of `request`.
fn expressible(request: &Value) -> Value {
    let mut out = request.clone();
    let map = out.as_object_mut().unwrap();
    for dropped in ["user", "logprobs", "stream_options", "store"] {
        map.remove(dropped);
    }
    if let Some(max) = map.remove("max_completion_tokens") {
        map.insert("max_tokens".into(), max);
    }
    for m in map["messages"].as_array_mut().unwrap() {
        if m["role"] == "developer" {
            m["role"] = json!("system");
        }
        m.as_object_mut().unwrap().remove("name");
        if let Some(id) = m.get("tool_call_id").and_then(Value::as_str) {
            m["tool_call_id"] = json!(tool_call_id(id));
        }
        for call in m
            .get_mut("tool_calls")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            call["id"] = json!(tool_call_id(call["id"].as_str().unwrap()));
        }
    }
    out
}

fn message() -> impl Strategy<Value = Value> {
    let text = "[a-z ]{0,10}";
    prop_oneof![
        (prop_oneof!["system", "developer", "user"], text, proptest::option::of("[a-z]{1,5}"))
            .prop_map(|(role, t, name)| {
                let mut m = json!({"role": role, "content": t});
                if let Some(name) = name {
                    m["name"] = json!(name);
                }
                m
            }),
        ("[a-zA-Z0-9_-]{1,20}", "[a-z]{1,6}").prop_map(|(id, name)| json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": "{}"}}]})),
        ("[a-zA-Z0-9_-]{1,20}", text).prop_map(|(id, t)| json!({"role": "tool", "tool_call_id": id, "content": t})),
    ]
}

proptest! {
    #[test]
    fn requests_survive_encode_then_decode(
        messages in proptest::collection::vec(message(), 1..6),
        seed in proptest::option::of(any::<i64>()),
        max in proptest::option::of(1u32..9999),
        new_max in any::<bool>(),
        required in any::<bool>(),
        extras in any::<bool>(),
    ) {
        let mut request = json!({"model": "mistral-small-latest", "messages": messages,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
        if let Some(seed) = seed { request["seed"] = json!(seed); }
        if let Some(max) = max { request[if new_max { "max_completion_tokens" } else { "max_tokens" }] = json!(max); }
        if required { request["tool_choice"] = json!("required"); }
        if extras {
            request["user"] = json!("u");
            request["logprobs"] = json!(true);
            request["stream"] = json!(true);
            request["stream_options"] = json!({"include_usage": true});
        }
        let (_, body) = encode(&request);
        prop_assert_eq!(decode(&body), expressible(&request));
    }
}
