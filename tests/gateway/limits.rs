//! Per-key request limits: exact under concurrency, well-formed 429s, OpenAI's headers, and
//! refused requests that never reach a provider.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client};

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn chat(gateway: &TestGateway, key: &str, body: Value) -> Reply {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Reply {
        status,
        headers,
        body: response.text().await.unwrap(),
    }
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn header(reply: &Reply, name: &str) -> String {
    reply
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn requests_per_minute_is_exact_under_200_concurrent_requests() {
    let gateway = TestGateway::start(
        "providers: { demo: { kind: mock } }\nkeys:\n  - { name: a, key: sk-a, limits: { requests_per_minute: 50 } }\n  - { name: b, key: sk-b }\n",
    )
    .await;
    let replies =
        futures_util::future::join_all((0..200).map(|_| chat(&gateway, "sk-a", hello("demo/m"))))
            .await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!((ok.len(), refused.len()), (50, 150));
    let remaining: BTreeSet<u32> = ok
        .iter()
        .map(|r| header(r, "x-ratelimit-remaining-requests").parse().unwrap())
        .collect();
    assert_eq!(
        remaining,
        (0..50).collect(),
        "each admitted request saw the count after itself"
    );
    assert!(
        ok.iter()
            .all(|r| header(r, "x-ratelimit-limit-requests") == "50")
    );
    for reply in &refused {
        let error: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
        assert_eq!(error["error"]["type"], "requests");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("requests_per_minute is 50"),
            "{error}"
        );
        let retry: u64 = header(reply, "retry-after").parse().expect("whole seconds");
        assert!(
            (1..=2).contains(&retry),
            "one request frees up every 1.2 s: {retry}"
        );
        assert_eq!(header(reply, "x-ratelimit-remaining-requests"), "0");
        assert!(!header(reply, "x-ratelimit-reset-requests").is_empty());
    }
    let other = chat(&gateway, "sk-b", hello("demo/m")).await;
    assert_eq!(other.status, 200, "limits belong to one key");
    assert!(other.headers.get("x-ratelimit-limit-requests").is_none());
}

#[tokio::test]
async fn refused_requests_never_reach_the_provider() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers: {{ up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\" }} }}\nkeys:\n  - {{ name: a, key: sk-a, limits: {{ requests_per_minute: 1 }} }}\n",
        fake.base_url()
    ))
    .await;
    assert_eq!(chat(&gateway, "sk-a", hello("up/ok")).await.status, 200);
    for _ in 0..3 {
        assert_eq!(chat(&gateway, "sk-a", hello("up/ok")).await.status, 429);
    }
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn max_concurrent_counts_streams_until_their_last_byte() {
    let gateway = TestGateway::start(
        "providers: { slow: { kind: mock, latency: { first_token: 10ms, per_chunk: 100ms } } }\nkeys:\n  - { name: a, key: sk-a, limits: { max_concurrent: 1 } }\n",
    )
    .await;
    let mut stream = client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-a")
        .json(&json!({"model": "slow/m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
        .chunk()
        .await
        .unwrap()
        .expect("the stream has started");
    let refused = chat(&gateway, "sk-a", hello("slow/m")).await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("max_concurrent is 1"),
        "{}",
        refused.body
    );
    assert!(!header(&refused, "retry-after").is_empty());
    while stream.chunk().await.unwrap().is_some() {}
    drop(stream);
    // The slot is released when the body is dropped; the next request is admitted.
    assert_eq!(chat(&gateway, "sk-a", hello("slow/m")).await.status, 200);
}
