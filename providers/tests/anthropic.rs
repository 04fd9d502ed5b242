//! The Anthropic adapter against Anthropic's documented payloads: requests out, answers, streams
//! and errors back, each compared with what an OpenAI client expects.

use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_providers::anthropic::{Anthropic, JSON_TOOL};
use switchboard_providers::chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason};
use switchboard_providers::{Adapter, ChatAnswer, Endpoint, ErrorKind, StreamItem};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/anthropic/", $name))
    };
}

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "https://api.anthropic.test".into(),
        api_key: Some("sk-ant-test-key".into()),
        headers: Default::default(),
    }
}

fn request(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

/// The JSON body the adapter sends for `body`.
fn encoded(body: Value) -> Value {
    let http = Anthropic.chat_request(&endpoint(), &request(body)).unwrap();
    serde_json::from_slice(http.body()).unwrap()
}

fn answer(body: &str) -> ChatResponse {
    match Anthropic
        .chat_response(Bytes::from(body.to_owned()))
        .unwrap()
    {
        ChatAnswer::Translated(response) => *response,
        other => panic!("expected a translation, got {other:?}"),
    }
}

/// Feeds a recorded SSE body to a decoder, event by event, as the gateway does.
fn stream(
    sse: &str,
) -> (
    Vec<ChatChunk>,
    bool,
    Option<switchboard_providers::ProviderError>,
) {
    let mut decoder = Anthropic.chat_stream();
    let (mut chunks, mut done) = (Vec::new(), false);
    for event in sse.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let name = event
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or("");
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or("");
        match decoder.decode(name, data) {
            Ok(items) => {
                for item in items {
                    match item {
                        StreamItem::Chunk(chunk) => chunks.push(*chunk),
                        StreamItem::Done => done = true,
                        StreamItem::Verbatim(_) | StreamItem::KeepAlive | StreamItem::Native(_) => {
                            panic!("Anthropic chunks are translated")
                        }
                    }
                }
            }
            Err(error) => return (chunks, done, Some(error)),
        }
    }
    (chunks, done, None)
}

fn text_of(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}

fn finish_of(chunks: &[ChatChunk]) -> Vec<FinishReason> {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.finish_reason.clone())
        .collect()
}

#[test]
fn request_goes_to_messages_with_version_and_key_headers() {
    let http = Anthropic
        .chat_request(
            &endpoint(),
            &request(json!({"model": "claude-3-haiku-20240307", "messages": [{"role": "user", "content": "Hello, world"}]})),
        )
        .unwrap();
    assert_eq!(http.method(), "POST");
    assert_eq!(http.uri(), "https://api.anthropic.test/v1/messages");
    assert_eq!(http.headers()["x-api-key"], "sk-ant-test-key");
    assert!(http.headers()["x-api-key"].is_sensitive());
    assert_eq!(http.headers()["anthropic-version"], "2023-06-01");
    assert_eq!(http.headers()["content-type"], "application/json");
    assert!(!http.headers().contains_key("authorization"));
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(
        body,
        json!({"model": "claude-3-haiku-20240307", "max_tokens": 4096,
               "messages": [{"role": "user", "content": "Hello, world"}]}),
        "the documented minimal request; max_tokens from the catalog"
    );
}

#[test]
fn configured_version_header_wins() {
    let mut endpoint = endpoint();
    endpoint
        .headers
        .insert("anthropic-version", "2024-01-01".parse().unwrap());
    endpoint.headers.insert(
        "anthropic-beta",
        "prompt-caching-2024-07-31".parse().unwrap(),
    );
    let http = Anthropic
        .chat_request(
            &endpoint,
            &request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
        )
        .unwrap();
    assert_eq!(http.headers()["anthropic-version"], "2024-01-01");
    assert_eq!(
        http.headers()["anthropic-beta"],
        "prompt-caching-2024-07-31"
    );
}

#[test]
fn conversation_with_system_images_tools_and_results_translates() {
    let body: Value = serde_json::from_str(fixture!("request_conversation.json")).unwrap();
    let expected: Value =
        serde_json::from_str(fixture!("request_conversation.expected.json")).unwrap();
    assert_eq!(encoded(body), expected);
}

