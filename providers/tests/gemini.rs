//! The Gemini adapter against Gemini's documented payloads: requests encoded, answers, streams,
//! errors and embeddings decoded, each compared with what OpenAI's clients expect.

use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_providers::adapter::{Adapter, ChatAnswer, Endpoint, StreamItem};
use switchboard_providers::chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason};
use switchboard_providers::embeddings::{EmbeddingsRequest, Vector};
use switchboard_providers::error::ErrorKind;
use switchboard_providers::gemini::{DEFAULT_BASE_URL, Gemini};

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: DEFAULT_BASE_URL.into(),
        api_key: Some("AIza-test-key".into()),
        headers: Default::default(),
    }
}

fn request(value: Value) -> ChatRequest {
    serde_json::from_value(value).unwrap()
}

fn body_of(request: &ChatRequest) -> Value {
    let http = Gemini.chat_request(&endpoint(), request).unwrap();
    serde_json::from_slice(http.body()).unwrap()
}

fn answer(fixture: &str) -> ChatResponse {
    match Gemini
        .chat_response(Bytes::from(fixture.to_owned()))
        .unwrap()
    {
        ChatAnswer::Translated(response) => *response,
        other => panic!("expected a translated answer, got {other:?}"),
    }
}

/// Every `data:` payload of an SSE text, however its lines end.
fn sse_events(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// Feeds every event, then the end of the bytes; returns the chunks and whether `Done` came.
fn run_stream(text: &str) -> (Vec<ChatChunk>, bool) {
    let mut decoder = Gemini.chat_stream();
    let mut items = Vec::new();
    for data in sse_events(text) {
        items.extend(decoder.decode("", &data).unwrap());
    }
    items.extend(decoder.finish().unwrap());
    let done = items.last() == Some(&StreamItem::Done);
    let chunks = items
        .into_iter()
        .filter_map(|item| match item {
            StreamItem::Chunk(chunk) => Some(*chunk),
            _ => None,
        })
        .collect();
    (chunks, done)
}

fn finish_reasons(chunks: &[ChatChunk]) -> Vec<FinishReason> {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.finish_reason.clone())
        .collect()
}

#[test]
fn full_request_encodes_as_documented() {
    let req = request(
        serde_json::from_str(include_str!("fixtures/gemini/chat_request.openai.json")).unwrap(),
    );
    let http = Gemini.chat_request(&endpoint(), &req).unwrap();
    assert_eq!(
        http.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(http.headers()["x-goog-api-key"], "AIza-test-key");
    assert!(http.headers()["x-goog-api-key"].is_sensitive());
    assert_eq!(http.headers()["content-type"], "application/json");
    assert!(!http.headers().contains_key("authorization"));
    let expected: Value =
        serde_json::from_str(include_str!("fixtures/gemini/chat_request.gemini.json")).unwrap();
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(body, expected);
}

/// `logprobs` and `top_logprobs` become `responseLogprobs` and `logprobs`; a count alone, or a
/// count of 0, is not sent (Gemini takes a count only beside `responseLogprobs`, and not 0).
#[test]
fn logprobs_are_asked_for_in_geminis_terms() {
    let config = |extra: Value| {
        let mut body =
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body_of(&request(body))["generationConfig"].clone()
    };
    assert_eq!(
        config(json!({"logprobs": true, "top_logprobs": 3})),
        json!({"responseLogprobs": true, "logprobs": 3})
    );
    assert_eq!(
        config(json!({"logprobs": true, "top_logprobs": 0})),
        json!({"responseLogprobs": true})
    );
    assert_eq!(
        config(json!({"logprobs": false, "top_logprobs": 3})),
        Value::Null
    );
}

/// Gemini refuses a request with no turn; OpenAI answers instructions alone.
#[test]
fn instructions_alone_become_the_user_turn() {
    let body = body_of(&request(json!({"model": "gemini-2.5-flash",
        "messages": [{"role": "system", "content": "Name a colour."}]})));
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Name a colour."}]}])
    );
    assert!(body.get("systemInstruction").is_none(), "{body}");
}

