//! Replicas sharing one Redis behave as one gateway: limits admit exactly across them, spend is
//! never lost (a replica SIGKILLed, Redis killed), the cache is shared, and a Redis outage is
//! survived under both `on_redis_error` policies. Real `redis-server`s and gateway processes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::process::Process;
use crate::common::redis::{RedisCluster, RedisServer};
use crate::common::replicas::{Replicas, Reply, post};
use crate::common::{client, sse_data, temp_dir};

const ADMIN: &str = "sk-admin-replicas";

/// The fake's whole answer reports 19 prompt + 10 completion tokens; "hello" is estimated at 8
/// prompt tokens, so `max_tokens: 21` reserves exactly what a call uses (see `quota.rs`).
const CALL_TOKENS: u64 = 29;

fn call(model: &str) -> Value {
    json!({"model": model, "max_tokens": 21, "messages": [{"role": "user", "content": "hello"}]})
}

/// Sends `count` copies of `body` at once, round-robin over the running replicas.
async fn spread(replicas: &Replicas, count: usize, key: &'static str, body: &Value) -> Vec<Reply> {
    let running = replicas.running();
    let urls: Vec<String> = (0..count)
        .map(|n| replicas.url(running[n % running.len()], "/v1/chat/completions"))
        .collect();
    futures_util::future::join_all(urls.into_iter().map(|url| post(url, key, body.clone()))).await
}

/// Sends `count` calls to replica `i`, each after the last was answered, and checks each is a 200.
async fn one_by_one(replicas: &Replicas, i: usize, key: &'static str, count: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for n in 0..count {
        let reply = post(replicas.url(i, "/v1/chat/completions"), key, call("up/ok")).await;
        assert_eq!(reply.status, 200, "request {n}: {}", reply.text);
        replies.push(reply);
    }
    replies
}

async fn usage(url: String, key: &str) -> Value {
    crate::common::key_usage(url, ADMIN, key).await
}

/// Tokens the 200 answers among `replies` reported.
fn tokens_answered(replies: &[Reply]) -> u64 {
    replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            r.body["usage"]["total_tokens"]
                .as_u64()
                .expect("usage in a 200")
        })
        .sum()
}