#[test]
fn max_tokens_client_value_then_catalog_then_fallback() {
    let base =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(
        encoded(base("claude-opus-4-1-20250805"))["max_tokens"],
        32000
    );
    assert_eq!(encoded(base("my-finetune"))["max_tokens"], 4096);
    let mut body = base("claude-opus-4-1");
    body["max_completion_tokens"] = json!(10);
    body["max_tokens"] = json!(20);
    assert_eq!(encoded(body)["max_tokens"], 10);
}

#[test]
fn tool_choice_forms() {
    let with = |choice: Value, parallel: Option<bool>| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": choice});
        if let Some(parallel) = parallel {
            body["parallel_tool_calls"] = json!(parallel);
        }
        encoded(body).get("tool_choice").cloned()
    };
    assert_eq!(with(json!("auto"), None), Some(json!({"type": "auto"})));
    assert_eq!(
        with(json!("none"), Some(false)),
        Some(json!({"type": "none"}))
    );
    assert_eq!(with(json!("required"), None), Some(json!({"type": "any"})));
    assert_eq!(
        with(
            json!({"type": "function", "function": {"name": "f"}}),
            Some(false)
        ),
        Some(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}))
    );
    assert_eq!(with(Value::Null, None), None, "absent stays absent");
    assert_eq!(
        with(Value::Null, Some(false)),
        Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
    );
    let no_tools = encoded(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}),
    );
    assert!(no_tools.get("tool_choice").is_none() && no_tools.get("tools").is_none());
}

/// A schema's property order is the order a model writes its answer in ("reasoning" before
/// "answer" is a common way to make it think first): it must reach Anthropic as the client wrote
/// it, and the forced tool's input must come back in the order the model wrote it.
#[test]
fn json_key_order_survives_both_ways() {
    let request: ChatRequest = serde_json::from_str(
        r#"{"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema":
        {"type": "object", "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["reasoning", "answer"]}}}}"#,
    )
    .unwrap();
    let http = Anthropic.chat_request(&endpoint(), &request).unwrap();
    let body = std::str::from_utf8(http.body()).unwrap();
    let at = |needle: &str| body.find(needle).unwrap();
    assert!(at(r#""reasoning":{"#) < at(r#""answer":{"#), "{body}");

    let answer = answer(&format!(
        r#"{{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{{"type": "tool_use", "id": "toolu_1", "name": "{JSON_TOOL}",
        "input": {{"reasoning": "short", "answer": "yes", "b": 1, "a": 2}}}}],
        "stop_reason": "tool_use", "usage": {{"input_tokens": 5, "output_tokens": 5}}}}"#
    ));
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some(r#"{"reasoning":"short","answer":"yes","b":1,"a":2}"#)
    );
}

/// A legacy `function` message has no Anthropic form: a 400 that says what to send instead.
#[test]
fn legacy_function_messages_are_refused_with_their_position() {
    let err = Anthropic
        .chat_request(
            &endpoint(),
            &request(json!({"model": "m", "messages": [
                {"role": "user", "content": "x"},
                {"role": "function", "name": "f", "content": "r"}]})),
        )
        .unwrap_err();
    assert_eq!(
        (err.status, err.param.as_deref()),
        (400, Some("messages[1].role"))
    );
    assert!(err.message.contains("tool"), "{}", err.message);
}

/// Anthropic refuses a forced tool with extended thinking on, so the schema goes as an
/// instruction instead.
#[test]
fn json_schema_with_thinking_is_an_instruction() {
    let body = encoded(json!({"model": "m", "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "place",
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}}}));
    assert!(body.get("tools").is_none(), "{body}");
    assert!(body.get("tool_choice").is_none(), "{body}");
    assert_eq!(body["thinking"]["type"], "enabled");
    let instruction = body["system"][0]["text"].as_str().unwrap();
    assert!(instruction.contains(r#""city""#), "{instruction}");
}

#[test]
fn json_schema_is_a_forced_tool_and_json_object_an_instruction() {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let body = encoded(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": true}}}),
    );
    assert_eq!(body["tools"][0]["name"], JSON_TOOL);
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": true})
    );

    let body = encoded(
        json!({"model": "m", "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    );
    assert!(body.get("tools").is_none());
    assert_eq!(body["system"][0]["text"], "Be terse.");
    assert!(
        body["system"][1]["text"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );

    // With client tools the schema becomes an instruction and the client's tools stay alone.
    let body = encoded(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}}),
    );
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert!(
        body["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"required\":[\"city\"]")
    );
}

#[test]
fn unexpressible_requests_are_client_errors_with_param() {
    let cases = [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
    ];
    for (patch, param) in cases {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let err = Anthropic
            .chat_request(&endpoint(), &request(body))
            .unwrap_err();
        assert_eq!(
            (err.status, err.kind),
            (400, ErrorKind::InvalidRequest),
            "{param}"
        );
        assert_eq!(err.param.as_deref(), Some(param));
    }
}

#[test]
fn pdf_files_become_documents() {
    let body = encoded(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "text", "text": "Summarize"}]}]}),
    );
    assert_eq!(
        body["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}})
    );
}

