//! Token and dollar quotas per key: exact under concurrency, settled to the usage the provider
//! reported, released on failure, reported by `/admin/usage`, and kept across restarts (SIGKILL
//! included).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client, sse_data, temp_dir};

const ADMIN: &str = "sk-admin-quota";

/// The fake's non-streamed answer reports 19 prompt + 10 completion tokens; a request for
/// "hello" is estimated at 8 prompt tokens, so `max_tokens: 21` reserves exactly what it uses
/// and settlement cannot free room for an extra call.
const CALL_TOKENS: u64 = 29;

fn call(model: &str) -> Value {
    json!({"model": model, "max_tokens": 21, "messages": [{"role": "user", "content": "hello"}]})
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(gateway: &TestGateway, key: &str, body: &Value) -> Reply {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

async fn usage(gateway: &TestGateway, key: &str) -> Value {
    crate::common::key_usage(gateway.url("/admin/usage"), ADMIN, key).await
}

fn config(fake: &FakeOpenAi, keys: &str) -> String {
    format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders: {{ up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\" }} }}\nmodels:\n  - {{ name: priced, targets: [ {{ provider: up, model: ok, pricing: {{ input: 1000, output: 1000 }} }} ] }}\nkeys:\n{keys}",
        fake.base_url()
    )
}

/// Fires 200 identical requests at once and sorts the replies into successes and refusals.
async fn storm(gateway: &TestGateway, key: &str, model: &str) -> (Vec<Reply>, Vec<Reply>) {
    let body = call(model);
    let replies = futures_util::future::join_all((0..200).map(|_| post(gateway, key, &body))).await;
    let (ok, refused): (Vec<Reply>, Vec<Reply>) =
        replies.into_iter().partition(|r| r.status == 200);
    assert!(
        refused.iter().all(|r| r.status == 429),
        "only 200s and 429s"
    );
    (ok, refused)
}

fn remaining_tokens(reply: &Reply) -> u64 {
    reply.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_quota_refusal(reply: &Reply, limit: &str) {
    assert_eq!(
        reply.body["error"]["code"], "insufficient_quota",
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["type"], "insufficient_quota");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(limit), "names the limit: {message}");
    assert!(
        message.contains("resets at"),
        "says when it resets: {message}"
    );
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn a_daily_token_quota_admits_exactly_n_calls_of_a_known_size() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        &format!(
            "  - {{ name: a, key: sk-a, limits: {{ tokens_per_day: {} }} }}\n",
            7 * CALL_TOKENS
        ),
    ))
    .await;
    let (ok, refused) = storm(&gateway, "sk-a", "up/ok").await;
    assert_eq!((ok.len(), refused.len()), (7, 193));
    assert_quota_refusal(&refused[0], "tokens_per_day is 203");
    assert_eq!(
        fake.received().len(),
        7,
        "refused requests reach no provider"
    );
    let report = usage(&gateway, "a").await;
    assert_eq!(report["input_tokens"], 7 * 19);
    assert_eq!(report["output_tokens"], 7 * 10);
    assert_eq!(report["limits"]["tokens_per_day"]["remaining"], 0);
    assert_eq!(report["limits"]["tokens_per_day"]["reserved"], 0);
}

/// A request whose estimate alone exceeds a limit can never fit: "too large", with no
/// `Retry-After` for an SDK to wait out, and nothing reaches the provider.
#[tokio::test]
async fn a_request_larger_than_a_whole_limit_is_too_large_without_retry_after() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: m, key: sk-m, limits: { tokens_per_minute: 20 } }\n  - { name: d, key: sk-d, limits: { tokens_per_day: 20 } }\n  - { name: b, key: sk-b, limits: { budget_usd: { amount: 0.001, period: day } } }\n",
    ))
    .await;
    for (key, model, limit, kind) in [
        ("sk-m", "up/ok", "tokens_per_minute is 20", "tokens"),
        ("sk-d", "up/ok", "tokens_per_day is 20", "tokens"),
        ("sk-b", "priced", "budget_usd is $0.001", "requests"),
    ] {
        let reply = post(&gateway, key, &call(model)).await;
        assert_eq!(reply.status, 429, "{key}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "rate_limit_exceeded", "{key}");
        assert_eq!(reply.body["error"]["type"], kind, "{key}: OpenAI's type");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Request too large") && message.contains(limit),
            "{key}: {message}"
        );
        assert!(reply.headers.get("retry-after").is_none(), "{key}");
    }
    assert!(fake.received().is_empty());
}

/// A fallback to a dearer model is reserved for before the first try: the budget holds
/// whichever target ends up answering.
#[tokio::test]
async fn a_dearer_fallback_cannot_take_a_key_past_its_budget() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers: {{ up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\" }} }}\nmodels:\n  - {{ name: cheap, targets: [ {{ provider: up, model: error-500, pricing: {{ input: 1, output: 1 }} }} ], retry: {{ attempts: 1 }}, fallbacks: [dear] }}\n  - {{ name: dear, targets: [ {{ provider: up, model: ok, pricing: {{ input: 1000, output: 1000 }} }} ] }}\nkeys:\n  - {{ name: b, key: sk-b, limits: {{ budget_usd: {{ amount: 0.001, period: day }} }} }}\n",
        fake.base_url()
    ))
    .await;
    let reply = post(&gateway, "sk-b", &call("cheap")).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("budget_usd is $0.001"), "{message}");
    assert!(fake.received().is_empty(), "nothing reached a provider");
}