/// Waits until every running replica's `/admin/usage` shows `tokens` for `key`; the last
/// settlements may still be on their way to Redis. Panics with what they showed after 15 s.
async fn wait_for_ledger(replicas: &Replicas, key: &str, tokens: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut seen = Vec::new();
        for i in replicas.running() {
            let report = usage(replicas.url(i, "/admin/usage"), key).await;
            let used = report["input_tokens"].as_u64().unwrap()
                + report["output_tokens"].as_u64().unwrap();
            seen.push(used);
        }
        if seen.iter().all(|&used| used == tokens) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "answers reported {tokens} tokens; replicas' ledgers say {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(fake: &FakeOpenAi, redis_url: &str, state_extra: &str, keys: &str) -> String {
    format!(
        "server: {{ admin_key: {ADMIN} }}
providers: {{ up: {{ kind: openai, base_url: \"{}\", api_key: \"{KEY}\" }} }}
models:
  - {{ name: priced, targets: [ {{ provider: up, model: ok, pricing: {{ input: 0, output: 1000000 }} }} ] }}
  - {{ name: gated, targets: [ {{ provider: up, model: gated }} ] }}
  - {{ name: slow, targets: [ {{ provider: up, model: delay-300 }} ] }}
keys:
{keys}
state:
  data_dir: {{data_dir}}
  redis: {{ url: {redis_url}, lease: 2s, timeout: 500ms }}
{state_extra}
",
        fake.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_and_a_budget_admit_exactly_across_three_replicas() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    // $1 per output token: a call's 10 tokens cost $10, a budget of $70 holds exactly 7.
    let keys = "  - { name: rated, key: sk-rated, limits: { requests_per_minute: 50 } }
  - { name: budgeted, key: sk-budget, limits: { budget_usd: { amount: 70, period: month } } }";
    let replicas = Replicas::start(&config(&fake, &redis.url(), "", keys), 3);

    let started = Instant::now();
    let replies = spread(&replicas, 200, "sk-rated", &call("up/ok")).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, refused.len()),
        (50, 150),
        "exactly the limit, over all replicas"
    );
    for reply in &refused {
        let retry: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(reply.body["error"]["code"], "rate_limit_exceeded");
    }
    assert_eq!(fake.received().len(), 50);
    // The window of admissions goes away a minute after the last one (made since `started`),
    // not before, and at most a second more (for one made ahead, dated a second later): an idle
    // key leaves nothing behind, a busy one loses no admission of its minute.
    let ttl: u128 = redis
        .cli(&["PTTL", "switchboard:{rated}:rate"])
        .trim()
        .parse()
        .unwrap();
    let since = started.elapsed().as_millis();
    assert!(
        ttl + since >= 60_000 && ttl <= 62_000,
        "{ttl} ms, {since} ms after the first"
    );

    let before = fake.received().len();
    let body = json!({"model": "priced", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]});
    let replies = spread(&replicas, 30, "sk-budget", &body).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 7, "a budget for 7 calls admits 7");
    assert_eq!(fake.received().len() - before, 7, "7 reach the provider");
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.body["error"]["code"], "insufficient_quota",
            "{}",
            reply.text
        );
    }
    // Settlements reach Redis just after their answers: wait for the last of them.
    let deadline = Instant::now() + Duration::from_secs(15);
    let report = loop {
        let report = usage(replicas.url(2, "/admin/usage"), "budgeted").await;
        if report["cost_usd"] == 70.0 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(report["cost_usd"], 70.0);
    assert_eq!(report["limits"]["budget_usd"]["remaining"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_flight_slots_are_shared_and_a_killed_replica_gives_its_back() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: capped, key: sk-capped, limits: { max_concurrent: 5 } }
  - { name: pair, key: sk-pair, limits: { max_concurrent: 2 } }";
    let mut replicas = Replicas::start(&config(&fake, &redis.url(), "", keys), 3);

    let replies = spread(&replicas, 50, "sk-capped", &call("slow")).await;
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    assert!(
        replies.iter().any(|r| r.status == 429),
        "some were over the cap"
    );
    assert!(
        fake.peak_in_flight() <= 5,
        "the upstream saw {} at once",
        fake.peak_in_flight()
    );
    let report = usage(replicas.url(0, "/admin/usage"), "capped").await;
    assert_eq!(
        report["limits"]["max_concurrent"]["in_flight"], 0,
        "all given back"
    );

    // Two requests held upstream through replica 2, which then dies holding both slots.
    let held: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(post(
                replicas.url(2, "/v1/chat/completions"),
                "sk-pair",
                call("gated"),
            ))
        })
        .collect();
    while fake.in_flight() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let full = post(
        replicas.url(0, "/v1/chat/completions"),
        "sk-pair",
        call("up/ok"),
    )
    .await;
    assert_eq!(full.status, 429, "both slots are held: {}", full.text);
    replicas.kill(2);
    for request in held {
        assert_eq!(request.await.unwrap().status, 0, "killed under the request");
    }
    // The lease is 2 s: the slots come back once it runs out, without the dead replica.
    let killed = Instant::now();
    loop {
        let reply = post(
            replicas.url(0, "/v1/chat/completions"),
            "sk-pair",
            call("up/ok"),
        )
        .await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 429);
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "not before the lease runs out"
    );
    fake.open_gate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_answered_equals_the_ledger_after_a_replica_is_killed_mid_load() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: metered, key: sk-metered, limits: { tokens_per_day: 10000000 } }";
    let mut replicas = Replicas::start(&config(&fake, &redis.url(), "", keys), 3);
    let mut answered = 0;

    let first = spread(&replicas, 60, "sk-metered", &call("up/ok")).await;
    answered += tokens_answered(&first);
    // Load in flight on replica 1 when it dies: held upstream, so none of it is answered.
    let held: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(post(
                replicas.url(1, "/v1/chat/completions"),
                "sk-metered",
                call("gated"),
            ))
        })
        .collect();
    let elsewhere = tokio::spawn(spread_owned(
        vec![
            replicas.url(0, "/v1/chat/completions"),
            replicas.url(2, "/v1/chat/completions"),
        ],
        40,
        "sk-metered",
        call("up/ok"),
    ));
    while fake.in_flight() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replicas.kill(1);
    fake.open_gate();
    for request in held {
        assert_eq!(request.await.unwrap().status, 0);
    }
    answered += tokens_answered(&elsewhere.await.unwrap());
    replicas.restart(1);
    let last = spread(&replicas, 60, "sk-metered", &call("up/ok")).await;
    assert!(last.iter().all(|r| r.status == 200));
    answered += tokens_answered(&last);
    assert_eq!(answered, 160 * CALL_TOKENS);
    wait_for_ledger(&replicas, "metered", answered).await;
}

