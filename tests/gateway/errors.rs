//! Bad input and failing providers: each gets a clear OpenAI-shaped error with the right status,
//! and streams that break end cleanly instead of hanging.

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeOpenAi) -> TestGateway {
    let dead = {
        // A port that was just free: nothing listens there, so connecting is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    TestGateway::start(&format!(
        r#"
server: {{ max_body: 2KiB, max_answer: 16KiB }}
providers:
  up: {{ kind: openai, base_url: "{}", api_key: "{KEY}", timeout: 500ms, breaker: {{ failures: 1000 }} }}
  dead: {{ kind: openai, base_url: "http://{dead}/v1", api_key: "x" }}
models:
  - {{ name: gpt, targets: [ {{ provider: up, model: ok }} ] }}
"#,
        fake.base_url()
    ))
    .await
}

async fn post(gateway: &TestGateway, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, response.json().await.unwrap())
}

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}).to_string()
}

fn assert_shape(error: &Value) {
    let e = &error["error"];
    assert!(e["message"].is_string() && e["type"].is_string(), "{error}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_json_is_400() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let (status, error) = post(&gateway, "{\"model\": \"gpt\", \"messages\": [").await;
    assert_eq!(status, 400);
    assert_shape(&error);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        fake.received().is_empty(),
        "bad input never reaches a provider"
    );
}

#[tokio::test]
async fn wrong_types_name_the_parameter() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let (status, error) = post(
        &gateway,
        r#"{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "temperature");
    let (status, error) = post(
        &gateway,
        r#"{"model": "gpt", "messages": [{"role": "wizard", "content": "x"}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "messages[0].role");
    // Not a string at all: a type error naming the field too, not "the body must be valid JSON".
    let (status, error) = post(
        &gateway,
        r#"{"model": "gpt", "messages": [{"role": 5, "content": "x"}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "messages[0].role", "{error}");
    let (status, error) = post(&gateway, r#"{"model": "gpt", "messages": []}"#).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("messages"))
    );
    assert!(fake.received().is_empty());
}

/// Sizes that would make the gateway build gigabytes (a million choices, billions of mock
/// dimensions, a mock echoing a huge prompt) are refused or bounded, never attempted.
#[tokio::test]
async fn sizes_that_would_exhaust_memory_are_refused_or_bounded() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    for n in [0, 129, 10_000_000] {
        let body = json!({"model": "gpt", "n": n, "messages": [{"role": "user", "content": "x"}]});
        let (status, error) = post(&gateway, body.to_string()).await;
        assert_eq!(
            (status, error["error"]["param"].as_str()),
            (400, Some("n")),
            "{n}"
        );
    }
    assert!(fake.received().is_empty());

    let mock = TestGateway::start("providers:\n  demo: { kind: mock }\n").await;
    let embed = |body: Value| client().post(mock.url("/v1/embeddings")).json(&body).send();
    for (body, param) in [
        (
            json!({"model": "demo/e", "input": "a", "dimensions": 4_000_000_000u64}),
            "dimensions",
        ),
        (
            json!({"model": "demo/e", "input": "a", "dimensions": 0}),
            "dimensions",
        ),
        (
            json!({"model": "demo/e", "input": vec!["a"; 2049]}),
            "input",
        ),
    ] {
        let response = embed(body).await.unwrap();
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], param);
    }
    let response = embed(json!({"model": "demo/e", "input": "a", "dimensions": 3072}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let said = "word ".repeat(200_000);
    let response = client()
        .post(mock.url("/v1/chat/completions"))
        .json(
            &json!({"model": "demo/m", "n": 128, "messages": [{"role": "user", "content": said}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 128);
    let content = choices[0]["message"]["content"].as_str().unwrap();
    assert!(content.len() <= 70_000, "{} bytes", content.len());
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let huge = json!({"model": "gpt", "messages": [{"role": "user", "content": "x".repeat(4096)}]})
        .to_string();
    let (status, error) = post(&gateway, huge).await;
    assert_eq!(status, 413);
    assert_eq!(error["error"]["code"], "request_too_large");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn unknown_model_is_404() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    for model in ["gpt-9", "nosuchprovider/x"] {
        let (status, error) = post(&gateway, chat(model)).await;
        assert_eq!(status, 404, "{model}");
        assert_eq!(error["error"]["code"], "model_not_found");
    }
}

#[tokio::test]
async fn unreachable_provider_is_503_once_tried_and_slow_one_is_504() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    // Retried, then given up on: 503 naming what failed.
    let (status, error) = post(&gateway, chat("dead/m")).await;
    assert_eq!(status, 503);
    assert_shape(&error);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect to provider 'dead'"),
        "{error}"
    );
    let (status, error) = post(&gateway, chat("up/slow")).await;
    assert_eq!(status, 504);
    assert_eq!(error["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn provider_errors_keep_status_and_hide_the_key() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    // The client's own mistake keeps the provider's status, type and code.
    let (got, error) = post(&gateway, chat("up/error-400")).await;
    assert_eq!(got, 400);
    assert_shape(&error);
    assert_eq!(error["error"]["type"], "server_error");
    assert_eq!(error["error"]["code"], "fake_code");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("fake failure 400"), "{message}");
    assert!(
        !message.contains(KEY),
        "the provider key must not reach the client: {message}"
    );
    // Failures that are not the client's are retried, then answered 503 naming each failure;
    // the provider's rate limit is a 429.
    for (status, expected, code) in [
        (429u16, 429, "rate_limit_exceeded"),
        (500, 503, "upstream_unavailable"),
        (503, 503, "upstream_unavailable"),
    ] {
        let (got, error) = post(&gateway, chat(&format!("up/error-{status}"))).await;
        assert_eq!(got, expected);
        assert_shape(&error);
        assert_eq!(error["error"]["code"], code);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("fake failure {status}")),
            "{message}"
        );
        assert!(
            !message.contains(KEY),
            "the provider key must not reach the client: {message}"
        );
    }
    let (status, error) = post(&gateway, chat("up/garbage")).await;
    assert_eq!(status, 503);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid response"),
        "{error}"
    );
    assert!(
        !error.to_string().contains("this is not json"),
        "raw bodies are not forwarded"
    );
    // serde quotes what it did not expect; here that is the provider's key.
    let (status, error) = post(&gateway, chat("up/misshapen-echo")).await;
    assert_eq!(status, 503);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("invalid response"), "{message}");
    assert!(
        !message.contains(KEY),
        "the provider key must not reach the client: {message}"
    );
}