/// `reasoning_effort` in each generation's terms; the client's own `thinkingConfig` wins.
#[test]
fn reasoning_effort_becomes_a_thinking_budget_or_level() {
    let config = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body_of(&request(body))["generationConfig"]["thinkingConfig"].clone()
    };
    assert_eq!(
        config("gemini-2.5-flash", json!({"reasoning_effort": "low"})),
        json!({"thinkingBudget": 1024})
    );
    assert_eq!(
        config("gemini-2.5-flash", json!({"reasoning_effort": "none"})),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        config("gemini-3-pro-preview", json!({"reasoning_effort": "high"})),
        json!({"thinkingLevel": "high"})
    );
    assert_eq!(
        config(
            "gemini-3-flash",
            json!({"reasoning_effort": "low",
            "thinking_config": {"include_thoughts": true, "thinking_level": "medium"}})
        ),
        json!({"includeThoughts": true, "thinkingLevel": "medium"})
    );
    assert_eq!(
        config(
            "gemini-2.5-pro",
            json!({"thinkingConfig": {"thinkingBudget": -1}})
        ),
        json!({"thinkingBudget": -1})
    );
    assert_eq!(config("gemini-2.5-pro", json!({})), Value::Null);
    assert_eq!(
        config(
            "models/gemini-2.5-flash",
            json!({"reasoning_effort": "medium"})
        ),
        json!({"thinkingBudget": 8192}),
        "the generation is read after models/"
    );
    assert_eq!(
        config("gemini-2.5-pro", json!({"reasoning_effort": "none"})),
        json!({"thinkingBudget": 128}),
        "2.5 Pro cannot stop thinking"
    );
    assert_eq!(
        config(
            "gemini-3-pro-preview",
            json!({"reasoning_effort": "medium"})
        ),
        json!({"thinkingLevel": "high"}),
        "3 Pro knows low and high"
    );
    assert_eq!(
        config(
            "gemini-3-pro-preview",
            json!({"reasoning_effort": "minimal"})
        ),
        json!({"thinkingLevel": "low"})
    );
    assert_eq!(
        config(
            "gemini-3-flash",
            json!({"google": {"thinking_config": {"include_thoughts": true}}})
        ),
        json!({"includeThoughts": true}),
        "extra_body as Google's own OpenAI endpoint takes it"
    );
}

/// A function call Gemini could not finish is a failed try, not an empty finished answer.
#[test]
fn a_malformed_function_call_fails_the_try() {
    let body = json!({"candidates": [{"content": {"role": "model", "parts": []},
        "finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}});
    let err = Gemini
        .chat_response(Bytes::from(body.to_string()))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains("MALFORMED_FUNCTION_CALL"),
        "{}",
        err.message
    );
    let mut decoder = Gemini.chat_stream();
    assert!(decoder.decode("", &body.to_string()).is_err());
}

#[test]
fn streamed_request_uses_the_sse_path() {
    let req = request(json!({"model": "models/gemini-2.0-flash", "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]}));
    let http = Gemini.chat_request(&endpoint(), &req).unwrap();
    assert_eq!(
        http.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(http.headers()["accept"], "text/event-stream");
    assert_eq!(
        body_of(&req),
        json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    );
}

#[test]
fn model_names_that_leave_the_path_are_refused() {
    for model in [
        "../files",
        "gemini?alt=json",
        "a/b",
        "",
        ".",
        "..",
        "models/..",
    ] {
        let req = request(json!({"model": model, "messages": [{"role": "user", "content": "x"}]}));
        let err = Gemini.chat_request(&endpoint(), &req).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("model")),
            "{model}"
        );
    }
}

#[test]
fn tool_choice_modes_and_json_mode() {
    let base = json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}]});
    for (choice, mode) in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")] {
        let mut value = base.clone();
        value["tool_choice"] = json!(choice);
        assert_eq!(
            body_of(&request(value))["toolConfig"],
            json!({"functionCallingConfig": {"mode": mode}})
        );
    }
    let mut value = base;
    value["response_format"] = json!({"type": "json_object"});
    let body = body_of(&request(value));
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    assert!(body.get("toolConfig").is_none());
}

