//! `POST /v1/responses` on the chat request path: bad input refused in OpenAI's shape before
//! anything is sent, a failing Anthropic target falling back to an OpenAI one, cache hits,
//! usage, and a stored conversation continued and read from another replica through Redis.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_anthropic::{self, FakeAnthropic};
use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::redis::RedisServer;
use crate::common::{TestGateway, client, temp_dir};

fn config(anthropic: &FakeAnthropic, openai: &FakeOpenAi, extra: &str) -> String {
    format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  openai: {{ kind: openai, base_url: "{}", api_key: "{}" }}
models:
  - {{ name: gpt, targets: [ {{ provider: openai, model: ok, pricing: {{ input: 1000, output: 2000 }} }} ] }}
  - name: sturdy
    targets: [ {{ provider: anthropic, model: error-529 }} ]
    retry: {{ attempts: 1 }}
    fallbacks: [gpt]
keys:
  - {{ name: team, key: sk-team }}
  - {{ name: limited, key: sk-limited, limits: {{ requests_per_minute: 1 }} }}
{extra}
"#,
        anthropic.base_url(),
        fake_anthropic::KEY,
        openai.base_url(),
        fake_openai::KEY,
    )
}

async fn send(
    gateway_url: String,
    method: reqwest::Method,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client().request(method, gateway_url).bearer_auth("sk-team");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the answer ends")
        .unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create(gateway: &TestGateway, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    send(
        gateway.url("/v1/responses"),
        reqwest::Method::POST,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_sent() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = TestGateway::start(&config(&anthropic, &openai, "")).await;
    let cases = [
        (
            json!({"model": "gpt", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "gpt", "input": [{"role": "robot", "content": "hi"}]}),
            "input[0].role",
        ),
        (json!({"model": "gpt", "input": 5}), "input"),
        (
            json!({"model": "gpt", "input": "hi", "max_output_tokens": "ten"}),
            "max_output_tokens",
        ),
        (
            json!({"model": "gpt", "input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}),
            "tool_choice",
        ),
        (
            json!({"model": "gpt", "input": "hi", "previous_response_id": "resp_missing"}),
            "previous_response_id",
        ),
    ];
    for (body, param) in cases {
        let (status, _, error) = create(&gateway, body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    let (status, _, error) = create(&gateway, json!({"model": "nope", "input": "hi"})).await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(openai.received().is_empty() && anthropic.received().is_empty());
}

#[tokio::test]
async fn a_failing_anthropic_target_falls_back_and_the_cache_and_usage_apply() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let extra = "cache: { enabled: true, ttl: 10m }\nserver: { admin_key: sk-admin }";
    let gateway = TestGateway::start(&config(&anthropic, &openai, extra)).await;
    let (status, headers, first) =
        create(&gateway, json!({"model": "sturdy", "input": "Hi"})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(headers["x-switchboard-target"], "openai/ok");
    assert_eq!(headers["x-switchboard-cache"], "miss");
    assert_eq!(
        first["output"][0]["content"][0]["text"],
        "Hello! How can I assist you today?"
    );
    assert_eq!(anthropic.received().len(), 1);
    // The same request again is a hit, as a whole answer and as a stream, under a new id.
    let (_, headers, second) = create(&gateway, json!({"model": "sturdy", "input": "Hi"})).await;
    assert_eq!(headers["x-switchboard-cache"], "hit");
    assert_eq!(
        second["output"][0]["content"],
        first["output"][0]["content"]
    );
    assert_ne!(second["id"], first["id"]);
    let (_, headers, streamed) = create(
        &gateway,
        json!({"model": "sturdy", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(headers["x-switchboard-cache"], "hit");
    let text = streamed.as_str().unwrap();
    let completed = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|e| e["type"] == "response.completed")
        .expect("response.completed");
    assert_eq!(
        completed["response"]["output"][0]["content"],
        first["output"][0]["content"]
    );
    assert_eq!(openai.received().len(), 1, "the hits reached no provider");
    // The stored hit can be read back.
    let id = completed["response"]["id"].as_str().unwrap();
    let (status, _, kept) = send(
        gateway.url(&format!("/v1/responses/{id}")),
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["output"], completed["response"]["output"]);
    let team = crate::common::key_usage(gateway.url("/admin/usage"), "sk-admin", "team").await;
    assert_eq!(
        team["input_tokens"], first["usage"]["input_tokens"],
        "{team}"
    );
    assert_eq!(
        team["output_tokens"], first["usage"]["output_tokens"],
        "{team}"
    );
    let tokens = |field: &str| first["usage"][field].as_f64().unwrap();
    let cost = tokens("input_tokens") * 0.001 + tokens("output_tokens") * 0.002;
    assert!(
        (team["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{team}"
    );
}

#[tokio::test]
async fn a_keys_request_rate_holds_on_responses() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = TestGateway::start(&config(&anthropic, &openai, "")).await;
    let post = || {
        client()
            .post(gateway.url("/v1/responses"))
            .bearer_auth("sk-limited")
            .json(&json!({"model": "gpt", "input": "Hi"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded", "{error}");
    assert_eq!(openai.received().len(), 1);
}

#[tokio::test]
async fn a_stored_conversation_is_continued_and_read_from_another_replica() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let redis = RedisServer::start();
    // Replicas share Redis; each keeps its own data directory (its settlements journal). The
    // timeout is a loaded CI machine's, not the 50 ms default: a slow call would be a 503.
    let replica = |dir: std::path::PathBuf| {
        format!(
            "state: {{ data_dir: {:?}, redis: {{ url: \"{}\", timeout: 500ms }} }}",
            dir.display().to_string(),
            redis.url()
        )
    };
    let a = TestGateway::start(&config(&anthropic, &openai, &replica(temp_dir()))).await;
    let b = TestGateway::start(&config(&anthropic, &openai, &replica(temp_dir()))).await;
    let (status, _, first) = create(&a, json!({"model": "gpt", "input": "My name is Ada."})).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap();
    let (status, _, second) = create(
        &b,
        json!({"model": "gpt", "input": "What is my name?", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let sent = &openai.received()[1].body["messages"];
    assert_eq!(sent[0]["content"], "My name is Ada.", "{sent}");
    assert_eq!(sent[2]["content"], "What is my name?", "{sent}");
    let (status, _, kept) = send(
        b.url(&format!("/v1/responses/{id}")),
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["id"], id);
    let (status, _, deleted) = send(
        b.url(&format!("/v1/responses/{id}")),
        reqwest::Method::DELETE,
        None,
    )
    .await;
    assert_eq!(
        (status, &deleted["deleted"]),
        (200, &json!(true)),
        "{deleted}"
    );
    let (status, _, _) = send(
        a.url(&format!("/v1/responses/{id}")),
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_chain_of_stored_responses_stops_growing_at_its_bound() {
    let gateway = TestGateway::start(
        r#"
server: { max_body: 64KiB }
providers: { demo: { kind: mock } }
models: [ { name: fast, targets: [ { provider: demo, model: mock-fast } ] } ]
"#,
    )
    .await;
    // Each turn adds 20 KB; four times max_body (256 KiB) holds a dozen turns, not twenty.
    let words = "word ".repeat(4_000);
    let mut previous: Option<String> = None;
    let mut refused = None;
    for turn in 0..20 {
        let mut body = json!({"model": "fast", "input": words, "max_output_tokens": 5});
        if let Some(id) = &previous {
            body["previous_response_id"] = json!(id);
        }
        let (status, _, answer) = create(&gateway, body).await;
        if status != 200 {
            refused = Some((turn, status, answer));
            break;
        }
        previous = answer["id"].as_str().map(str::to_owned);
    }
    let (turn, status, error) = refused.expect("the chain is refused before twenty turns");
    assert!(turn >= 8, "refused only past the bound, at turn {turn}");
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "previous_response_id", "{error}");
    // Not storing, the client may go on with the conversation it holds.
    let id = previous.unwrap();
    let (status, _, _) = create(
        &gateway,
        json!({"model": "fast", "input": "hi", "previous_response_id": id, "store": false}),
    )
    .await;
    assert_eq!(status, 200);
}
