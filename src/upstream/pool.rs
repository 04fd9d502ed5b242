//! Keep-alive connections to plain-HTTP upstreams: which idle connection an exchange goes on,
//! when a new one is opened, and when an idle one is let go.
//!
//! hyper's `client::conn` speaks HTTP/1.1 on each connection. hyper-util's pooled client did
//! this job before; per request it hashed the pool key with SipHash, formatted a `Host` header,
//! cloned the URI twice and spawned a task to wait for the connection to free up, about an
//! eighth of the gateway's work on a one-connection exchange (ARCHITECTURE.md, "Decisions").

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use super::plain::{TransportError, timed_out};

type Sender = SendRequest<Full<Bytes>>;

/// foldhash, not SipHash: hosts come from the configuration, not from clients.
type HashMap<K, V> = hashbrown::HashMap<K, V>;

/// Idle connections by upstream host (`host[:port]`), and the connector for new ones.
pub(super) struct Pool {
    shared: Arc<Shared>,
    connector: HttpConnector,
}

struct Shared {
    idle: Mutex<HashMap<Box<str>, Vec<Idle>>>,
    /// How long a connection may sit unused before it is closed.
    idle_timeout: Duration,
    /// Whether the task that closes connections idle for too long runs.
    reaping: AtomicBool,
}

struct Idle {
    sender: Sender,
    /// When it stops being offered: the pool's idle timeout, or sooner if the upstream said it
    /// closes idle connections sooner.
    until: Instant,
}

/// A connection lent to one exchange, back to the pool when the lease is dropped if the answer
/// was read to its end. Dropped earlier, the connection closes instead: HTTP/1.1 cannot send
/// another request before the answer is over.
pub struct PooledConnection {
    sender: Option<Sender>,
    host: Box<str>,
    shared: Arc<Shared>,
    /// The answer was read to its end: hyper is about to mark the connection free.
    answered: bool,
    /// How long the upstream said it keeps an idle connection (`Keep-Alive: timeout=`).
    upstream_keeps: Option<Duration>,
}

impl Pool {
    pub(super) fn new(connector: HttpConnector, idle_timeout: Duration) -> Self {
        Pool {
            shared: Arc::new(Shared {
                idle: Mutex::new(HashMap::new()),
                idle_timeout,
                reaping: AtomicBool::new(false),
            }),
            connector,
        }
    }

    /// Sends `request` (origin-form, `Host` set) to `host` at `uri`, on an idle connection when
    /// one is free, else on a new one.
    pub(super) async fn exchange(
        &self,
        uri: &Uri,
        host: &str,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<(http::Response<Incoming>, PooledConnection), TransportError> {
        if let Some(mut sender) = self.shared.checkout(host) {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = self.lease(sender, host, &response);
                    return Ok((response, lease));
                }
                // The upstream closed the idle connection as the request went out, before any of
                // it was written: a fresh connection may carry it, as hyper-util's client did.
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(TransportError::hyper(failed.error())),
                },
            }
        }
        let mut sender = self.connect(uri).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| TransportError::hyper(&error))?;
        let lease = self.lease(sender, host, &response);
        Ok((response, lease))
    }

    /// The lease of `sender`, which carried `response`. A server that says it closes idle
    /// connections after `Keep-Alive: timeout=` seconds (Node's 5 s) is not sent a request as
    /// it closes one: that request would end half written and could not be sent again.
    fn lease(
        &self,
        sender: Sender,
        host: &str,
        response: &http::Response<Incoming>,
    ) -> PooledConnection {
        PooledConnection {
            sender: Some(sender),
            host: host.into(),
            shared: Arc::clone(&self.shared),
            answered: false,
            upstream_keeps: keep_alive_timeout(response.headers()),
        }
    }

    /// Opens a connection (TCP_NODELAY, keepalive and the connect timeout are the connector's)
    /// and hands it to a task of its own, which reads and writes it until it closes.
    async fn connect(&self, uri: &Uri) -> Result<Sender, TransportError> {
        let mut connector = self.connector.clone();
        let connected = match poll_fn(|cx| connector.poll_ready(cx)).await {
            Ok(()) => connector.call(uri.clone()).await,
            Err(error) => Err(error),
        };
        let io = connected.map_err(|error| {
            if timed_out(&error) {
                TransportError::Timeout
            } else {
                tracing::debug!(%error, "connecting to an upstream failed");
                TransportError::Connect
            }
        })?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|error| TransportError::hyper(&error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        self.shared.start_reaping();
        Ok(sender)
    }
}

impl PooledConnection {
    /// Whether hyper has finished with the answer: the connection is free, or closed.
    fn settled(&self) -> bool {
        self.sender
            .as_ref()
            .is_none_or(|sender| sender.is_ready() || sender.is_closed())
    }
}

/// How long an answer's end is waited for when its reader stopped early, and how much of it is
/// read meanwhile. A stream read up to `[DONE]` usually has only the chunked terminator left;
/// an answer cut by a client that went away is not worth more (the model runs on meanwhile).
const TAIL_WAIT: Duration = Duration::from_millis(50);
const TAIL_BYTES: usize = 64 * 1024;