#[test]
fn tool_results_need_a_matching_call_and_arguments_must_be_objects() {
    let orphan = request(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_9", "content": "r"}]}));
    let err = Gemini.chat_request(&endpoint(), &orphan).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[1].tool_call_id"));
    let bad_args = request(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}));
    let err = Gemini.chat_request(&endpoint(), &bad_args).unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
}

#[test]
fn thought_signatures_travel_in_the_call_id() {
    let response = answer(include_str!("fixtures/gemini/function_call.json"));
    let call = &response.choices[0].message.tool_calls.as_ref().unwrap()[0];
    let history = request(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "user", "content": "Dim the lights"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call.id, "content": "done"}]}));
    let body = body_of(&history);
    assert_eq!(
        body["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "set_light_values", "args": {"brightness": 25, "color_temp": "warm"}},
               "thoughtSignature": "CiQB0e2Kb3dRh+BYdbZvmulSN2Pwwc75DfQOZUXB9kdz"})
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "set_light_values", "response": {"result": "done"}})
    );
}

#[test]
fn text_answer_with_usage_details() {
    let response = answer(include_str!("fixtures/gemini/text.json"));
    assert_eq!(response.id, "chatcmpl-wG1VaO3jMteyqtsP7YnT8Qc");
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.model, "gemini-2.5-flash");
    let choice = &response.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some("AI learns patterns from data to make predictions.")
    );
    assert_eq!(choice.message.role, "assistant");
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = serde_json::to_value(response.usage.unwrap()).unwrap();
    assert_eq!(
        usage,
        json!({"prompt_tokens": 8, "completion_tokens": 52, "total_tokens": 60,
               "prompt_tokens_details": {"cached_tokens": 4},
               "completion_tokens_details": {"reasoning_tokens": 42}})
    );
}

#[test]
fn function_calls_get_ids_and_tool_calls_finish() {
    let response = answer(include_str!("fixtures/gemini/function_call.json"));
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].id.starts_with("call_"));
    assert_eq!(calls[0].function.name, "set_light_values");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"brightness": 25, "color_temp": "warm"}));
}

#[test]
fn parallel_function_calls_keep_text_and_order() {
    let response = answer(include_str!("fixtures/gemini/parallel_function_calls.json"));
    let message = &response.choices[0].message;
    assert_eq!(message.content.as_deref(), Some("Checking both cities."));
    let calls = message.tool_calls.as_ref().unwrap();
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(&c.function.arguments).unwrap())
        .collect();
    assert_eq!(cities, [json!({"city": "Paris"}), json!({"city": "Tokyo"})]);
    assert_ne!(calls[0].id, calls[1].id);
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ToolCalls)
    );
}

#[test]
fn json_mode_answer_is_the_json_text() {
    let response = answer(include_str!("fixtures/gemini/json_mode.json"));
    let text = response.choices[0].message.content.as_deref().unwrap();
    let parsed: Value = serde_json::from_str(text).unwrap();
    assert_eq!(parsed[0]["recipeName"], "Chocolate Chip Cookies");
}

#[test]
fn safety_stops_and_blocked_prompts_are_content_filter() {
    let response = answer(include_str!("fixtures/gemini/safety.json"));
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    assert_eq!(response.choices[0].message.content, None);
    let response = answer(include_str!("fixtures/gemini/prompt_blocked.json"));
    assert_eq!(response.choices.len(), 1);
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    assert_eq!(response.usage.unwrap().prompt_tokens, 12559);
    for reason in ["RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
        let body = json!({"candidates": [{"content": {"role": "model"}, "finishReason": reason, "index": 0}]});
        let response = answer(&body.to_string());
        assert_eq!(
            response.choices[0].finish_reason,
            Some(FinishReason::ContentFilter),
            "{reason}"
        );
    }
}