#[tokio::test]
async fn a_dollar_budget_admits_exactly_n_calls_at_the_configured_price() {
    let fake = FakeOpenAi::start().await;
    // 29 tokens at $1000 per million tokens: $0.029 a call, ten calls in $0.29.
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: b, key: sk-b, limits: { budget_usd: { amount: 0.29, period: month } } }\n",
    ))
    .await;
    let (ok, refused) = storm(&gateway, "sk-b", "priced").await;
    assert_eq!((ok.len(), refused.len()), (10, 190));
    assert_quota_refusal(&refused[0], "budget_usd is $0.29 per month");
    let report = usage(&gateway, "b").await;
    let cost = report["models"]["up/ok"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.29).abs() < 1e-9, "{report}");
    assert_eq!(report["models"]["up/ok"]["requests"], 10);
}

/// A whole answer is settled before its headers go out: they say what is left after what it
/// used, not after what was reserved for it.
#[tokio::test]
async fn a_whole_answer_reports_the_tokens_left_after_settlement() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: c, key: sk-c, limits: { tokens_per_minute: 100000 } }\n",
    ))
    .await;
    let big = json!({"model": "up/ok", "max_tokens": 500, "messages": [{"role": "user", "content": "hello"}]});
    let reply = post(&gateway, "sk-c", &big).await;
    assert_eq!(reply.status, 200);
    let remaining = remaining_tokens(&reply);
    assert!(
        (100_000 - CALL_TOKENS..=100_000).contains(&remaining),
        "29 used, not the 508 reserved: {remaining}"
    );
    let failed = post(
        &gateway,
        "sk-c",
        &json!({"model": "up/error-500", "max_tokens": 500,
        "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    let remaining = remaining_tokens(&failed);
    assert!(
        remaining >= 100_000 - CALL_TOKENS,
        "a failure's reservation is released: {remaining}"
    );
}

#[tokio::test]
async fn usage_settles_to_what_the_provider_reported_and_failures_cost_nothing() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: c, key: sk-c, limits: { tokens_per_minute: 100000, tokens_per_day: 1000000 } }\n",
    ))
    .await;
    let plain = post(&gateway, "sk-c", &call("up/ok")).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.headers["x-ratelimit-limit-tokens"], "100000");
    let remaining = remaining_tokens(&plain);
    assert!(
        (100_000 - CALL_TOKENS..=100_000).contains(&remaining),
        "what the answer used, and the refill since: {remaining}"
    );
    assert!(plain.headers.contains_key("x-ratelimit-reset-tokens"));
    // Streamed: the fake reports 12 + 6 in its final usage chunk, asked for by the gateway.
    let streamed = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-c")
        .json(&json!({"model": "up/ok", "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let text = streamed.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let before = usage(&gateway, "c").await;
    assert_eq!(
        before["models"]["up/ok"]["input_tokens"],
        19 + 12,
        "{before}"
    );
    assert_eq!(before["models"]["up/ok"]["output_tokens"], 10 + 6);
    assert_eq!(before["limits"]["tokens_per_day"]["used"], CALL_TOKENS + 18);
    for failing in ["up/error-500", "up/error-400", "up/garbage"] {
        let reply = post(&gateway, "sk-c", &call(failing)).await;
        assert!(reply.status >= 400, "{failing}");
    }
    let after = usage(&gateway, "c").await;
    assert_eq!(after["requests"], 2, "{after}");
    assert_eq!(
        after["limits"]["tokens_per_day"],
        before["limits"]["tokens_per_day"]
    );
}

async fn stream_text(gateway: &TestGateway, key: &str, model: &str) -> String {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn streams_without_reported_usage_are_charged_by_counting_their_text() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: e, key: sk-e, limits: { tokens_per_day: 100000 } }
  - { name: f, key: sk-f }
",
    ))
    .await;
    // "hello" from the user is 8 prompt tokens as OpenAI counts a message; "Hello! How can I
    // help?" is 7 tokens in o200k_base. A key without token limits, whose prompt is not counted
    // before the call, is charged the same.
    for (key, name) in [("sk-e", "e"), ("sk-f", "f")] {
        let text = stream_text(&gateway, key, "up/no-usage").await;
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let report = usage(&gateway, name).await;
        let model = &report["models"]["up/no-usage"];
        assert_eq!(
            (
                model["input_tokens"].as_u64(),
                model["output_tokens"].as_u64()
            ),
            (Some(8), Some(7)),
            "{name}: {report}"
        );
    }
    // A stream the provider cut is charged for what it did send.
    let cut = stream_text(&gateway, "sk-e", "up/cut").await;
    assert!(cut.contains("\"error\""), "{cut}");
    // Each word the fake sends is one token: the charge is what reached the client.
    let words = sse_data(&cut)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|chunk| chunk["choices"][0]["delta"]["content"].is_string())
        .count();
    assert!(words >= 1, "{cut}");
    let report = usage(&gateway, "e").await;
    assert_eq!(
        report["models"]["up/cut"]["output_tokens"], words,
        "{report}"
    );
    assert_eq!(report["limits"]["tokens_per_day"]["reserved"], 0);
}