async fn spread_owned(
    urls: Vec<String>,
    count: usize,
    key: &'static str,
    body: Value,
) -> Vec<Reply> {
    let calls = (0..count).map(|n| post(urls[n % urls.len()].clone(), key, body.clone()));
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cache_is_shared_and_one_miss_calls_upstream_for_every_replica() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: c, key: sk-c }";
    let yaml = format!(
        "{}cache: {{ enabled: true }}\n",
        config(&fake, &redis.url(), "", keys)
    );
    let replicas = Replicas::start(&yaml, 3);
    let cached = |text: &str| json!({"model": "up/ok", "temperature": 0, "messages": [{"role": "user", "content": text}]});
    let status = |reply: &Reply| {
        reply.headers["x-switchboard-cache"]
            .to_str()
            .unwrap()
            .to_owned()
    };

    let miss = post(
        replicas.url(0, "/v1/chat/completions"),
        "sk-c",
        cached("one"),
    )
    .await;
    assert_eq!(status(&miss), "miss");
    for i in [1, 2] {
        let hit = post(
            replicas.url(i, "/v1/chat/completions"),
            "sk-c",
            cached("one"),
        )
        .await;
        assert_eq!(status(&hit), "hit", "replica {i}");
        assert_eq!(hit.body["choices"], miss.body["choices"]);
    }
    assert_eq!(fake.received().len(), 1);

    // A streamed miss on one replica replays as a stream on another.
    let mut streamed = cached("two");
    streamed["stream"] = json!(true);
    let first = post(
        replicas.url(0, "/v1/chat/completions"),
        "sk-c",
        streamed.clone(),
    )
    .await;
    assert_eq!(status(&first), "miss");
    let replay = post(
        replicas.url(1, "/v1/chat/completions"),
        "sk-c",
        streamed.clone(),
    )
    .await;
    assert_eq!(status(&replay), "hit");
    assert!(
        replay.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_data(&replay.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(fake.received().len(), 2);

    // 30 identical misses at once over three replicas: one upstream call.
    let slow = json!({"model": "slow", "temperature": 0, "messages": [{"role": "user", "content": "three"}]});
    let replies = spread(&replicas, 30, "sk-c", &slow).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(fake.received().len(), 3, "one call for thirty requests");
    let answers: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| r.body["choices"].to_string())
        .collect();
    assert_eq!(answers.len(), 1, "everyone got the one answer");
}

