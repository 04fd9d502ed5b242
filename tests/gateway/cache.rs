//! The response cache seen from outside: hits, misses, expiry, eviction, scopes, request
//! directives, stream replay, what is never stored, and the stampede.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client, sse_data};

async fn gateway(fake: &FakeOpenAi, cache: &str) -> TestGateway {
    TestGateway::start(&format!(
        r#"
server: {{ admin_key: admin-secret }}
providers:
  up: {{ kind: openai, base_url: "{}", api_key: "{KEY}" }}
  demo: {{ kind: mock }}
models:
  - {{ name: gpt, targets: [ {{ provider: up, model: ok }} ] }}
keys:
  - {{ name: a, key: sk-a }}
  - {{ name: b, key: sk-b }}
cache: {cache}
"#,
        fake.base_url()
    ))
    .await
}

struct Answer {
    status: u16,
    cache: String,
    age: Option<u64>,
    text: String,
}

async fn ask(gateway: &TestGateway, key: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    ask_raw(gateway, key, body.to_string(), headers).await
}

async fn ask_raw(
    gateway: &TestGateway,
    key: &str,
    body: String,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let cache = header("x-switchboard-cache").unwrap_or_default();
    let age = header("age").map(|a| a.parse().unwrap());
    let status = response.status().as_u16();
    Answer {
        status,
        cache,
        age,
        text: response.text().await.unwrap(),
    }
}

fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn second_identical_request_is_a_hit_and_reaches_no_provider() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{ ttl: 10m }").await;
    let first = ask(&gateway, "sk-a", &chat("gpt", "hello"), &[]).await;
    assert_eq!(
        (first.status, first.cache.as_str(), first.age),
        (200, "miss", None)
    );
    let second = ask(&gateway, "sk-a", &chat("gpt", "hello"), &[]).await;
    assert_eq!((second.status, second.cache.as_str()), (200, "hit"));
    assert_eq!(second.age, Some(0));
    assert_eq!(
        second.text, first.text,
        "a hit is the stored answer, byte for byte"
    );
    let other = ask(&gateway, "sk-a", &chat("gpt", "something else"), &[]).await;
    assert_eq!(other.cache, "miss");
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn key_order_whitespace_and_user_do_not_split_the_cache() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{ ttl: 10m }").await;
    let a = r#"{"model":"gpt","temperature":0.5,"messages":[{"role":"user","content":"hi"}],"metadata":{"x":1,"y":2}}"#;
    let b = r#"{ "messages" : [ { "content" : "hi", "role" : "user" } ],
                 "metadata": {"y": 2, "x": 1}, "user": "someone", "temperature": 0.5, "model": "gpt" }"#;
    assert_eq!(ask_raw(&gateway, "sk-a", a.into(), &[]).await.cache, "miss");
    assert_eq!(ask_raw(&gateway, "sk-a", b.into(), &[]).await.cache, "hit");
    let c = r#"{"model":"gpt","temperature":0.6,"messages":[{"role":"user","content":"hi"}],"metadata":{"x":1,"y":2}}"#;
    assert_eq!(
        ask_raw(&gateway, "sk-a", c.into(), &[]).await.cache,
        "miss",
        "sampling parameters do split it"
    );
}

