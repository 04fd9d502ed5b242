//! Fixture tests: documented Cohere payloads through the adapter, both directions.

use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_providers::chat::{ChatChunk, ChatRequest, FinishReason};
use switchboard_providers::cohere::Cohere;
use switchboard_providers::embeddings::{EmbeddingsRequest, Vector};
use switchboard_providers::{Adapter, ChatAnswer, Endpoint, ErrorKind, StreamItem};

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "https://api.cohere.com".into(),
        api_key: Some("co-test-key".into()),
        headers: Default::default(),
    }
}

fn encode(openai: &str) -> (http::Request<Bytes>, Value) {
    let request: ChatRequest = serde_json::from_str(openai).unwrap();
    let http = Cohere.chat_request(&endpoint(), &request).unwrap();
    let body = serde_json::from_slice(http.body()).unwrap();
    (http, body)
}

fn answer(body: &str) -> switchboard_providers::chat::ChatResponse {
    match Cohere.chat_response(Bytes::from(body.to_owned())).unwrap() {
        ChatAnswer::Translated(response) => *response,
        ChatAnswer::Verbatim { .. } | ChatAnswer::Native { .. } => {
            panic!("cohere answers are translated")
        }
    }
}

/// Feeds an SSE text to a fresh decoder, event by event, as the gateway does.
fn stream(sse: &str) -> Vec<StreamItem> {
    let mut decoder = Cohere.chat_stream();
    let mut items = Vec::new();
    for block in sse.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let event = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or("");
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        items.extend(decoder.decode(event, data).unwrap());
    }
    items.extend(decoder.finish().unwrap());
    items
}

fn chunks(items: &[StreamItem]) -> Vec<&ChatChunk> {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Chunk(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

#[test]
fn tool_history_and_parameters_encode_as_cohere_documents_them() {
    let (http, body) = encode(include_str!("../fixtures/cohere/request_tools.openai.json"));
    assert_eq!(http.uri(), "https://api.cohere.com/v2/chat");
    assert_eq!(http.method(), "POST");
    assert_eq!(http.headers()["authorization"], "Bearer co-test-key");
    assert_eq!(http.headers()["accept"], "text/event-stream");
    assert_eq!(http.headers()["content-type"], "application/json");
    let expected: Value =
        serde_json::from_str(include_str!("../fixtures/cohere/request_tools.cohere.json")).unwrap();
    assert_eq!(body, expected);
}

#[test]
fn images_and_json_schema_encode_as_cohere_documents_them() {
    let (http, body) = encode(include_str!(
        "../fixtures/cohere/request_image_json.openai.json"
    ));
    assert_eq!(http.headers()["accept"], "application/json");
    let expected: Value = serde_json::from_str(include_str!(
        "../fixtures/cohere/request_image_json.cohere.json"
    ))
    .unwrap();
    assert_eq!(body, expected);
}

#[test]
fn tool_choice_modes_and_named_choice() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]});
    let with = |choice: Value| {
        let mut request = base.clone();
        request["tool_choice"] = choice;
        encode(&request.to_string()).1
    };
    assert_eq!(with(json!("none"))["tool_choice"], "NONE");
    let auto = with(json!("auto"));
    assert!(
        auto.get("tool_choice").is_none(),
        "auto is Cohere's default"
    );
    assert_eq!(auto["tools"].as_array().unwrap().len(), 2);
    let named = with(json!({"type": "function", "function": {"name": "b"}}));
    assert_eq!(named["tool_choice"], "REQUIRED");
    assert_eq!(
        named["tools"],
        json!([{"type": "function", "function": {"name": "b"}}])
    );
    let json_mode = encode(
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}})
            .to_string(),
    )
    .1;
    assert_eq!(json_mode["response_format"], json!({"type": "json_object"}));
}

#[test]
fn what_cohere_cannot_carry_is_refused_with_the_param() {
    let request: ChatRequest = serde_json::from_value(json!({"model": "m", "n": 2,
        "messages": [{"role": "user", "content": "hi"}]}))
    .unwrap();
    let err = Cohere.chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (400, Some("n")));
    let request: ChatRequest = serde_json::from_value(json!({"model": "m",
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}))
    .unwrap();
    let err = Cohere.chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0]"));
}

#[test]
fn text_answer_decodes_with_token_usage_and_cache_hits() {
    let response = answer(include_str!("../fixtures/cohere/response_text.json"));
    assert_eq!(response.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_eq!(response.object, "chat.completion");
    let choice = &response.choices[0];
    assert!(
        choice
            .message
            .content
            .as_deref()
            .unwrap()
            .starts_with("LLMs stand for")
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = response.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (215, 25, 240),
        "tokens, not billed units"
    );
    assert_eq!(
        usage.prompt_tokens_details.unwrap().cached_tokens,
        Some(128)
    );
}

#[test]
fn parallel_tool_calls_decode_with_the_plan_as_content() {
    let response = answer(include_str!("../fixtures/cohere/response_tool_calls.json"));
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        choice.message.content.as_deref(),
        Some("I will search for the weather in Madrid and Brasilia."),
        "the plan is the text before the calls, as OpenAI models write it"
    );
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "get_weather_dkf0akqdazjb");
    assert_eq!(calls[1].function.name, "get_weather");
    assert_eq!(calls[1].function.arguments, r#"{"location":"Brasilia"}"#);
    assert_eq!(response.usage.unwrap().total_tokens, 1148 + 82);
}