/// Redis killed under load and restarted: with `deny`, 503 while it is down and service again
/// within seconds of its return; with `allow`, no request fails. No settlement is lost either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_is_survived_and_no_settlement_is_lost() {
    for policy in ["deny", "allow"] {
        let mut redis = RedisServer::durable();
        let fake = FakeOpenAi::start().await;
        let keys = "  - { name: k, key: sk-k, limits: { tokens_per_day: 10000000, requests_per_minute: 100000 } }";
        let extra = format!("  on_redis_error: {policy}");
        let replicas = Replicas::start(&config(&fake, &redis.url(), &extra, keys), 3);
        let mut answered = tokens_answered(&spread(&replicas, 30, "sk-k", &call("up/ok")).await);

        // Requests in flight (held upstream) when Redis dies: they settle after it is back.
        let held = tokio::spawn(spread_owned(
            vec![replicas.url(0, "/v1/chat/completions")],
            3,
            "sk-k",
            call("gated"),
        ));
        while fake.in_flight() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis.kill();
        fake.open_gate();
        let during = spread(&replicas, 30, "sk-k", &call("up/ok")).await;
        let ready = client()
            .get(replicas.url(1, "/ready"))
            .send()
            .await
            .unwrap();
        let ready_status = ready.status().as_u16();
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["state"], "degraded", "{ready}");
        assert!(ready["state_cause"].as_str().is_some_and(|c| !c.is_empty()));
        if policy == "deny" {
            assert_eq!(ready_status, 503);
            // Each replica's reservation made ahead before Redis died may admit one request
            // (Redis counted it); every other request waits on Redis and is refused.
            let admitted = during.iter().filter(|r| r.status == 200).count();
            assert!(admitted <= 3, "{admitted} admitted while Redis was down");
            for reply in during.iter().filter(|r| r.status != 200) {
                assert_eq!(reply.status, 503, "{}", reply.text);
                assert_eq!(reply.body["error"]["code"], "state_unavailable");
            }
        } else {
            assert_eq!(ready_status, 200);
            assert!(
                during.iter().all(|r| r.status == 200),
                "allow: nothing fails"
            );
        }
        answered += tokens_answered(&during);
        answered += tokens_answered(&held.await.unwrap());

        redis.restart();
        // Each replica probes Redis again within a fraction of a second of a request.
        let back = Instant::now();
        for i in replicas.running() {
            loop {
                let reply = post(
                    replicas.url(i, "/v1/chat/completions"),
                    "sk-k",
                    call("up/ok"),
                )
                .await;
                if reply.status == 200 {
                    answered += tokens_answered(&[reply]);
                    break;
                }
                let waited = back.elapsed();
                assert!(
                    waited < Duration::from_secs(10),
                    "{policy}: no recovery: {}",
                    reply.text
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let after = spread(&replicas, 30, "sk-k", &call("up/ok")).await;
        let statuses: Vec<u16> = after.iter().map(|r| r.status).collect();
        assert!(statuses.iter().all(|&s| s == 200), "{policy}: {statuses:?}");
        answered += tokens_answered(&after);
        wait_for_ledger(&replicas, "k", answered).await;
        let ready: Value = client()
            .get(replicas.url(0, "/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["state"], "ok");
    }
}

/// A client that waits for each answer before its next request never finds its own slot taken,
/// however fast it goes: the settlement that frees the slot is applied by the next request's own
/// reservation, before it counts, and the spend of every answer is on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn back_to_back_requests_under_one_slot_are_each_admitted() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys =
        "  - { name: one, key: sk-one, limits: { max_concurrent: 1, tokens_per_day: 10000000 } }";
    // Settlements left to the writer would wait 5 s: only the reservation can free the slot.
    let yaml = config(&fake, &redis.url(), "", keys).replace(
        "timeout: 500ms }",
        "timeout: 500ms, settlement_linger: 5s }",
    );
    let replicas = Replicas::start(&yaml, 1);
    let answered = one_by_one(&replicas, 0, "sk-one", 40).await;
    wait_for_ledger(&replicas, "one", tokens_answered(&answered)).await;
}

/// The tokens a finished request did not use come back before the next request of its key is
/// counted: a bucket that holds one estimate admits a request after another, each costing what
/// it used, not what it might have.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unused_tokens_come_back_before_the_next_request_counts() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: bucket, key: sk-bucket, limits: { tokens_per_minute: 200 } }";
    let yaml = config(&fake, &redis.url(), "", keys).replace(
        "timeout: 500ms }",
        "timeout: 500ms, settlement_linger: 5s }",
    );
    let replicas = Replicas::start(&yaml, 1);
    // Each reserves its prompt and 100 tokens, and uses 29 of them.
    let body = json!({"model": "up/ok", "max_tokens": 100, "messages": [{"role": "user", "content": "hello"}]});
    for i in 0..4 {
        let reply = post(
            replicas.url(0, "/v1/chat/completions"),
            "sk-bucket",
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text);
    }
    let refused = post(replicas.url(0, "/v1/chat/completions"), "sk-bucket", body).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(
        refused.body["error"]["code"], "rate_limit_exceeded",
        "{}",
        refused.text
    );
}

/// Answers given while Redis is away (`allow`), then the replica SIGKILLed before it could write
/// their settlements: restarted, it finds them in its data directory and Redis gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_answered_while_redis_is_away_survives_the_replica_being_killed() {
    let mut redis = RedisServer::durable();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: k, key: sk-k, limits: { tokens_per_day: 10000000 } }";
    let extra = "  on_redis_error: allow";
    let mut replicas = Replicas::start(&config(&fake, &redis.url(), extra, keys), 2);
    let mut answered = tokens_answered(&spread(&replicas, 10, "sk-k", &call("up/ok")).await);
    wait_for_ledger(&replicas, "k", answered).await;

    redis.kill();
    let during = spread_owned(
        vec![replicas.url(0, "/v1/chat/completions")],
        12,
        "sk-k",
        call("up/ok"),
    )
    .await;
    assert!(
        during.iter().all(|r| r.status == 200),
        "allow: nothing fails"
    );
    answered += tokens_answered(&during);
    replicas.kill(0);

    redis.restart();
    replicas.restart(0);
    wait_for_ledger(&replicas, "k", answered).await;
    // Written once: a second restart finds nothing left to write.
    replicas.restart(0);
    let more = spread(&replicas, 4, "sk-k", &call("up/ok")).await;
    answered += tokens_answered(&more);
    wait_for_ledger(&replicas, "k", answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_admits_exactly_across_replicas_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: rated, key: sk-rated, limits: { requests_per_minute: 50, tokens_per_day: 10000000 } }
  - { name: other, key: sk-other, limits: { requests_per_minute: 10 } }";
    let replicas = Replicas::start(&config(&fake, &cluster.urls_yaml(), "", keys), 3);
    let replies = spread(&replicas, 200, "sk-rated", &call("up/ok")).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 50, "exactly the limit on a cluster");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    let replies = spread(&replicas, 40, "sk-other", &call("up/ok")).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 10);
    wait_for_ledger(&replicas, "rated", 50 * CALL_TOKENS).await;
}