/// An answer's body and the connection it arrives on. Dropped before the body's end, it reads
/// what is left of the answer for a moment, so the connection can carry the next exchange
/// instead of being closed (hyper closes a connection whose answer was left unread).
pub struct LeasedBody {
    body: Option<Incoming>,
    lease: Option<PooledConnection>,
}

impl LeasedBody {
    pub fn new(body: Incoming, lease: PooledConnection) -> Self {
        LeasedBody {
            body: Some(body),
            lease: Some(lease),
        }
    }

    /// The next frame of the body; `None` at its end.
    pub async fn frame(&mut self) -> Option<Result<hyper::body::Frame<Bytes>, hyper::Error>> {
        self.body.as_mut()?.frame().await
    }
}

impl Drop for LeasedBody {
    fn drop(&mut self) {
        let (Some(mut body), Some(mut lease)) = (self.body.take(), self.lease.take()) else {
            return;
        };
        lease.answered = body.is_end_stream();
        if lease.answered || lease.settled() {
            drop(body);
            return drop(lease);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(TAIL_WAIT, read_tail(&mut body)).await;
            // The body first: the lease then finds the connection free, or closed.
            drop(body);
            drop(lease);
        });
    }
}

/// Reads the rest of a body, giving up past [`TAIL_BYTES`].
async fn read_tail(body: &mut Incoming) {
    let mut left = TAIL_BYTES;
    while let Some(Ok(frame)) = body.frame().await {
        let Some(read) = frame.data_ref().map(Bytes::len) else {
            continue;
        };
        let Some(rest) = left.checked_sub(read) else {
            return;
        };
        left = rest;
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(mut sender) = self.sender.take() else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        // An answer read to its end leaves a connection hyper marks free in a moment (on
        // another worker thread, it may not have yet): it waits in the idle list, where a
        // checkout takes it once it is ready.
        if self.answered || sender.is_ready() {
            self.shared
                .put(std::mem::take(&mut self.host), sender, self.upstream_keeps);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Dropped before its answer was read (a failure on the way): if hyper finishes the
        // answer the connection is kept, and if it closes it this gives up.
        let shared = Arc::clone(&self.shared);
        let host = std::mem::take(&mut self.host);
        let upstream_keeps = self.upstream_keeps;
        runtime.spawn(async move {
            if poll_fn(|cx| sender.poll_ready(cx)).await.is_ok() {
                shared.put(host, sender, upstream_keeps);
            }
        });
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Vec<Idle>>> {
        // The map holds no invariant a panic could break halfway.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used connection to `host` that is free, open and not idle for too
    /// long. Closed and expired ones are dropped on the way; one still finishing its last
    /// answer stays.
    fn checkout(&self, host: &str) -> Option<Sender> {
        let now = Instant::now();
        let mut idle = self.lock();
        let list = idle.get_mut(host)?;
        let mut at = list.len();
        while at > 0 {
            at -= 1;
            if !list[at].alive(now) {
                list.swap_remove(at);
            } else if list[at].sender.is_ready() {
                return Some(list.swap_remove(at).sender);
            }
        }
        None
    }

    /// Offers `sender` for `host` until the idle timeout, or until a second before the upstream
    /// said it would close it; not at all if that leaves nothing.
    fn put(&self, host: Box<str>, sender: Sender, upstream_keeps: Option<Duration>) {
        let keep = match upstream_keeps {
            Some(keeps) => match keeps.checked_sub(KEEP_ALIVE_MARGIN) {
                Some(keep) if !keep.is_zero() => keep.min(self.idle_timeout),
                _ => return,
            },
            None => self.idle_timeout,
        };
        let entry = Idle {
            sender,
            until: Instant::now() + keep,
        };
        self.lock().entry(host).or_default().push(entry);
    }

    /// Closes every connection idle for longer than the timeout, and forgets closed ones.
    fn evict(&self, now: Instant) {
        self.lock().retain(|_, list| {
            list.retain(|entry| entry.alive(now));
            !list.is_empty()
        });
    }

    /// Starts, once, the task that runs [`Shared::evict`] every half idle timeout for as long
    /// as the pool lives.
    fn start_reaping(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::Relaxed) {
            return;
        }
        let shared: Weak<Shared> = Arc::downgrade(self);
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.evict(Instant::now());
            }
        });
    }
}

impl Idle {
    fn alive(&self, now: Instant) -> bool {
        !self.sender.is_closed() && now < self.until
    }
}

/// How much sooner than an upstream's `Keep-Alive: timeout=` the gateway stops reusing a
/// connection: the request must reach the server before it closes.
const KEEP_ALIVE_MARGIN: Duration = Duration::from_secs(1);

/// `timeout=` of a `Keep-Alive` header (`timeout=5, max=1000`), in seconds.
fn keep_alive_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    static KEEP_ALIVE: http::HeaderName = http::HeaderName::from_static("keep-alive");
    let value = headers.get(&KEEP_ALIVE)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let (name, seconds) = part.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| seconds.trim().parse().ok().map(Duration::from_secs))?
    })
}

#[cfg(test)]
mod tests {
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
}