#[test]
fn several_candidates_become_choices() {
    let response = answer(include_str!("fixtures/gemini/max_tokens.json"));
    let reasons: Vec<_> = response
        .choices
        .iter()
        .map(|c| (c.index, c.finish_reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, Some(FinishReason::Length)),
            (1, Some(FinishReason::Stop))
        ]
    );
}

#[test]
fn answers_that_are_not_gemini_json_are_bad_responses() {
    let err = Gemini
        .chat_response(Bytes::from_static(b"<html>"))
        .unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::BadResponse, 502));
}

#[test]
fn streamed_text_with_thoughts_usage_and_done() {
    let (chunks, done) = run_stream(include_str!("fixtures/gemini/text.sse"));
    assert!(done);
    assert!(
        chunks
            .iter()
            .all(|c| c.id == "chatcmpl-s1" && c.object == "chat.completion.chunk")
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
    assert_eq!(text, "The quick brown fox jumps over the lazy dog.");
    assert_eq!(
        chunks[1].choices[0].delta.extra["reasoning_content"],
        "Thinking about foxes."
    );
    assert_eq!(finish_reasons(&chunks), [FinishReason::Stop]);
    let last = chunks.last().unwrap();
    assert!(last.is_usage_only());
    let usage = last.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (8, 23, 31)
    );
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(2)
    );
    assert_eq!(
        usage
            .completion_tokens_details
            .as_ref()
            .unwrap()
            .reasoning_tokens,
        Some(12)
    );
}

#[test]
fn streamed_function_calls_arrive_whole_with_indexes() {
    let (chunks, done) = run_stream(include_str!("fixtures/gemini/function_call.sse"));
    assert!(done);
    let calls = chunks[0].choices[0].delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    for (i, (call, city)) in calls.iter().zip(["Paris", "Tokyo"]).enumerate() {
        assert_eq!(call.index, i as u32);
        assert!(call.id.as_deref().unwrap().starts_with("call_"));
        let function = call.function.as_ref().unwrap();
        assert_eq!(function.name.as_deref(), Some("get_weather"));
        let args: Value = serde_json::from_str(function.arguments.as_deref().unwrap()).unwrap();
        assert_eq!(args, json!({"city": city}));
    }
    assert_eq!(finish_reasons(&chunks), [FinishReason::ToolCalls]);
}

#[test]
fn streamed_safety_stop_and_blocked_prompt_are_content_filter() {
    let (chunks, done) = run_stream(include_str!("fixtures/gemini/safety.sse"));
    assert!(done);
    assert_eq!(finish_reasons(&chunks), [FinishReason::ContentFilter]);
    let (chunks, done) = run_stream(include_str!("fixtures/gemini/prompt_blocked.sse"));
    assert!(done);
    assert_eq!(finish_reasons(&chunks), [FinishReason::ContentFilter]);
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(
        chunks.last().unwrap().usage.as_ref().unwrap().prompt_tokens,
        7
    );
}

#[test]
fn a_stream_cut_before_its_finish_reason_never_says_done() {
    let text = include_str!("fixtures/gemini/text.sse");
    let events = sse_events(text);
    let cut: String = events[..2]
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .collect();
    let (chunks, done) = run_stream(&cut);
    assert!(!done);
    assert!(chunks.iter().all(|c| !c.is_usage_only()));
}