/// Replicas on the Redis's host may reach it through its Unix socket: the same state, shared
/// with what reaches it over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_a_redis_through_its_unix_socket() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: rated, key: sk-rated, limits: { requests_per_minute: 12 } }";
    let replicas = Replicas::start(&config(&fake, &redis.socket_url(), "", keys), 2);
    let replies = spread(&replicas, 40, "sk-rated", &call("up/ok")).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 12, "exactly the limit over both replicas");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    let admitted = redis.cli(&["ZCARD", "switchboard:{rated}:rate"]);
    assert_eq!(
        admitted.trim(),
        "12",
        "the admissions are in the Redis TCP clients see"
    );
    wait_for_ledger(&replicas, "rated", 12 * CALL_TOKENS).await;
}

/// `switchboard state import` moves the embedded mode's usage into Redis, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_of_the_embedded_mode_is_imported_into_redis_once() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: moved, key: sk-moved, limits: { tokens_per_day: 10000000 } }";
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let data = format!("{:?}", dir.join("data").display().to_string());
    let embedded = config(&fake, &redis.url(), "", keys)
        .replace("  redis: ", "  # redis: ")
        .replace("{data_dir}", &data);
    let embedded_path = dir.join("embedded.yaml");
    std::fs::write(&embedded_path, &embedded).unwrap();
    let gateway = Process::start(&embedded_path, &[]);
    let calls = (0..5).map(|_| {
        post(
            gateway.url("/v1/chat/completions"),
            "sk-moved",
            call("up/ok"),
        )
    });
    let answered = tokens_answered(&futures_util::future::join_all(calls).await);
    let stored = client()
        .put(gateway.url("/v1/context/moved/plan"))
        .bearer_auth("sk-moved")
        .json(&json!({"kept": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 201);
    gateway.terminate();
    gateway.finish();

    let shared_path = dir.join("shared.yaml");
    std::fs::write(
        &shared_path,
        config(&fake, &redis.url(), "", keys).replace("{data_dir}", &data),
    )
    .unwrap();
    let import = |expect: &str| {
        let output = std::process::Command::new(crate::common::process::BIN)
            .args(["state", "import", "--config"])
            .arg(&shared_path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(said.contains(expect), "{said}");
    };
    import("moved: usage imported");
    import("moved: imported before");
    import("context: 0 documents imported, 1 already in Redis");
    let replicas = Replicas::start(&config(&fake, &redis.url(), "", keys), 2);
    wait_for_ledger(&replicas, "moved", answered).await;
    let report = usage(replicas.url(1, "/admin/usage"), "moved").await;
    assert_eq!(report["requests"], 5);
    assert_eq!(report["limits"]["tokens_per_day"]["used"], answered);
    let document: Value = client()
        .get(replicas.url(0, "/v1/context/moved/plan"))
        .bearer_auth("sk-moved")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document,
        json!({"kept": true}),
        "the document moved with the usage"
    );
}

/// Pauses Redis's writes (every reservation script waits) until the returned guard is dropped
/// or `resume`d: a window in which Redis has not answered, whatever the machine's speed.
struct Paused<'a>(&'a RedisServer);

