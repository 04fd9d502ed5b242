//! Routing and resilience: retries to a healthy target, fallbacks, the client's own errors left
//! alone, `Retry-After`, circuit breakers with one probe, balancing strategies, timeouts, streams
//! retried only before their first byte, and instances registered at run time.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::{TestGateway, client, eventually, sse_data};

const ADMIN: &str = "sk-admin-resilience";

struct Reply {
    status: u16,
    target: String,
    body: String,
}

async fn ask(gateway: &TestGateway, body: Value) -> Reply {
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let target = response
        .headers()
        .get("x-switchboard-target")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Reply {
        status,
        target,
        body: response.text().await.unwrap(),
    }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn streamed(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

fn dead_url() -> String {
    // A port that was just free: nothing listens there, so connecting is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/v1", listener.local_addr().unwrap())
}

async fn admin(gateway: &TestGateway, path: &str) -> Value {
    client()
        .get(gateway.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn metrics(gateway: &TestGateway) -> String {
    crate::common::metrics(gateway.url("/metrics")).await
}

fn providers(fake: &FakeOpenAi) -> String {
    format!(
        "  up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\", breaker: {{ failures: 1000 }} }}\n  also: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\", breaker: {{ failures: 1000 }} }}\n  dead: {{ kind: openai, base_url: \"{}\", api_key: x }}\n",
        fake.base_url(),
        fake.base_url(),
        dead_url()
    )
}

#[tokio::test]
async fn a_failing_target_never_reaches_the_client_while_a_healthy_one_exists() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - name: m\n    targets: [ {{ provider: up, model: error-500 }}, {{ provider: dead, model: x }}, {{ provider: also, model: ok }} ]\n    retry: {{ attempts: 3, backoff: 1ms, max_backoff: 5ms }}\n",
        providers(&fake)
    ))
    .await;
    for _ in 0..10 {
        let reply = ask(&gateway, chat("m")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.target, "also/ok");
    }
    let text = metrics(&gateway).await;
    assert!(
        text.contains("switchboard_retries_total{model=\"m\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn fallbacks_run_once_every_target_failed_and_are_named_in_the_header() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: primary, targets: [ {{ provider: dead, model: x }} ], fallbacks: [backup], retry: {{ attempts: 2, backoff: 1ms, max_backoff: 1ms }} }}\n  - {{ name: backup, targets: [ {{ provider: up, model: ok }} ] }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, chat("primary")).await;
    assert_eq!(
        (reply.status, reply.target.as_str()),
        (200, "up/ok"),
        "{}",
        reply.body
    );
    assert!(
        metrics(&gateway)
            .await
            .contains("switchboard_fallbacks_total{model=\"primary\"} 1")
    );
}

#[tokio::test]
async fn the_clients_own_errors_are_returned_as_is_without_retry() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: error-400 }}, {{ provider: also, model: ok }} ], fallbacks: [n], retry: {{ attempts: 3 }} }}\n  - {{ name: n, targets: [ {{ provider: also, model: ok }} ] }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, chat("m")).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(fake.received().len(), 1, "no retry, no fallback");
}

#[tokio::test]
async fn nothing_left_is_503_naming_what_failed_and_a_timeout_is_504() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: broken, targets: [ {{ provider: up, model: error-502 }}, {{ provider: dead, model: x }} ], retry: {{ attempts: 2, backoff: 1ms, max_backoff: 1ms }} }}\n  - {{ name: slow, targets: [ {{ provider: up, model: slow }} ], retry: {{ attempts: 1 }}, timeouts: {{ first_token: 200ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, chat("broken")).await;
    assert_eq!(reply.status, 503);
    let error: Value = serde_json::from_str(&reply.body).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("up/error-502: fake failure 502"),
        "{message}"
    );
    assert!(message.contains("dead/x: cannot connect"), "{message}");
    let reply = ask(&gateway, chat("slow")).await;
    assert_eq!(reply.status, 504, "{}", reply.body);
}

#[tokio::test]
async fn retry_after_from_the_upstream_is_waited_out() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: limited-1 }} ], retry: {{ attempts: 2, backoff: 1ms, max_backoff: 1ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, chat("m")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let received = fake.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at.duration_since(received[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "asked for 1 s, waited {waited:?}"
    );
}

/// A target that asks for a pause past the request's deadline (or past a minute) is left alone:
/// the fallback answers at once instead of the request waiting out its whole time.
#[tokio::test]
async fn a_retry_after_too_long_to_wait_moves_on_to_the_fallback() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}  demo: {{ kind: mock }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: up, model: limited-3600 }} ], retry: {{ attempts: 3 }}, timeouts: {{ total: 30s }}, fallbacks: [spare] }}\n  - {{ name: spare, targets: [ {{ provider: demo, model: mock-spare }} ] }}\n",
        providers(&fake)
    ))
    .await;
    // Had the plan waited, the 30 s deadline would have passed first and no fallback would run.
    let reply = ask(&gateway, chat("m")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.target, "demo/mock-spare");
    assert_eq!(fake.received().len(), 1, "the limited target is asked once");
}

