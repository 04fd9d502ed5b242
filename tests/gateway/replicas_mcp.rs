//! Replicas sharing one Redis serve the context store, registrations and MCP sessions as one
//! gateway: racing writes have one winner, registrations and expiries reach every replica, a
//! session opened on one replica is served by the others for its own key only, and the official
//! MCP SDK works through a round-robin nginx. Real `redis-server`, nginx and gateway processes.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::nginx::Nginx;
use crate::common::redis::RedisServer;
use crate::common::replicas::Replicas;
use crate::common::{client, serve, sse_data};

const ADMIN: &str = "sk-admin-shared";

fn config(redis: &RedisServer) -> String {
    format!(
        "server: {{ admin_key: {ADMIN} }}
keys:
  - {{ name: a, key: sk-a }}
  - {{ name: b, key: sk-b }}
state:
  data_dir: {{data_dir}}
  redis: {{ url: {}, timeout: 500ms }}
",
        redis.url()
    )
}

async fn put(url: String, key: &str, document: Value, if_match: Option<&str>) -> (u16, String) {
    let mut request = client().put(url).bearer_auth(key).json(&document);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag)
}

async fn get(url: String, key: &str) -> (u16, String, Value) {
    let response = client().get(url).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, etag, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_writes_with_one_if_match_over_three_replicas_have_one_winner() {
    let redis = RedisServer::start();
    let replicas = Replicas::start(&config(&redis), 3);
    let path = "/v1/context/team/plan";
    let (status, etag) = put(replicas.url(0, path), "sk-a", json!({"v": -1}), None).await;
    assert_eq!(status, 201);
    let writes = (0..50).map(|n| {
        let url = replicas.url(n % 3, path);
        let etag = etag.clone();
        async move { (n, put(url, "sk-a", json!({"v": n}), Some(&etag)).await) }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    let winners: Vec<&(usize, (u16, String))> =
        outcomes.iter().filter(|(_, (s, _))| *s == 200).collect();
    let refused = outcomes.iter().filter(|(_, (s, _))| *s == 412).count();
    assert_eq!((winners.len(), refused), (1, 49), "{outcomes:?}");
    let (winner, (_, winning_tag)) = winners[0];
    for i in 0..3 {
        let (status, tag, body) = get(replicas.url(i, path), "sk-a").await;
        assert_eq!(status, 200);
        assert_eq!(&tag, winning_tag, "replica {i} serves the winner's version");
        assert_eq!(body["v"], *winner as u64);
    }
}

async fn admin(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, url).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn listed(replicas: &Replicas, i: usize) -> bool {
    let (_, tools) = admin(reqwest::Method::GET, replicas.url(i, "/admin/tools"), None).await;
    tools["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "echo"))
}

/// A stateless (2026-07-28) `tools/call` on one replica; the text of its result.
async fn call_echo(replicas: &Replicas, i: usize) -> String {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"city": "Oslo"}, "_meta": meta}});
    let response = client()
        .post(replicas.url(i, "/mcp"))
        .bearer_auth("sk-a")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&body)
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tool_registered_on_one_replica_is_used_renewed_and_expired_on_all() {
    let redis = RedisServer::start();
    let echo = axum::Router::new().route(
        "/echo/{city}",
        axum::routing::get(
            |axum::extract::Path(city): axum::extract::Path<String>| async move {
                axum::Json(json!({"city": city, "temp": 7}))
            },
        ),
    );
    let service = serve(echo).await;
    let replicas = Replicas::start(&config(&redis), 3);
    let tool = |ttl: &str| {
        json!({
            "name": "echo",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "http": {"method": "GET", "url": format!("http://{service}/echo/{{city}}")},
            "ttl": ttl,
        })
    };
    let registered = Instant::now();
    let (status, _) = admin(
        reqwest::Method::POST,
        replicas.url(0, "/admin/tools"),
        Some(tool("4s")),
    )
    .await;
    assert_eq!(status, 201);
    for i in [1, 2] {
        while !listed(&replicas, i).await {
            assert!(
                registered.elapsed() < Duration::from_secs(2),
                "replica {i} never listed it"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            call_echo(&replicas, i).await.contains("Oslo"),
            "callable through replica {i}"
        );
    }
    // Renewed through the third replica before its TTL runs out: alive everywhere past it.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(registered.elapsed())).await;
    let (status, renewed) = admin(
        reqwest::Method::POST,
        replicas.url(2, "/admin/tools"),
        Some(tool("4s")),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let renewal = Instant::now();
    tokio::time::sleep(Duration::from_millis(4500).saturating_sub(registered.elapsed())).await;
    for i in 0..3 {
        assert!(
            listed(&replicas, i).await,
            "the renewal reached replica {i}"
        );
    }
    // Then gone from all three once the renewed TTL runs out.
    for i in 0..3 {
        while listed(&replicas, i).await {
            assert!(
                renewal.elapsed() < Duration::from_secs(7),
                "replica {i} kept it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_with_a_ttl_expires_on_every_replica() {
    let redis = RedisServer::start();
    let replicas = Replicas::start(&config(&redis), 3);
    let path = "/v1/context/team/brief?ttl=2s";
    let (status, _) = put(replicas.url(1, path), "sk-a", json!({"x": 1}), None).await;
    assert_eq!(status, 201);
    for i in 0..3 {
        let (status, _, _) = get(replicas.url(i, "/v1/context/team/brief"), "sk-a").await;
        assert_eq!(status, 200, "replica {i}");
    }
    let written = Instant::now();
    for i in 0..3 {
        loop {
            let (status, _, _) = get(replicas.url(i, "/v1/context/team/brief"), "sk-a").await;
            if status == 404 {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(5),
                "replica {i} still has it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        written.elapsed() >= Duration::from_millis(1500),
        "not before its TTL"
    );
}

/// `initialize` on one replica; the id and the first answer's status.
async fn initialize(url: String, key: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let response = client()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn in_session(url: String, key: &str, id: &str, body: Value) -> (u16, String) {
    let response = client()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_is_served_by_every_replica_for_its_own_key_only() {
    let redis = RedisServer::start();
    let replicas = Replicas::start(&config(&redis), 3);
    let id = initialize(replicas.url(0, "/mcp"), "sk-a").await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _) = in_session(replicas.url(1, "/mcp"), "sk-a", &id, initialized).await;
    assert_eq!(status, 202, "another replica takes the session's messages");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, text) = in_session(replicas.url(2, "/mcp"), "sk-a", &id, list.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("context_get"), "{text}");

    let (status, text) = in_session(replicas.url(1, "/mcp"), "sk-b", &id, list.clone()).await;
    assert_eq!(status, 404, "another key's session: {text}");
    let mut tampered = id.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, text) = in_session(replicas.url(2, "/mcp"), "sk-a", &tampered, list).await;
    assert_eq!(status, 404, "a tampered id: {text}");
}

/// Redis killed under a `subscriptions/listen` stream: writes meanwhile get 503, and once Redis
/// is back the listener is told that documents may have changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_is_told_after_a_redis_outage_and_writes_during_it_were_refused() {
    let mut redis = RedisServer::durable();
    let replicas = Replicas::start(&config(&redis), 2);
    let (status, _) = put(
        replicas.url(0, "/v1/context/team/kept"),
        "sk-a",
        json!({"k": 1}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let listen = json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen",
        "params": {"_meta": meta, "notifications": {"resourcesListChanged": true}}});
    let response = client()
        .post(replicas.url(1, "/mcp"))
        .bearer_auth("sk-a")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .json(&listen)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    redis.kill();
    let (status, _) = put(
        replicas.url(0, "/v1/context/team/lost"),
        "sk-a",
        json!({"l": 1}),
        None,
    )
    .await;
    assert_eq!(status, 503, "no silent local write while Redis is away");
    redis.restart();
    let told = tokio::time::timeout(Duration::from_secs(15), async {
        let mut seen = String::new();
        while let Some(Ok(chunk)) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if sse_data(&seen)
                .iter()
                .any(|d| d.contains("notifications/resources/list_changed"))
            {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("the listener heard nothing after Redis came back");
    assert!(told.contains("list_changed"), "{told}");
    let (status, _, body) = get(replicas.url(1, "/v1/context/team/kept"), "sk-a").await;
    assert_eq!(
        (status, body["k"].as_u64()),
        (200, Some(1)),
        "the acknowledged write is kept: {body} {}",
        redis.cli(&["keys", "*"])
    );
    let (status, _, _) = get(replicas.url(1, "/v1/context/team/lost"), "sk-a").await;
    assert_eq!(status, 404, "the refused write was not made");
}

/// The official MCP SDK through nginx, round-robin over three replicas with no stickiness.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mcp_sdk_works_through_a_round_robin_proxy() {
    let redis = RedisServer::start();
    let replicas = Replicas::start(&config(&redis), 3);
    let backends: Vec<String> = (0..3)
        .map(|i| replicas.url(i, "").trim_start_matches("http://").to_owned())
        .collect();
    let nginx = Nginx::start(&backends);
    let contexts: Vec<String> = (0..3).map(|i| replicas.url(i, "/v1/context")).collect();
    let admins: Vec<String> = (0..3).map(|i| replicas.url(i, "/admin")).collect();
    crate::python::run_script_env(
        "test_mcp_replicas.py",
        &[
            ("SWITCHBOARD_MCP_URL", nginx.url("/mcp")),
            ("SWITCHBOARD_CONTEXT_URLS", contexts.join(",")),
            ("SWITCHBOARD_ADMIN_URLS", admins.join(",")),
            ("SWITCHBOARD_ADMIN_KEY", ADMIN.to_owned()),
            ("SWITCHBOARD_KEY", "sk-a".to_owned()),
        ],
    )
    .await;
}
