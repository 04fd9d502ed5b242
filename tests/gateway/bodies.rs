//! Request bodies: nothing is read for a caller who may not call, a declared length above the
//! route's limit is refused before a byte arrives, and a body that trickles in gets 408 after
//! `server.body_timeout`, on every route that takes one, in the error shape of the route's API.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestGateway;

/// Far above the timeouts set below: reaching it means the gateway never answered.
const ANSWER_BOUND: Duration = Duration::from_secs(10);

const CONFIG: &str = r#"
server: { max_body: 1KiB, body_timeout: 300ms, admin_key: sk-admin }
providers:
  demo: { kind: mock }
keys:
  - { name: alice, key: sk-alice, context: ["*"] }
"#;

/// The routes that read a body, with a body a caller might start to send.
const ROUTES: [(&str, &str); 8] = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1/responses"),
    ("PUT", "/v1/context/ns/doc"),
    ("POST", "/mcp"),
    ("POST", "/admin/tools"),
];

/// Sends a request head declaring `length` bytes, then `sent` of them, and returns everything
/// the gateway answers until it closes the connection.
async fn partial_request(
    gateway: &TestGateway,
    (method, path): (&str, &str),
    key: Option<&str>,
    length: u64,
    sent: &[u8],
) -> String {
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(ANSWER_BOUND, stream.read_to_end(&mut received))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: the gateway never answered and closed"))
        .expect("read");
    String::from_utf8_lossy(&received).into_owned()
}

/// Whether the route answers in Anthropic's error envelope.
fn anthropic(path: &str) -> bool {
    path.starts_with("/v1/messages")
}

fn key_for(path: &str) -> &'static str {
    if path.starts_with("/admin") {
        "sk-admin"
    } else {
        "sk-alice"
    }
}

#[tokio::test]
async fn a_caller_without_a_key_is_refused_before_its_body_is_read() {
    let gateway = TestGateway::start(CONFIG).await;
    for route in ROUTES {
        // One byte of a declared megabyte: waiting for the rest would hang this test.
        let answer = partial_request(&gateway, route, None, 1_000_000, b"{").await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{route:?}: {answer}");
        let kind = if anthropic(route.1) {
            r#""type":"authentication_error""#
        } else {
            r#""type":"invalid_request_error""#
        };
        assert!(answer.contains(kind), "{answer}");
        // A wrong key is no better than none.
        let answer = partial_request(&gateway, route, Some("sk-wrong"), 1_000_000, b"{").await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{route:?}: {answer}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_declared_length_above_the_limit_is_413_before_the_body_is_sent() {
    let gateway = TestGateway::start(CONFIG).await;
    for route in ROUTES {
        let answer =
            partial_request(&gateway, route, Some(key_for(route.1)), 100_000_000, b"").await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{route:?}: {answer}");
        let code = if route.1.starts_with("/v1/context") {
            "document_too_large"
        } else {
            "request_too_large"
        };
        assert!(answer.contains(code), "{route:?}: {answer}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_after_the_body_timeout() {
    let gateway = TestGateway::start(CONFIG).await;
    for route in ROUTES {
        let answer = partial_request(&gateway, route, Some(key_for(route.1)), 100, b"{\"a\"").await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{route:?}: {answer}");
        let code = if anthropic(route.1) {
            r#"{"type":"error","error":{"type":"invalid_request_error""#
        } else {
            r#""code":"request_timeout""#
        };
        assert!(answer.contains(code), "{route:?}: {answer}");
        assert!(answer.contains("server.body_timeout"), "{answer}");
    }
    gateway.stop().await;
}
