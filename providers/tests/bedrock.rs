//! The Bedrock adapter against Converse payloads shaped as AWS's API reference documents them:
//! requests encoded, answers and streams decoded, errors translated, all from fixture files.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_providers::assemble::Assembler;
use switchboard_providers::bedrock::{AwsCredentials, Bedrock};
use switchboard_providers::chat::ChatRequest;
use switchboard_providers::embeddings::EmbeddingsRequest;
use switchboard_providers::eventstream::FrameSplitter;
use switchboard_providers::{Adapter, ChatAnswer, Endpoint, ErrorKind, StreamFormat, StreamItem};

fn adapter() -> Bedrock {
    let credentials = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let fixed = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    Bedrock::new(credentials, "us-east-1").with_clock(Arc::new(move || fixed))
}

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "https://bedrock-runtime.us-east-1.amazonaws.com".into(),
        ..Endpoint::default()
    }
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Encodes the fixture's OpenAI request and compares the body with its Bedrock form.
fn encodes(text: &str) -> http::Request<Bytes> {
    let fixture = fixture(text);
    let request: ChatRequest = serde_json::from_value(fixture["openai"].clone()).unwrap();
    let http = adapter().chat_request(&endpoint(), &request).unwrap();
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(body, fixture["bedrock"]);
    http
}

#[test]
fn text_request_with_instructions_and_inference_config() {
    let http = encodes(include_str!("fixtures/bedrock/request_text.json"));
    assert_eq!(
        http.uri(),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(http.headers()["content-type"], "application/json");
    assert_eq!(http.headers()["x-amz-date"], "20150830T123600Z");
    let auth = http.headers()["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="
        ),
        "{auth}"
    );
}

#[test]
fn tool_history_and_parallel_results_merge_into_one_user_turn() {
    encodes(include_str!("fixtures/bedrock/request_tools.json"));
}

#[test]
fn inline_images_become_image_blocks() {
    encodes(include_str!("fixtures/bedrock/request_image.json"));
}

#[test]
fn json_mode_is_a_forced_tool() {
    encodes(include_str!("fixtures/bedrock/request_json_mode.json"));
}

#[test]
fn image_urls_and_several_choices_are_refused_with_their_parameter() {
    let request: ChatRequest = serde_json::from_value(json!({
        "model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]
    }))
    .unwrap();
    let err = adapter().chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!((err.status, err.kind), (400, ErrorKind::InvalidRequest));
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0]"));
    assert!(
        err.message.contains("cannot fetch images by URL"),
        "{}",
        err.message
    );
    let request: ChatRequest = serde_json::from_value(json!({
        "model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]
    }))
    .unwrap();
    let err = adapter().chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("n"));
    let request: ChatRequest = serde_json::from_value(json!({
        "model": "m", "logprobs": true, "messages": [{"role": "user", "content": "hi"}]
    }))
    .unwrap();
    let err = adapter().chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (400, Some("logprobs")));
}

/// A model id of dots alone would climb out of `/model/` once the server resolves the path.
#[test]
fn model_ids_cannot_leave_the_model_path() {
    for bad in ["", ".", ".."] {
        let request: ChatRequest = serde_json::from_value(
            json!({"model": bad, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        let err = adapter().chat_request(&endpoint(), &request).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("model")),
            "{bad:?}"
        );
    }
}

#[test]
fn tool_choice_forms_and_none() {
    let base = json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]
    });
    let cases = [
        (json!("auto"), json!({"auto": {}})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"tool": {"name": "f"}}),
        ),
    ];
    for (choice, want) in cases {
        let mut body = base.clone();
        body["tool_choice"] = choice;
        let request: ChatRequest = serde_json::from_value(body).unwrap();
        let http = adapter().chat_request(&endpoint(), &request).unwrap();
        let sent: Value = serde_json::from_slice(http.body()).unwrap();
        assert_eq!(sent["toolConfig"]["toolChoice"], want);
        assert_eq!(
            sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
    }
    let mut body = base;
    body["tool_choice"] = json!("none");
    let request: ChatRequest = serde_json::from_value(body).unwrap();
    let http = adapter().chat_request(&endpoint(), &request).unwrap();
    let sent: Value = serde_json::from_slice(http.body()).unwrap();
    assert!(sent.get("toolConfig").is_none(), "{sent}");
}