#[tokio::test]
async fn scope_key_separates_callers_and_global_shares() {
    let fake = FakeOpenAi::start().await;
    let per_key = gateway(&fake, "{ scope: key }").await;
    assert_eq!(
        ask(&per_key, "sk-a", &chat("gpt", "x"), &[]).await.cache,
        "miss"
    );
    assert_eq!(
        ask(&per_key, "sk-b", &chat("gpt", "x"), &[]).await.cache,
        "miss"
    );
    assert_eq!(
        ask(&per_key, "sk-b", &chat("gpt", "x"), &[]).await.cache,
        "hit"
    );
    let global = gateway(&fake, "{ scope: global }").await;
    assert_eq!(
        ask(&global, "sk-a", &chat("gpt", "y"), &[]).await.cache,
        "miss"
    );
    assert_eq!(
        ask(&global, "sk-b", &chat("gpt", "y"), &[]).await.cache,
        "hit"
    );
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{ ttl: 300ms }").await;
    let stored_at = Instant::now();
    ask(&gateway, "sk-a", &chat("gpt", "ttl"), &[]).await;
    assert_eq!(
        ask(&gateway, "sk-a", &chat("gpt", "ttl"), &[]).await.cache,
        "hit"
    );
    // Wait for the condition itself: poll until the entry is gone, within a generous deadline.
    loop {
        let answer = ask(
            &gateway,
            "sk-a",
            &chat("gpt", "ttl"),
            &[("cache-control", "max-age=3600")],
        )
        .await;
        if answer.cache == "miss" {
            assert!(
                stored_at.elapsed() >= Duration::from_millis(300),
                "expired early"
            );
            break;
        }
        assert!(
            stored_at.elapsed() < Duration::from_secs(10),
            "entry never expired"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn metrics(gateway: &TestGateway) -> String {
    crate::common::metrics(gateway.url("/metrics")).await
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn size_bound_evicts_and_metrics_report_it() {
    let fake = FakeOpenAi::start().await;
    // Each fake answer weighs about 2.6 KB: room for a few, not for twenty.
    let gateway = gateway(&fake, "{ max_size: 12KiB }").await;
    for i in 0..20 {
        assert_eq!(
            ask(&gateway, "sk-a", &chat("gpt", &format!("q{i}")), &[])
                .await
                .cache,
            "miss"
        );
    }
    let text = metrics(&gateway).await;
    assert!(
        metric(&text, "switchboard_cache_bytes ") <= 12.0 * 1024.0,
        "{text}"
    );
    assert!(metric(&text, "switchboard_cache_entries ") >= 1.0, "{text}");
    assert!(
        metric(
            &text,
            r#"switchboard_cache_evictions_total{outcome="size"}"#
        ) >= 10.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"switchboard_cache_lookups_total{outcome="miss"}"#),
        20.0,
        "{text}"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &chat("gpt", "q0"), &[]).await.cache,
        "miss",
        "the oldest went first"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &chat("gpt", "q19"), &[]).await.cache,
        "hit",
        "the newest stayed"
    );
    assert_eq!(
        metric(
            &metrics(&gateway).await,
            r#"switchboard_cache_lookups_total{outcome="hit"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn request_directives_are_honoured() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    let body = chat("gpt", "directives");
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[("cache-control", "no-store")])
            .await
            .cache,
        "bypass"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[]).await.cache,
        "miss",
        "no-store stored nothing"
    );
    assert_eq!(ask(&gateway, "sk-a", &body, &[]).await.cache, "hit");
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[("cache-control", "no-cache")])
            .await
            .cache,
        "miss"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[("x-switchboard-cache", "off")])
            .await
            .cache,
        "bypass"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[("cache-control", "max-age=0")])
            .await
            .cache,
        "miss"
    );
    assert_eq!(
        ask(&gateway, "sk-a", &body, &[("cache-control", "max-age=60")])
            .await
            .cache,
        "hit"
    );
    assert_eq!(
        fake.received().len(),
        5,
        "bypass, miss, no-cache, off, max-age=0 each called upstream"
    );
}