#[test]
fn json_answer_and_billed_units_fallback() {
    let response = answer(include_str!("../fixtures/cohere/response_json.json"));
    let text = response.choices[0].message.content.clone().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["name"],
        "Emma Johnson"
    );
    assert_eq!(response.usage.unwrap().prompt_tokens, 20);
}

#[test]
fn safety_stop_is_a_content_filter() {
    let response = answer(include_str!("../fixtures/cohere/response_blocked.json"));
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    for (cohere, openai) in [
        ("STOP_SEQUENCE", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("ERROR_LIMIT", FinishReason::Length),
    ] {
        let body = json!({"id": "x", "finish_reason": cohere, "message": {"role": "assistant", "content": []}});
        assert_eq!(
            answer(&body.to_string()).choices[0].finish_reason,
            Some(openai)
        );
    }
}

/// Log probabilities do not come back through this adapter: asking for them is a clear 400.
#[test]
fn logprobs_are_refused_not_dropped() {
    let request: ChatRequest = serde_json::from_value(json!({"model": "command-a-03-2025",
        "logprobs": true, "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    let err = Cohere.chat_request(&endpoint(), &request).unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (400, Some("logprobs")));
}

/// Generation that failed part way is an error, not an answer a client could take for finished.
#[test]
fn error_and_timeout_stops_fail_the_answer() {
    for reason in ["ERROR", "TIMEOUT"] {
        let body = json!({"id": "x", "finish_reason": reason,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Par"}]}});
        let err = Cohere
            .chat_response(Bytes::from(body.to_string()))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse, "{reason}");
        let mut decoder = Cohere.chat_stream();
        let end = json!({"type": "message-end", "delta": {"finish_reason": reason}}).to_string();
        assert!(decoder.decode("message-end", &end).is_err(), "{reason}");
    }
}

#[test]
fn malformed_answers_are_bad_responses() {
    for bad in [
        "{oops",
        r#"{"id":"x"}"#,
        r#"{"id":"x","message":{"content":{}}}"#,
    ] {
        let err = Cohere.chat_response(Bytes::from(bad)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse, "{bad}");
    }
}

#[test]
fn text_stream_decodes_to_role_text_finish_usage_done() {
    let items = stream(include_str!("../fixtures/cohere/stream_text.sse"));
    assert_eq!(items.last(), Some(&StreamItem::Done));
    let chunks = chunks(&items);
    assert!(
        chunks
            .iter()
            .all(|c| c.id == "a8fc192e-4bb8-4e15-ae1f-a174e8b02ae8")
    );
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    let text: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    assert_eq!(text, "Coca-Cola is a carbonated soft drink.");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = chunks.last().unwrap();
    assert!(usage.is_usage_only());
    assert_eq!(usage.usage.as_ref().unwrap().prompt_tokens, 186);
    assert_eq!(usage.usage.as_ref().unwrap().completion_tokens, 105);
}

#[test]
fn parallel_tool_call_stream_opens_each_call_then_sends_fragments() {
    let items = stream(include_str!("../fixtures/cohere/stream_tool_calls.sse"));
    let chunks = chunks(&items);
    let calls: Vec<_> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .collect();
    let first = calls[0];
    assert_eq!(first.index, 0);
    assert_eq!(first.id.as_deref(), Some("get_weather_p0dage9q1nv4"));
    assert_eq!(
        first.function.as_ref().unwrap().name.as_deref(),
        Some("get_weather")
    );
    assert_eq!(
        first.function.as_ref().unwrap().arguments.as_deref(),
        Some("")
    );
    assert!(
        calls[1].id.is_none() && calls[1].function.as_ref().unwrap().name.is_none(),
        "fragments carry only arguments"
    );
    let mut assembler = switchboard_providers::assemble::Assembler::default();
    chunks.iter().for_each(|c| assembler.push(c));
    let whole = assembler.finish();
    let message = &whole.choices[0].message;
    assert_eq!(
        message.content.as_deref(),
        Some("I will search for the weather in Madrid and Brasilia."),
        "the tool plan streams as content"
    );
    let calls = message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].function.arguments).unwrap(),
        json!({"location": "Madrid"})
    );
    assert_eq!(calls[1].id, "get_weather_vdnxzvmvr3px");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].function.arguments).unwrap(),
        json!({"location": "Brasilia"})
    );
    assert_eq!(
        whole.choices[0].finish_reason,
        Some(FinishReason::ToolCalls)
    );
    assert_eq!(whole.usage.unwrap().completion_tokens, 83);
}