#[tokio::test]
async fn the_breaker_opens_after_n_failures_and_lets_exactly_one_probe_through() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders:\n  flaky: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\", breaker: {{ failures: 3, window: 30s, cooldown: 300ms }} }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: flaky, model: fail-first-3 }} ], retry: {{ attempts: 1 }} }}\n",
        fake.base_url()
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(ask(&gateway, chat("m")).await.status, 503);
    }
    let refused = ask(&gateway, chat("m")).await;
    assert_eq!(refused.status, 503);
    assert!(
        refused.body.contains("circuit breakers open"),
        "{}",
        refused.body
    );
    assert_eq!(fake.received().len(), 3, "an open breaker sends nothing");
    let breaker = async || {
        admin(&gateway, "/admin/upstreams").await["providers"]["flaky"]["instances"][0]["breaker"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(breaker().await, "open");
    eventually("the cooldown to pass", async || {
        breaker().await == "half_open"
    })
    .await;
    // Five at once: one is the probe (the fake has recovered and answers in 300 ms), the others
    // find the breaker half-open with its probe taken.
    let replies = futures_util::future::join_all((0..5).map(|_| ask(&gateway, chat("m")))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one probe");
    assert_eq!(fake.received().len(), 4, "the fake saw exactly one probe");
    assert_eq!(breaker().await, "closed");
    assert_eq!(ask(&gateway, chat("m")).await.status, 200);
}

/// When a fallback fails too, the answer names the target its breaker held off as well.
#[tokio::test]
async fn the_final_error_names_a_target_held_off_by_its_breaker() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n  flaky: {{ kind: openai, base_url: \"{url}\", api_key: \"{KEY}\", breaker: {{ failures: 1, window: 30s, cooldown: 60s }} }}\n  spare: {{ kind: openai, base_url: \"{url}\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: flaky, model: error-500 }} ], retry: {{ attempts: 1 }}, fallbacks: [n] }}\n  - {{ name: n, targets: [ {{ provider: spare, model: error-503 }} ], retry: {{ attempts: 1 }} }}\n",
        url = fake.base_url()
    ))
    .await;
    assert_eq!(ask(&gateway, chat("m")).await.status, 503);
    let reply = ask(&gateway, chat("m")).await;
    assert_eq!(reply.status, 503);
    assert!(
        reply
            .body
            .contains("flaky/error-500 (no instance available: circuit breakers open)")
            && reply.body.contains("spare/error-503"),
        "{}",
        reply.body
    );
}

/// `/ready` lists each provider's state, and says not ready only once no provider can take a
/// request.
#[tokio::test]
async fn ready_is_unavailable_once_every_provider_is_held_off() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:
  flaky: {{ kind: openai, base_url: \"{url}\", api_key: \"{KEY}\", breaker: {{ failures: 1, window: 30s, cooldown: 60s }} }}
  spare: {{ kind: openai, base_url: \"{url}\", api_key: \"{KEY}\", breaker: {{ failures: 1, window: 30s, cooldown: 60s }} }}
models:
  - {{ name: m, targets: [ {{ provider: flaky, model: error-500 }} ], retry: {{ attempts: 1 }} }}
  - {{ name: n, targets: [ {{ provider: spare, model: error-503 }} ], retry: {{ attempts: 1 }} }}
",
        url = fake.base_url()
    ))
    .await;
    let ready = async || {
        let response = client().get(gateway.url("/ready")).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["providers"],
        json!({"flaky": "available", "spare": "available"})
    );
    assert_eq!(ask(&gateway, chat("m")).await.status, 503);
    let (status, body) = ready().await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    assert_eq!(body["providers"]["flaky"], "unavailable");
    assert_eq!(ask(&gateway, chat("n")).await.status, 503);
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(
        body["providers"],
        json!({"flaky": "unavailable", "spare": "unavailable"})
    );
}

#[tokio::test]
async fn weights_hold_exactly_over_2000_requests() {
    let gateway = TestGateway::start(
        "providers: { a: { kind: mock }, b: { kind: mock }, c: { kind: mock } }\nmodels:\n  - { name: m, targets: [ { provider: a, model: x, weight: 5 }, { provider: b, model: x, weight: 3 }, { provider: c, model: x, weight: 2 } ] }\n",
    )
    .await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for batch in 0..100 {
        let replies =
            futures_util::future::join_all((0..20).map(|_| ask(&gateway, chat("m")))).await;
        for reply in replies {
            assert_eq!(reply.status, 200, "batch {batch}");
            *counts.entry(reply.target).or_default() += 1;
        }
    }
    // Smooth weighted round robin is exact, well inside the ±5% asked of it.
    assert_eq!(counts["a/x"], 1000);
    assert_eq!(counts["b/x"], 600);
    assert_eq!(counts["c/x"], 400);
}

#[tokio::test]
async fn least_busy_sends_the_next_request_to_the_idle_target() {
    let gateway = TestGateway::start(
        "providers:\n  a: { kind: mock, latency: { first_token: 400ms } }\n  b: { kind: mock, latency: { first_token: 400ms } }\nmodels:\n  - { name: m, strategy: least_busy, targets: [ { provider: a, model: x }, { provider: b, model: x } ] }\n",
    )
    .await;
    for _ in 0..5 {
        let first = tokio::spawn({
            let url = gateway.url("/v1/chat/completions");
            async move {
                let response = client().post(url).json(&chat("m")).send().await.unwrap();
                response.headers()["x-switchboard-target"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            }
        });
        // Wait until the first is in flight, as the gateway sees it.
        eventually("the first request to be in flight", async || {
            metrics(&gateway)
                .await
                .contains("switchboard_upstream_in_flight{provider=\"a\",instance=\"mock://a\"} 1")
                || metrics(&gateway).await.contains(
                    "switchboard_upstream_in_flight{provider=\"b\",instance=\"mock://b\"} 1",
                )
        })
        .await;
        let second = ask(&gateway, chat("m")).await;
        let first = first.await.unwrap();
        assert_ne!(first, second.target, "the busy target was avoided");
    }
}

#[tokio::test]
async fn a_stream_is_retried_before_its_first_byte_and_never_after() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: before, targets: [ {{ provider: up, model: error-500 }}, {{ provider: also, model: ok }} ], retry: {{ attempts: 2, backoff: 1ms, max_backoff: 1ms }} }}\n  - {{ name: after, targets: [ {{ provider: up, model: cut }}, {{ provider: also, model: ok }} ], retry: {{ attempts: 2, backoff: 1ms, max_backoff: 1ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, streamed("before")).await;
    assert_eq!((reply.status, reply.target.as_str()), (200, "also/ok"));
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
    let before = fake.received().len();
    let reply = ask(&gateway, streamed("after")).await;
    assert_eq!(reply.status, 200);
    let events = sse_data(&reply.body);
    assert!(
        events.last().unwrap().contains("\"error\""),
        "{}",
        reply.body
    );
    assert_eq!(
        fake.received().len(),
        before + 1,
        "no retry once bytes reached the client"
    );
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_and_releases_the_upstream() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: hang-stream }} ], timeouts: {{ idle: 200ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, streamed("m")).await;
    assert_eq!(reply.status, 200);
    let last = sse_data(&reply.body).last().cloned().unwrap();
    assert!(last.contains("stalled"), "{}", reply.body);
    tokio::time::timeout(Duration::from_secs(5), fake.stream_cancelled())
        .await
        .expect("the gateway hung up on the stalled upstream");
}

/// A stream still going when the request's `total` runs out ends with a timeout, not a breakage.
#[tokio::test]
async fn a_stream_past_the_total_deadline_ends_with_a_timeout_event() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: hang-stream }} ], timeouts: {{ total: 400ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, streamed("m")).await;
    assert_eq!(reply.status, 200);
    let last: Value =
        serde_json::from_str(&sse_data(&reply.body).last().cloned().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{}", reply.body);
}

/// A reasoning model sends its headers, then thinks: `first_token` is the limit until its first
/// chunk, not `idle`.
#[tokio::test]
async fn idle_starts_counting_after_the_first_token() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: think-800 }} ], timeouts: {{ idle: 200ms, first_token: 10s }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, streamed("m")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        sse_data(&reply.body).last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        reply.body
    );
}

