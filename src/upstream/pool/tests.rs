//! Tests of the parent module.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
/// The head and the first piece of a chunked answer whose end never comes.
const HELD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n";

#[derive(Clone, Copy)]
enum Behaviour {
    KeepAlive,
    CloseAfterOne,
    HoldTheBody,
    /// A chunked answer whose terminator follows in a write of its own, a moment later.
    LateTerminator,
    /// `ANSWER` with `Keep-Alive: timeout=` this many seconds.
    KeepsFor(u64),
}

/// A server that answers requests as `behaviour` says and reports each connection it
/// accepts.
async fn server(behaviour: Behaviour) -> (String, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let (accepted, connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            accepted.send(()).unwrap();
            tokio::spawn(answer_each(stream, behaviour));
        }
    });
    (host, connections)
}

async fn answer_each(mut stream: TcpStream, behaviour: Behaviour) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let Ok(read) = stream.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        seen.extend_from_slice(&buffer[..read]);
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            seen.drain(..end + 4);
            match behaviour {
                Behaviour::KeepAlive => stream.write_all(ANSWER).await.unwrap(),
                Behaviour::CloseAfterOne => return stream.write_all(ANSWER).await.unwrap(),
                Behaviour::HoldTheBody => stream.write_all(HELD).await.unwrap(),
                Behaviour::KeepsFor(seconds) => {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nkeep-alive: timeout={seconds}, max=100\r\ncontent-length: 2\r\n\r\nok"
                    );
                    stream.write_all(answer.as_bytes()).await.unwrap();
                }
                Behaviour::LateTerminator => {
                    stream.write_all(HELD).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    stream.write_all(b"0\r\n\r\n").await.unwrap();
                }
            }
        }
    }
}

fn pool(idle_timeout: Duration) -> Pool {
    Pool::new(HttpConnector::new(), idle_timeout)
}