#[test]
fn unknown_events_are_skipped_and_a_cut_stream_never_finishes() {
    let mut decoder = Cohere.chat_stream();
    decoder
        .decode(
            "message-start",
            r#"{"id":"m","type":"message-start","delta":{"message":{"role":"assistant"}}}"#,
        )
        .unwrap();
    let skipped = decoder
        .decode(
            "x-new-event",
            r#"{"type":"x-new-event","delta":{"whatever":[1]}}"#,
        )
        .unwrap();
    assert!(skipped.is_empty());
    assert!(
        decoder.finish().unwrap().is_empty(),
        "no Done without message-end"
    );
    let err = decoder.decode("content-delta", "{not json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
}

#[test]
fn safety_stop_in_a_stream_is_a_content_filter() {
    let mut decoder = Cohere.chat_stream();
    let items = decoder
        .decode("message-end", r#"{"type":"message-end","delta":{"finish_reason":"CONTENT_BLOCKED","usage":{"billed_units":{"input_tokens":3,"output_tokens":0}}}}"#)
        .unwrap();
    let StreamItem::Chunk(finish) = &items[0] else {
        panic!("finish chunk")
    };
    assert_eq!(
        finish.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    assert_eq!(items.last(), Some(&StreamItem::Done));
}

#[test]
fn in_stream_error_body_is_an_error() {
    let mut decoder = Cohere.chat_stream();
    let err = decoder
        .decode(
            "",
            r#"{"message":"internal server error, this has been reported"}"#,
        )
        .unwrap_err();
    assert_eq!(err.status, 502);
    assert!(err.message.contains("internal server error"));
}

#[test]
fn error_bodies_become_openai_errors_by_status() {
    let cases = [
        (
            400,
            r#"{"id":"e1","message":"invalid request: message must not be empty"}"#,
            400,
            ErrorKind::InvalidRequest,
            None,
        ),
        (
            401,
            r#"{"message":"invalid api token"}"#,
            401,
            ErrorKind::Authentication,
            Some("invalid_api_key"),
        ),
        (
            498,
            r#"{"message":"invalid api token"}"#,
            401,
            ErrorKind::Authentication,
            Some("invalid_api_key"),
        ),
        (
            404,
            r#"{"message":"model 'nope' not found"}"#,
            404,
            ErrorKind::InvalidRequest,
            Some("model_not_found"),
        ),
        (
            429,
            r#"{"message":"You are using a Trial key, which is limited to 10 API calls / minute."}"#,
            429,
            ErrorKind::RateLimited,
            Some("rate_limit_exceeded"),
        ),
        (
            500,
            r#"{"message":"internal server error"}"#,
            500,
            ErrorKind::Upstream,
            None,
        ),
        (
            503,
            "<html>unavailable</html>",
            503,
            ErrorKind::Upstream,
            None,
        ),
    ];
    for (status, body, want_status, kind, code) in cases {
        let err = Cohere.error_response(status, body.as_bytes());
        assert_eq!((err.status, err.kind), (want_status, kind), "{body}");
        assert_eq!(err.code.as_deref(), code, "{body}");
        assert!(!err.message.contains("html"));
    }
    let err = Cohere.error_response(422, br#"{"message":"too many tokens"}"#);
    assert_eq!(err.message, "too many tokens");
}

#[test]
fn embed_request_and_answer() {
    let request: EmbeddingsRequest = serde_json::from_value(json!({
        "model": "embed-v4.0", "input": ["hello", "goodbye"], "dimensions": 256,
        "encoding_format": "base64"
    }))
    .unwrap();
    let http = Cohere.embeddings_request(&endpoint(), &request).unwrap();
    assert_eq!(http.uri(), "https://api.cohere.com/v2/embed");
    assert_eq!(http.headers()["authorization"], "Bearer co-test-key");
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(
        body,
        json!({"model": "embed-v4.0", "texts": ["hello", "goodbye"], "input_type": "search_document",
            "embedding_types": ["float"], "output_dimension": 256})
    );
    let answer = Cohere
        .embeddings_response(include_bytes!("../fixtures/cohere/embed_response.json"))
        .unwrap();
    assert_eq!(answer.usage.prompt_tokens, 2);
    assert_eq!(answer.data[1].index, 1);
    assert_eq!(
        answer.data[0].embedding,
        Vector::Float(vec![0.016296387, -0.008354187, -0.04699707])
    );
    let mut fitted = answer;
    fitted.fit_to(&request);
    assert_eq!(fitted.model, "embed-v4.0");
    assert!(matches!(fitted.data[0].embedding, Vector::Base64(_)));

    let query: EmbeddingsRequest = serde_json::from_value(
        json!({"model": "embed-v4.0", "input": "q", "input_type": "search_query"}),
    )
    .unwrap();
    let body: Value = serde_json::from_slice(
        Cohere
            .embeddings_request(&endpoint(), &query)
            .unwrap()
            .body(),
    )
    .unwrap();
    assert_eq!(body["input_type"], "search_query");
    let tokens: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "e", "input": [1, 2]})).unwrap();
    let err = Cohere.embeddings_request(&endpoint(), &tokens).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("input"));
}