#[tokio::test]
async fn an_answer_past_max_answer_is_refused_not_buffered() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    for model in ["up/endless", "up/bloated"] {
        let (status, error) = post(&gateway, chat(model)).await;
        assert_shape(&error);
        assert_eq!(status, 503, "{model}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("answered with more than 16.0 KiB"),
            "{model}: {message}"
        );
    }
    let (status, _) = post(&gateway, chat("up/ok")).await;
    assert_eq!(status, 200, "an answer within the bound still passes");
}

#[tokio::test]
async fn provider_error_before_a_stream_is_a_plain_error() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let body = json!({"model": "up/error-503", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, error) = post(&gateway, body.to_string()).await;
    assert_eq!(status, 503);
    assert_shape(&error);
}

async fn stream_text(gateway: &TestGateway, model: &str) -> String {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(std::time::Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends instead of hanging")
        .expect("the stream ends cleanly at the HTTP level")
}

#[tokio::test]
async fn broken_and_truncated_streams_end_with_an_error_event() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    for model in ["up/cut", "up/truncated"] {
        let events = sse_data(&stream_text(&gateway, model).await);
        assert!(
            events.len() >= 2,
            "{model}: the chunks before the break still arrive: {events:?}"
        );
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_shape(&last);
        assert_eq!(last["error"]["type"], "api_error", "{model}");
        assert!(!events.iter().any(|e| e == "[DONE]"), "{model}");
    }
}

#[tokio::test]
async fn a_stream_past_the_provider_timeout_ends_with_an_error_event() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let events = sse_data(&stream_text(&gateway, "up/hang-stream").await);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_shape(&last);
}

#[tokio::test]
async fn events_arriving_together_keep_their_order_and_a_bad_one_ends_them() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let content = |events: &[String]| -> String {
        events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|e| {
                e["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    let whole = sse_data(&stream_text(&gateway, "up/burst").await);
    assert_eq!(content(&whole), "Hello! How can I help?", "{whole:?}");
    assert_eq!(whole.last().map(String::as_str), Some("[DONE]"));
    for (model, why) in [
        ("up/burst-garbage", "sent an invalid"),
        ("up/burst-bad-utf8", "not valid UTF-8"),
    ] {
        let events = sse_data(&stream_text(&gateway, model).await);
        assert_eq!(events.len(), 4, "three chunks, then the error: {events:?}");
        assert_eq!(content(&events), "Hello! How", "{model}");
        let last: Value = serde_json::from_str(&events[3]).unwrap();
        assert_shape(&last);
        let message = last["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{model}: {message}");
    }
}

#[tokio::test]
async fn bytes_that_never_complete_an_event_still_stall() {
    // The provider keeps sending (a byte every 50 ms) but finishes no event within the idle
    // limit: that is silence between chunks, and the stream ends.
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n  up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: up, model: dribble }} ], timeouts: {{ idle: 300ms }} }}\n",
        fake.base_url()
    ))
    .await;
    let events = sse_data(&stream_text(&gateway, "m").await);
    assert_eq!(
        events.len(),
        2,
        "the first chunk, then the error: {events:?}"
    );
    let last: Value = serde_json::from_str(&events[1]).unwrap();
    assert_shape(&last);
    let message = last["error"]["message"].as_str().unwrap();
    assert!(message.contains("stalled"), "{message}");
}

#[tokio::test]
async fn an_error_event_mid_stream_is_translated_and_redacted() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway_for(&fake).await;
    let events = sse_data(&stream_text(&gateway, "up/stream-error").await);
    assert_eq!(events.len(), 3, "two chunks, then the error: {events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_shape(&last);
    let message = last["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("upstream exploded for key"),
        "{message}"
    );
    assert!(
        !message.contains(KEY),
        "the provider key must not reach the client: {message}"
    );
}
