//! Canonical chunks to the client's server-sent events, one event per chunk as soon as it
//! arrives: usage handling, the role on the first chunk, and a clean end whatever happens upstream.
//!
//! A stream always ends with `data: [DONE]` or with one OpenAI-shaped error event, never by
//! hanging; dropping the body (the client went away) drops the upstream with it.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use switchboard_providers::assemble::Assembler;
use switchboard_providers::chat::ChatChunk;
use switchboard_providers::chunk_edit::{Edits, RoleTo};
use switchboard_providers::messages::{EventWriter, error_type};
use switchboard_providers::responses;
use switchboard_providers::{NativeEvent, StreamItem, VerbatimChunk};

use crate::cache::Fill;
use crate::error::ApiError;
use crate::stored_responses::Keep;

mod usage;

pub use usage::{UsageSink, scan_reasons};

/// Collects a streamed answer for the cache; stores it only if the stream completed.
pub struct Recorder {
    assembler: Assembler,
    fill: Fill,
    target: String,
}

impl Recorder {
    pub fn new(fill: Fill, target: &str) -> Self {
        Recorder {
            assembler: Assembler::default(),
            fill,
            target: target.to_owned(),
        }
    }
}

struct Relay<S> {
    items: S,
    wants_usage: bool,
    sink: UsageSink,
    recorder: Option<Recorder>,
    first: bool,
    /// The request's `n`; above 1, each choice's first delta is looked for.
    choices: u32,
    /// Choices whose first delta has gone out, by index.
    started: u128,
    finished: bool,
    /// The provider said the answer is complete.
    completed: bool,
    dialect: Dialect,
    /// The provider speaks the client's format: its events are forwarded as they came, and
    /// the chunks decoded from them only accounted for.
    native: bool,
}

/// What the client's stream is written in.
pub enum Dialect {
    /// OpenAI's chunks, forwarded as the provider wrote them where they can be.
    Chat,
    /// Anthropic's Messages events, written from every chunk.
    Messages(Box<EventWriter>),
    /// OpenAI's Responses events, written from every chunk; the response is kept at the end
    /// when the client asked to store it.
    Responses(Box<responses::EventWriter>, Option<Keep>),
}

impl Dialect {
    /// Anthropic's events for an answer whose prompt counts `input_tokens`.
    pub fn messages(input_tokens: u64) -> Self {
        Dialect::Messages(Box::new(EventWriter::new(input_tokens)))
    }
}

/// Encodes canonical stream items as the body of a `text/event-stream` response in `dialect`.
/// `choices` is the request's `n`.
pub fn encode<S>(
    items: S,
    wants_usage: bool,
    choices: u32,
    sink: UsageSink,
    recorder: Option<Recorder>,
    dialect: Dialect,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send
where
    S: Stream<Item = Result<StreamItem, ApiError>> + Send + Unpin,
{
    let relay = Relay {
        items,
        wants_usage,
        sink,
        recorder,
        first: true,
        choices,
        started: 0,
        finished: false,
        completed: false,
        dialect,
        native: false,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        let event = relay.next_event().await?;
        Some((Ok(event), relay))
    })
}

