//! Client connections: slow or silent clients are let go after `server.header_timeout`, idle
//! keep-alive connections too, requests already answering are not, and `server.max_connections`
//! makes further clients wait their turn.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestGateway, client, sse_data};

/// A bound on how long the gateway may take to close a connection, far above the timeouts set
/// below: reaching it means the connection was never closed.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// Everything the gateway sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(CLOSE_BOUND, stream.read_to_end(&mut received))
        .await
        .expect("the gateway closed the connection")
        .expect("read");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn slow_silent_and_idle_clients_are_let_go_but_slow_answers_are_not() {
    let gateway = TestGateway::start(
        r#"
server: { header_timeout: 300ms }
providers:
  demo: { kind: mock }
  slow: { kind: mock, latency: { first_token: 600ms, per_chunk: 0ms } }
models:
  - { name: fast, targets: [ { provider: demo, model: m } ] }
"#,
    )
    .await;

    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    let mut half = TcpStream::connect(gateway.addr).await.unwrap();
    half.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(gateway.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    assert_eq!(read_until_closed(&mut silent).await, "");
    // hyper closes a connection whose headers never ended without a word.
    assert_eq!(read_until_closed(&mut half).await, "");
    let answered = read_until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.ends_with(r#"{"status":"ok"}"#), "{answered}");

    // An answer that takes longer than the header timeout is not cut: the timeout is for heads.
    let body = client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "slow/m", "stream": true,
            "messages": [{"role": "user", "content": "take your time"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    let events = sse_data(&body.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    gateway.stop().await;
}

#[tokio::test]
async fn clients_beyond_max_connections_wait_for_a_free_slot() {
    let gateway = TestGateway::start(
        r#"
server: { max_connections: 1, header_timeout: 30s }
providers:
  demo: { kind: mock }
"#,
    )
    .await;
    let holder = TcpStream::connect(gateway.addr).await.unwrap();
    let mut waiting = TcpStream::connect(gateway.addr).await.unwrap();
    waiting
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read(&mut first)).await;
    assert!(
        early.is_err(),
        "a second client was served while the only slot was taken"
    );
    drop(holder);
    let answered = read_until_closed(&mut waiting).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    gateway.stop().await;
}

/// An h2c connection that sent a request and went silent held its slot for good: with
/// `max_connections` such clients, nobody else was served. Now a connection with no stream open
/// for `header_timeout` is sent GOAWAY and closed, while one whose stream is still answering
/// is not.
#[tokio::test]
async fn idle_http2_connections_are_closed_but_answering_ones_are_not() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let gateway = TestGateway::start(
        r#"
server: { header_timeout: 300ms }
providers:
  slow: { kind: mock, latency: { first_token: 0ms, per_chunk: 200ms } }
"#,
    )
    .await;
    let tcp = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(gateway.url("/health"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"status":"ok"}"#);
    // Silent from here on: the gateway ends the connection.
    tokio::time::timeout(CLOSE_BOUND, connection)
        .await
        .expect("the gateway closed the idle HTTP/2 connection")
        .expect("connection task")
        .expect("a clean GOAWAY");

    // A stream that takes longer than the idle limit to answer keeps its connection.
    let tcp = TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = serde_json::json!({
        "model": "slow/m", "stream": true, "max_tokens": 8,
        "messages": [{"role": "user", "content": "take your time"}]
    });
    let request = hyper::Request::post(gateway.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let events = sse_data(&String::from_utf8_lossy(&text));
    assert!(events.len() > 3, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    gateway.stop().await;
}

/// Requests hyper cannot parse are answered by hyper itself, before any handler: 400, 414 and
/// 431 with a JSON error in OpenAI's shape instead of an empty body, then the connection closes.
#[tokio::test]
async fn unparseable_requests_get_an_error_body_in_openai_shape() {
    let gateway = TestGateway::start("providers:\n  demo: { kind: mock }\n").await;
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(500_000)
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let cases = [
        ("GARBAGE\r\n\r\n".to_owned(), "HTTP/1.1 400", "bad_request"),
        (
            huge_header,
            "HTTP/1.1 431",
            "request_header_fields_too_large",
        ),
        (long_uri, "HTTP/1.1 414", "uri_too_long"),
    ];
    for (request, status, code) in cases {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        // The gateway may answer and close before it has read all of a huge request.
        let _ = stream.write_all(request.as_bytes()).await;
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.starts_with(status), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], code, "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    gateway.stop().await;
}