async fn head(
    pool: &Pool,
    host: &str,
) -> Result<(http::Response<Incoming>, PooledConnection), TransportError> {
    let uri: Uri = format!("http://{host}/").parse().unwrap();
    let request = http::Request::get("/")
        .header(http::header::HOST, host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    pool.exchange(&uri, host, request).await
}

async fn get(pool: &Pool, host: &str) -> Result<(Bytes, PooledConnection), TransportError> {
    let (response, lease) = head(pool, host).await?;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((body, lease))
}

fn connections_so_far(connections: &mut mpsc::UnboundedReceiver<()>) -> usize {
    std::iter::from_fn(|| connections.try_recv().ok()).count()
}

#[tokio::test]
async fn a_released_connection_carries_the_next_exchange() {
    let (host, mut connections) = server(Behaviour::KeepAlive).await;
    let pool = pool(Duration::from_secs(60));
    for _ in 0..3 {
        let (body, lease) = get(&pool, &host).await.unwrap();
        assert_eq!(body, "ok");
        drop(lease);
    }
    assert_eq!(connections_so_far(&mut connections), 1);
}

#[tokio::test]
async fn exchanges_in_flight_together_get_a_connection_each() {
    let (host, mut connections) = server(Behaviour::KeepAlive).await;
    let pool = pool(Duration::from_secs(60));
    let (_, first) = get(&pool, &host).await.unwrap();
    // The first lease is not released: its connection is not free for the second exchange.
    let (_, second) = get(&pool, &host).await.unwrap();
    drop(first);
    drop(second);
    assert_eq!(connections_so_far(&mut connections), 2);
    // Both are idle now and the next two exchanges reuse them.
    let (_, third) = get(&pool, &host).await.unwrap();
    let (_, fourth) = get(&pool, &host).await.unwrap();
    drop(third);
    drop(fourth);
    assert_eq!(connections_so_far(&mut connections), 0);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_reused() {
    let (host, mut connections) = server(Behaviour::CloseAfterOne).await;
    let pool = pool(Duration::from_secs(60));
    let (_, lease) = get(&pool, &host).await.unwrap();
    drop(lease);
    // The server closes after one answer; whether hyper has seen that yet or sees it as the
    // next request goes out, that request is carried by a new connection.
    let (body, _) = get(&pool, &host).await.unwrap();
    assert_eq!(body, "ok");
    assert_eq!(connections_so_far(&mut connections), 2);
}

#[tokio::test]
async fn a_connection_whose_answer_was_cut_short_is_not_reused() {
    let (host, mut connections) = server(Behaviour::HoldTheBody).await;
    let pool = pool(Duration::from_secs(60));
    let (response, lease) = head(&pool, &host).await.unwrap();
    drop((response, lease));
    // Reused, the connection would still be inside the first answer: the second exchange
    // would never get its head.
    let (response, _lease) = head(&pool, &host).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(connections_so_far(&mut connections), 2);
}

#[tokio::test]
async fn an_answer_read_to_its_end_frees_the_connection_even_if_its_end_was_not_polled() {
    let (host, mut connections) = server(Behaviour::KeepAlive).await;
    let pool = pool(Duration::from_secs(60));
    read_the_data_and_stop(&pool, &host).await;
    get(&pool, &host).await.unwrap();
    assert_eq!(connections_so_far(&mut connections), 1);
}

#[tokio::test]
async fn the_end_of_an_answer_still_on_its_way_is_read_so_the_connection_is_kept() {
    let (host, mut connections) = server(Behaviour::LateTerminator).await;
    let pool = pool(Duration::from_secs(60));
    // Dropped before the terminator came: the pool reads it and gets the connection back.
    read_the_data_and_stop(&pool, &host).await;
    wait_until(|| idle(&pool, &host) == 1).await;
    let (response, _lease) = head(&pool, &host).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(connections_so_far(&mut connections), 1);
}

#[tokio::test]
async fn a_connection_still_finishing_its_answer_waits_in_the_idle_list_until_it_closes() {
    let (host, _connections) = server(Behaviour::HoldTheBody).await;
    let pool = pool(Duration::from_secs(60));
    let (response, mut lease) = head(&pool, &host).await.unwrap();
    // As a lease whose answer ended leaves it when hyper has not marked it free yet.
    let sender = lease.sender.take().unwrap();
    pool.shared.put(host.as_str().into(), sender, None);
    assert!(pool.shared.checkout(&host).is_none(), "not free yet");
    assert_eq!(idle(&pool, &host), 1, "but kept");
    // Its answer dropped unread, hyper closes it, and the next checkout lets it go.
    drop(response);
    wait_until(|| pool.shared.checkout(&host).is_none() && idle(&pool, &host) == 0).await;
}

#[tokio::test]
async fn an_upstream_that_closes_idle_connections_soon_is_not_sent_one_about_to_close() {
    let (host, mut connections) = server(Behaviour::KeepsFor(1)).await;
    let pool = pool(Duration::from_secs(90));
    // A second is the margin: a connection the server keeps one second is not offered.
    drop(get(&pool, &host).await.unwrap());
    assert_eq!(idle(&pool, &host), 0);
    drop(get(&pool, &host).await.unwrap());
    assert_eq!(connections_so_far(&mut connections), 2);

    let (host, mut connections) = server(Behaviour::KeepsFor(5)).await;
    drop(get(&pool, &host).await.unwrap());
    // Offered for four seconds, not the pool's ninety.
    pool.shared
        .evict(Instant::now() + Duration::from_millis(3900));
    assert_eq!(idle(&pool, &host), 1);
    pool.shared.evict(Instant::now() + Duration::from_secs(4));
    assert_eq!(idle(&pool, &host), 0);
    assert_eq!(connections_so_far(&mut connections), 1);
}

#[test]
fn keep_alive_timeouts_are_read_from_the_header() {
    let timeout = |value: &'static str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("keep-alive", http::HeaderValue::from_static(value));
        keep_alive_timeout(&headers)
    };
    assert_eq!(timeout("timeout=5, max=1000"), Some(Duration::from_secs(5)));
    assert_eq!(timeout("max=3, Timeout = 2"), Some(Duration::from_secs(2)));
    assert_eq!(timeout("max=3"), None);
    assert_eq!(timeout("timeout=soon"), None);
    assert_eq!(keep_alive_timeout(&http::HeaderMap::new()), None);
}

/// Reads an answer's data and drops it there, as a relay does at `[DONE]`.
async fn read_the_data_and_stop(pool: &Pool, host: &str) {
    let (response, lease) = head(pool, host).await.unwrap();
    let mut body = LeasedBody::new(response.into_body(), lease);
    let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(data, "ok");
}

fn idle(pool: &Pool, host: &str) -> usize {
    pool.shared.lock().get(host).map_or(0, Vec::len)
}

/// Waits for `done`, checking as the runtime runs other tasks; fails after five seconds.
async fn wait_until(done: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    waited
        .await
        .expect("the condition held within five seconds");
}

#[tokio::test]
async fn connections_idle_past_the_timeout_are_closed() {
    let (host, mut connections) = server(Behaviour::KeepAlive).await;
    let pool = pool(Duration::from_secs(90));
    let (_, lease) = get(&pool, &host).await.unwrap();
    drop(lease);
    pool.shared.evict(Instant::now() + Duration::from_secs(60));
    assert_eq!(idle(&pool, &host), 1);
    pool.shared.evict(Instant::now() + Duration::from_secs(91));
    assert_eq!(idle(&pool, &host), 0);
    get(&pool, &host).await.unwrap();
    assert_eq!(connections_so_far(&mut connections), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    let failed = get(&pool(Duration::from_secs(60)), &host).await;
    assert!(matches!(failed, Err(TransportError::Connect)));
}
