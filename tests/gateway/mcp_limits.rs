//! What one key may hold and spend on the MCP and context surfaces: sessions up to
//! `mcp.max_sessions_per_key`, closed after `mcp.session_idle`; `/mcp` and `/v1/context`
//! requests counted by `requests_per_minute`; context documents and bytes bounded per key.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, client, temp_dir};

/// Posts an `initialize` as `key`; the status and the new session's id.
async fn initialize(gateway: &TestGateway, key: &str) -> (StatusCode, Option<String>, String) {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    let response = client()
        .post(gateway.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, session, response.text().await.unwrap())
}

async fn end(gateway: &TestGateway, key: &str, session: &str) -> StatusCode {
    client()
        .delete(gateway.url("/mcp"))
        .bearer_auth(key)
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_key_holds_at_most_max_sessions_per_key() {
    let gateway = TestGateway::start(
        "keys:\n  - { name: alice, key: sk-alice }\n  - { name: bob, key: sk-bob }\nmcp: { max_sessions_per_key: 2 }\n",
    )
    .await;
    let (_, first, _) = initialize(&gateway, "sk-alice").await;
    let (_, second, _) = initialize(&gateway, "sk-alice").await;
    let (first, second) = (first.unwrap(), second.unwrap());
    let (status, none, body) = initialize(&gateway, "sk-alice").await;
    assert_eq!(status, 429, "{body}");
    assert!(none.is_none());
    assert!(body.contains("mcp.max_sessions_per_key"), "{body}");
    // Another key has its own sessions.
    assert_eq!(initialize(&gateway, "sk-bob").await.0, 200);
    // A session ended frees its slot; the other still counts.
    assert_eq!(end(&gateway, "sk-alice", &first).await, 200);
    assert_eq!(initialize(&gateway, "sk-alice").await.0, 200);
    assert_eq!(initialize(&gateway, "sk-alice").await.0, 429);
    assert_eq!(end(&gateway, "sk-alice", &second).await, 200);
    gateway.stop().await;
}

#[tokio::test]
async fn an_idle_session_closes_after_session_idle_and_frees_its_slot() {
    let gateway = TestGateway::start(
        "keys:\n  - { name: alice, key: sk-alice }\nmcp: { max_sessions_per_key: 1, session_idle: 300ms }\n",
    )
    .await;
    let (_, idle, _) = initialize(&gateway, "sk-alice").await;
    let idle = idle.unwrap();
    assert_eq!(initialize(&gateway, "sk-alice").await.0, 429);
    // Asking for a new session does not touch the idle one; once it closed, one is granted.
    let until = Instant::now() + Duration::from_secs(10);
    while initialize(&gateway, "sk-alice").await.0 != 200 {
        assert!(Instant::now() < until, "the idle session never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ping = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-alice")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &idle)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 404, "the idle session is gone");
    gateway.stop().await;
}

#[tokio::test]
async fn mcp_and_context_requests_count_against_the_request_rate() {
    let gateway = TestGateway::start(
        "keys:\n  - { name: carol, key: sk-carol, limits: { requests_per_minute: 3 } }\n",
    )
    .await;
    for _ in 0..3 {
        let status = client()
            .get(gateway.url("/v1/context/ns/missing"))
            .bearer_auth("sk-carol")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404);
    }
    let refused = client()
        .get(gateway.url("/v1/context/ns/missing"))
        .bearer_auth("sk-carol")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let (status, _, body) = initialize(&gateway, "sk-carol").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("requests_per_minute"), "{body}");
    gateway.stop().await;
}

async fn put(gateway: &TestGateway, key: &str, path: &str, value: &Value) -> (u16, Value) {
    let response = client()
        .put(gateway.url(&format!("/v1/context/{path}")))
        .bearer_auth(key)
        .json(value)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn context_documents_and_bytes_are_bounded_per_key_across_restarts() {
    let dir = temp_dir();
    let config = format!(
        "keys:\n  - {{ name: alice, key: sk-alice, limits: {{ context_documents: 2, context_bytes: 40B }} }}\n  - {{ name: bob, key: sk-bob }}\nstate: {{ data_dir: {:?} }}\n",
        dir.display().to_string()
    );
    let gateway = TestGateway::start(&config).await;
    assert_eq!(
        put(&gateway, "sk-alice", "ns/a", &json!({"v": 1})).await.0,
        201
    );
    assert_eq!(
        put(&gateway, "sk-alice", "ns/b", &json!({"v": 2})).await.0,
        201
    );
    let (status, error) = put(&gateway, "sk-alice", "ns/c", &json!({"v": 3})).await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["code"], "context_documents", "{error}");
    // Replacing its own document is no new document; growing past the bytes is refused.
    assert_eq!(
        put(&gateway, "sk-alice", "ns/a", &json!({"v": 9})).await.0,
        200
    );
    let (status, error) = put(&gateway, "sk-alice", "ns/a", &json!({"v": "x".repeat(40)})).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "context_bytes", "{error}");
    // Bob overwrote one of Alice's documents: he holds it now, and she has room again.
    assert_eq!(
        put(&gateway, "sk-bob", "ns/a", &json!({"bob": true}))
            .await
            .0,
        200
    );
    assert_eq!(
        put(&gateway, "sk-alice", "ns/c", &json!({"v": 3})).await.0,
        201
    );
    gateway.stop().await;

    // What each key holds is read back from the stored documents.
    let gateway = TestGateway::start(&config).await;
    assert_eq!(
        put(&gateway, "sk-alice", "ns/d", &json!({"v": 4})).await.0,
        429
    );
    assert_eq!(
        put(&gateway, "sk-bob", "ns/d", &json!({"v": 4})).await.0,
        201
    );
    gateway.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// HTTP/2 names the host in the URI's authority, not in a `Host` header; rmcp refused such
/// requests with 400 until the gateway filled the header in (found by the `http_surface`
/// fuzz target).
#[tokio::test]
async fn an_h2c_client_opens_a_session() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let gateway = TestGateway::start("keys:\n  - { name: alice, key: sk-alice }\n").await;
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    let request = hyper::Request::post(gateway.url("/mcp"))
        .header("authorization", "Bearer sk-alice")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(initialize.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let session = response.headers().get("mcp-session-id").cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(session.is_some());
    gateway.stop().await;
}