/// tiktoken overflowed its stack on a long run of spaces: the connection dropped with no answer
/// and the request went unrecorded. Now it is counted (1,000,000 spaces are 7,813 tokens of 128
/// spaces), answered and charged, streamed or not.
#[tokio::test]
async fn a_prompt_of_a_million_spaces_is_counted_answered_and_charged() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &fake,
        "  - { name: e, key: sk-e, limits: { tokens_per_day: 100000 } }\n",
    ))
    .await;
    let spaces = " ".repeat(1_000_000);
    let prompt_tokens = 3 + 1 + 7813 + 3;
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-e")
        .json(&json!({"model": "up/no-usage", "stream": true,
            "messages": [{"role": "user", "content": spaces}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let report = usage(&gateway, "e").await;
    let model = &report["models"]["up/no-usage"];
    assert_eq!(model["input_tokens"], prompt_tokens, "{report}");
    assert_eq!(model["output_tokens"], 7, "{report}");
    assert_eq!(report["limits"]["tokens_per_day"]["reserved"], 0);
    gateway.stop().await;
}

#[tokio::test]
async fn usage_belongs_to_the_key_name_across_restarts_and_limit_changes() {
    let fake = FakeOpenAi::start().await;
    let dir = temp_dir();
    let state = format!("state: {{ data_dir: {:?} }}\n", dir.display().to_string());
    let first = TestGateway::start(&format!(
        "{}{state}",
        config(
            &fake,
            "  - { name: d, key: sk-d, limits: { tokens_per_day: 1000 } }\n"
        )
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(post(&first, "sk-d", &call("up/ok")).await.status, 200);
    }
    first.stop().await;
    // A new secret and a lower limit: the name carries the usage over.
    let second = TestGateway::start(&format!(
        "{}{state}",
        config(
            &fake,
            "  - { name: d, key: sk-d2, limits: { tokens_per_day: 100 } }\n"
        )
    ))
    .await;
    let report = usage(&second, "d").await;
    assert_eq!(report["requests"], 3, "{report}");
    assert_eq!(report["limits"]["tokens_per_day"]["used"], 3 * CALL_TOKENS);
    let refused = post(&second, "sk-d2", &call("up/ok")).await;
    assert_eq!(refused.status, 429, "87 used + 29 exceeds the new 100");
    second.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gateway binary, killed without warning.
struct Killable(Child);

impl Drop for Killable {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &std::path::Path, port: u16) -> Killable {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killable(child)
}

/// Polls `/health` until the process answers; a start that fails makes the test fail.
async fn wait_ready(process: &mut Killable, port: u16) {
    for _ in 0..400 {
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!("the gateway exited: {status}");
        }
        if client()
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn spend_acknowledged_before_a_sigkill_is_there_after_restart() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{ admin_key: {ADMIN} }}\nproviders: {{ demo: {{ kind: mock, latency: {{ first_token: 2ms }} }} }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: demo, model: x, pricing: {{ input: 1, output: 1 }} }} ] }}\nkeys:\n  - {{ name: load, key: sk-load, limits: {{ budget_usd: {{ amount: 1000, period: day }} }} }}\nstate: {{ data_dir: {:?} }}\n",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut process = spawn(&config, port);
    wait_ready(&mut process, port).await;
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (url, acknowledged) = (url.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let client = client();
                loop {
                    let body = json!({"model": "m", "messages": [{"role": "user", "content": "one two three"}]});
                    let Ok(response) = client.post(&url).bearer_auth("sk-load").json(&body).send().await else {
                        return;
                    };
                    if response.status() == 200 && response.bytes().await.is_ok() {
                        acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.0.kill().unwrap(); // SIGKILL, mid-load
    process.0.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    drop(process);
    let port = free_port();
    let mut restarted = spawn(&config, port);
    wait_ready(&mut restarted, port).await;
    let report: Value = client()
        .get(format!("http://127.0.0.1:{port}/admin/usage"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &report["keys"][0];
    let requests = key["requests"].as_u64().unwrap();
    assert!(
        requests >= acknowledged,
        "{requests} recorded, {acknowledged} acknowledged"
    );
    // Each call costs the same: spend is exactly the recorded calls, nothing torn or doubled.
    let per_call = key["cost_usd"].as_f64().unwrap() / requests as f64;
    assert!(per_call > 0.0);
    let spent = key["limits"]["budget_usd"]["spent"].as_f64().unwrap();
    assert!((spent - per_call * requests as f64).abs() < 1e-9, "{key}");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}