#[test]
fn unknown_events_and_parts_are_skipped() {
    let mut decoder = Gemini.chat_stream();
    assert!(
        decoder
            .decode("ping", r#"{"anything": true}"#)
            .unwrap()
            .is_empty()
    );
    assert!(decoder.decode("", "").unwrap().is_empty());
    let items = decoder
        .decode("", r#"{"candidates": [{"content": {"parts": [{"executableCode": {"language": "PYTHON", "code": "1+1"}}, {"text": "2"}], "role": "model"}, "finishReason": "STOP", "index": 0}]}"#)
        .unwrap();
    let StreamItem::Chunk(chunk) = &items[0] else {
        panic!("chunk")
    };
    assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("2"));
    assert_eq!(decoder.finish().unwrap(), [StreamItem::Done]);
}

#[test]
fn in_stream_errors_and_garbage_are_errors() {
    let mut decoder = Gemini.chat_stream();
    let err = decoder
        .decode("", r#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#)
        .unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (503, "The model is overloaded.")
    );
    let err = decoder.decode("", "{not json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
}

#[test]
fn errors_keep_googles_status_in_openais_shape() {
    let err = Gemini.error_response(
        400,
        include_str!("fixtures/gemini/error_400.json").as_bytes(),
    );
    assert_eq!((err.status, err.kind), (400, ErrorKind::InvalidRequest));
    assert_eq!(err.code.as_deref(), Some("invalid_argument"));
    assert!(err.message.contains("contents is not specified"));
    let err = Gemini.error_response(
        400,
        include_str!("fixtures/gemini/error_api_key.json").as_bytes(),
    );
    assert_eq!((err.status, err.kind), (401, ErrorKind::Authentication));
    assert_eq!(err.code.as_deref(), Some("invalid_api_key"));
    let err = Gemini.error_response(
        429,
        include_str!("fixtures/gemini/error_429.json").as_bytes(),
    );
    assert_eq!((err.status, err.kind), (429, ErrorKind::RateLimited));
    for (status, name, expected) in [
        (400, "FAILED_PRECONDITION", 400),
        (401, "UNAUTHENTICATED", 401),
        (403, "PERMISSION_DENIED", 403),
        (404, "NOT_FOUND", 404),
        (500, "INTERNAL", 500),
        (503, "UNAVAILABLE", 503),
        (504, "DEADLINE_EXCEEDED", 504),
    ] {
        let body = json!({"error": {"code": status, "message": "m", "status": name}});
        let err = Gemini.error_response(status, body.to_string().as_bytes());
        assert_eq!(err.status, expected, "{name}");
    }
    let err = Gemini.error_response(502, b"<html>Bad Gateway</html>");
    assert_eq!(err.status, 502);
    assert!(!err.message.contains("html"));
}

#[test]
fn one_input_embeds_and_several_batch() {
    let one: EmbeddingsRequest = serde_json::from_value(
        json!({"model": "gemini-embedding-001", "input": "What is the meaning of life?", "dimensions": 768}),
    )
    .unwrap();
    let http = Gemini.embeddings_request(&endpoint(), &one).unwrap();
    assert_eq!(
        http.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(http.body()).unwrap(),
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is the meaning of life?"}]}, "outputDimensionality": 768})
    );
    let many: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "gemini-embedding-001", "input": ["a", "b"]}))
            .unwrap();
    let http = Gemini.embeddings_request(&endpoint(), &many).unwrap();
    assert!(http.uri().to_string().ends_with(":batchEmbedContents"));
    assert_eq!(
        serde_json::from_slice::<Value>(http.body()).unwrap(),
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]})
    );
    let tokens: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "gemini-embedding-001", "input": [1, 2]})).unwrap();
    assert_eq!(
        Gemini
            .embeddings_request(&endpoint(), &tokens)
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn embedding_answers_become_openai_lists() {
    let one = Gemini
        .embeddings_response(include_str!("fixtures/gemini/embed_content.json").as_bytes())
        .unwrap();
    assert_eq!(one.data.len(), 1);
    assert_eq!(
        one.data[0].embedding,
        Vector::Float(vec![0.0227, -0.0181, 0.0043])
    );
    assert_eq!(one.usage.prompt_tokens, 0);
    let many = Gemini
        .embeddings_response(include_str!("fixtures/gemini/batch_embed_contents.json").as_bytes())
        .unwrap();
    let indexes: Vec<u32> = many.data.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [0, 1]);
    assert!(Gemini.embeddings_response(b"{}").is_err());
}
