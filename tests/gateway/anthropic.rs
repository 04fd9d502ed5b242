//! Chat completions through `kind: anthropic`: what reaches Anthropic's Messages API, and what an
//! OpenAI client gets back, streamed and not, tool calls, errors, refusals and broken streams.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_anthropic::{FakeAnthropic, KEY};
use crate::common::{TestGateway, client, finish_reasons, sse_data, text_of};

async fn gateway_for(fake: &FakeAnthropic) -> TestGateway {
    TestGateway::start(&format!(
        r#"
providers:
  claude:
    kind: anthropic
    base_url: "{}"
    api_key: "{KEY}"
models:
  - name: smart
    targets: [ {{ provider: claude, model: ok }} ]
"#,
        fake.base_url()
    ))
    .await
}

const WEATHER_TOOL: &str = r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;

fn weather_tool() -> Value {
    serde_json::from_str(WEATHER_TOOL).unwrap()
}

async fn post(gateway: &TestGateway, body: Value) -> (u16, Value) {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The chunks of a streamed answer, and whether it ended with `[DONE]`. A stream that never ends
/// fails the test instead of hanging it.
async fn stream(gateway: &TestGateway, mut body: Value) -> (Vec<Value>, bool) {
    body["stream"] = json!(true);
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let events = sse_data(&text);
    let done = events.last().is_some_and(|e| e == "[DONE]");
    let chunks = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    (chunks, done)
}

/// Tool-call deltas in order, reassembled per index into (id, name, arguments).
fn tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for delta in chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
    {
        let index = delta["index"].as_u64().unwrap() as usize;
        if let Some(id) = delta["id"].as_str() {
            assert_eq!(index, calls.len(), "a new call takes the next index");
            assert_eq!(delta["type"], "function");
            assert_eq!(delta["function"]["arguments"], "");
            let name = delta["function"]["name"].as_str().unwrap().to_owned();
            calls.push((id.to_owned(), name, String::new()));
        } else {
            assert!(
                delta["function"].get("name").is_none(),
                "the name comes once"
            );
            calls[index].2 += delta["function"]["arguments"].as_str().unwrap();
        }
    }
    calls
}

#[tokio::test]
async fn plain_completion_is_translated_both_ways() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let (status, body) = post(
        &gateway,
        json!({"model": "smart", "temperature": 0.3, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": "Are you there?"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! How can I help?"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 28, "completion_tokens": 12, "total_tokens": 40,
               "prompt_tokens_details": {"cached_tokens": 5, "cache_creation_input_tokens": 3}}),
        "cache reads and writes count as prompt tokens, and writes are named"
    );

    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.body["model"], "ok");
    assert_eq!(
        sent.body["max_tokens"], 4096,
        "not in the catalog: the fallback"
    );
    assert_eq!(
        sent.body["system"],
        json!([{"type": "text", "text": "Be brief."}])
    );
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "Are you there?"}]}]),
        "consecutive user messages are merged into one turn"
    );
    assert_eq!(sent.body["temperature"], 0.3);
}

#[tokio::test]
async fn streamed_text_arrives_as_openai_chunks() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let (chunks, done) = stream(
        &gateway,
        json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert!(done);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(text_of(&chunks), "Hello! How can I help?");
    assert_eq!(finish_reasons(&chunks), ["stop"]);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage unless asked"
    );
    assert_eq!(fake.received()[0].body["stream"], true);
}

