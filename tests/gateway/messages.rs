//! `POST /v1/messages` on the chat request path: the body an Anthropic target receives (the
//! client's, byte for byte but for the model), the translation to an OpenAI-compatible server,
//! bad input refused in Anthropic's shape before anything is sent, fallbacks, the cache, usage.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_anthropic::{self, FakeAnthropic};
use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::{TestGateway, client};

/// A gateway with `claude` on the fake Anthropic, `gpt` on the fake OpenAI, and `sturdy`: an
/// Anthropic target answering 529 that falls back to `gpt`.
async fn gateway(anthropic: &FakeAnthropic, openai: &FakeOpenAi, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  openai: {{ kind: openai, base_url: "{}", api_key: "{}" }}
models:
  - {{ name: claude, targets: [ {{ provider: anthropic, model: ok, pricing: {{ input: 1000, output: 2000 }} }} ] }}
  - {{ name: gpt, targets: [ {{ provider: openai, model: ok }} ] }}
  - name: sturdy
    targets: [ {{ provider: anthropic, model: error-529 }} ]
    retry: {{ attempts: 1 }}
    fallbacks: [gpt]
keys:
  - {{ name: team, key: sk-team }}
{extra}
"#,
        anthropic.base_url(),
        fake_anthropic::KEY,
        openai.base_url(),
        fake_openai::KEY,
    ))
    .await
}

async fn post(gateway: &TestGateway, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client()
        .post(gateway.url("/v1/messages"))
        .header("x-api-key", "sk-team")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the answer ends")
        .unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

/// The events of a streamed answer as (name, data).
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap();
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

async fn stream(gateway: &TestGateway, body: &str) -> Vec<(String, Value)> {
    let (status, headers, value) = post(gateway, body).await;
    assert_eq!(status, 200, "{value}");
    assert_eq!(headers["content-type"], "text/event-stream");
    events(value.as_str().expect("an event stream"))
}

/// A body as a client might write it: odd spacing, keys in its own order, `cache_control`, a
/// signed thinking block from an earlier turn, `top_k`.
const NATIVE_BODY: &str = r#"{"messages" :[{"role":"user","content":[{"type":"text","text":"Weather?","cache_control":{"type":"ephemeral","ttl":"1h"}}]},
 {"role":"assistant","content":[{"type":"thinking","thinking":"Hm.","signature":"EqQBCkYIBxgCKkBsig0123456789"},{"type":"text","text":"Which city?"}]},
 {"role":"user","content":"Paris, \u00e9t\u00e9"}],
 "max_tokens":1024, "top_k": 5, "model":"claude",
 "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}]}"#;

#[tokio::test]
async fn an_anthropic_target_receives_the_clients_body_byte_for_byte_but_the_model() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let (status, _, message) = post(&gateway, NATIVE_BODY).await;
    assert_eq!(status, 200, "{message}");
    // Anthropic's own answer, as it sent it.
    assert_eq!(message["id"], "msg_01FakeAnthropic");
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], "Hello! How can I help?");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 20, "cache_creation_input_tokens": 3,
               "cache_read_input_tokens": 5, "output_tokens": 12})
    );
    let received = anthropic.received();
    assert_eq!(received.len(), 1);
    let expected = NATIVE_BODY.replace(r#""model":"claude""#, r#""model":"ok""#);
    assert_eq!(received[0].raw, expected);
    assert_eq!(
        received[0].headers["anthropic-beta"],
        "prompt-caching-2024-07-31"
    );
    assert!(openai.received().is_empty());
}

#[tokio::test]
async fn an_openai_compatible_target_gets_the_translation_and_no_anthropic_headers() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let body = NATIVE_BODY.replace(r#""model":"claude""#, r#""model":"gpt""#);
    let body = body.replace(
        r#""top_k": 5,"#,
        r#""top_k": 5, "tools": [{"type": "web_search_20250305", "name": "web_search"}, {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}], "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},"#,
    );
    let (status, headers, message) = post(&gateway, &body).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(headers["x-switchboard-dropped-tools"], "web_search");
    assert_eq!(message["stop_reason"], "tool_use", "{message}");
    let call = &message["content"][0];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let sent = &openai.received()[0];
    assert!(sent.headers.get("anthropic-beta").is_none());
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {"role": "assistant", "content": "Which city?"},
            {"role": "user", "content": "Paris, été"}
        ])
    );
    assert_eq!(sent.body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(sent.body["tool_choice"], "auto");
    assert_eq!(sent.body["parallel_tool_calls"], false);
    assert!(sent.body.get("top_k").is_none() && sent.body.get("thinking").is_none());
    assert!(anthropic.received().is_empty());
}