#[test]
fn text_answer_with_cache_usage() {
    let response = answer(fixture!("response_text.json"));
    assert_eq!(response.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.model, "claude-sonnet-4-5-20250929");
    let choice = &response.choices[0];
    assert_eq!(choice.message.role, "assistant");
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = serde_json::to_value(response.usage.unwrap()).unwrap();
    assert_eq!(
        usage,
        json!({"prompt_tokens": 3995, "completion_tokens": 503, "total_tokens": 4498,
               "prompt_tokens_details": {"cached_tokens": 1800, "cache_creation_input_tokens": 100}})
    );
}

#[test]
fn tool_use_answer_becomes_tool_calls() {
    let response = answer(fixture!("response_tool_use.json"));
    let message = &response.choices[0].message;
    assert_eq!(
        message.content.as_deref(),
        Some("I'll check the current weather in San Francisco for you.")
    );
    let calls = message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ToolCalls)
    );
}

#[test]
fn parallel_tool_use_answer_keeps_order() {
    let response = answer(fixture!("response_parallel_tools.json"));
    let calls = response.choices[0].message.tool_calls.as_ref().unwrap();
    let names: Vec<_> = calls
        .iter()
        .map(|c| (c.id.as_str(), c.function.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("toolu_01", "get_weather"), ("toolu_02", "get_time")]
    );
}

#[test]
fn refusal_is_content_filter() {
    let response = answer(fixture!("response_refusal.json"));
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    assert_eq!(response.choices[0].message.content, None);
}

#[test]
fn forced_json_tool_answer_is_the_content() {
    let response = answer(fixture!("response_json_tool.json"));
    let message = &response.choices[0].message;
    assert!(message.tool_calls.is_none());
    let content: Value = serde_json::from_str(message.content.as_deref().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Paris", "temperature_c": 21}));
    assert_eq!(response.choices[0].finish_reason, Some(FinishReason::Stop));
}

#[test]
fn thinking_becomes_reasoning_content_and_reasoning_tokens() {
    let response = answer(fixture!("response_thinking.json"));
    let message = &response.choices[0].message;
    assert_eq!(message.content.as_deref(), Some("27 * 453 = 12,231"));
    assert_eq!(
        message.extra["reasoning_content"],
        "To approach this, let's think about 27 * 453."
    );
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::Length)
    );
    assert_eq!(
        message.extra["thinking_blocks"],
        json!([
            {"type": "thinking", "thinking": "To approach this, let's think about 27 * 453.",
             "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2pbkaP6z"}
        ]),
        "whole and signed, for the client to send back"
    );
    let usage = response.usage.unwrap();
    assert_eq!(
        usage.completion_tokens_details.unwrap().reasoning_tokens,
        Some(250)
    );
}

