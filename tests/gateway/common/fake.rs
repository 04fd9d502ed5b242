//! What every fake provider shares: the record of what it received, its `error-<status>`
//! behaviour, and a streamed body sent event by event that a `cut` behaviour breaks mid-way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path (Gemini's fake keeps the query in it, as its tests read it).
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as it arrived, for byte-for-byte checks.
    pub raw: String,
    pub at: Instant,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            path: String::new(),
            query: String::new(),
            headers: HeaderMap::new(),
            body: Value::Null,
            raw: String::new(),
            at: Instant::now(),
        }
    }
}

/// Every request a fake received, in order; shared by its handlers and the test.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Received>>>);

impl Recorder {
    pub fn record(&self, received: Received) {
        self.0.lock().expect("lock").push(received);
    }

    pub fn all(&self) -> Vec<Received> {
        self.0.lock().expect("lock").clone()
    }
}

/// The status an `error-<status>` behaviour answers with (500 for a number that is no status).
pub fn error_status(behaviour: &str) -> Option<StatusCode> {
    let status = behaviour.strip_prefix("error-")?;
    Some(StatusCode::from_bytes(status.as_bytes()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

/// A streamed body of `events`, each sent 5 ms after the last; with `cut`, the connection breaks
/// after them instead of ending.
pub fn event_body(events: Vec<String>, cut: bool) -> Body {
    let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>))
        .chain(futures_util::stream::iter(
            cut.then(|| Err(std::io::Error::other("connection cut"))),
        ))
        .then(|event| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            event
        });
    Body::from_stream(body)
}