/// Comments are the upstream's sign of life: they restart the idle timer and reach the client.
#[tokio::test]
async fn keep_alive_comments_keep_a_quiet_stream_open() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n{}models:\n  - {{ name: m, targets: [ {{ provider: up, model: keepalive }} ], timeouts: {{ idle: 300ms }} }}\n",
        providers(&fake)
    ))
    .await;
    let reply = ask(&gateway, streamed("m")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        sse_data(&reply.body).last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("\n: keep-alive\n\n"), "{}", reply.body);
}

#[tokio::test]
async fn instances_registered_at_run_time_take_traffic_until_their_ttl_runs_out() {
    let home = FakeOpenAi::start().await;
    let visitor = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders:\n  up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\", registration: {{ allow: [127.0.0.0/8] }} }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: up, model: delay-50 }} ] }}\n",
        home.base_url()
    ))
    .await;
    let register = |ttl: &str| {
        client()
            .post(gateway.url("/admin/upstreams"))
            .bearer_auth(ADMIN)
            .json(&json!({"provider": "up", "url": visitor.base_url(), "ttl": ttl}))
            .send()
    };
    // Long enough that a loaded CI machine still routes the burst below before it lapses.
    assert_eq!(register("4s").await.unwrap().status(), 200);
    let listed = admin(&gateway, "/admin/upstreams").await;
    let instances = listed["providers"]["up"]["instances"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(instances.len(), 2, "{listed}");
    assert!(instances[1]["origin"]["registered"].is_object(), "{listed}");
    let replies = futures_util::future::join_all((0..20).map(|_| ask(&gateway, chat("m")))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        !visitor.received().is_empty(),
        "the registered instance took traffic"
    );
    eventually("the registration to lapse", async || {
        admin(&gateway, "/admin/upstreams").await["providers"]["up"]["instances"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    let before = visitor.received().len();
    for _ in 0..5 {
        assert_eq!(ask(&gateway, chat("m")).await.status, 200);
    }
    assert_eq!(
        visitor.received().len(),
        before,
        "a lapsed instance gets nothing"
    );
    let bad = client()
        .post(gateway.url("/admin/upstreams"))
        .bearer_auth(ADMIN)
        .json(&json!({"provider": "nope", "url": "http://x", "ttl": "1s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);
}

/// A registration's TTL is bounded (a huge one used to overflow the clock and drop the
/// connection), and a service that leaves early withdraws its instance.
#[tokio::test]
async fn registrations_are_bounded_and_can_be_withdrawn() {
    let home = FakeOpenAi::start().await;
    let visitor = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders:\n  up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\", registration: {{ allow: [127.0.0.0/8] }} }}\n",
        home.base_url()
    ))
    .await;
    let call = |method: reqwest::Method, body: Value| {
        client()
            .request(method, gateway.url("/admin/upstreams"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;
    let huge = call(
        post.clone(),
        json!({"provider": "up", "url": visitor.base_url(), "ttl": "300000000000w"}),
    )
    .await
    .unwrap();
    assert_eq!(huge.status(), 400);
    let body: Value = huge.json().await.unwrap();
    assert_eq!(body["error"]["param"], "ttl");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30 days"),
        "{body}"
    );
    let fine = call(
        post,
        json!({"provider": "up", "url": visitor.base_url(), "ttl": "1h"}),
    )
    .await;
    assert_eq!(fine.unwrap().status(), 200);
    let count = async || {
        admin(&gateway, "/admin/upstreams").await["providers"]["up"]["instances"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count().await, 2);
    let gone = call(
        delete.clone(),
        json!({"provider": "up", "url": visitor.base_url()}),
    )
    .await;
    assert_eq!(gone.unwrap().status(), 200);
    assert_eq!(count().await, 1, "withdrawn at once");
    let again = call(
        delete.clone(),
        json!({"provider": "up", "url": visitor.base_url()}),
    )
    .await;
    assert_eq!(again.unwrap().status(), 404);
    let configured = call(delete, json!({"provider": "up", "url": home.base_url()})).await;
    assert_eq!(
        configured.unwrap().status(),
        404,
        "configured instances stay"
    );
    assert_eq!(count().await, 1);
    // Without the admin key, or with another, nothing is registered or withdrawn.
    for key in [None, Some("sk-not-the-admin")] {
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let mut request = client()
                .request(method.clone(), gateway.url("/admin/upstreams"))
                .json(&json!({"provider": "up", "url": home.base_url(), "ttl": "1h"}));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let status = request.send().await.unwrap().status();
            assert_eq!(status, 401, "{method} with {key:?}");
        }
    }
    assert_eq!(count().await, 1);
}

#[tokio::test]
async fn a_target_failing_at_a_set_rate_costs_the_client_nothing() {
    // Half the tries of `flaky` fail, each retried on `steady`, until flaky's breaker opens
    // (five failures) and the balancer skips it.
    let gateway = TestGateway::start(
        "providers:\n  flaky: { kind: mock, error_rate: 0.5 }\n  steady: { kind: mock }\nmodels:\n  - { name: m, targets: [ { provider: flaky, model: x }, { provider: steady, model: x } ], retry: { attempts: 2, backoff: 1ms, max_backoff: 1ms } }\n",
    )
    .await;
    let replies = futures_util::future::join_all((0..200).map(|_| ask(&gateway, chat("m")))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "every request succeeded"
    );
    let answered_by_flaky = replies.iter().filter(|r| r.target == "flaky/x").count();
    assert!(
        answered_by_flaky > 0,
        "the flaky target still served when it worked"
    );
    assert!(
        metrics(&gateway)
            .await
            .contains("switchboard_retries_total{model=\"m\"}")
    );
}

/// The seconds a response's `Retry-After` asks for.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A 429 is one tenant over its quota at the provider, not a sick instance: the model is held for
/// its `Retry-After` by every request (another target serves meanwhile, or the client gets the
/// 429 and the wait at once), and the breaker, which would shut the instance for every model
/// and key, hears nothing of it.
#[tokio::test]
async fn a_rate_limited_model_is_held_for_its_retry_after_and_opens_no_breaker() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders:\n  up: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\", breaker: {{ failures: 2, cooldown: 60s }} }}\n  also: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: tenant, targets: [ {{ provider: up, model: error-429 }} ], retry: {{ attempts: 1 }} }}\n  - {{ name: spread, targets: [ {{ provider: up, model: limited-30 }}, {{ provider: also, model: ok }} ] }}\n  - {{ name: solo, targets: [ {{ provider: up, model: limited-40 }} ], timeouts: {{ total: 5s }} }}\n",
        fake.base_url()
    ))
    .await;
    let to_model = |model: &str| {
        fake.received()
            .iter()
            .filter(|r| r.body["model"] == model)
            .count()
    };

    for _ in 0..5 {
        let reply = ask(&gateway, chat("tenant")).await;
        assert_eq!(reply.status, 429, "{}", reply.body);
        assert!(reply.body.contains("rate_limit_exceeded"), "{}", reply.body);
    }
    let instance = &admin(&gateway, "/admin/upstreams").await["providers"]["up"]["instances"][0];
    assert_eq!(instance["breaker"], "closed", "{instance}");
    assert_eq!(instance["failures"], 0, "{instance}");
    assert_eq!(ask(&gateway, chat("up/ok")).await.status, 200);

    // The other target answers while the limited one is held; it is asked exactly once.
    for _ in 0..6 {
        let reply = ask(&gateway, chat("spread")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.target, "also/ok");
    }
    assert_eq!(to_model("limited-30"), 1);

    // With nothing else to try and a wait past the deadline, the client gets the 429 and the
    // wait; while the hold lasts, the provider is not asked again.
    for _ in 0..2 {
        let response = client()
            .post(gateway.url("/v1/chat/completions"))
            .json(&chat("solo"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        let wait = retry_after(&response);
        assert!((1..=40).contains(&wait), "Retry-After: {wait}");
    }
    assert_eq!(to_model("limited-40"), 1);
}

/// Every try of every target and fallback ended in the provider's 429: the client gets 429
/// `rate_limit_exceeded` naming the providers, with the soonest `Retry-After` of their holds, so
/// SDKs back off as they would against the provider itself.
#[tokio::test]
async fn when_every_try_is_rate_limited_the_client_gets_429_with_retry_after() {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&format!(
        "providers:\n  up: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\" }}\n  also: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: busy, targets: [ {{ provider: up, model: error-429 }}, {{ provider: also, model: error-429 }} ], fallbacks: [spare] }}\n  - {{ name: spare, targets: [ {{ provider: also, model: limited-3600 }} ] }}\n",
        fake.base_url()
    ))
    .await;
    let response = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&chat("busy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    // The holds: 1 s for each 429 without a Retry-After, an hour for the fallback's.
    assert!((1..=3600).contains(&wait), "Retry-After: {wait}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("up/error-429") && message.contains("also/limited-3600"),
        "{message}"
    );
}

/// A registered instance is sent the provider's key, so registration is allowed only where the
/// provider's `registration.allow` says: a provider without it takes none, and a URL outside it
/// is refused naming the rule. The listener behind a refused URL never hears the key.
#[tokio::test]
async fn an_instance_outside_registration_allow_is_refused_and_never_sent_the_key() {
    let home = FakeOpenAi::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Named, not numbered: the same loopback listener, outside a rule that allows 127.0.0.1.
    let heard = format!("localhost:{}", listener.local_addr().unwrap().port());
    let received = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<u8>::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().await.extend_from_slice(&buffer[..n]);
                }
            });
        }
    });
    let gateway = TestGateway::start(&format!(
        "server: {{ admin_key: {ADMIN} }}\nproviders:\n  up: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\", registration: {{ allow: [127.0.0.1/32, \"*.internal\"] }} }}\n  closed: {{ kind: openai, base_url: \"{0}\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: m, targets: [ {{ provider: up, model: ok }} ] }}\n  - {{ name: c, targets: [ {{ provider: closed, model: ok }} ] }}\n",
        home.base_url()
    ))
    .await;
    let register = |provider: &str| {
        client()
            .post(gateway.url("/admin/upstreams"))
            .bearer_auth(ADMIN)
            .json(&json!({"provider": provider, "url": format!("http://{heard}/v1"), "ttl": "1h"}))
            .send()
    };
    for (provider, rule) in [
        ("up", "registration.allow"),
        ("closed", "takes no registrations"),
    ] {
        let refused = register(provider).await.unwrap();
        assert_eq!(refused.status(), 403);
        let body: serde_json::Value = refused.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(rule), "{message}");
        assert!(!message.contains(KEY), "{message}");
    }
    for _ in 0..10 {
        assert_eq!(ask(&gateway, chat("m")).await.status, 200);
        assert_eq!(ask(&gateway, chat("c")).await.status, 200);
    }
    let instances = admin(&gateway, "/admin/upstreams").await;
    assert_eq!(
        instances["providers"]["up"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        received.lock().await.is_empty(),
        "the listener was sent something"
    );
    // Inside the rule, one is taken, by address or by name.
    for url in ["http://127.0.0.1:9/v1", "http://vllm.internal:8000/v1"] {
        let allowed = client()
            .post(gateway.url("/admin/upstreams"))
            .bearer_auth(ADMIN)
            .json(&json!({"provider": "up", "url": url, "ttl": "1h"}))
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{url}");
    }
}