impl<'a> Paused<'a> {
    fn pause(redis: &'a RedisServer) -> Self {
        assert_eq!(
            redis.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]).trim(),
            "OK"
        );
        Paused(redis)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.cli(&["CLIENT", "UNPAUSE"]);
    }
}

/// Sends one request to replica `i` while Redis is paused; returns once the provider has it,
/// with the request's answer still to come (it waits for its reservation).
async fn called_while_paused(
    replicas: &Replicas,
    i: usize,
    fake: &FakeOpenAi,
    key: &'static str,
) -> tokio::task::JoinHandle<Reply> {
    let before = fake.received().len();
    let url = replicas.url(i, "/v1/chat/completions");
    let reply = tokio::spawn(post(url, key, call("up/ok")));
    crate::common::eventually("the provider called before Redis answered", async || {
        fake.received().len() > before
    })
    .await;
    assert!(
        !reply.is_finished(),
        "an answer went out before its reservation"
    );
    reply
}

/// Far from its limits, a key's reservation is made alongside its provider call: the provider
/// has the request while Redis has not answered (paused), and the answer goes out once Redis
/// admits it, counted as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn far_from_its_limits_a_keys_call_starts_while_redis_reserves() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: roomy, key: sk-roomy, limits: { requests_per_minute: 100000, tokens_per_day: 100000000 } }";
    // Not made ahead (see the test after the next), so each request's reservation is its own.
    let yaml = config(&fake, &redis.url(), "", keys)
        .replace("timeout: 500ms }", "timeout: 20s, reserve_ahead: false }");
    let replicas = Replicas::start(&yaml, 1);
    // The first reservation comes first: nothing is known of the key's room yet.
    let mut answered = one_by_one(&replicas, 0, "sk-roomy", 1).await;

    let paused = Paused::pause(&redis);
    let reply = called_while_paused(&replicas, 0, &fake, "sk-roomy").await;
    drop(paused);
    let second = reply.await.unwrap();
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.headers["x-ratelimit-remaining-requests"], "99998");
    answered.push(second);
    wait_for_ledger(&replicas, "roomy", tokens_answered(&answered)).await;
}