impl<S> Relay<S>
where
    S: Stream<Item = Result<StreamItem, ApiError>> + Unpin,
{
    /// The next piece of body: one event as soon as it is ready, plus any further events that
    /// are already waiting. Events that arrived together leave together, in one write, instead of
    /// one syscall each; nothing ever waits for more to come.
    async fn next_event(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        // Events are written straight into the piece of body they leave in.
        let mut out = Vec::with_capacity(1024);
        // Every last item (the end, an error) writes an event, so `out` is never sent empty.
        while out.is_empty() && !self.finished {
            let item = self.items.next().await;
            self.handle(item, &mut out);
        }
        while !self.finished {
            match self.items.next().now_or_never() {
                Some(item) => self.handle(item, &mut out),
                None => break,
            }
        }
        if self.finished {
            // Usage is on record (journaled, with Redis) before the client sees the end.
            self.sink.close();
            self.store().await;
        }
        Some(Bytes::from(out))
    }

    /// Hands a completed answer to the cache, and a completed response to the stored
    /// responses; a stream that did not complete stores nothing.
    async fn store(&mut self) {
        if let Dialect::Responses(writer, keep) = &mut self.dialect
            && let Some(keep) = keep.take()
        {
            if self.native {
                keep.store_heard().await;
            } else if let Some((response, answer)) = writer.finished() {
                keep.store(response.clone(), answer).await;
            }
        }
        if let Some(recorder) = self.recorder.take()
            && self.completed
            && recorder.assembler.is_complete()
        {
            let answer = recorder.assembler.finish();
            recorder.fill.store(answer, None, &recorder.target).await;
        }
    }

    /// Writes one item's event to `out`, if it has one.
    fn handle(&mut self, item: Option<Result<StreamItem, ApiError>>, out: &mut Vec<u8>) {
        if !matches!(self.dialect, Dialect::Chat) {
            return self.translate(item, out);
        }
        match item {
            Some(Ok(StreamItem::Chunk(chunk))) => self.chunk(chunk, out),
            Some(Ok(StreamItem::Verbatim(chunk))) => self.verbatim(chunk, out),
            Some(Ok(StreamItem::Done)) => {
                self.finished = true;
                self.completed = true;
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Some(Ok(StreamItem::KeepAlive)) => out.extend_from_slice(b": keep-alive\n\n"),
            // Only a surface that speaks the provider's format asks for its events.
            Some(Ok(StreamItem::Native(_))) => {}
            Some(Err(error)) => self.fail(&error, out),
            None => self.fail(
                &ApiError::bad_gateway("the provider closed the stream before it finished"),
                out,
            ),
        }
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        self.finished = true;
        tracing::warn!(status = error.status.as_u16(), message = %error.message, "stream ended with an error");
        match &mut self.dialect {
            Dialect::Chat => frame(out, &error.body()),
            Dialect::Messages(writer) => {
                let kind = error_type(error.status.as_u16(), error.code.as_deref());
                writer.error(kind, &error.message, out);
            }
            Dialect::Responses(writer, _) => {
                let code = error.code.as_deref().unwrap_or(&error.kind);
                writer.error(code, &error.message, out);
            }
        }
    }

    /// The Messages dialect: every chunk read whole, accounted for and cached as in the chat
    /// dialect, and written as Anthropic's events.
    fn translate(&mut self, item: Option<Result<StreamItem, ApiError>>, out: &mut Vec<u8>) {
        let chunk = match item {
            Some(Ok(StreamItem::Chunk(chunk))) => chunk,
            Some(Ok(StreamItem::Verbatim(chunk))) => match chunk.parse() {
                Ok(parsed) => Box::new(parsed),
                Err(error) => return self.fail(&error.into(), out),
            },
            Some(Ok(StreamItem::Native(event))) => {
                self.native = true;
                if let Dialect::Responses(_, Some(keep)) = &mut self.dialect {
                    keep.hear(&event);
                }
                return native_event(out, &event);
            }
            Some(Ok(StreamItem::Done)) => {
                self.finished = true;
                self.completed = true;
                match &mut self.dialect {
                    // The provider's own last events have gone out already.
                    _ if self.native => {}
                    Dialect::Messages(writer) => writer.finish(out),
                    Dialect::Responses(writer, _) => writer.finish(out),
                    Dialect::Chat => {}
                }
                return;
            }
            Some(Ok(StreamItem::KeepAlive)) => {
                return match &self.dialect {
                    Dialect::Messages(_) => EventWriter::ping(out),
                    _ => out.extend_from_slice(b": keep-alive\n\n"),
                };
            }
            Some(Err(error)) => return self.fail(&error, out),
            None => {
                let error =
                    ApiError::bad_gateway("the provider closed the stream before it finished");
                return self.fail(&error, out);
            }
        };
        if let Some(recorder) = &mut self.recorder {
            recorder.assembler.push(&chunk);
        }
        self.sink.record(chunk.usage.as_ref());
        self.sink.observe_chunk(&chunk);
        match &mut self.dialect {
            _ if self.native => {}
            Dialect::Messages(writer) => writer.chunk(&chunk, out),
            Dialect::Responses(writer, _) => writer.chunk(&chunk, out),
            Dialect::Chat => {}
        }
    }

    /// Forwards a provider's own chunk as sent, but for the two edits a relay makes (a role on
    /// the first deltas, usage the client did not ask for taken out), which leave every other
    /// value as the provider wrote it.
    fn verbatim(&mut self, chunk: Box<VerbatimChunk>, out: &mut Vec<u8>) {
        let add_role = if self.choices > 1 {
            self.first_deltas(&chunk)
        } else if self.first && chunk.has_choices && !chunk.has_role {
            RoleTo::Every
        } else {
            RoleTo::Nobody
        };
        let strip_usage = !self.wants_usage && chunk.has_choices && chunk.usage.is_some();
        let edits = Edits {
            add_role,
            // A chunk rewritten anyway loses a `"usage": null` the client did not ask for too.
            strip_usage: strip_usage || (add_role != RoleTo::Nobody && !self.wants_usage),
        };
        if let Some(recorder) = &mut self.recorder {
            match chunk.parse() {
                Ok(parsed) => recorder.assembler.push(&parsed),
                // Not cacheable, but still the client's to judge.
                Err(_) => self.recorder = None,
            }
        }
        self.sink.record(chunk.usage.as_ref());
        self.sink.observe_verbatim(&chunk.data);
        if chunk.has_choices {
            self.first = false;
        } else if chunk.usage.is_some() && !self.wants_usage {
            return;
        }
        if edits.add_role != RoleTo::Nobody || edits.strip_usage {
            match chunk.edited(edits) {
                Ok(edited) => frame(out, &edited),
                Err(error) => self.fail(&error.into(), out),
            }
        } else if !self.wants_usage
            && let Some(json) = chunk.data.strip_suffix(NULL_USAGE)
        {
            // The gateway asked for usage the client did not: OpenAI would not have sent the
            // `"usage":null` it then puts on every chunk.
            frame_parts(out, json, b"}");
        } else {
            frame(out, &chunk.data);
        }
    }

    /// With `n > 1`, servers may send each choice's first delta in a chunk of its own: until every
    /// choice has started, chunks are read for choices seen for the first time without a role.
    fn first_deltas(&mut self, chunk: &VerbatimChunk) -> RoleTo {
        if !chunk.has_choices || self.started.count_ones() >= self.choices {
            return RoleTo::Nobody;
        }
        let Ok(parsed) = chunk.parse() else {
            return RoleTo::Nobody;
        };
        let mut missing = 0u128;
        for choice in parsed.choices.iter().filter(|c| c.index < 128) {
            let bit = 1u128 << choice.index;
            if self.started & bit == 0 {
                self.started |= bit;
                if choice.delta.role.is_none() {
                    missing |= bit;
                }
            }
        }
        if missing == 0 {
            RoleTo::Nobody
        } else {
            RoleTo::Indices(missing)
        }
    }

    fn chunk(&mut self, mut chunk: Box<ChatChunk>, out: &mut Vec<u8>) {
        if let Some(recorder) = &mut self.recorder {
            recorder.assembler.push(&chunk);
        }
        self.sink.record(chunk.usage.as_ref());
        self.sink.observe_chunk(&chunk);
        if !self.wants_usage {
            if chunk.is_usage_only() {
                return;
            }
            chunk.usage = None;
        }
        if self.first && !chunk.choices.is_empty() {
            self.first = false;
            for choice in &mut chunk.choices {
                choice
                    .delta
                    .role
                    .get_or_insert_with(|| "assistant".to_owned());
            }
        }
        data_event(out, &chunk);
    }
}

/// How OpenAI ends every chunk but the last once asked for usage.
const NULL_USAGE: &[u8] = b",\"usage\":null}";

/// A provider's event in the client's own format, as it came: its name, and its data a line per
/// `data:` field.
fn native_event(out: &mut Vec<u8>, event: &NativeEvent) {
    if !event.name.is_empty() {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.name.as_bytes());
        out.push(b'\n');
    }
    frame(out, event.data.as_bytes());
}