/// With thinking on, Anthropic wants a tool loop's thinking back unmodified: the blocks a client
/// got as `thinking_blocks` lead the assistant turn again, signatures intact.
#[test]
fn thinking_blocks_go_back_in_the_assistant_turn() {
    let body = encoded(
        json!({"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2000},
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "reasoning_content": "I should call the tool.",
             "thinking_blocks": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig-1"},
                {"type": "thinking", "thinking": "cut before its signature", "signature": null},
                {"type": "redacted_thinking", "data": "opaque"}],
             "tool_calls": [{"id": "toolu_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
        ]}),
    );
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
        ])
    );
    let none = encoded(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y", "thinking_blocks": null}]}));
    assert_eq!(none["messages"][1]["content"], "y", "null is no blocks");
    let bad = Anthropic.chat_request(
        &endpoint(),
        &request(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y", "thinking_blocks": [{"type": "thinking"}]}]})),
    );
    assert_eq!(
        bad.unwrap_err().param.as_deref(),
        Some("messages[1].thinking_blocks")
    );
}

#[test]
fn malformed_answer_is_a_bad_response() {
    for bad in [
        "{oops",
        r#"{"type":"message"}"#,
        r#"{"id":"m","model":"x","content":{}}"#,
    ] {
        let err = Anthropic.chat_response(Bytes::from(bad)).unwrap_err();
        assert_eq!(
            (err.status, err.kind),
            (502, ErrorKind::BadResponse),
            "{bad}"
        );
    }
}

#[test]
fn text_stream_becomes_role_deltas_finish_usage_done() {
    let (chunks, done, error) = stream(fixture!("stream_text.sse"));
    assert!(done && error.is_none());
    let first = &chunks[0].choices[0].delta;
    assert_eq!(first.role.as_deref(), Some("assistant"));
    assert_eq!(text_of(&chunks), "Hello!");
    assert!(
        chunks.iter().all(|c| c.object == "chat.completion.chunk"
            && c.id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
    );
    assert_eq!(finish_of(&chunks), [FinishReason::Stop]);
    let last = chunks.last().unwrap();
    assert!(last.is_usage_only(), "usage comes last, alone");
    let usage = last.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (35, 15, 50)
    );
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(10)
    );
    let finish_at = chunks
        .iter()
        .position(|c| !c.choices.is_empty() && c.choices[0].finish_reason.is_some());
    assert_eq!(finish_at, Some(chunks.len() - 2));
}

#[test]
fn tool_use_stream_gives_id_and_name_once_then_fragments() {
    let (chunks, done, _) = stream(fixture!("stream_tool_use.sse"));
    assert!(done);
    assert_eq!(text_of(&chunks), "Okay, let's check the weather.");
    let deltas: Vec<_> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .collect();
    let first = serde_json::to_value(deltas[0]).unwrap();
    assert_eq!(
        first,
        json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
               "function": {"name": "get_weather", "arguments": ""}}),
        "the text block before it does not count as a tool index"
    );
    let fragments: Vec<_> = deltas[1..]
        .iter()
        .map(|d| {
            assert!(d.id.is_none() && d.kind.is_none() && d.index == 0);
            let function = d.function.as_ref().unwrap();
            assert!(function.name.is_none());
            function.arguments.clone().unwrap()
        })
        .collect();
    assert_eq!(fragments.len(), 4, "empty fragments are not sent");
    let args: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(finish_of(&chunks), [FinishReason::ToolCalls]);
}

#[test]
fn parallel_tool_stream_numbers_calls() {
    let (chunks, done, _) = stream(fixture!("stream_parallel_tools.sse"));
    assert!(done);
    let starts: Vec<_> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .filter_map(|d| d.id.as_deref().map(|id| (d.index, id)))
        .collect();
    assert_eq!(starts, [(0, "toolu_A"), (1, "toolu_B")]);
}

