//! Hot reload: a config file reloaded by `POST /admin/reload`, a change to the file and
//! `SIGHUP`. A bad file changes nothing and says why at each YAML path; a good one is swapped in
//! whole while requests and streams run on the config they started with.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, client, eventually, sse_data};

const ADMIN: &str = "sk-reload-admin";

/// A config whose model `m` goes to `target` of the mock providers, key `k` with a request rate
/// of `rpm`, and model `extra` when `extra` is set.
fn config(target: &str, rpm: u32, extra: bool) -> String {
    let extra = if extra {
        "  - { name: extra, targets: [ { provider: one, model: extra } ] }\n"
    } else {
        ""
    };
    format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  one: {{ kind: mock, latency: {{ first_token: 5ms, per_chunk: 2ms }} }}
  two: {{ kind: mock, latency: {{ first_token: 5ms, per_chunk: 2ms }} }}
  secret: {{ kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-provider-secret-0123 }}
models:
  - {{ name: m, targets: [ {{ provider: {target}, model: gen }} ] }}
{extra}keys:
  - {{ name: k, key: sk-reload-k, limits: {{ requests_per_minute: {rpm} }}, grants: [reload, config:read] }}
  - {{ name: viewer, key: sk-reload-viewer }}
"#
    )
}

async fn chat(gateway: &TestGateway, model: &str, stream: bool) -> reqwest::Response {
    chat_with(&client(), gateway, model, stream).await
}

async fn chat_with(
    client: &reqwest::Client,
    gateway: &TestGateway,
    model: &str,
    stream: bool,
) -> reqwest::Response {
    client
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-reload-k")
        .json(&json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "count to five"}],
        }))
        .send()
        .await
        .unwrap()
}