/// One `data:` event. An upstream event whose data spanned several lines keeps one `data:` line
/// per line, so the client joins them back exactly as it was sent.
fn frame(out: &mut Vec<u8>, json: &[u8]) {
    frame_parts(out, json, b"");
}

/// [`frame`] for a chunk written in two pieces; `tail` holds no line break.
fn frame_parts(out: &mut Vec<u8>, head: &[u8], tail: &[u8]) {
    if has_newline(head) {
        for line in [head, tail].concat().split(|&b| b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.push(b'\n');
        return;
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
    out.extend_from_slice(b"\n\n");
}

/// Whether a chunk spans lines (an upstream's pretty-printed JSON). memchr's vector search:
/// the slice's own `contains` goes a word at a time, and splitting byte by byte cost more than
/// the rest of a relay.
fn has_newline(json: &[u8]) -> bool {
    memchr::memchr(b'\n', json).is_some()
}

fn data_event(out: &mut Vec<u8>, chunk: &ChatChunk) {
    out.extend_from_slice(b"data: ");
    // Canonical chunks hold only strings, numbers and JSON values: serializing cannot fail.
    let _ = serde_json::to_writer(&mut *out, chunk);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {

    #[test]
    fn finish_reasons_are_scanned_from_json_passed_through() {
        let mut reasons = Vec::new();
        let json = br#"{"choices":[{"finish_reason": "stop"},{"finish_reason":null},{"finish_reason" :"tool_calls"}]}"#;
        scan_reasons(json, &mut reasons);
        assert_eq!(reasons, ["stop", "tool_calls"]);
        scan_reasons(br#"{"finish_reason":"unterminated"#, &mut reasons);
        assert_eq!(reasons.len(), 2);
    }

    use super::*;
    use crate::telemetry::Metrics;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn data_spanning_lines_keeps_a_data_field_per_line() {
        let framed = |json: &[u8]| {
            let mut out = Vec::new();
            frame(&mut out, json);
            out
        };
        assert_eq!(framed(b"{\"a\":1}"), b"data: {\"a\":1}\n\n");
        assert_eq!(
            framed(b"{\"a\":\n1}"),
            b"data: {\"a\":\ndata: 1}\n\n",
            "a raw newline inside one data field would cut the event"
        );
    }

    fn chunk(value: serde_json::Value) -> Result<StreamItem, ApiError> {
        Ok(StreamItem::Chunk(Box::new(
            serde_json::from_value(value).unwrap(),
        )))
    }

    async fn run(
        items: Vec<Result<StreamItem, ApiError>>,
        wants_usage: bool,
    ) -> (String, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let sink = UsageSink::new(metrics.clone(), "m", "p", None);
        let out: Vec<_> = encode(
            futures_util::stream::iter(items),
            wants_usage,
            1,
            sink,
            None,
            Dialect::Chat,
        )
        .collect()
        .await;
        let text = out
            .into_iter()
            .map(|b| String::from_utf8(b.unwrap().to_vec()).unwrap())
            .collect();
        (text, metrics)
    }

    fn content(text: &str) -> serde_json::Value {
        json!({"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    }

    fn usage() -> serde_json::Value {
        json!({"id": "c", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}})
    }

    #[tokio::test]
    async fn drops_usage_chunk_unless_asked_and_counts_it_anyway() {
        let items = || vec![chunk(content("Hi")), chunk(usage()), Ok(StreamItem::Done)];
        let (text, metrics) = run(items(), false).await;
        assert_eq!(text.matches("data: ").count(), 2, "{text}");
        assert!(
            text.contains(r#""role":"assistant""#),
            "role added to the first chunk: {text}"
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(metrics.render().contains(r#"kind="completion"} 2"#));
        let (text, _) = run(items(), true).await;
        assert!(text.contains(r#""total_tokens":6"#), "{text}");
    }

    fn verbatim(value: serde_json::Value) -> Result<StreamItem, ApiError> {
        let chunk: ChatChunk = serde_json::from_value(value.clone()).unwrap();
        Ok(StreamItem::Verbatim(Box::new(VerbatimChunk {
            data: Bytes::from(value.to_string()),
            has_role: chunk.choices.iter().all(|c| c.delta.role.is_some()),
            usage: chunk.usage,
            has_choices: !chunk.choices.is_empty(),
        })))
    }

    #[tokio::test]
    async fn verbatim_chunks_pass_unchanged_except_for_role_and_usage() {
        let second = content("there");
        let items = vec![
            verbatim(content("Hi")),
            verbatim(second.clone()),
            verbatim(usage()),
            Ok(StreamItem::Done),
        ];
        let (text, metrics) = run(items, false).await;
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "usage chunk dropped: {text}");
        assert!(
            events[0].contains(r#""role":"assistant""#),
            "role added: {text}"
        );
        assert_eq!(
            events[1],
            format!("data: {second}"),
            "later chunks are byte-identical"
        );
        assert!(metrics.render().contains(r#"kind="prompt"} 4"#));
        let items = vec![
            verbatim(content("Hi")),
            verbatim(usage()),
            Ok(StreamItem::Done),
        ];
        let (text, _) = run(items, true).await;
        assert!(text.contains(&format!("data: {}", usage())), "{text}");
    }

    #[tokio::test]
    async fn cut_stream_ends_with_an_error_event() {
        let (text, _) = run(vec![chunk(content("Hi"))], false).await;
        assert!(
            text.contains(r#"data: {"error":{"message":"the provider closed the stream"#),
            "{text}"
        );
        assert!(!text.contains("[DONE]"));
    }
}
