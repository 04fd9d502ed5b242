//! Where an answer's usage goes once it is over, however it ended: the metrics, the caller's
//! charge, and the request's record (tokens, finish reasons, and content when captured).

use std::sync::Arc;

use bytes::Bytes;
use switchboard_providers::chat::{ChatChunk, ChatResponse, Usage};

use crate::charge::Charge;
use crate::telemetry::Metrics;

/// Where an answer's token usage is reported once it is over, however it ended: the metrics, and
/// the caller's charge.
pub struct UsageSink {
    /// Metrics and labels; `None` for answers that cost no tokens (cache hits).
    target: Option<(Arc<Metrics>, String, String)>,
    latest: Option<Usage>,
    charge: Option<Charge>,
    /// The request's audit record, told the tokens (a charge adds the cost).
    audit: Option<Arc<crate::audit::Record>>,
    /// Why each choice ended, as far as the answer said; gathered only when an audit line or a
    /// span will say it (the GenAI metrics do not).
    reasons: Vec<String>,
    wants_reasons: bool,
    /// The request's span, and the text streamed so far, when content is captured.
    capture: Option<(crate::telemetry::traces::TraceContext, String)>,
}

impl UsageSink {
    pub fn new(metrics: Arc<Metrics>, model: &str, provider: &str, charge: Option<Charge>) -> Self {
        let audit = crate::audit::current();
        UsageSink {
            target: Some((metrics, model.to_owned(), provider.to_owned())),
            latest: None,
            charge,
            wants_reasons: audit.as_ref().is_some_and(|r| r.tells()),
            audit,
            reasons: Vec::new(),
            capture: crate::telemetry::traces::capturing().then(|| {
                (
                    crate::telemetry::traces::TraceContext::current(),
                    String::new(),
                )
            }),
        }
    }

    /// A sink that counts nothing.
    pub fn ignore() -> Self {
        UsageSink {
            target: None,
            latest: None,
            charge: None,
            audit: None,
            reasons: Vec::new(),
            wants_reasons: false,
            capture: None,
        }
    }

    /// Notes the usage a provider reported; the last report wins.
    pub fn record(&mut self, usage: Option<&Usage>) {
        if let Some(usage) = usage {
            self.latest = Some(usage.clone());
        }
    }

    /// Notes a whole answer, whose text is counted if it carries no usage.
    pub fn record_response(&mut self, response: &ChatResponse) {
        self.record(response.usage.as_ref());
        self.note_answer(response);
        if let (Some(charge), None) = (&mut self.charge, &self.latest) {
            charge.observe_response(response);
        }
    }

    pub(super) fn observe_chunk(&mut self, chunk: &ChatChunk) {
        self.note_chunk(chunk);
        if let (Some(charge), None) = (&mut self.charge, &self.latest) {
            charge.observe_chunk(chunk);
        }
    }

    /// Notes the finish reasons of a provider's whole answer passed through unparsed (and its
    /// messages, when content is captured: only then is it parsed).
    pub fn record_verbatim(&mut self, body: &[u8]) {
        if self.wants_reasons {
            scan_reasons(body, &mut self.reasons);
        }
        if self.capture.is_some()
            && let Ok(response) = serde_json::from_slice::<ChatResponse>(body)
        {
            self.captured(|text| *text = answer_text(&response));
        }
    }

    pub(super) fn observe_verbatim(&mut self, data: &Bytes) {
        if self.wants_reasons {
            scan_reasons(data, &mut self.reasons);
        }
        if self.capture.is_some()
            && let Ok(chunk) = serde_json::from_slice::<ChatChunk>(data)
        {
            self.captured(|text| text.extend(chunk_text(&chunk)));
        }
        if let (Some(charge), None) = (&mut self.charge, &self.latest) {
            charge.observe_verbatim(data);
        }
    }

    /// A parsed whole answer's finish reasons and, when captured, its messages.
    fn note_answer(&mut self, response: &ChatResponse) {
        if self.wants_reasons {
            let reasons = response
                .choices
                .iter()
                .filter_map(|c| c.finish_reason.as_ref());
            self.reasons.extend(reasons.filter_map(reason_name));
        }
        self.captured(|text| *text = answer_text(response));
    }

    /// A parsed chunk's finish reasons and, when captured, its text.
    fn note_chunk(&mut self, chunk: &ChatChunk) {
        if self.wants_reasons {
            let reasons = chunk
                .choices
                .iter()
                .filter_map(|c| c.finish_reason.as_ref());
            self.reasons.extend(reasons.filter_map(reason_name));
        }
        self.captured(|text| text.extend(chunk_text(chunk)));
    }

    /// Changes the captured content, when content is captured.
    fn captured(&mut self, change: impl FnOnce(&mut String)) {
        if let Some((_, text)) = &mut self.capture {
            change(text);
        }
    }

    /// Reports the usage, once. Servers that report usage on every chunk report running totals:
    /// only the last one counts.
    pub fn close(&mut self) {
        if let Some((span, text)) = self.capture.take() {
            crate::telemetry::traces::capture_on(&span, "gen_ai.output.messages", text);
        }
        if let Some(record) = self.audit.take() {
            let usage = self.latest.as_ref();
            let reasons = std::mem::take(&mut self.reasons);
            record.note(|line| {
                if let Some(usage) = usage {
                    line.input_tokens = Some(usage.prompt_tokens);
                    line.output_tokens = Some(usage.completion_tokens);
                }
                line.finish_reasons = reasons;
            });
        }
        if let (Some((metrics, model, provider)), Some(usage)) = (self.target.take(), &self.latest)
        {
            metrics.tokens(
                &model,
                &provider,
                usage.prompt_tokens,
                usage.completion_tokens,
            );
        }
        if let Some(charge) = self.charge.take() {
            charge.settle(self.latest.as_ref());
        }
    }
}

/// The most finish reasons kept for one answer (one per choice; `n` is rarely large).
const MAX_REASONS: usize = 16;

/// Every `"finish_reason": "..."` in JSON text, found by a byte scan: answers passed through
/// are not parsed for them.
pub fn scan_reasons(json: &[u8], reasons: &mut Vec<String>) {
    const FIELD: &[u8] = b"\"finish_reason\"";
    for at in memchr::memmem::find_iter(json, FIELD) {
        if reasons.len() >= MAX_REASONS {
            return;
        }
        let rest = &json[at + FIELD.len()..];
        let rest = rest.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let Some(value) = rest.trim_ascii_start().strip_prefix(b"\"") else {
            continue; // null: this choice has not finished
        };
        let Some(end) = memchr::memchr2(b'"', b'\\', value) else {
            continue;
        };
        if value[end] == b'"' && end <= 64 {
            reasons.push(String::from_utf8_lossy(&value[..end]).into_owned());
        }
    }
}

/// A whole answer's messages as JSON, for `gen_ai.output.messages`.
fn answer_text(response: &ChatResponse) -> String {
    let messages: Vec<_> = response.choices.iter().map(|c| &c.message).collect();
    serde_json::to_string(&messages).unwrap_or_default()
}

/// The text a chunk adds.
fn chunk_text(chunk: &ChatChunk) -> impl Iterator<Item = &str> {
    chunk
        .choices
        .iter()
        .filter_map(|c| c.delta.content.as_deref())
}

/// A finish reason as OpenAI writes it.
fn reason_name(reason: &switchboard_providers::chat::FinishReason) -> Option<String> {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}

impl Drop for UsageSink {
    fn drop(&mut self) {
        self.close();
    }
}