#[tokio::test]
async fn streamed_usage_is_reported_when_asked() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let (chunks, done) = stream(
        &gateway,
        json!({"model": "smart", "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert!(done);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 28);
    assert_eq!(last["usage"]["completion_tokens"], 12);
    assert_eq!(last["usage"]["total_tokens"], 40);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
    let metrics = crate::common::metrics(gateway.url("/metrics")).await;
    assert!(
        metrics.contains(
            r#"switchboard_tokens_total{model="smart",provider="claude",kind="completion"} 12"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn streamed_tool_call_reassembles_and_its_result_goes_back() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let (chunks, done) = stream(
        &gateway,
        json!({"model": "smart", "tools": [weather_tool()], "tool_choice": "required",
               "parallel_tool_calls": false, "messages": [question]}),
    )
    .await;
    assert!(done);
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    let (id, name, arguments) = &calls[0];
    assert_eq!(
        (id.as_str(), name.as_str()),
        ("toolu_01Paris", "get_weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"city": "Paris"})
    );
    let fragments = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        })
        .count();
    assert!(fragments > 1, "arguments arrive in several fragments");
    assert_eq!(finish_reasons(&chunks), ["tool_calls"]);
    let sent = &fake.received()[0].body;
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["city"])
    );

    // The client sends the call and its result back; the fake checks the result answers the call.
    let (status, body) = post(
        &gateway,
        json!({"model": "smart", "tools": [weather_tool()], "messages": [
            question,
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": "18°C"},
            {"role": "user", "content": "Thanks. Anything else?"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = &fake.received()[1].body;
    assert_eq!(
        sent["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01Paris", "content": "18°C"})
    );
    assert_eq!(
        sent["messages"][2]["content"][1]["text"],
        "Thanks. Anything else?"
    );
}

#[tokio::test]
async fn parallel_tool_calls_plain_and_streamed() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let request = json!({"model": "claude/parallel", "tools": [weather_tool()],
        "messages": [{"role": "user", "content": "Paris and Tokyo?"}]});
    let (status, body) = post(&gateway, request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Checking both.");
    let calls = message["tool_calls"].as_array().unwrap();
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(cities, [json!({"city": "Paris"}), json!({"city": "Tokyo"})]);
    assert!(
        calls
            .iter()
            .all(|c| c["function"]["name"] == "get_weather" && c["type"] == "function")
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

    let (chunks, done) = stream(&gateway, request).await;
    assert!(done);
    assert_eq!(text_of(&chunks), "Checking both.");
    let calls = tool_calls(&chunks);
    let ids: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        ids,
        ["toolu_01Paris", "toolu_02Tokyo"],
        "indices 0 and 1, the text block not counted"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].2).unwrap(),
        json!({"city": "Tokyo"})
    );
}

#[tokio::test]
async fn provider_errors_are_translated_and_scrubbed() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    // The client's own mistake keeps Anthropic's status and type; the rest (rate limits,
    // overload, the gateway's own credential) are retried, then answered 503 naming the failure,
    // or 429 when Anthropic rate limited the model.
    for (model, status, kind) in [
        ("claude/error-400", 400, "invalid_request_error"),
        ("claude/error-429", 429, "rate_limit_exceeded"),
        ("claude/error-529", 503, "api_error"),
        ("claude/error-401", 503, "api_error"),
    ] {
        let (got, body) = post(
            &gateway,
            json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        assert_eq!(got, status, "{model}: {body}");
        let error = &body["error"];
        assert_eq!(error["type"], kind, "{model}");
        let message = error["message"].as_str().unwrap();
        assert!(!message.contains(KEY), "{message}");
        assert!(message.contains("<redacted>"), "{message}");
        assert!(error.get("param").is_some() && error.get("code").is_some());
    }
}

#[tokio::test]
async fn embeddings_are_refused_clearly() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let response = client()
        .post(gateway.url("/v1/embeddings"))
        .json(&json!({"model": "claude/ok", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Anthropic has no embeddings")
    );
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn json_schema_answers_come_back_as_content() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let request = json!({"model": "smart", "messages": [{"role": "user", "content": "Capital of France?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}});
    let (status, body) = post(&gateway, request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    let content: Value = serde_json::from_str(message["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Paris"}));
    assert!(message.get("tool_calls").is_none());
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(fake.received()[0].body["tools"][0]["input_schema"], schema);

    let (chunks, done) = stream(&gateway, request).await;
    assert!(done);
    let content: Value = serde_json::from_str(&text_of(&chunks)).unwrap();
    assert_eq!(content, json!({"city": "Paris"}));
    assert_eq!(finish_reasons(&chunks), ["stop"]);
}

#[tokio::test]
async fn images_reach_anthropic_as_base64_and_url_sources() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let (status, body) = post(
        &gateway,
        json!({"model": "smart", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://images.test/cat.jpg"}}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let content = &fake.received()[0].body["messages"][0]["content"];
    assert_eq!(
        content[1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(
        content[2]["source"],
        json!({"type": "url", "url": "https://images.test/cat.jpg"})
    );
}

/// `image/jpg` is what many clients write; Anthropic takes only `image/jpeg`. The gateway sends
/// the type the bytes say, whatever was declared.
#[tokio::test]
async fn a_jpg_or_mislabelled_image_reaches_anthropic_as_jpeg() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let jpeg = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP";
    let (status, body) = post(
        &gateway,
        json!({"model": "smart", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {"url": format!("data:image/jpg;base64,{jpeg}")}},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{jpeg}")}}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let content = &fake.received()[0].body["messages"][0]["content"];
    for i in [1, 2] {
        assert_eq!(
            content[i]["source"]["media_type"], "image/jpeg",
            "{content}"
        );
    }
}

/// A conversation that began elsewhere carries ids Anthropic refuses: another provider's
/// (`functions.get_weather:0`) or the gateway's own Gemini ids with a thought signature. They
/// are rewritten the same way in the call and in its result, so the pair still matches.
#[tokio::test]
async fn foreign_tool_call_ids_are_made_valid_in_calls_and_results_alike() {
    let fake = FakeAnthropic::start().await;
    let gateway = gateway_for(&fake).await;
    let signed = format!("call_7__thought__{}", "CiQB0e/+Zx==".repeat(30));
    let (status, body) = post(
        &gateway,
        json!({"model": "smart", "messages": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "functions.get_weather:0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": signed, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "18C"},
            {"role": "tool", "tool_call_id": signed, "content": "22C"}
        ], "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let messages = &fake.received()[0].body["messages"];
    let calls = &messages[1]["content"];
    let results = &messages[2]["content"];
    for i in [0, 1] {
        assert_eq!(calls[i]["id"], results[i]["tool_use_id"], "{messages}");
    }
}