/// Bedrock refuses tool blocks without a `toolConfig`; with no tools offered (or `none`), the
/// calls and results of the history are written as text instead.
#[test]
fn a_tool_history_without_tools_is_sent_as_text() {
    let history = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "user", "content": "Summarise this conversation."}
    ]);
    for extra in [
        json!({}),
        json!({"tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "get_weather"}}]}),
    ] {
        let mut body = json!({"model": "m", "messages": history});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let request: ChatRequest = serde_json::from_value(body).unwrap();
        let http = adapter().chat_request(&endpoint(), &request).unwrap();
        let sent: Value = serde_json::from_slice(http.body()).unwrap();
        assert!(sent.get("toolConfig").is_none(), "{sent}");
        assert_eq!(
            sent["messages"][1]["content"],
            json!([{"text": "[called tool get_weather with arguments {\"city\":\"Paris\"}]"}])
        );
        assert_eq!(
            sent["messages"][2]["content"],
            json!([{"text": "[result of tool call call_1: 18C]"}, {"text": "Summarise this conversation."}])
        );
    }
}

/// Decodes the fixture's Bedrock answer and compares it with its OpenAI form.
fn decodes(text: &str) {
    let fixture = fixture(text);
    let body = Bytes::from(serde_json::to_vec(&fixture["bedrock"]).unwrap());
    let ChatAnswer::Translated(response) = adapter().chat_response(body).unwrap() else {
        panic!("Bedrock answers are translated")
    };
    assert!(response.id.starts_with("chatcmpl-"));
    assert_eq!(response.created, 1_440_938_160);
    let mut got = serde_json::to_value(&*response).unwrap();
    for key in ["id", "created", "model", "object"] {
        got.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(got, fixture["openai"]);
}

#[test]
fn text_answer() {
    decodes(include_str!("fixtures/bedrock/response_text.json"));
}

#[test]
fn tool_use_answer_with_cached_tokens() {
    decodes(include_str!("fixtures/bedrock/response_tool_use.json"));
}

#[test]
fn parallel_tool_uses() {
    decodes(include_str!(
        "fixtures/bedrock/response_parallel_tools.json"
    ));
}

#[test]
fn json_mode_answer_is_text() {
    decodes(include_str!("fixtures/bedrock/response_json_mode.json"));
}

#[test]
fn guardrail_intervention_is_a_content_filter() {
    decodes(include_str!("fixtures/bedrock/response_guardrail.json"));
}

#[test]
fn an_answer_in_another_shape_is_a_bad_response() {
    for body in [&b"{oops"[..], br#"{"output":{}}"#, br#"{"choices":[]}"#] {
        let err = adapter()
            .chat_response(Bytes::from_static(body))
            .unwrap_err();
        assert_eq!((err.status, err.kind), (502, ErrorKind::BadResponse));
    }
}

fn frame(
    message_type: &'static str,
    name_header: &'static str,
    name: &str,
    payload: &Value,
) -> Vec<u8> {
    let message = Message::new(Bytes::from(serde_json::to_vec(payload).unwrap()))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.into()),
        ))
        .add_header(Header::new(
            name_header,
            HeaderValue::String(name.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).unwrap();
    bytes
}

/// The fixture's events framed as the wire carries them, fed in awkward pieces through the frame
/// splitter and the decoder, then assembled.
fn streams(text: &str) -> Vec<StreamItem> {
    let fixture = fixture(text);
    let mut wire = Vec::new();
    for event in fixture["events"].as_array().unwrap() {
        let name = event[0].as_str().unwrap();
        wire.extend(frame("event", ":event-type", name, &event[1]));
    }
    let bedrock = adapter();
    assert_eq!(bedrock.stream_format(), StreamFormat::AwsEventStream);
    let mut decoder = bedrock.chat_stream();
    let mut splitter = FrameSplitter::new();
    let mut items = Vec::new();
    for piece in wire.chunks(7) {
        for message in splitter.feed(piece).unwrap() {
            let data = std::str::from_utf8(&message.payload).unwrap();
            items.extend(decoder.decode(&message.name, data).unwrap());
        }
    }
    splitter.finish().unwrap();
    items.extend(decoder.finish().unwrap());
    assert_eq!(items.last(), Some(&StreamItem::Done));
    let mut assembler = Assembler::default();
    for item in &items {
        if let StreamItem::Chunk(chunk) = item {
            assembler.push(chunk);
        }
    }
    let mut got = serde_json::to_value(assembler.finish()).unwrap();
    for key in ["id", "created", "model", "object"] {
        got.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(got, fixture["openai"]);
    items
}

fn chunk_json(item: &StreamItem) -> Value {
    match item {
        StreamItem::Chunk(chunk) => serde_json::to_value(chunk).unwrap(),
        other => panic!("not a chunk: {other:?}"),
    }
}

#[test]
fn streamed_text_skips_unknown_events_and_ends_with_usage() {
    let items = streams(include_str!("fixtures/bedrock/stream_text.json"));
    assert_eq!(
        chunk_json(&items[0])["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    let usage = chunk_json(&items[items.len() - 2]);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 16);
}

#[test]
fn streamed_tool_calls_open_with_id_and_name_then_carry_fragments() {
    let items = streams(include_str!("fixtures/bedrock/stream_tool_use.json"));
    let opening = chunk_json(&items[2]);
    assert_eq!(
        opening["choices"][0]["delta"]["tool_calls"],
        json!([{"index": 0, "id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    let fragment = chunk_json(&items[3]);
    assert_eq!(
        fragment["choices"][0]["delta"]["tool_calls"],
        json!([{"index": 0, "function": {"arguments": "{\"ci"}}])
    );
}

/// OpenAI streams `{}` as the arguments of a call without any; Bedrock may stream no input.
#[test]
fn streamed_calls_without_input_get_an_empty_object() {
    streams(include_str!(
        "fixtures/bedrock/stream_tool_without_input.json"
    ));
}

#[test]
fn streamed_guardrail_is_a_content_filter() {
    streams(include_str!("fixtures/bedrock/stream_guardrail.json"));
}

#[test]
fn streamed_json_mode_is_text() {
    streams(include_str!("fixtures/bedrock/stream_json_mode.json"));
}

#[test]
fn stream_exceptions_are_errors_with_their_status() {
    let cases = [
        ("throttlingException", 429),
        ("validationException", 400),
        ("modelStreamErrorException", 502),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
    ];
    for (name, status) in cases {
        let mut decoder = adapter().chat_stream();
        decoder
            .decode("messageStart", r#"{"role":"assistant"}"#)
            .unwrap();
        let err = decoder
            .decode(name, r#"{"message":"Too many tokens, please wait."}"#)
            .unwrap_err();
        assert_eq!(err.status, status, "{name}");
        assert_eq!(err.message, "Too many tokens, please wait.");
    }
}

#[test]
fn a_stream_cut_before_message_stop_is_an_error() {
    let mut decoder = adapter().chat_stream();
    decoder
        .decode("messageStart", r#"{"role":"assistant"}"#)
        .unwrap();
    decoder
        .decode(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hel"}}"#,
        )
        .unwrap();
    assert_eq!(decoder.finish().unwrap_err().kind, ErrorKind::BadResponse);
}

#[test]
fn errors_map_by_status_and_keep_the_message() {
    let cases = fixture(include_str!("fixtures/bedrock/errors.json"));
    for case in cases.as_array().unwrap() {
        let status = case["status"].as_u64().unwrap() as u16;
        let body = serde_json::to_vec(&case["body"]).unwrap();
        let err = adapter().error_response(status, &body);
        assert_eq!(
            u64::from(err.status),
            case["want_status"].as_u64().unwrap(),
            "{case}"
        );
        assert_eq!(err.code.as_deref(), case["want_code"].as_str(), "{case}");
        let kind = match case["want_kind"].as_str().unwrap() {
            "invalid_request" => ErrorKind::InvalidRequest,
            "authentication" => ErrorKind::Authentication,
            "rate_limited" => ErrorKind::RateLimited,
            _ => ErrorKind::Upstream,
        };
        assert_eq!(err.kind, kind, "{case}");
        let text = case["body"].as_object().unwrap().values().next().unwrap();
        assert_eq!(err.message, text.as_str().unwrap());
    }
    let err = adapter().error_response(502, b"<html>bad gateway</html>");
    assert_eq!(err.status, 502);
    assert!(!err.message.contains("html"));
}

#[test]
fn titan_embeddings_one_input_at_a_time() {
    let request: EmbeddingsRequest = serde_json::from_value(json!({
        "model": "amazon.titan-embed-text-v2:0", "input": ["Hello"], "dimensions": 256
    }))
    .unwrap();
    let http = adapter().embeddings_request(&endpoint(), &request).unwrap();
    assert_eq!(
        http.uri().path(),
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    assert!(http.headers().contains_key("authorization"));
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(body, json!({"inputText": "Hello", "dimensions": 256}));
    let answer = adapter()
        .embeddings_response(br#"{"embedding":[0.125,-0.5],"inputTextTokenCount":2,"embeddingsByType":{"float":[0.125,-0.5]}}"#)
        .unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.125, -0.5]}],
               "model": "", "usage": {"prompt_tokens": 2, "total_tokens": 2}})
    );
    let batch: EmbeddingsRequest = serde_json::from_value(
        json!({"model": "amazon.titan-embed-text-v2:0", "input": ["a", "b"]}),
    )
    .unwrap();
    let err = adapter()
        .embeddings_request(&endpoint(), &batch)
        .unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (400, Some("input")));
    assert!(err.message.contains("Bedrock"));
}

#[test]
fn streams_ask_for_the_event_stream_and_session_tokens_are_sent() {
    let credentials = AwsCredentials {
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: Some("token-123".into()),
    };
    let bedrock = Bedrock::new(credentials, "eu-west-1").with_clock(Arc::new(SystemTime::now));
    let request: ChatRequest = serde_json::from_value(json!({
        "model": "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
        "stream": true, "messages": [{"role": "user", "content": "hi"}]
    }))
    .unwrap();
    let http = bedrock.chat_request(&endpoint(), &request).unwrap();
    assert_eq!(
        http.uri().path(),
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
    assert_eq!(
        http.headers()["accept"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(http.headers()["x-amz-security-token"], "token-123");
    let auth = http.headers()["authorization"].to_str().unwrap();
    assert!(auth.contains("/eu-west-1/bedrock/aws4_request"), "{auth}");
    assert!(auth.contains("x-amz-security-token"), "{auth}");
}