#[tokio::test]
async fn errors_cut_streams_and_truncated_answers_are_not_stored() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    for _ in 0..2 {
        let answer = ask(&gateway, "sk-a", &chat("up/error-500", "x"), &[]).await;
        assert_eq!((answer.status, answer.cache.as_str()), (503, "miss"));
    }
    let cut =
        json!({"model": "up/cut", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    for _ in 0..2 {
        assert_eq!(ask(&gateway, "sk-a", &cut, &[]).await.cache, "miss");
    }
    // Each error was tried twice (the default retry); a cut after the first chunk is not retried.
    assert_eq!(fake.received().len(), 6);
    let truncated = json!({"model": "demo/m", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c d"}]});
    assert!(
        ask(&gateway, "sk-a", &truncated, &[])
            .await
            .text
            .contains(r#""finish_reason":"length""#)
    );
    assert_eq!(ask(&gateway, "sk-a", &truncated, &[]).await.cache, "miss");
    let kept = gateway_with_truncated(&fake).await;
    ask(&kept, "sk-a", &truncated, &[]).await;
    assert_eq!(
        ask(&kept, "sk-a", &truncated, &[]).await.cache,
        "hit",
        "store_truncated: true keeps them"
    );
}

async fn gateway_with_truncated(fake: &FakeOpenAi) -> TestGateway {
    gateway(fake, "{ store_truncated: true }").await
}

#[tokio::test]
async fn streamed_miss_serves_plain_hit_and_plain_miss_serves_streamed_hit() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    let streamed =
        json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "s"}]});
    let first = ask(&gateway, "sk-a", &streamed, &[]).await;
    assert_eq!(first.cache, "miss");
    let plain = ask(&gateway, "sk-a", &chat("gpt", "s"), &[]).await;
    assert_eq!(plain.cache, "hit");
    let body: Value = serde_json::from_str(&plain.text).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! How can I help?"
    );
    assert_eq!(
        body["usage"]["total_tokens"], 18,
        "usage of the streamed answer is kept"
    );

    let plain_first = ask(&gateway, "sk-a", &chat("gpt", "p"), &[]).await;
    assert_eq!(plain_first.cache, "miss");
    let replay = json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
                        "messages": [{"role": "user", "content": "p"}]});
    let hit = ask(&gateway, "sk-a", &replay, &[]).await;
    assert_eq!(hit.cache, "hit");
    let events = sse_data(&hit.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I assist you today?");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 29);
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn concurrent_identical_misses_make_one_upstream_call() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    let body =
        json!({"model": "up/delay-300", "messages": [{"role": "user", "content": "stampede"}]});
    let answers =
        futures_util::future::join_all((0..50).map(|_| ask(&gateway, "sk-a", &body, &[]))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(
        answers.iter().filter(|a| a.cache == "miss").count(),
        1,
        "one leader"
    );
    assert!(answers.iter().all(|a| a.text == answers[0].text));
    assert_eq!(
        fake.received().len(),
        1,
        "one upstream call for the stampede"
    );
}

/// A streamed request never waits for an identical one in flight (its first byte would come
/// only with the other's last): each streams from upstream at once.
#[tokio::test]
async fn concurrent_identical_streams_do_not_wait_for_each_other() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    let body = json!({"model": "up/hang-stream", "stream": true,
        "messages": [{"role": "user", "content": "streams in parallel"}]});
    // The leader's stream never ends; a follower that waited for it would never see a byte.
    let first_chunk = async || {
        let response = client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth("sk-a")
            .json(&body)
            .send()
            .await
            .unwrap();
        let cache = response.headers()["x-switchboard-cache"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut bytes = response.bytes_stream();
        use futures_util::StreamExt;
        let first = bytes.next().await.unwrap().unwrap();
        // The rest of the stream is returned unread, so the connection stays open.
        (cache, first, bytes)
    };
    // The leader is mid-stream, so in flight, before the follower asks. A follower that waited
    // would get nothing for the cache's 30 s limit on waiting.
    let leader = first_chunk().await;
    let follower = tokio::time::timeout(Duration::from_secs(15), first_chunk())
        .await
        .expect("the follower streams without waiting for the leader");
    for (cache, first, _) in [&leader, &follower] {
        assert_eq!(cache, "miss");
        assert!(
            String::from_utf8_lossy(first).contains("chat.completion.chunk"),
            "{first:?}"
        );
    }
    assert_eq!(fake.received().len(), 2, "each stream called upstream");
}

#[tokio::test]
async fn admin_clears_the_cache() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{}").await;
    ask(&gateway, "sk-a", &chat("gpt", "c"), &[]).await;
    assert_eq!(
        ask(&gateway, "sk-a", &chat("gpt", "c"), &[]).await.cache,
        "hit"
    );
    let denied = client()
        .delete(gateway.url("/admin/cache"))
        .bearer_auth("sk-a")
        .send()
        .await
        .unwrap();
    // A client key without the grant is told which one it lacks.
    assert_eq!(denied.status(), 403);
    let denied: serde_json::Value = denied.json().await.unwrap();
    assert!(denied.to_string().contains("'cache:purge'"), "{denied}");
    let cleared = client()
        .delete(gateway.url("/admin/cache"))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        ask(&gateway, "sk-a", &chat("gpt", "c"), &[]).await.cache,
        "miss"
    );
}

#[tokio::test]
async fn only_deterministic_caches_temperature_zero_or_seeded() {
    let fake = FakeOpenAi::start().await;
    let gateway = gateway(&fake, "{ only_deterministic: true }").await;
    let warm =
        json!({"model": "gpt", "temperature": 0.7, "messages": [{"role": "user", "content": "d"}]});
    assert_eq!(ask(&gateway, "sk-a", &warm, &[]).await.cache, "bypass");
    let cold =
        json!({"model": "gpt", "temperature": 0, "messages": [{"role": "user", "content": "d"}]});
    assert_eq!(ask(&gateway, "sk-a", &cold, &[]).await.cache, "miss");
    assert_eq!(ask(&gateway, "sk-a", &cold, &[]).await.cache, "hit");
    let seeded = json!({"model": "gpt", "seed": 1, "messages": [{"role": "user", "content": "d"}]});
    assert_eq!(ask(&gateway, "sk-a", &seeded, &[]).await.cache, "miss");
}
