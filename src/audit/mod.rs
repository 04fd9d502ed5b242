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
use crate::telemetry::{Metrics, traces};

pub use writer::WriterError;

/// Where each request's record goes: the audit log (when configured), the request's span (when
/// traces are exported) and the GenAI metrics; cheap to clone.
#[derive(Clone, Default)]
pub struct Audit {
    sink: Option<writer::Sink>,
    /// Every finished record is also counted: GenAI durations and tokens, spend, cache.
    metrics: Option<Arc<Metrics>>,
}

impl Audit {
    /// The audit log `config` asks for (`None`: no log, records are only counted).
    pub fn new(config: Option<&AuditConfig>, metrics: Arc<Metrics>) -> Result<Audit, WriterError> {
        Ok(Audit {
            sink: config
                .map(|c| writer::Sink::start(c, metrics.audit.clone()))
                .transpose()?,
            metrics: Some(metrics),
        })
    }

    /// Writes the lines queued so far (waiting at most two seconds): at shutdown.
    pub fn flush(&self) {
        if let Some(sink) = &self.sink {
            sink.flush();
        }
    }

    /// A record for one `action`, read when its last holder drops it: written to the audit log,
    /// set on the request's trace span, counted. `None` for a `check`'s gateway, which has none.
    pub fn begin(&self, action: &'static str, request_id: Option<String>) -> Option<Arc<Record>> {
        let span = traces::enabled().then(traces::TraceContext::current);
        if self.sink.is_none() && span.is_none() && self.metrics.is_none() {
            return None;
        }
        Some(Arc::new(Record {
            sink: self.sink.clone(),
            metrics: self.metrics.clone(),
            span,
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
    sink: Option<writer::Sink>,
    /// The request's trace span, given the line's facts as GenAI attributes.
    span: Option<traces::TraceContext>,
    metrics: Option<Arc<Metrics>>,
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
    /// Why each choice ended (`stop`, `length`, `tool_calls`, ...), when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
}

impl Record {
    /// Fills in part of the line.
    pub fn note(&self, fill: impl FnOnce(&mut Line)) {
        fill(&mut self.line.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl Record {
    /// Whether anything reads more than the metrics do (an audit line, a span): details only
    /// they show (finish reasons) are gathered only then.
    pub fn tells(&self) -> bool {
        self.sink.is_some() || self.span.is_some()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let line = std::mem::take(self.line.get_mut().unwrap_or_else(PoisonError::into_inner));
        if let Some(span) = &self.span {
            traces::annotate(span, attributes(&line));
        }
        if let Some(metrics) = &self.metrics {
            count(metrics, &line, self.started.elapsed().as_secs_f64());
        }
        if let Some(sink) = &self.sink {
            sink.write(&line, self.started.elapsed());
        }
    }
}

/// A finished model request in the GenAI metrics, its spend and its cache lookup.
fn count(metrics: &Metrics, line: &Line, seconds: f64) {
    let Some(model) = &line.model else {
        return;
    };
    let operation = match operation(line.action) {
        Some(operation @ ("chat" | "embeddings")) => operation,
        _ => return,
    };
    let provider = line
        .target
        .as_deref()
        .and_then(|t| t.split_once('/'))
        .map_or("", |(provider, _)| provider);
    let failed = line.status.filter(|s| *s >= 400);
    let tokens = (line.input_tokens, line.output_tokens);
    metrics
        .genai
        .operation(operation, model, provider, failed, seconds, tokens);
    if let (Some(key), Some(cost)) = (&line.key, line.cost_usd) {
        metrics.genai.spend(key, model, cost);
        metrics.totals.spend(cost);
    }
    if let Some(cache) = line.cache {
        metrics.genai.cache(model, cache);
    }
}

/// The GenAI operation of an audited action.
fn operation(action: &str) -> Option<&'static str> {
    match action {
        "chat.completions" | "messages" | "responses" => Some("chat"),
        "embeddings" => Some("embeddings"),
        "mcp.tool_call" => Some("execute_tool"),
        _ => None,
    }
}

/// A line's facts in the words of the OpenTelemetry GenAI conventions (and the gateway's own
/// for the key and the cache).
pub fn attributes(line: &Line) -> Vec<traces::Attribute> {
    use traces::Attribute;
    let operation = operation(line.action);
    let text = |key: &'static str, value: &Option<String>| {
        value.as_ref().map(|v| Attribute::new(key, v.clone()))
    };
    let count = |key: &'static str, value: Option<u64>| {
        value.map(|v| Attribute::new(key, i64::try_from(v).unwrap_or(i64::MAX)))
    };
    let (provider, response_model) = match line.target.as_deref().map(|t| t.split_once('/')) {
        Some(Some((provider, model))) => (Some(provider.to_owned()), Some(model.to_owned())),
        _ => (None, None),
    };
    [
        operation.map(|o| Attribute::new("gen_ai.operation.name", o)),
        text("gen_ai.request.model", &line.model),
        text("gen_ai.response.model", &response_model),
        text("gen_ai.provider.name", &provider),
        text("gen_ai.tool.name", &line.tool),
        count("gen_ai.usage.input_tokens", line.input_tokens),
        count("gen_ai.usage.output_tokens", line.output_tokens),
        (!line.finish_reasons.is_empty()).then(|| {
            let reasons: Vec<opentelemetry::StringValue> = line
                .finish_reasons
                .iter()
                .map(|r| r.clone().into())
                .collect();
            Attribute::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(opentelemetry::Array::String(reasons)),
            )
        }),
        text("switchboard.key", &line.key),
        line.cache.map(|c| Attribute::new("switchboard.cache", c)),
        line.cost_usd
            .map(|c| Attribute::new("switchboard.cost_usd", c)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A tool call's line, written at once (it has no request of its own: it rides in an MCP
/// session's) and counted under `label`, the tool's name when the gateway serves it.
pub fn write_now(audit: &Audit, line: Line, started: Instant, label: &str) {
    if let Some(metrics) = &audit.metrics {
        metrics.genai.tool_call(label, line.outcome);
    }
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