/// OpenAI streams `{}` as the arguments of a call without any; Anthropic streams an empty
/// fragment or none, which a client's `json.loads` would reject.
#[test]
fn streamed_calls_without_arguments_get_an_empty_object() {
    let (chunks, done, _) = stream(fixture!("stream_tool_without_arguments.sse"));
    assert!(done);
    let mut arguments = vec![String::new(); 3];
    for call in chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
    {
        let fragment = call.function.as_ref().and_then(|f| f.arguments.as_deref());
        arguments[call.index as usize].push_str(fragment.unwrap_or_default());
    }
    assert_eq!(arguments, ["{}", r#"{"city": "Paris"}"#, "{}"]);
}

#[test]
fn thinking_stream_maps_reasoning_and_sends_each_block_whole() {
    let (chunks, done, _) = stream(fixture!("stream_thinking.sse"));
    assert!(done);
    let blocks: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.extra.get("thinking_blocks"))
        .collect();
    assert_eq!(
        blocks,
        [
            &json!([{"type": "thinking", "thinking": "Let me solve this step by step.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}])
        ]
    );
    let reasoning: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| {
            c.delta
                .extra
                .get("reasoning_content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(reasoning, "Let me solve this step by step.");
    assert_eq!(text_of(&chunks), "12,231");
    let usage = chunks.last().unwrap().usage.as_ref().unwrap();
    assert_eq!(
        usage
            .completion_tokens_details
            .as_ref()
            .unwrap()
            .reasoning_tokens,
        Some(60)
    );
}

#[test]
fn refusal_stream_finishes_with_content_filter() {
    let (chunks, done, _) = stream(fixture!("stream_refusal.sse"));
    assert!(done);
    assert_eq!(finish_of(&chunks), [FinishReason::ContentFilter]);
}

#[test]
fn json_tool_stream_is_content() {
    let (chunks, done, _) = stream(fixture!("stream_json_tool.sse"));
    assert!(done);
    assert_eq!(text_of(&chunks), r#"{"city": "Paris"}"#);
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.tool_calls.is_none())
    );
    assert_eq!(finish_of(&chunks), [FinishReason::Stop]);
}

#[test]
fn error_event_mid_stream_is_an_error() {
    let (chunks, done, error) = stream(fixture!("stream_error.sse"));
    assert!(!done);
    assert_eq!(text_of(&chunks), "Hel");
    let error = error.unwrap();
    assert_eq!(error.status, 503);
    assert_eq!(error.message, "Overloaded");
    assert_eq!(error.code.as_deref(), Some("overloaded_error"));
}

#[test]
fn unknown_events_and_blocks_are_skipped() {
    let mut decoder = Anthropic.chat_stream();
    assert!(
        decoder
            .decode("future_event", "not even json")
            .unwrap()
            .is_empty()
    );
    assert!(
        decoder
            .decode("", r#"{"type":"future_event","x":1}"#)
            .unwrap()
            .is_empty()
    );
    decoder
        .decode("message_start", r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":1,"output_tokens":1}}}"#)
        .unwrap();
    let server_tool = r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#;
    assert!(
        decoder
            .decode("content_block_start", server_tool)
            .unwrap()
            .is_empty()
    );
    let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":"}}"#;
    assert!(
        decoder
            .decode("content_block_delta", delta)
            .unwrap()
            .is_empty()
    );
    let citation = r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}"#;
    assert!(
        decoder
            .decode("content_block_delta", citation)
            .unwrap()
            .is_empty()
    );
    let err = decoder
        .decode("content_block_delta", "{garbage")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
}

#[test]
fn stream_without_message_stop_never_finishes() {
    let sse = fixture!("stream_text.sse");
    let cut = &sse[..sse.find("event: message_delta").unwrap()];
    let (_, done, error) = stream(cut);
    assert!(!done && error.is_none());
    assert!(Anthropic.chat_stream().finish().unwrap().is_empty());
}

#[test]
fn error_bodies_map_to_openai_statuses() {
    let cases = [
        (
            400,
            "invalid_request_error",
            400,
            ErrorKind::InvalidRequest,
            "invalid_request_error",
        ),
        (
            401,
            "authentication_error",
            401,
            ErrorKind::Authentication,
            "authentication_error",
        ),
        (
            403,
            "permission_error",
            403,
            ErrorKind::Authentication,
            "permission_error",
        ),
        (
            404,
            "not_found_error",
            404,
            ErrorKind::InvalidRequest,
            "invalid_request_error",
        ),
        (
            413,
            "request_too_large",
            413,
            ErrorKind::InvalidRequest,
            "invalid_request_error",
        ),
        (
            429,
            "rate_limit_error",
            429,
            ErrorKind::RateLimited,
            "rate_limit_exceeded",
        ),
        (500, "api_error", 500, ErrorKind::Upstream, "server_error"),
        (
            529,
            "overloaded_error",
            503,
            ErrorKind::Upstream,
            "server_error",
        ),
    ];
    for (status, kind, want_status, want_kind, want_type) in cases {
        let body = json!({"type": "error", "error": {"type": kind, "message": format!("{kind} happened")}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
        let err = Anthropic.error_response(status, body.to_string().as_bytes());
        assert_eq!((err.status, err.kind), (want_status, want_kind), "{kind}");
        assert_eq!(err.error_type.as_deref(), Some(want_type), "{kind}");
        assert_eq!(err.code.as_deref(), Some(kind));
        assert_eq!(err.message, format!("{kind} happened"));
    }
    let err = Anthropic.error_response(529, b"<html>overloaded</html>");
    assert_eq!(err.status, 503);
    assert!(!err.message.contains("html"));
}

#[test]
fn embeddings_are_a_clear_client_error() {
    let request = serde_json::from_value(json!({"model": "claude", "input": "hi"})).unwrap();
    let err = Anthropic
        .embeddings_request(&endpoint(), &request)
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert!(err.message.contains("Anthropic has no embeddings"));
}
