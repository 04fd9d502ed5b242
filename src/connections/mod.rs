//! Client connections: accepted up to `server.max_connections` at once, each served by hyper
//! (HTTP/1.1 or HTTP/2) under `server.header_timeout`, and drained gracefully on shutdown.
//!
//! axum's `serve` gives hyper no timer, so a client that opens a connection and sends half a
//! request, or nothing, holds a descriptor forever; enough of them and the gateway stops
//! answering. Here a connection has `header_timeout` to start its first request (hyper's
//! protocol detection has no deadline of its own), and hyper's header timer covers every later
//! request head and the idle wait between keep-alive requests.
//!
//! hyper has no idle limit for HTTP/2: a silent h2c connection would hold its slot for good.
//! Here an HTTP/2 connection with no stream open for `header_timeout` is sent GOAWAY and closed,
//! keep-alive pings find peers that vanished mid-stream, and a connection carries at most
//! [`MAX_STREAMS`] streams at once.

mod error_bodies;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures_util::FutureExt;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower_service::Service;

/// How long accepting pauses after a failure (out of descriptors, most often), so the loop does
/// not spin on an error that will not clear at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Streams one HTTP/2 connection may have open at once (nginx allows 128).
const MAX_STREAMS: u32 = 128;

/// How often an HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is dropped: a peer that vanished frees its streams within a minute.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The limits every client connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets each
/// connection finish the requests it has started, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(());
    // Every connection holds a receiver: the sender sees them all gone once the last closes.
    let (closed, open) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            router: router.clone(),
            limits,
            stopping: stopping.clone(),
            _open: open.clone(),
            _slot: permit,
        };
        tokio::spawn(connection.serve(tcp));
    }
    drop(listener);
    // No receiver left is fine: no connection to tell.
    let _ = stop.send(());
    drop(open);
    closed.closed().await;
}

/// One accepted connection and what it holds until it closes.
struct Connection {
    router: Router,
    limits: Limits,
    stopping: watch::Receiver<()>,
    _open: watch::Receiver<()>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream) {
        // Without TCP_NODELAY, small keep-alive responses can wait ~40 ms on delayed ACKs.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let started = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Streams::default());
        let service = {
            let started = Arc::clone(&started);
            let streams = Arc::clone(&streams);
            let router = self.router;
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                // Only HTTP/2 needs the count: hyper's header timer covers HTTP/1's idle waits.
                let open =
                    (request.version() == http::Version::HTTP_2).then(|| Streams::open(&streams));
                // A router is always ready: calling it without `poll_ready` is its documented use.
                let answer = router.clone().call(request.map(Body::new));
                match open {
                    // HTTP/1 takes the router's future as it is: nothing added per request.
                    None => Either::Left(answer),
                    // The stream stays open until its body is sent or dropped.
                    Some(open) => Either::Right(answer.map(|answered| {
                        answered.map(|response| crate::held_body::hold_until_sent(response, open))
                    })),
                }
            })
        };
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_TIMEOUT)
            // As axum's own `serve` does: HTTP/2 WebSocket upgrades need it.
            .enable_connect_protocol();
        let io = TokioIo::new(error_bodies::ErrorBodies::new(tcp));
        let conn = builder.serve_connection_with_upgrades(io, service);
        let mut conn = std::pin::pin!(conn);
        let first_request = async {
            tokio::time::sleep(self.limits.header_timeout).await;
            if started.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
            }
            // Dropping the connection closes the socket.
            () = first_request => tracing::debug!("connection closed: no request in time"),
            () = streams.idle(self.limits.header_timeout) => {
                tracing::debug!("HTTP/2 connection closed: idle");
                conn.as_mut().graceful_shutdown();
                if let Err(error) = conn.await {
                    tracing::trace!(%error, "connection ended with an error");
                }
            }
            _ = self.stopping.changed() => {
                conn.as_mut().graceful_shutdown();
                if let Err(error) = conn.await {
                    tracing::trace!(%error, "connection ended with an error");
                }
            }
        }
    }
}

/// The HTTP/2 streams of one connection: how many are open, and how many were ever opened.
#[derive(Default)]
struct Streams {
    open: AtomicUsize,
    opened: AtomicUsize,
    closed: Notify,
}

impl Streams {
    fn open(streams: &Arc<Streams>) -> OpenStream {
        streams.opened.fetch_add(1, Ordering::Relaxed);
        streams.open.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(streams))
    }

    /// Completes once an HTTP/2 connection has had no stream open for `limit`; never for a
    /// connection that has served no HTTP/2 request.
    async fn idle(&self, limit: Duration) {
        loop {
            let closed = self.closed.notified();
            if self.opened.load(Ordering::Relaxed) == 0 || self.open.load(Ordering::Relaxed) > 0 {
                closed.await;
                continue;
            }
            let seen = self.opened.load(Ordering::Relaxed);
            tokio::time::sleep(limit).await;
            if self.open.load(Ordering::Relaxed) == 0 && self.opened.load(Ordering::Relaxed) == seen
            {
                return;
            }
        }
    }
}

/// One open HTTP/2 stream; closing it may start the connection's idle wait.
struct OpenStream(Arc<Streams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.closed.notify_waiters();
    }
}
