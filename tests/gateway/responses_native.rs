//! `POST /v1/responses` passed through to an OpenAI provider with `responses_api`: the client's
//! body reaches it byte for byte but for the model, its answer and events reach the client as
//! written, built-in tools run there, and a stored conversation continues there as written or,
//! when the gateway wrote the response it continues, translated.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_anthropic::{self, FakeAnthropic};
use crate::common::fake_openai::{self, FakeOpenAi};
use crate::common::{TestGateway, client};

fn config(openai: &FakeOpenAi, anthropic: &FakeAnthropic) -> String {
    format!(
        r#"
server: {{ admin_key: sk-admin }}
providers:
  openai: {{ kind: openai, base_url: "{}", api_key: "{}", responses_api: true }}
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  demo: {{ kind: mock }}
models:
  - {{ name: gpt, targets: [ {{ provider: openai, model: ok, pricing: {{ input: 1000, output: 2000 }} }} ] }}
  - {{ name: cut, targets: [ {{ provider: openai, model: cut }} ] }}
  - {{ name: claude, targets: [ {{ provider: anthropic, model: claude-x }} ] }}
  - {{ name: fast, targets: [ {{ provider: demo, model: mock-fast }} ] }}
  - name: sturdy
    targets: [ {{ provider: anthropic, model: error-529 }} ]
    retry: {{ attempts: 1 }}
    fallbacks: [gpt]
keys:
  - {{ name: team, key: sk-team }}
  - {{ name: other, key: sk-other }}
"#,
        openai.base_url(),
        fake_openai::KEY,
        anthropic.base_url(),
        fake_anthropic::KEY,
    )
}

/// Posts `body` as written with `key`: status, headers and the body's text.
async fn post(
    gateway: &TestGateway,
    key: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = client()
        .post(gateway.url("/v1/responses"))
        .bearer_auth(key)
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
    (status, headers, text)
}

