//! Chat through the gateway in front of a fake Mistral API that refuses what Mistral refuses:
//! OpenAI-only fields, foreign tool-call ids, `required`.

use serde_json::{Value, json};

use crate::common::fake_mistral::{FakeMistral, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeMistral) -> TestGateway {
    TestGateway::start(&format!(
        "providers:\n  mi: {{ kind: mistral, base_url: \"{}\", api_key: \"{KEY}\" }}\nmodels:\n  - name: mistral\n    targets: [ {{ provider: mi, model: ok }} ]\n",
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
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

async fn chunks(response: reqwest::Response) -> (Vec<Value>, bool) {
    assert_eq!(response.status(), 200);
    let data = sse_data(&response.text().await.unwrap());
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (chunks, done)
}

fn calls_of(chunks: &[Value]) -> Vec<(String, String)> {
    let mut calls: Vec<(String, String)> = Vec::new();
    for call in chunks.iter().flat_map(|c| {
        c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }) {
        let index = call["index"].as_u64().unwrap() as usize;
        if let Some(id) = call["id"].as_str() {
            assert_eq!(index, calls.len());
            assert_eq!(call["function"]["arguments"], "");
            calls.push((id.to_owned(), String::new()));
        } else {
            calls[index].1 += call["function"]["arguments"].as_str().unwrap();
        }
    }
    calls
}

#[tokio::test]
async fn openai_request_reaches_mistral_without_what_it_refuses() {
    let fake = FakeMistral::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(&gateway, json!({"model": "mistral", "user": "u1", "logprobs": false, "seed": 3,
        "max_completion_tokens": 50, "metadata": {"a": "b"}, "store": false,
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "al"}]})).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Bonjour from Mistral!"
    );
    assert_eq!(body["usage"]["total_tokens"], 50);
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(
        sent.body,
        json!({"model": "ok", "random_seed": 3, "max_tokens": 50,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    );
}

#[tokio::test]
async fn streamed_tool_call_round_trip_with_foreign_ids() {
    let fake = FakeMistral::start().await;
    let gateway = gateway_for(&fake).await;
    let request = json!({"model": "mistral", "stream": true, "stream_options": {"include_usage": true},
        "tools": tools(), "tool_choice": "required", "messages": [{"role": "user", "content": "Paris?"}]});
    let (chunks, done) = chunks(post(&gateway, request).await).await;
    assert!(done);
    let calls = calls_of(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].1).unwrap(),
        json!({"city": "Paris"})
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert!(
        finish.get("usage").is_none_or(Value::is_null),
        "usage comes in its own chunk"
    );
    let usage = chunks.last().unwrap();
    assert_eq!(
        (
            usage["choices"].clone(),
            usage["usage"]["total_tokens"].clone()
        ),
        (json!([]), json!(50))
    );
    let sent = &fake.received()[0].body;
    assert_eq!(sent["tool_choice"], "any");
    assert!(sent.get("stream_options").is_none());

    // History from another provider, with OpenAI-style ids Mistral would refuse.
    let response = post(&gateway, json!({"model": "mistral", "tools": tools(), "messages": [
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9f8e7d6c5b4a", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9f8e7d6c5b4a", "content": "18C"}]})).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let sent = &fake.received()[1].body;
    let id = sent["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(id.len(), 9);
    assert_eq!(sent["messages"][2]["tool_call_id"], id);
}

#[tokio::test]
async fn parallel_tool_calls_get_their_own_indices() {
    let fake = FakeMistral::start().await;
    let gateway = gateway_for(&fake).await;
    let request = |stream: bool| {
        json!({"model": "mi/parallel", "stream": stream, "tools": tools(),
        "messages": [{"role": "user", "content": "Paris and Tokyo?"}]})
    };
    let body: Value = post(&gateway, request(false)).await.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (chunks, done) = chunks(post(&gateway, request(true)).await).await;
    assert!(done);
    let calls = calls_of(&chunks);
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(&c.1).unwrap())
        .collect();
    assert_eq!(cities, [json!({"city": "Paris"}), json!({"city": "Tokyo"})]);
}

#[tokio::test]
async fn errors_are_translated_and_scrubbed() {
    let fake = FakeMistral::start().await;
    let gateway = gateway_for(&fake).await;
    for status in [400, 429, 500] {
        let response = post(&gateway, json!({"model": format!("mi/error-{status}"), "messages": [{"role": "user", "content": "Hi"}]})).await;
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains(KEY) && message.contains("<redacted>"),
            "{message}"
        );
        if status == 400 {
            assert_eq!(
                (got, body["error"]["type"].as_str()),
                (400, Some("fake_error"))
            );
        } else {
            // Retried, then given up on: 503 naming Mistral's failure, 429 for its rate limit.
            let expected = if status == 429 { 429 } else { 503 };
            assert_eq!(got, expected, "{body}");
        }
    }
    // A tool result answering no call is refused by Mistral, and relayed as its 400.
    let response = post(&gateway, json!({"model": "mistral", "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "abcdefghi", "content": "x"}]})).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn cut_stream_errors_and_unknown_events_are_skipped() {
    let fake = FakeMistral::start().await;
    let gateway = gateway_for(&fake).await;
    let response = post(
        &gateway,
        json!({"model": "mi/cut", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.text())
        .await
        .expect("ends")
        .unwrap();
    let data = sse_data(&body);
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert!(
        serde_json::from_str::<Value>(data.last().unwrap()).unwrap()["error"]["message"]
            .is_string()
    );

    let (chunks, done) = chunks(post(&gateway, json!({"model": "mi/unknown-event", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await).await;
    assert!(done);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour from Mistral!");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}
