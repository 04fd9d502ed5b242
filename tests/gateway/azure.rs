//! Chat and embeddings through the gateway in front of a fake Azure OpenAI resource.

use serde_json::{Value, json};

use crate::common::fake_azure::{API_VERSION, FakeAzure, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeAzure) -> TestGateway {
    TestGateway::start(&format!(
        "providers:\n  az: {{ kind: azure, base_url: \"{}\", api_key: \"{KEY}\", api_version: \"{API_VERSION}\" }}\nmodels:\n  - name: gpt\n    targets: [ {{ provider: az, model: ok }} ]\n",
        fake.base_url()
    ))
    .await
}

async fn post(gateway: &TestGateway, body: Value) -> reqwest::Response {
    client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
}

async fn chunks(response: reqwest::Response) -> (Vec<Value>, bool) {
    assert_eq!(response.status(), 200);
    let data = sse_data(&response.text().await.unwrap());
    let done = data.last().is_some_and(|d| d == "[DONE]");
    (
        data.iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect(),
        done,
    )
}

fn arguments(chunks: &[Value], index: u64) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["index"] == index)
        .filter_map(|c| c["function"]["arguments"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn plain_and_streamed_completions_reach_the_deployment() {
    let fake = FakeAzure::start().await;
    let gateway = gateway_for(&fake).await;
    let body: Value = post(
        &gateway,
        json!({"model": "gpt", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from Azure!"
    );
    assert_eq!(body["usage"]["total_tokens"], 13);
    assert!(
        body["prompt_filter_results"].is_array(),
        "Azure's annotations pass through"
    );
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/openai/deployments/ok/chat/completions");
    assert_eq!(sent.query, format!("api-version={API_VERSION}"));

    let (chunks, done) = chunks(
        post(
            &gateway,
            json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await,
    )
    .await;
    assert!(done);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from Azure!");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 13);
    assert_eq!(
        fake.received()[1].body["stream_options"],
        json!({"include_usage": true})
    );

    let (skipped, done) = self::chunks(
        post(
            &gateway,
            json!({"model": "az/unknown-event", "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await,
    )
    .await;
    assert!(done, "a named event is skipped, not fatal");
    let text: String = skipped
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from Azure!");
}

#[tokio::test]
async fn tool_calls_stream_and_parallel_calls() {
    let fake = FakeAzure::start().await;
    let gateway = gateway_for(&fake).await;
    let (chunks, done) = chunks(
        post(
            &gateway,
            json!({"model": "gpt", "stream": true, "tools": tools(),
        "messages": [{"role": "user", "content": "Paris?"}]}),
        )
        .await,
    )
    .await;
    assert!(done);
    assert_eq!(
        serde_json::from_str::<Value>(&arguments(&chunks, 0)).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let body: Value = post(
        &gateway,
        json!({"model": "az/parallel", "tools": tools(),
        "messages": [{"role": "user", "content": "Paris and Tokyo?"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\": \"Tokyo\"}");
}

#[tokio::test]
async fn errors_and_content_filters() {
    let fake = FakeAzure::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "az/error-429", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    // Retried once the hold passed, then given up on: 429 naming Azure's rate limit.
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains(KEY) && message.contains("<redacted>"),
        "{message}"
    );

    let response = post(
        &gateway,
        json!({"model": "az/filtered-prompt", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "content_filter");
    assert_eq!(body["error"]["param"], "prompt");

    let body: Value = post(
        &gateway,
        json!({"model": "az/refusal", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    let (chunks, _) = chunks(post(&gateway, json!({"model": "az/refusal", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await).await;
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "content_filter"
    );
}

#[tokio::test]
async fn cut_stream_errors_and_wrong_key_is_refused() {
    let fake = FakeAzure::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "az/cut", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.text())
        .await
        .expect("ends")
        .unwrap();
    let data = sse_data(&body);
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert!(serde_json::from_str::<Value>(data.last().unwrap()).unwrap()["error"].is_object());

    let wrong = TestGateway::start(&format!(
        "providers:\n  az: {{ kind: azure, base_url: \"{}\", api_key: wrong-key-123456 }}\n",
        fake.base_url()
    ))
    .await;
    let response = post(
        &wrong,
        json!({"model": "az/ok", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    // The gateway's own key is wrong, not the client's: 503 naming Azure's refusal, key hidden.
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("az/ok") && !text.contains("wrong-key-123456"),
        "{text}"
    );
}

#[tokio::test]
async fn embeddings_reach_the_deployment() {
    let fake = FakeAzure::start().await;
    let gateway = gateway_for(&fake).await;
    let response = client()
        .post(gateway.url("/v1/embeddings"))
        .json(&json!({"model": "az/embed-small", "input": "hi", "encoding_format": "float"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.25, -0.5]));
    assert_eq!(
        fake.received()[0].path,
        "/openai/deployments/embed-small/embeddings"
    );
}
