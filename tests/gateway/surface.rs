//! The HTTP surface on the built-in mock: keys, model lists, embeddings, health, readiness,
//! metrics and request ids.

use base64::Engine;
use serde_json::{Value, json};

use crate::common::{TestGateway, client, sse_data};

const CONFIG: &str = r#"
providers:
  demo: { kind: mock }
models:
  - { name: fast, targets: [ { provider: demo, model: mock-fast } ] }
  - { name: smart, targets: [ { provider: demo, model: mock-smart } ] }
  - { name: embed, targets: [ { provider: demo, model: mock-embed } ] }
keys:
  - { name: team-a, key: sk-team-a, models: ["fast", "embed", "demo/*"] }
  - { name: admin, key_sha256: 3a2c34d5c0d9ec6e0d7e7cb4ba2d4c18f4bce3f2d6a51b9c5a52c5e2f2a6d0b1 }
  - { name: all, key: sk-all }
"#;

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "ping pong"}]})
}

async fn post(gateway: &TestGateway, key: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
    let mut request = client().post(gateway.url(path)).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn keys_are_required_and_scoped_by_model_globs() {
    let gateway = TestGateway::start(CONFIG).await;
    let (status, error) = post(&gateway, None, "/v1/chat/completions", &chat("fast")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, _) = post(
        &gateway,
        Some("sk-wrong"),
        "/v1/chat/completions",
        &chat("fast"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post(
        &gateway,
        Some("sk-team-a"),
        "/v1/chat/completions",
        &chat("fast"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Mock answer to: ping pong"
    );
    let (status, error) = post(
        &gateway,
        Some("sk-team-a"),
        "/v1/chat/completions",
        &chat("smart"),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (403, Some("model_not_allowed"))
    );
    let (status, _) = post(
        &gateway,
        Some("sk-team-a"),
        "/v1/chat/completions",
        &chat("demo/anything"),
    )
    .await;
    assert_eq!(
        status, 200,
        "provider/model shorthand matched by the demo/* glob"
    );
    let (status, _) = post(
        &gateway,
        Some("sk-all"),
        "/v1/chat/completions",
        &chat("smart"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn model_list_shows_what_the_key_may_use() {
    let gateway = TestGateway::start(CONFIG).await;
    let list: Value = client()
        .get(gateway.url("/v1/models"))
        .bearer_auth("sk-team-a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fast", "embed"]);
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["object"], "model");
    assert_eq!(list["data"][0]["owned_by"], "demo");

    let one = client()
        .get(gateway.url("/v1/models/demo/mock-x"))
        .bearer_auth("sk-team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap()["id"], "demo/mock-x");
    for (id, key) in [("smart", "sk-team-a"), ("nope", "sk-all")] {
        let response = client()
            .get(gateway.url(&format!("/v1/models/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{id}");
    }
    let response = client()
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn mock_streams_several_chunks_with_the_same_usage() {
    let gateway = TestGateway::start(CONFIG).await;
    let (_, plain) = post(
        &gateway,
        Some("sk-all"),
        "/v1/chat/completions",
        &chat("fast"),
    )
    .await;
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-all")
        .json(
            &json!({"model": "fast", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "ping pong"}]}),
        )
        .send()
        .await
        .unwrap();
    let events = sse_data(&response.text().await.unwrap());
    assert!(events.len() > 4, "{events:?}");
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(chunks.last().unwrap()["usage"], plain["usage"]);
}

#[tokio::test]
async fn mock_embeddings_in_float_and_base64() {
    let gateway = TestGateway::start(CONFIG).await;
    let body =
        json!({"model": "embed", "input": ["a", "b"], "dimensions": 4, "encoding_format": "float"});
    let (status, floats) = post(&gateway, Some("sk-all"), "/v1/embeddings", &body).await;
    assert_eq!(status, 200);
    assert_eq!(floats["data"].as_array().unwrap().len(), 2);
    let first: Vec<f32> = serde_json::from_value(floats["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(first.len(), 4);
    let body = json!({"model": "embed", "input": ["a", "b"], "dimensions": 4, "encoding_format": "base64"});
    let (_, encoded) = post(&gateway, Some("sk-all"), "/v1/embeddings", &body).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded, first, "base64 carries the same vector");
    for empty in [json!([]), json!("")] {
        let body = json!({"model": "embed", "input": empty});
        let (status, error) = post(&gateway, Some("sk-all"), "/v1/embeddings", &body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["param"], "input");
    }
    let (status, _) = post(
        &gateway,
        Some("sk-team-a"),
        "/v1/embeddings",
        &json!({"model": "smart", "input": "x"}),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let gateway = TestGateway::start(CONFIG).await;
    let health = client().get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client().get(gateway.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    post(
        &gateway,
        Some("sk-all"),
        "/v1/chat/completions",
        &chat("fast"),
    )
    .await;
    post(
        &gateway,
        Some("sk-team-a"),
        "/v1/chat/completions",
        &chat("smart"),
    )
    .await;
    let metrics = crate::common::metrics(gateway.url("/metrics")).await;
    assert!(metrics.contains(r#"switchboard_requests_total{endpoint="chat",model="fast",provider="demo",status="200"} 1"#), "{metrics}");
    assert!(
        metrics.contains(
            r#"switchboard_requests_total{endpoint="chat",model="",provider="",status="403"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"switchboard_request_duration_seconds_count{endpoint="chat",model="fast",provider="demo",status="200"} 1"#), "{metrics}");
    assert!(
        metrics
            .contains(r#"switchboard_tokens_total{model="fast",provider="demo",kind="prompt"} 5"#),
        "{metrics}"
    );
}

/// `/metrics` is OpenMetrics text that a strict parser reads whatever the configured names
/// hold, and shows no credential a `base_url` carries in its userinfo or query.
#[tokio::test]
async fn metrics_escape_names_and_hide_url_credentials() {
    let gateway = TestGateway::start(
        r#"
server: { admin_key: sk-metrics-admin }
providers:
  'de"mo': { kind: mock }
  up: { kind: openai, base_url: "http://user:PASSWORDSECRET@127.0.0.1:9/v1?api_key=QUERYSECRET", api_key: sk-metrics-key, registration: { allow: [127.0.0.1] } }
models:
  - { name: "q\"uo\\te", targets: [ { provider: 'de"mo', model: m } ] }
"#,
    )
    .await;
    let (status, _) = post(&gateway, None, "/v1/chat/completions", &chat(r#"q"uo\te"#)).await;
    assert_eq!(status, 200);
    // A second account on the same host: shown alike, it must not overwrite the first's gauges.
    let registered = client()
        .post(gateway.url("/admin/upstreams"))
        .bearer_auth("sk-metrics-admin")
        .json(&json!({"provider": "up", "url": "http://other:OTHERSECRET@127.0.0.1:9/v1", "ttl": "60s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200, "{:?}", registered.text().await);
    let response = client().get(gateway.url("/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    let metrics = response.text().await.unwrap();
    assert!(
        metrics.contains(r#"model="q\"uo\\te",provider="de\"mo",status="200"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("SECRET"), "{metrics}");
    assert!(
        metrics.contains(r#"instance="http://127.0.0.1:9/v1""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"instance="http://127.0.0.1:9/v1 #2""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let gateway = TestGateway::start(CONFIG).await;
    let response = client()
        .get(gateway.url("/health"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
    let a = client().get(gateway.url("/health")).send().await.unwrap();
    let b = client().get(gateway.url("/health")).send().await.unwrap();
    let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_openai_errors() {
    let gateway = TestGateway::start(CONFIG).await;
    let response = client()
        .get(gateway.url("/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_url"
    );
    let response = client()
        .get(gateway.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.json::<Value>().await.unwrap()["error"]["message"].is_string());
    // A path segment that is not UTF-8 is bad input like any other: a JSON 400.
    for path in ["/v1/models/%ff", "/v1/context/%ff/x"] {
        let response = client()
            .get(gateway.url(path))
            .bearer_auth("sk-all")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{path}");
    }
}