async fn reload(gateway: &TestGateway, key: &str) -> (StatusCode, Value) {
    let response = client()
        .post(gateway.url("/admin/reload"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn target(response: &reqwest::Response) -> String {
    response.headers()["x-switchboard-target"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_bad_file_changes_nothing_and_every_problem_is_named() {
    let gateway = TestGateway::start_reloadable(&config("one", 1000, false)).await;
    let before = client()
        .get(gateway.url("/admin/config"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    gateway.write_config(&config("nowhere", 1000, false).replace("limits: {", "limts: {"));
    let (status, body) = reload(&gateway, ADMIN).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"keys[0].limts"), "{body}");
    assert!(paths.contains(&"models[0].targets[0].provider"), "{body}");
    // The running config keeps serving, all of it.
    let answer = chat(&gateway, "m", false).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(target(&answer), "one/gen");
    let after: Value = client()
        .get(gateway.url("/admin/config"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["hash"], before["hash"]);
    assert_eq!(after["loaded_at"], before["loaded_at"]);
    let metrics = client().get(gateway.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_config_reloads_total{result=\"refused\"}"));
    // The watcher may have refused the edit too, once.
    let count = refused.and_then(|l| l.split(' ').nth(1)?.parse::<u32>().ok());
    assert!(matches!(count, Some(1 | 2)), "{metrics}");
}

#[tokio::test]
async fn a_reload_applies_keys_models_and_targets_and_usage_follows_the_key_name() {
    let gateway = TestGateway::start_reloadable(&config("one", 1000, true)).await;
    assert_eq!(chat(&gateway, "m", false).await.status(), StatusCode::OK);
    assert_eq!(
        chat(&gateway, "extra", false).await.status(),
        StatusCode::OK
    );

    let next = config("two", 500, false).replace(
        "  - { name: viewer, key: sk-reload-viewer }",
        "  - { name: viewer, key: sk-reload-viewer, grants: [config:read] }\n  - { name: late, key: sk-reload-late }",
    );
    gateway.write_config(&next);
    // A key without the grant may not reload; one with it may.
    let (status, body) = reload(&gateway, "sk-reload-viewer").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'reload'")
    );
    let (status, body) = reload(&gateway, "sk-reload-k").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["restart_required"], json!([]));

    let answer = chat(&gateway, "m", false).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(target(&answer), "two/gen");
    assert_eq!(answer.headers()["x-ratelimit-limit-requests"], "500");
    assert_eq!(
        chat(&gateway, "extra", false).await.status(),
        StatusCode::NOT_FOUND
    );
    let late = client()
        .get(gateway.url("/v1/models"))
        .bearer_auth("sk-reload-late")
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::OK);
    let usage = crate::common::key_usage(gateway.url("/admin/usage"), ADMIN, "k").await;
    assert_eq!(usage["requests"], 3, "{usage}");

    // The running config, secrets masked, hashed as the file is.
    let shown = client()
        .get(gateway.url("/admin/config"))
        .bearer_auth("sk-reload-viewer")
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let shown: Value = shown.json().await.unwrap();
    let text = shown.to_string();
    for secret in [
        ADMIN,
        "sk-reload-k",
        "sk-reload-viewer",
        "sk-provider-secret-0123",
    ] {
        assert!(!text.contains(secret), "{secret} shown in {text}");
    }
    assert_eq!(
        shown["config"]["models"][0]["targets"][0]["provider"],
        "two"
    );
    assert_eq!(shown["config"]["providers"]["secret"]["kind"], "openai");
    let file = std::fs::read(gateway.config_file.as_ref().unwrap()).unwrap();
    assert_eq!(shown["hash"], sha256_hex(&file));
}

#[tokio::test]
async fn what_needs_a_restart_is_reported_and_the_rest_applies() {
    let gateway = TestGateway::start_reloadable(&config("one", 1000, false)).await;
    let next = format!(
        "{}\nserver: {{ admin_key: {ADMIN}, listen: \"127.0.0.1:1\" }}\n",
        config("two", 1000, false).replace(&format!("server: {{ admin_key: {ADMIN} }}"), "")
    );
    gateway.write_config(&next);
    let (status, body) = reload(&gateway, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["restart_required"], json!(["server.listen"]));
    assert_eq!(target(&chat(&gateway, "m", false).await), "two/gen");
}

#[tokio::test]
async fn an_edited_file_is_reloaded_by_itself() {
    let gateway = TestGateway::start_reloadable(&config("one", 1000, false)).await;
    gateway.write_config(&config("one", 1000, true));
    eventually("the edited file to be reloaded", async || {
        chat(&gateway, "extra", false).await.status() == StatusCode::OK
    })
    .await;
}

/// 20 reloads alternating key limits, models and targets under a steady load of plain and
/// streamed requests: none fails, every stream completes, and after each reload requests follow
/// the new config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request_and_each_takes_effect() {
    let gateway =
        std::sync::Arc::new(TestGateway::start_reloadable(&config("one", 100_000, false)).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (gateway, stop) = (gateway.clone(), stop.clone());
        tokio::spawn(async move {
            // 200 requests a second, every other one streamed.
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut requests = Vec::new();
            let mut n = 0u32;
            let client = client();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let (gateway, client) = (gateway.clone(), client.clone());
                requests.push(tokio::spawn(async move {
                    let stream = n.is_multiple_of(2);
                    let response = chat_with(&client, &gateway, "m", stream).await;
                    let status = response.status();
                    let body = response.text().await;
                    (stream, status, body)
                }));
            }
            futures_util::future::join_all(requests).await
        })
    };
    for i in 0..20u32 {
        let (provider, rpm, extra) = if i.is_multiple_of(2) {
            ("two", 90_000, true)
        } else {
            ("one", 100_000, false)
        };
        gateway.write_config(&config(provider, rpm, extra));
        let (status, body) = reload(&gateway, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "reload {i}: {body}");
        let after = chat(&gateway, "m", false).await;
        assert_eq!(target(&after), format!("{provider}/gen"), "reload {i}");
        assert_eq!(
            after.headers()["x-ratelimit-limit-requests"],
            rpm.to_string().as_str(),
            "reload {i}"
        );
        let extra_status = chat(&gateway, "extra", false).await.status();
        let expected = if extra {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(extra_status, expected, "reload {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = load.await.unwrap();
    assert!(results.len() > 100, "the load ran: {}", results.len());
    for result in results {
        let (stream, status, body) = result.unwrap();
        assert_eq!(status, StatusCode::OK, "{body:?}");
        let body = body.unwrap();
        if stream {
            let events = sse_data(&body);
            assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
            let finished = events
                .iter()
                .any(|e| e.contains("\"finish_reason\":\"stop\""));
            assert!(finished, "a stream ended early: {body}");
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