/// A request made alongside its reservation on the strength of room another replica has used
/// up since is still refused: the client gets the 429, never the provider's answer, and the
/// call is not charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_made_alongside_a_reservation_that_refuses_is_answered_429() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: rated, key: sk-rated, limits: { requests_per_minute: 30 } }";
    let yaml = config(&fake, &redis.url(), "", keys).replace(
        "timeout: 500ms }",
        "timeout: 20s, overlap_headroom: 1, reserve_ahead: false }",
    );
    let replicas = Replicas::start(&yaml, 2);
    let mut answered = one_by_one(&replicas, 0, "sk-rated", 29).await;
    // Replica 0 last saw room for one more; replica 1 takes it.
    answered.extend(one_by_one(&replicas, 1, "sk-rated", 1).await);

    let paused = Paused::pause(&redis);
    let reply = called_while_paused(&replicas, 0, &fake, "sk-rated").await;
    drop(paused);
    let refused = reply.await.unwrap();
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "rate_limit_exceeded");
    assert!(refused.body.get("choices").is_none(), "{}", refused.text);
    wait_for_ledger(&replicas, "rated", tokens_answered(&answered)).await;
    let report = usage(replicas.url(1, "/admin/usage"), "rated").await;
    assert_eq!(report["requests"], 30, "{report}");
}

/// The number `name{outcome="..."}` shows in replica `i`'s `/metrics` (0 when absent).
async fn counter(replicas: &Replicas, i: usize, series: &str) -> u64 {
    let text = crate::common::metrics(replicas.url(i, "/metrics")).await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Far from its limits, a key's next reservation is made as soon as a request is admitted: the
/// next request is answered while Redis cannot answer anything (paused), its reservation made
/// before it came. The one made after it, never used, is given back within a second: the key's
/// figures are then as if it had never been made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn far_from_its_limits_the_next_reservation_is_made_before_its_request() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    let keys = "  - { name: roomy, key: sk-roomy, limits: { requests_per_minute: 100000, max_concurrent: 1000, tokens_per_day: 100000000 } }";
    let yaml = config(&fake, &redis.url(), "", keys).replace("timeout: 500ms", "timeout: 20s");
    let replicas = Replicas::start(&yaml, 1);
    let report = async || usage(replicas.url(0, "/admin/usage"), "roomy").await;
    let mut answered = one_by_one(&replicas, 0, "sk-roomy", 1).await;
    crate::common::eventually("the next request's reservation made", async || {
        report().await["limits"]["requests_per_minute"]["remaining"] == 99998
    })
    .await;

    let paused = Paused::pause(&redis);
    let url = replicas.url(0, "/v1/chat/completions");
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        post(url, "sk-roomy", call("up/ok")),
    )
    .await
    .expect("answered while Redis was paused");
    drop(paused);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.headers["x-ratelimit-remaining-requests"], "99998");
    answered.push(second);
    wait_for_ledger(&replicas, "roomy", tokens_answered(&answered)).await;

    // The reservation the second request made ahead, unused, is given back.
    crate::common::eventually("the unused reservation given back", async || {
        let limits = report().await["limits"].clone();
        limits["requests_per_minute"]["remaining"] == 99998
            && limits["max_concurrent"]["in_flight"] == 0
            && limits["tokens_per_day"]["reserved"] == 0
    })
    .await;
    assert_eq!(report().await["requests"], 2);
    let outcome = |o| format!("switchboard_reservations_ahead_total{{outcome=\"{o}\"}}");
    assert_eq!(counter(&replicas, 0, &outcome("used")).await, 1);
    assert_eq!(counter(&replicas, 0, &outcome("unused")).await, 1);
}
