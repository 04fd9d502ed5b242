//! The audit log: one JSON line per model request, MCP tool call, context write and admin
//! action, saying who did what, to which model or tool, with what outcome, tokens and cost.
//!
//! A request's [`Record`] is filled in by whoever learns something (the key, the route, the
//! usage) while it runs, and written once, when its last holder lets go: for a stream, after
//! its last byte. The line never holds a secret or a prompt: key names, not keys; model, tool
//! and document names, not their content. Writing never blocks a request (`writer`).

mod writer;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use crate::config::AuditConfig;
use crate::telemetry::AuditMetrics;

pub use writer::WriterError;

/// Where audit lines go; cheap to clone. Off: every call is a no-op.
#[derive(Clone, Default)]
pub struct Audit {
    sink: Option<writer::Sink>,
}

impl Audit {
    /// The audit log `config` asks for; `None` is off.
    pub fn new(
        config: Option<&AuditConfig>,
        metrics: Arc<AuditMetrics>,
    ) -> Result<Audit, WriterError> {
        Ok(Audit {
            sink: config
                .map(|c| writer::Sink::start(c, metrics))
                .transpose()?,
        })
    }

    /// A record for one `action`, written when its last holder drops it; `None` when off.
    pub fn begin(&self, action: &'static str, request_id: Option<String>) -> Option<Arc<Record>> {
        let sink = self.sink.clone()?;
        Some(Arc::new(Record {
            sink,
            started: Instant::now(),
            line: Mutex::new(Line {
                action,
                request_id,
                ..Line::default()
            }),
        }))
    }
}

/// One audit line being filled in.
pub struct Record {
    sink: writer::Sink,
    started: Instant,
    line: Mutex<Line>,
}

/// What a line says. Absent fields are left out.
#[derive(Default, Serialize)]
pub struct Line {
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The key's name; `null` for the admin key or an open gateway.
    pub key: Option<String>,
    /// The admin grant the action used (`admin` for the admin key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `provider/model` that answered, or `cache`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `namespace/key` of a context document written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `ok` or `error`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `hit`, `miss` or `bypass`, when the response cache was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
}

impl Record {
    /// Fills in part of the line.
    pub fn note(&self, fill: impl FnOnce(&mut Line)) {
        fill(&mut self.line.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let line = std::mem::take(self.line.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.sink.write(&line, self.started.elapsed());
    }
}

/// A line written at once, for what has no request of its own (an MCP tool call inside a
/// session's request).
pub fn write_now(audit: &Audit, line: Line, started: Instant) {
    if let Some(sink) = &audit.sink {
        sink.write(&line, started.elapsed());
    }
}

tokio::task_local! {
    /// The record of the request this task is serving, so that what it learns along the way
    /// (the key, the route, the usage) reaches the line without being passed down.
    static CURRENT: Arc<Record>;
}

/// Runs `future` with `record` as the current request's record.
pub async fn scope<F: Future>(record: Arc<Record>, future: F) -> F::Output {
    CURRENT.scope(record, future).await
}

/// The current request's record, to keep for what happens after the handler returns (a stream's
/// usage); `None` when off or outside a request.
pub fn current() -> Option<Arc<Record>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Fills in part of the current request's line, if there is one.
pub fn note(fill: impl FnOnce(&mut Line)) {
    let _ = CURRENT.try_with(|record| record.note(fill));
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), if valid.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    let valid = trace.len() == 32
        && trace.bytes().all(|b| b.is_ascii_hexdigit())
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
