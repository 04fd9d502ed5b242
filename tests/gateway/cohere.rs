//! Chat and embeddings through the gateway in front of a fake Cohere v2 API: what Cohere
//! receives, and the OpenAI-shaped answers, streams and errors the client gets back.

use serde_json::{Value, json};

use crate::common::fake_cohere::{FakeCohere, KEY};
use crate::common::{TestGateway, client, sse_data, text_of};

async fn gateway_for(fake: &FakeCohere) -> TestGateway {
    TestGateway::start(&format!(
        r#"
providers:
  co:
    kind: cohere
    base_url: "{}"
    api_key: "{KEY}"
models:
  - name: command
    targets: [ {{ provider: co, model: ok }} ]
"#,
        fake.base_url()
    ))
    .await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

async fn post(gateway: &TestGateway, body: Value) -> reqwest::Response {
    client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The streamed chunks of a response, and whether it ended with `[DONE]`.
async fn chunks(response: reqwest::Response) -> (Vec<Value>, bool) {
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let data = sse_data(&body);
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (chunks, done)
}

/// Tool calls reassembled from their streamed fragments, by index: (id, name, arguments).
fn tool_calls_of(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for call in chunks.iter().flat_map(|c| {
        c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }) {
        let index = call["index"].as_u64().unwrap() as usize;
        if index == calls.len() {
            assert_eq!(call["type"], "function", "a call opens with its type");
            assert_eq!(call["function"]["arguments"], "", "and no arguments yet");
            calls.push((
                call["id"].as_str().unwrap().to_owned(),
                call["function"]["name"].as_str().unwrap().to_owned(),
                String::new(),
            ));
        } else {
            assert!(
                call.get("id").is_none(),
                "later fragments carry only arguments"
            );
            calls[index].2 += call["function"]["arguments"].as_str().unwrap();
        }
    }
    calls
}

#[tokio::test]
async fn plain_completion_is_translated_both_ways() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "command", "temperature": 0.2, "top_p": 0.5, "max_tokens": 64, "stop": "END",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchboard-target"], "co/ok");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "ok", "named after the upstream model");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from Cohere!"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18})
    );

    let received = fake.received();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(sent.headers["accept"], "application/json");
    assert_eq!(
        sent.body,
        json!({"model": "ok", "temperature": 0.2, "p": 0.5, "max_tokens": 64, "stop_sequences": ["END"],
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]})
    );
}

#[tokio::test]
async fn streamed_text_arrives_as_chunks_with_usage_when_asked() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "command", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (chunks, done) = chunks(response).await;
    assert!(done);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "ok")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text_of(&chunks), "Hello from Cohere!");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 18);
    let sent = &fake.received()[0].body;
    assert_eq!(sent["stream"], true);
    assert!(sent.get("stream_options").is_none());
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "command", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let (chunks, done) = chunks(response).await;
    assert!(done);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null))
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn streamed_tool_call_reassembles_and_the_round_trip_reaches_cohere() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "command", "stream": true, "tools": weather_tool(), "tool_choice": "required",
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    let (chunks, done) = chunks(response).await;
    assert!(done);
    let plan = text_of(&chunks);
    assert_eq!(
        plan, "I will look up the weather.",
        "the tool plan is the text before the calls"
    );
    let calls = tool_calls_of(&chunks);
    assert_eq!(calls.len(), 1);
    let (id, name, arguments) = &calls[0];
    assert_eq!(name, "get_weather");
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
    assert!(fragments >= 2, "arguments arrive in several fragments");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(fake.received()[0].body["tool_choice"], "REQUIRED");

    // The client sends the call and its result back; Cohere must see them in its own shape.
    let response = post(
        &gateway,
        json!({"model": "command", "tools": weather_tool(), "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": plan, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let sent = &fake.received()[1].body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], json!(id));
    assert_eq!(
        sent["messages"][1]["tool_plan"],
        "I will look up the weather."
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": id, "content": "18C and sunny"})
    );
}

