//! Chat completions through a fake OpenAI-compatible provider: what reaches the provider, and
//! what the client gets back, streamed and not.

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeOpenAi) -> TestGateway {
    TestGateway::start(&format!(
        r#"
providers:
  up:
    kind: openai
    base_url: "{}"
    api_key: "{KEY}"
    headers: {{ x-extra-header: team-a }}
models:
  - name: gpt
    targets: [ {{ provider: up, model: ok }} ]
"#,
        fake.base_url()
    ))
    .await
}

/// Streams `body`: a 200 event stream that ends with `[DONE]`, as its chunks.
async fn stream_chunks(gateway: &TestGateway, body: Value) -> Vec<Value> {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn plain_completion_passes_through_with_unknown_fields() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({
            "model": "gpt",
            "messages": [{"role": "user", "content": "Hello"}],
            "temperature": 0.2,
            "reasoning_effort": "low",
            "metadata": {"trace": "t1"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchboard-target"], "up/ok");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! How can I assist you today?"
    );
    assert_eq!(body["usage"]["total_tokens"], 29);
    assert_eq!(
        body["service_tier"], "default",
        "unknown response fields survive"
    );
    assert_eq!(body["choices"][0]["message"]["annotations"], json!([]));

    let received = fake.received();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["x-extra-header"], "team-a");
    assert_eq!(
        sent.body["model"], "ok",
        "the public name is replaced by the upstream model"
    );
    assert_eq!(sent.body["reasoning_effort"], "low");
    assert_eq!(sent.body["metadata"], json!({"trace": "t1"}));
    assert_eq!(sent.body["temperature"], 0.2);
    assert!(sent.body.get("stream_options").is_none());
}

/// Legacy function calling (`functions`, an assistant `function_call`, then a `function`
/// message) still works against OpenAI: every part reaches the upstream as the client wrote it.
#[tokio::test]
async fn legacy_function_messages_reach_an_openai_compatible_upstream() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let messages = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null,
         "function_call": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"role": "function", "name": "get_weather", "content": "18C"}
    ]);
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt", "messages": messages,
            "functions": [{"name": "get_weather", "parameters": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let sent = &fake.received()[0].body;
    assert_eq!(sent["messages"], messages);
    assert_eq!(sent["functions"][0]["name"], "get_weather");

    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt", "messages": [{"role": "function", "content": "18C"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a function message names its function"
    );
}

/// The relay adds a missing role and takes out usage the client did not ask for; every other
/// byte of those chunks, and every byte of the others, is the provider's.
#[tokio::test]
async fn edited_chunks_keep_every_other_value_as_written() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let relay = async |include_usage: bool| {
        let response = client()
            .post(gateway.url("/v1/chat/completions"))
            .json(&json!({"model": "up/raw", "stream": true, "stream_options": {"include_usage": include_usage},
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        sse_data(&response.text().await.unwrap())
    };
    let upstream: Vec<String> = sse_data(crate::common::fake_openai::RAW_STREAM);
    let with_role = upstream[0].replace(
        r#""delta":{"content""#,
        r#""delta":{"role":"assistant","content""#,
    );
    assert_eq!(
        relay(true).await,
        [
            with_role.clone(),
            upstream[1].clone(),
            upstream[2].clone(),
            "[DONE]".to_owned()
        ]
    );
    assert_eq!(
        relay(false).await,
        [
            with_role.replace(r#","usage":null"#, ""),
            upstream[1].replace(r#","usage":null"#, ""),
            upstream[2].replace(
                r#","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}"#,
                ""
            ),
            "[DONE]".to_owned()
        ]
    );
}

/// With `n: 2` and each choice in chunks of its own (as vLLM sends them), each choice's first
/// delta carries the role, and only its first.
#[tokio::test]
async fn each_choice_of_n_starts_with_its_role() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "up/per-choice", "stream": true, "n": 2,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let events = sse_data(&response.text().await.unwrap());
    let roles: Vec<(u64, Value)> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .map(|c| {
            (
                c["choices"][0]["index"].as_u64().unwrap(),
                c["choices"][0]["delta"]["role"].clone(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (0, json!("assistant")),
            (1, json!("assistant")),
            (0, Value::Null),
            (1, Value::Null)
        ]
    );
}

/// A server that ignores `stream: true` and answers whole still gives the client a stream.
#[tokio::test]
async fn a_whole_answer_to_a_stream_request_is_replayed_as_a_stream() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    for include_usage in [false, true] {
        let chunks = stream_chunks(
            &gateway,
            json!({"model": "up/no-stream", "stream": true,
            "stream_options": {"include_usage": include_usage},
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        assert_eq!(chunks[0]["object"], "chat.completion.chunk");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert!(!text.is_empty());
        let usage = chunks.iter().find(|c| c["usage"].is_object());
        assert_eq!(usage.is_some(), include_usage, "{chunks:?}");
    }
}

#[tokio::test]
async fn stream_asks_upstream_for_usage_and_drops_it_when_client_did_not() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let chunks = stream_chunks(
        &gateway,
        json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(
        chunks.len(),
        7,
        "role with the first word, five words, finish; no usage chunk"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I help?");
    assert_eq!(
        fake.received()[0].body["stream_options"]["include_usage"],
        true
    );

    let metrics = crate::common::metrics(gateway.url("/metrics")).await;
    assert!(
        metrics
            .contains(r#"switchboard_tokens_total{model="gpt",provider="up",kind="completion"} 6"#),
        "usage counted even though it was not forwarded:\n{metrics}"
    );
}

#[tokio::test]
async fn stream_with_include_usage_forwards_the_usage_chunk() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let body = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(
            &json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&body);
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 18);
}

#[tokio::test]
async fn chunks_are_forwarded_as_they_arrive() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    // The hanging stream sends one chunk and then nothing: the client must still get that chunk.
    let mut response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "up/hang-stream", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response
        .chunk()
        .await
        .unwrap()
        .expect("a first chunk before the upstream finishes");
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.contains(r#""role":"assistant""#), "{text}");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let mut response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "up/hang-stream", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap().expect("first chunk");
    let cancelled = fake.stream_cancelled();
    drop(response);
    tokio::time::timeout(std::time::Duration::from_secs(10), cancelled)
        .await
        .expect("the gateway dropped the upstream stream after the client left");
}

#[tokio::test]
async fn embeddings_pass_through() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let response = client()
        .post(gateway.url("/v1/embeddings"))
        .json(&json!({"model": "up/text-embedding-3-small", "input": "The food was delicious", "encoding_format": "float"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"][1], -0.009327292);
    assert_eq!(body["usage"]["prompt_tokens"], 8);
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["model"], "text-embedding-3-small");
    assert_eq!(sent.body["encoding_format"], "float");
}
