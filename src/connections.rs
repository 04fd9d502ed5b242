//! Client connections: accepted up to `server.max_connections` at once, each served by hyper
//! (HTTP/1.1 or HTTP/2) under `server.header_timeout`, and drained gracefully on shutdown.
//!
//! axum's `serve` gives hyper no timer, so a client that opens a connection and sends half a
//! request, or nothing, holds a descriptor forever; enough of them and the gateway stops
//! answering. Here a connection has `header_timeout` to start its first request (hyper's
//! protocol detection has no deadline of its own), and hyper's header timer covers every later
//! request head and the idle wait between keep-alive requests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower_service::Service;

/// How long accepting pauses after a failure (out of descriptors, most often), so the loop does
/// not spin on an error that will not clear at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
        let service = {
            let started = Arc::clone(&started);
            let router = self.router;
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                // A router is always ready: calling it without `poll_ready` is its documented use.
                router.clone().call(request.map(Body::new))
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
            // As axum's own `serve` does: HTTP/2 WebSocket upgrades need it.
            .enable_connect_protocol();
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
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
            _ = self.stopping.changed() => {
                conn.as_mut().graceful_shutdown();
                if let Err(error) = conn.await {
                    tracing::trace!(%error, "connection ended with an error");
                }
            }
        }
    }
}
