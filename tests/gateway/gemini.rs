//! Chat and embeddings through a fake Gemini API: what reaches Gemini, and what an OpenAI client
//! gets back, streamed and not, tool calls, errors, cut streams and safety stops included.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_gemini::{FakeGemini, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeGemini, key: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"
providers:
  gem:
    kind: gemini
    base_url: "{}"
    api_key: "{key}"
models:
  - name: gemini
    targets: [ {{ provider: gem, model: ok }} ]
  - name: embed
    targets: [ {{ provider: gem, model: gemini-embedding-001 }} ]
"#,
        fake.base_url()
    ))
    .await
}

async fn start() -> (FakeGemini, TestGateway) {
    let fake = FakeGemini::start().await;
    let gateway = gateway_for(&fake, KEY).await;
    (fake, gateway)
}

async fn post(gateway: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(gateway.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A whole streamed answer, read with a bound so a hang fails instead of stalling the suite.
async fn stream(gateway: &TestGateway, body: Value) -> Vec<String> {
    let response = post(gateway, "/v1/chat/completions", body).await;
    if response.status() != 200 {
        panic!("{}: {}", response.status(), response.text().await.unwrap());
    }
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    sse_data(&text)
}

fn chunks(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "strict": true,
        "parameters": {"type": "object", "additionalProperties": false,
            "properties": {"city": {"$ref": "#/$defs/City"}}, "required": ["city"],
            "$defs": {"City": {"type": "string"}}}}}])
}

#[tokio::test]
async fn plain_completion_with_usage_details() {
    let (fake, gateway) = start().await;
    let response = post(&gateway, "/v1/chat/completions", json!({"model": "gemini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "temperature": 0.3, "max_tokens": 50})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchboard-target"], "gem/ok");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello from Gemini!"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 14, "total_tokens": 25,
               "prompt_tokens_details": {"cached_tokens": 3},
               "completion_tokens_details": {"reasoning_tokens": 7}})
    );
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1beta/models/ok:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], KEY);
    assert_eq!(
        sent.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        sent.body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hello"}]}])
    );
    assert_eq!(
        sent.body["generationConfig"],
        json!({"temperature": 0.3, "maxOutputTokens": 50})
    );
}

#[tokio::test]
async fn streamed_text_then_usage_only_when_asked() {
    let (fake, gateway) = start().await;
    let events = stream(
        &gateway,
        json!({"model": "gemini", "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&events);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from Gemini!");
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage unless asked"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(
        fake.received()[0].path,
        "/v1beta/models/ok:streamGenerateContent?alt=sse"
    );

    let events = stream(&gateway, json!({"model": "gemini", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]})).await;
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 25);
    assert_eq!(
        usage["usage"]["completion_tokens_details"]["reasoning_tokens"],
        7
    );
}

/// Gemini's log probabilities reach the client in OpenAI's shape, whole and streamed.
#[tokio::test]
async fn logprobs_come_back_in_openais_shape() {
    let (fake, gateway) = start().await;
    let ask = json!({"model": "gemini", "logprobs": true, "top_logprobs": 2,
        "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&gateway, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = |text: &str| {
        json!({"token": text, "logprob": -0.5, "bytes": text.as_bytes(), "top_logprobs": [
            {"token": text, "logprob": -0.5, "bytes": text.as_bytes()},
            {"token": "alt1", "logprob": -2.0, "bytes": b"alt1"},
        ]})
    };
    assert_eq!(
        body["choices"][0]["logprobs"],
        json!({"content": [token("Hello"), token(" from"), token(" Gemini!")], "refusal": null})
    );
    assert_eq!(
        fake.received()[0].body["generationConfig"],
        json!({"responseLogprobs": true, "logprobs": 2})
    );

    let mut streamed = ask;
    streamed["stream"] = json!(true);
    let chunks = chunks(&stream(&gateway, streamed).await);
    let tokens: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .map(|c| &c["choices"][0]["logprobs"]["content"][0])
        .collect();
    assert_eq!(
        tokens,
        [&token("Hello"), &token(" from"), &token(" Gemini!")]
    );

    let plain = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "gemini",
        "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let body: Value = plain.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["logprobs"],
        Value::Null,
        "none unless asked"
    );
}

