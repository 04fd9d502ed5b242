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
mod tests;