#[tokio::test]
async fn parallel_tool_calls_plain_and_streamed() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let request = |stream: bool| {
        json!({"model": "co/parallel", "stream": stream, "tools": weather_tool(),
            "messages": [{"role": "user", "content": "Paris and Tokyo?"}]})
    };
    let body: Value = post(&gateway, request(false)).await.json().await.unwrap();
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(cities, [json!({"city": "Paris"}), json!({"city": "Tokyo"})]);

    let (chunks, done) = chunks(post(&gateway, request(true)).await).await;
    assert!(done);
    let streamed = tool_calls_of(&chunks);
    assert_eq!(streamed.len(), 2);
    assert_ne!(streamed[0].0, streamed[1].0, "each call keeps its own id");
    assert_eq!(
        serde_json::from_str::<Value>(&streamed[1].2).unwrap(),
        json!({"city": "Tokyo"})
    );
}

#[tokio::test]
async fn provider_errors_are_translated_and_scrubbed() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_exceeded"),
        (500, "api_error"),
    ] {
        let response = post(
            &gateway,
            json!({"model": format!("co/error-{status}"), "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("fake failure {status}")),
            "{message}"
        );
        assert!(!message.contains(KEY), "the key is scrubbed: {message}");
        assert!(message.contains("<redacted>"));
        if status == 400 {
            // The client's own mistake: Cohere's status and type, as is.
            assert_eq!((got, body["error"]["type"].as_str()), (400, Some(kind)));
        } else {
            // Retried, then given up on: 503 naming Cohere's failure, 429 for its rate limit.
            let expected = if status == 429 { 429 } else { 503 };
            assert_eq!(got, expected, "{kind}: {body}");
        }
    }
}

#[tokio::test]
async fn invalid_requests_are_refused_by_cohere_and_relayed() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    // A tool result answering no call breaks Cohere's role rules.
    let response = post(
        &gateway,
        json!({"model": "command", "messages": [{"role": "user", "content": "Hi"},
            {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("answers no tool call")
    );
}

#[tokio::test]
async fn images_and_json_schema_reach_cohere_in_its_shape() {
    let fake = FakeCohere::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "command", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Who is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let sent = &fake.received()[0].body;
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}})
    );
    assert_eq!(
        sent["response_format"],
        json!({"type": "json_object", "json_schema": {"type": "object"}})
    );
}

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let fake = FakeCohere::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n  co: {{ kind: cohere, base_url: \"{}\", api_key: \"{KEY}\" }}\nmodels:\n  - name: embed\n    targets: [ {{ provider: co, model: embed-v4.0 }} ]\n",
        fake.base_url()
    ))
    .await;
    let embed = |body: Value| {
        client()
            .post(gateway.url("/v1/embeddings"))
            .json(&body)
            .send()
    };
    let response = embed(json!({"model": "embed", "input": ["a", "b"]}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "embed-v4.0");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][1]["embedding"], json!([0.5, -0.25, 1.0]));
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 7, "total_tokens": 7})
    );
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v2/embed");
    assert_eq!(
        sent.body,
        json!({"model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_document", "embedding_types": ["float"]})
    );

    let body: Value = embed(json!({"model": "embed", "input": "a", "encoding_format": "base64"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let encoded = body["data"][0]["embedding"].as_str().unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(bytes[..4], 0.5f32.to_le_bytes());

    // Cohere embeds at most 96 texts per call; OpenAI clients send up to 2048.
    let inputs: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let response = embed(json!({"model": "embed", "input": inputs}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 100);
    for (i, embedding) in data.iter().enumerate() {
        assert_eq!(embedding["index"], i);
        assert_eq!(
            embedding["embedding"][2],
            json!(i as f64),
            "vector {i} in order"
        );
    }
    assert_eq!(body["usage"]["prompt_tokens"], 14, "usage of both calls");
    let sizes: Vec<usize> = fake.received()[2..]
        .iter()
        .map(|r| r.body["texts"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [96, 4]);
}