#[tokio::test]
async fn streamed_tool_call_reassembles_and_its_result_goes_back_by_name() {
    let (fake, gateway) = start().await;
    let events = stream(
        &gateway,
        json!({"model": "gemini", "stream": true, "tools": weather_tool(),
        "tool_choice": "required", "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&events);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    let id = deltas[0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"), "{id}");
    assert_eq!(deltas[0]["type"], "function");
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    let arguments: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
    let sent = &fake.received()[0].body;
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );

    let response = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "gemini", "tools": weather_tool(),
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": "{\"temp_c\": 21}"}]}),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from Gemini!"
    );
    let sent = &fake.received()[1].body;
    assert_eq!(
        sent["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]})
    );
}

#[tokio::test]
async fn parallel_tool_calls_have_distinct_ids() {
    let fake = FakeGemini::start().await;
    let gateway = gateway_for(&fake, KEY).await;
    let response = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "gem/parallel", "tools": weather_tool(),
        "messages": [{"role": "user", "content": "Paris and Tokyo?"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(cities, [json!({"city": "Paris"}), json!({"city": "Tokyo"})]);
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    assert!(
        calls
            .iter()
            .all(|c| c["function"]["name"] == "get_weather" && c["type"] == "function")
    );
}

#[tokio::test]
async fn provider_errors_are_translated_and_scrubbed() {
    let (_fake, gateway) = start().await;
    for (model, status, code) in [
        ("gem/error-429", 429, "resource_exhausted"),
        ("gem/error-503", 503, "unavailable"),
        ("gem/error-403", 403, "permission_denied"),
    ] {
        let response = post(
            &gateway,
            "/v1/chat/completions",
            json!({"model": model,
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        // Not the client's fault: retried, then answered 503 naming Gemini's translated error,
        // or 429 for its rate limit.
        let expected = if status == 429 { 429 } else { 503 };
        assert_eq!(response.status(), expected, "{model}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(KEY), "the key is scrubbed: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("gem/{}: ", &model[4..]))
                && message.contains(&format!("fake failure {status} for key <redacted>")),
            "{message} ({code})"
        );
        if status == 403 {
            assert!(
                message.contains("provider 'gem' refused the gateway's credentials (HTTP 403)"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_401_and_invalid_requests_a_400() {
    let fake = FakeGemini::start().await;
    let gateway = gateway_for(&fake, "AIza-wrong-key-000000").await;
    let response = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "gemini",
        "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    // The gateway's own credential is wrong, not the client's: 503 naming the provider's refusal.
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("gem/ok"), "{message}");
    assert!(!message.contains("AIza-wrong-key-000000"), "{message}");

    let (_fake, gateway) = start().await;
    let response = post(&gateway, "/v1/chat/completions", json!({"model": "gemini",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "r"}]})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages[1].tool_call_id");
}

#[tokio::test]
async fn safety_stops_are_content_filter() {
    let (_fake, gateway) = start().await;
    for model in ["gem/refusal", "gem/blocked"] {
        let response = post(
            &gateway,
            "/v1/chat/completions",
            json!({"model": model,
            "messages": [{"role": "user", "content": "Something dangerous"}]}),
        )
        .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["choices"][0]["finish_reason"], "content_filter",
            "{model}: {body}"
        );

        let events = stream(
            &gateway,
            json!({"model": model, "stream": true,
            "messages": [{"role": "user", "content": "Something dangerous"}]}),
        )
        .await;
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{model}");
        let chunks = chunks(&events);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "content_filter",
            "{model}"
        );
    }
}

#[tokio::test]
async fn embeddings_single_and_batched() {
    let (fake, gateway) = start().await;
    let response = post(
        &gateway,
        "/v1/embeddings",
        json!({"model": "embed", "input": "hello",
        "dimensions": 4, "encoding_format": "float"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.25, 0.5, 0.75, 1.0]));
    assert_eq!(body["model"], "gemini-embedding-001");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 1, "total_tokens": 1}),
        "Gemini reports no tokens: the gateway counts them"
    );
    assert_eq!(
        fake.received()[0].path,
        "/v1beta/models/gemini-embedding-001:embedContent"
    );
    assert_eq!(fake.received()[0].body["outputDimensionality"], 4);

    let response = post(
        &gateway,
        "/v1/embeddings",
        json!({"model": "embed", "input": ["a", "b"],
        "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data[0]["embedding"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes[..4], 0.25f32.to_le_bytes());
    assert_eq!(
        fake.received()[1].path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );

    // Gemini takes at most 100 per batch; OpenAI clients send up to 2048.
    let inputs: Vec<String> = (0..250).map(|i| i.to_string()).collect();
    let response = post(
        &gateway,
        "/v1/embeddings",
        json!({"model": "embed", "input": inputs}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 250);
    for (i, embedding) in data.iter().enumerate() {
        assert_eq!(embedding["index"], i);
        assert_eq!(
            embedding["embedding"][0],
            json!(i as f64),
            "vector {i} in order"
        );
    }
    let sizes: Vec<usize> = fake.received()[2..]
        .iter()
        .map(|r| r.body["requests"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[tokio::test]
async fn the_fake_refuses_what_gemini_refuses() {
    let fake = FakeGemini::start().await;
    let url = format!("{}/v1beta/models/ok:generateContent", fake.base_url());
    let user = json!({"role": "user", "parts": [{"text": "a"}]});
    let weather = json!({"name": "w", "parameters": {"type": "object", "additionalProperties": false,
        "properties": {"c": {"type": "string"}}}});
    for body in [
        json!({"contents": [user, user]}),
        json!({"contents": [{"role": "model", "parts": [{"text": "a"}]}]}),
        json!({"contents": [{"role": "user", "parts": []}]}),
        json!({"contents": [user], "tools": [{"functionDeclarations": [weather]}]}),
        json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {}}}]}]}),
        json!({"contents": [user], "model": "ok"}),
        json!({"contents": [user], "tools": [{"functionDeclarations": [
            {"name": "w", "parameters": {"type": "object", "properties": {"c": {"type": "array"}}}}]}]}),
        json!({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/jpg", "data": "AA=="}}]}]}),
    ] {
        let response = client()
            .post(&url)
            .header("x-goog-api-key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    }
}

/// Valid OpenAI requests Gemini would refuse: an array parameter without `items` (common in MCP
/// tool sets), a tuple, and an image declared `image/jpg`. The gateway makes each acceptable.
#[tokio::test]
async fn arrays_without_items_and_jpg_images_reach_gemini_acceptably() {
    let (fake, gateway) = start().await;
    let tools = json!([{"type": "function", "function": {"name": "tag", "description": "Tag things",
    "parameters": {"type": "object", "properties": {
        "ids": {"type": "array"},
        "pairs": {"type": "array", "items": {"type": "array"}},
        "point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}
    }}}}]);
    // One white pixel, a JPEG declared with the common but unregistered `image/jpg`.
    let jpeg = "data:image/jpg;base64,/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=";
    let response = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "gemini", "tools": tools, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": jpeg}}
        ]}]}),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let sent = &fake.received()[0].body;
    let parameters = &sent["tools"][0]["functionDeclarations"][0]["parameters"]["properties"];
    assert_eq!(parameters["ids"]["items"], json!({}), "{parameters}");
    assert_eq!(
        parameters["pairs"]["items"]["items"],
        json!({}),
        "{parameters}"
    );
    assert_eq!(
        parameters["point"]["items"],
        json!({"anyOf": [{"type": "number"}, {"type": "number"}]})
    );
    let image = &sent["contents"][0]["parts"][1]["inlineData"];
    assert_eq!(image["mimeType"], "image/jpeg", "{image}");
}