async fn get(gateway: &TestGateway, key: &str, id: &str) -> (u16, Value) {
    let response = client()
        .get(gateway.url(&format!("/v1/responses/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The events of an SSE body: (name, data).
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (
                name.to_owned(),
                serde_json::from_str(data).unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_body_reaches_openai_as_written_and_its_answer_comes_back_as_written() {
    let (openai, anthropic) = (FakeOpenAi::start().await, FakeAnthropic::start().await);
    let gateway = TestGateway::start(&config(&openai, &anthropic)).await;
    // Fields the canonical form has no place for, numbers in unusual spellings, a built-in tool.
    let body = r#"{"model":"gpt","input":[{"role":"user","content":"Weather?"}],"tools":[{"type":"web_search"},{"type":"function","name":"weather","parameters":{"type":"object"}}],"include":["reasoning.encrypted_content"],"prompt_cache_key":"k1","client_metadata":{"x":1.50},"temperature":1e0}"#;
    let (status, headers, text) = post(&gateway, "sk-team", body).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        !headers.contains_key("x-switchboard-dropped-tools"),
        "nothing dropped"
    );
    let received = openai.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/responses");
    assert_eq!(
        received[0].raw,
        body.replace(r#""model":"gpt""#, r#""model":"ok""#)
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(
        answer["id"].as_str().unwrap().starts_with("resp_fake"),
        "{answer}"
    );
    assert_eq!(
        answer["model"], "ok-2025",
        "the provider's own object: {answer}"
    );
    assert_eq!(answer["output"][0]["type"], "function_call");
    assert_eq!(answer["output"][0]["call_id"], "call_fake1");
    // Usage and cost are read from the provider's object.
    let team = crate::common::key_usage(gateway.url("/admin/usage"), "sk-admin", "team").await;
    assert_eq!(
        (&team["input_tokens"], &team["output_tokens"]),
        (&json!(12), &json!(5)),
        "{team}"
    );
    assert!((team["cost_usd"].as_f64().unwrap() - (12.0 * 0.001 + 5.0 * 0.002)).abs() < 1e-9);
    // The function's output goes on, and a forced built-in tool runs upstream.
    let follow = json!({"model": "gpt", "input": [
        {"type": "function_call", "call_id": "call_fake1", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_fake1", "output": "sunny"}]});
    let (status, _, text) = post(&gateway, "sk-team", &follow.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let searched = json!({"model": "gpt", "input": "News?", "tools": [{"type": "web_search"}],
                          "tool_choice": {"type": "web_search"}});
    let (status, _, text) = post(&gateway, "sk-team", &searched.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["output"][0]["type"], "web_search_call", "{answer}");
    // Forced on a provider that cannot run it, it is refused, and nothing is sent.
    let elsewhere = json!({"model": "claude", "input": "News?", "tools": [{"type": "web_search"}],
                           "tool_choice": {"type": "web_search"}});
    let (status, _, text) = post(&gateway, "sk-team", &elsewhere.to_string()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("tool_choice"), "{text}");
    assert!(anthropic.received().is_empty());
}

#[tokio::test]
async fn a_stream_passes_through_event_for_event_and_is_stored() {
    let (openai, anthropic) = (FakeOpenAi::start().await, FakeAnthropic::start().await);
    let gateway = TestGateway::start(&config(&openai, &anthropic)).await;
    let body = json!({"model": "gpt", "input": "Hi", "stream": true, "reasoning": {"effort": "low", "summary": "auto"}});
    let (status, headers, text) = post(&gateway, "sk-team", &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let heard = events(&text);
    // Every event as the provider wrote it: its name, its type and its sequence number, in order.
    for (at, (name, data)) in heard.iter().enumerate() {
        assert_eq!(&data["type"], name, "{data}");
        assert_eq!(data["sequence_number"], at, "{data}");
    }
    let names: Vec<&str> = heard.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    assert!(
        names.contains(&"response.reasoning_summary_text.delta"),
        "{names:?}"
    );
    let said: String = heard
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(said, "Hello from Responses.");
    let completed = &heard.last().unwrap().1["response"];
    let id = completed["id"].as_str().unwrap();
    // Kept under the provider's id, for this key alone, as the provider wrote it.
    let (status, kept) = get(&gateway, "sk-team", id).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(&kept, completed);
    let (status, _) = get(&gateway, "sk-other", id).await;
    assert_eq!(status, 404);
    // A cut stream ends in an error event and keeps nothing.
    let cut = json!({"model": "cut", "input": "Hi", "stream": true});
    let (_, _, text) = post(&gateway, "sk-team", &cut.to_string()).await;
    assert!(events(&text).iter().all(|(n, _)| n != "response.completed"));
    assert!(text.contains("\"error\""), "{text}");
}

#[tokio::test]
async fn a_conversation_continues_as_written_where_it_is_held_and_translated_elsewhere() {
    let (openai, anthropic) = (FakeOpenAi::start().await, FakeAnthropic::start().await);
    let gateway = TestGateway::start(&config(&openai, &anthropic)).await;
    let (_, _, text) = post(
        &gateway,
        "sk-team",
        r#"{"model":"gpt","input":"My name is Ada."}"#,
    )
    .await;
    let first: Value = serde_json::from_str(&text).unwrap();
    let id = first["id"].as_str().unwrap();
    // OpenAI wrote it and holds it: the follow-up goes as written, and OpenAI finds it.
    let follow = format!(r#"{{"model":"gpt","input":"Name?","previous_response_id":"{id}"}}"#);
    let (status, _, text) = post(&gateway, "sk-team", &follow).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("continuing {id}")), "{text}");
    assert_eq!(
        openai.received()[1].raw,
        follow.replace(r#""model":"gpt""#, r#""model":"ok""#)
    );
    // Another key cannot continue it, and nothing is sent.
    let (status, _, text) = post(&gateway, "sk-other", &follow).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("previous_response_not_found"), "{text}");
    assert_eq!(openai.received().len(), 2);
    // The same conversation continued on Anthropic is translated, the history carried.
    let (status, _, text) = post(
        &gateway,
        "sk-team",
        &format!(r#"{{"model":"claude","input":"Name?","previous_response_id":"{id}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let sent = anthropic.received()[0].body["messages"].to_string();
    assert!(
        sent.contains("My name is Ada.") && sent.contains("Hello from Responses."),
        "{sent}"
    );
    // A conversation the mock wrote means nothing to OpenAI: it goes to chat, translated.
    let (_, _, text) = post(
        &gateway,
        "sk-team",
        r#"{"model":"fast","input":"My name is Bo."}"#,
    )
    .await;
    let mocked: Value = serde_json::from_str(&text).unwrap();
    let follow = json!({"model": "gpt", "input": "Name?", "previous_response_id": mocked["id"]});
    let (status, _, text) = post(&gateway, "sk-team", &follow.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let last = openai.received().pop().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    let sent = last.body["messages"].to_string();
    assert!(sent.contains("My name is Bo."), "{sent}");
    // A failing Anthropic target falls back to OpenAI, which takes the body as written.
    let (status, headers, text) =
        post(&gateway, "sk-team", r#"{"model":"sturdy","input":"Hi"}"#).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-switchboard-target"], "openai/ok");
    assert_eq!(openai.received().pop().unwrap().path, "/v1/responses");
}