#[tokio::test]
async fn a_translated_stream_is_anthropics_event_sequence() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let events = stream(
        &gateway,
        r#"{"model": "gpt", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}"#,
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names.len() - 5;
    assert!(deltas >= 1, "{names:?}");
    let mut expected = vec!["message_start", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I help?");
    assert_eq!(openai.received().len(), 1);
    assert!(anthropic.received().is_empty());
    let (_, end) = &events[events.len() - 2];
    assert_eq!(end["delta"]["stop_reason"], "end_turn");
    assert!(end["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(
        events[0].1["message"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_native_stream_keeps_thinking_signatures_and_tool_input() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let events = stream(
        &gateway,
        r#"{"model": "claude", "max_tokens": 2048, "stream": true, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}"#,
    )
    .await;
    let deltas = |kind: &str, field: &str| -> String {
        events
            .iter()
            .filter(|(_, d)| d["delta"]["type"] == kind)
            .filter_map(|(_, d)| d["delta"][field].as_str())
            .collect()
    };
    assert_eq!(deltas("thinking_delta", "thinking"), "Let me think.");
    assert_eq!(
        deltas("signature_delta", "signature"),
        fake_anthropic::SIGNATURE
    );
    assert_eq!(
        deltas("input_json_delta", "partial_json"),
        r#"{"city":"Paris"}"#
    );
    // Anthropic's own events, as it sent them: its message id, its pings.
    assert_eq!(events[0].1["message"]["id"], "msg_01FakeStream");
    assert!(events.iter().any(|(name, _)| name == "ping"));
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[1]["content_block"]["type"], "tool_use");
    assert_eq!(starts[1]["content_block"]["id"], "toolu_01Paris");
    assert_eq!(starts[1]["index"], 1);
    let (_, last_delta) = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(last_delta["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn bad_input_is_refused_in_anthropics_shape_and_nothing_is_sent() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let cases = [
        (
            r#"{"model": "claude", "messages": [{"role": "user", "content": "Hi"}]}"#,
            "max_tokens",
        ),
        (
            r#"{"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}]}]}"#,
            "toolu_nope",
        ),
        (
            r#"{"model": "claude", "max_tokens": "five", "messages": [{"role": "user", "content": "Hi"}]}"#,
            "max_tokens",
        ),
        (
            r#"{"model": "claude", "max_tokens": 5, "messages": [{"role": "robot", "content": "Hi"}]}"#,
            "messages",
        ),
        (r#"{"model": "claude", "max_tokens": 5,"#, "JSON"),
    ];
    for (body, named) in cases {
        let (status, _, error) = post(&gateway, body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{message} names {named}");
    }
    let (status, _, error) = post(
        &gateway,
        r#"{"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["type"], "not_found_error");
    let unkeyed = client()
        .post(gateway.url("/v1/messages"))
        .body(r#"{"model": "claude", "max_tokens": 5, "messages": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unkeyed.status(), 401);
    let error: Value = unkeyed.json().await.unwrap();
    assert_eq!(error["error"]["type"], "authentication_error");
    assert!(anthropic.received().is_empty() && openai.received().is_empty());
}

#[tokio::test]
async fn a_failing_anthropic_target_falls_back_to_an_openai_target() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let gateway = gateway(&anthropic, &openai, "").await;
    let body =
        r#"{"model": "sturdy", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}"#;
    let (status, headers, message) = post(&gateway, body).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(headers["x-switchboard-target"], "openai/ok");
    assert_eq!(
        message["content"][0]["text"],
        "Hello! How can I assist you today?"
    );
    assert_eq!(anthropic.received().len(), 1);
    // Alone, the overloaded target is Anthropic's 529 in Anthropic's words.
    let alone = TestGateway::start(&format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
models:
  - {{ name: sturdy, targets: [ {{ provider: anthropic, model: error-529 }} ], retry: {{ attempts: 1 }} }}
"#,
        anthropic.base_url(),
        fake_anthropic::KEY
    ))
    .await;
    let (status, _, error) = post(&alone, body).await;
    assert_eq!(status, 529, "{error}");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(!error.to_string().contains(fake_anthropic::KEY));
}

#[tokio::test]
async fn cache_hits_quotas_and_usage_apply_to_messages() {
    let (anthropic, openai) = (FakeAnthropic::start().await, FakeOpenAi::start().await);
    let extra = "cache: { enabled: true, ttl: 10m }\nserver: { admin_key: sk-admin }";
    let gateway = gateway(&anthropic, &openai, extra).await;
    let body =
        r#"{"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}"#;
    let (_, headers, first) = post(&gateway, body).await;
    assert_eq!(headers["x-switchboard-cache"], "miss");
    let (_, headers, second) = post(&gateway, body).await;
    assert_eq!(headers["x-switchboard-cache"], "hit");
    assert_eq!(second["content"], first["content"]);
    assert_eq!(second["stop_reason"], "end_turn");
    let streamed = body.replace(r#""max_tokens""#, r#""stream": true, "max_tokens""#);
    let events = stream(&gateway, &streamed).await;
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I help?");
    assert_eq!(
        anthropic.received().len(),
        1,
        "both hits were served from the cache"
    );
    // A different thinking setting is a different request.
    let thinking = body.replace(
        r#""max_tokens""#,
        r#""thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens""#,
    );
    let (_, headers, _) = post(&gateway, &thinking).await;
    assert_eq!(headers["x-switchboard-cache"], "miss");
    let team = crate::common::key_usage(gateway.url("/admin/usage"), "sk-admin", "team").await;
    // Two answers from Anthropic, each 20 + 5 + 3 in and 12 out; hits cost nothing.
    assert_eq!(team["input_tokens"], 56, "{team}");
    assert_eq!(team["output_tokens"], 24, "{team}");
    // At $1000 per million in and $2000 out: 56 × 0.001 + 24 × 0.002.
    let cost = team["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.104).abs() < 1e-9, "{team}");
}

#[tokio::test]
async fn claude_on_bedrock_is_sent_the_clients_body_through_invoke_model() {
    let bedrock = crate::common::fake_bedrock::FakeBedrock::start().await;
    let gateway = TestGateway::start(&format!(
        r#"
providers:
  bedrock: {}
models:
  - {{ name: claude, targets: [ {{ provider: bedrock, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" }} ] }}
  - {{ name: nova, targets: [ {{ provider: bedrock, model: "amazon.nova-pro-v1:0" }} ] }}
keys:
  - {{ name: team, key: sk-team }}
"#,
        bedrock.provider_yaml()
    ))
    .await;
    let body = r#"{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"Hi"}],"temperature":0.50}"#;
    let (status, _, answer) = post(&gateway, body).await;
    assert_eq!(status, 200, "{answer}");
    // Anthropic's message as Bedrock wrote it.
    assert_eq!(answer["id"], "msg_bdrk_01", "{answer}");
    assert_eq!(
        answer["content"][0]["text"],
        "Hello from Claude on Bedrock."
    );
    let sent = &bedrock.received()[0];
    assert_eq!(
        sent.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    );
    // Every member as the client wrote it, `model` traded for Bedrock's version, the beta
    // header carried in the body.
    assert_eq!(
        sent.raw,
        r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["prompt-caching-2024-07-31"],"max_tokens":64,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"Hi"}],"temperature":0.50}"#
    );
    // Streamed: each `chunk` unwrapped into Anthropic's own event.
    let streamed = stream(
        &gateway,
        &body.replace(r#""max_tokens":64"#, r#""max_tokens":64,"stream":true"#),
    )
    .await;
    let names: Vec<&str> = streamed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(streamed[0].1["message"]["id"], "msg_bdrk_02");
    assert!(
        bedrock.received()[1]
            .path
            .ends_with("/invoke-with-response-stream")
    );
    // Another family on Bedrock goes through Converse, translated.
    let (status, _, answer) = post(
        &gateway,
        &body.replace(r#""model":"claude""#, r#""model":"nova""#),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(bedrock.received()[2].path.ends_with("/converse"));
}
