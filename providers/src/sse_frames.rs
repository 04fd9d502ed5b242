//! Server-sent events framing, sans-I/O: bytes in as they arrive, whole events out, parsed as the
//! WHATWG event-stream rules say (CR, LF or CRLF line ends, comments, multi-line data, BOM).
//!
//! Lines are cut straight out of each received piece; only a line split across pieces is
//! buffered, so an event costs one pass over its bytes and one copy of its data.

use std::borrow::Cow;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `message` when the event named none.
    pub event: Cow<'static, str>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Bytes held for one event (a line still open plus the data gathered): an upstream that never
/// ends its event must not grow the gateway's memory without bound.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Why the byte stream is not an event stream the relay can pass on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// The event-stream format is UTF-8.
    #[error("the event stream is not valid UTF-8")]
    NotUtf8,
    /// One event outgrew [`MAX_EVENT_BYTES`].
    #[error("an event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// Splits a byte stream into events, keeping what belongs to the next piece.
#[derive(Debug, Default)]
pub struct SseSplitter {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    event: Option<String>,
    data: String,
    /// Whether any `data:` line was seen for the event being built.
    has_data: bool,
    /// The last piece ended in CR: a LF opening the next one belongs to that line end.
    after_cr: bool,
    started: bool,
    /// Comment lines seen since [`SseSplitter::take_comments`] was last asked.
    comments: usize,
}

impl SseSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the stream; complete events are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.started && !bytes.is_empty() {
            let whole = [self.partial.as_slice(), bytes].concat();
            if whole.len() < 3 && b"\xEF\xBB\xBF".starts_with(&whole) {
                // Too short to tell whether it is a byte-order mark yet.
                self.partial = whole;
                return Ok(());
            }
            self.started = true;
            self.partial.clear();
            let text = whole.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&whole);
            return self.feed_started(text, out);
        }
        self.feed_started(bytes, out)
    }

    fn feed_started(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) {
            let line_end = bytes[end];
            let mut next = end + 1;
            if line_end == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial.is_empty() {
                self.line(&bytes[..end], out)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..end]);
                self.line(&line, out)?;
            }
            bytes = &bytes[next..];
        }
        if self.partial.len() + self.data.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Applies one line: a blank line dispatches the event being built.
    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            // A keep-alive: no event, but a sign of life.
            self.comments += 1;
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::NotUtf8)?;
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            b"event" => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::NotUtf8)?;
                self.event = Some(value.to_owned());
            }
            // `id` and `retry` steer a browser's reconnection; a relay has no use for them.
            _ => {}
        }
        Ok(())
    }

    /// How many comment lines (`: keep-alive`) arrived since the last call: servers send them to
    /// show a stream is alive while the model has nothing to say.
    pub fn take_comments(&mut self) -> usize {
        std::mem::take(&mut self.comments)
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        out.push(SseEvent {
            event: match event {
                Some(name) if !name.is_empty() => Cow::Owned(name),
                _ => Cow::Borrowed("message"),
            },
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]]) -> Result<Vec<(String, String)>, SseError> {
        let mut splitter = SseSplitter::new();
        let mut out = Vec::new();
        for piece in pieces {
            splitter.feed(piece, &mut out)?;
        }
        Ok(out
            .into_iter()
            .map(|e| (e.event.into_owned(), e.data))
            .collect())
    }

    fn ev(event: &str, data: &str) -> (String, String) {
        (event.to_owned(), data.to_owned())
    }

    #[test]
    fn events_with_names_multiline_data_and_comments() {
        let text = b": keep-alive\n\nevent: delta\ndata: {\"a\":1}\n\ndata: one\ndata:two\n\ndata: [DONE]\n\n";
        let expected = vec![
            ev("delta", "{\"a\":1}"),
            ev("message", "one\ntwo"),
            ev("message", "[DONE]"),
        ];
        assert_eq!(split(&[text]).unwrap(), expected);
        // Cut at every byte: the same events.
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&pieces).unwrap(), expected);
    }

    #[test]
    fn comments_are_counted_not_dispatched() {
        let mut splitter = SseSplitter::new();
        let mut out = Vec::new();
        splitter
            .feed(b": keep-alive\n\n: PROCESSING\n", &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(splitter.take_comments(), 2);
        assert_eq!(splitter.take_comments(), 0);
    }

    #[test]
    fn every_line_ending_is_accepted() {
        for text in [
            &b"data: a\r\n\r\ndata: b\r\n\r\n"[..],
            b"data: a\r\rdata: b\r\r",
            b"data: a\n\ndata: b\n\n",
        ] {
            let expected = vec![ev("message", "a"), ev("message", "b")];
            assert_eq!(split(&[text]).unwrap(), expected, "{text:?}");
            let pieces: Vec<&[u8]> = text.chunks(1).collect();
            assert_eq!(split(&pieces).unwrap(), expected, "{text:?} by bytes");
        }
    }

    #[test]
    fn unfinished_events_and_empty_data_are_not_dispatched() {
        assert_eq!(split(&[b"data: cut"]).unwrap(), vec![]);
        assert_eq!(split(&[b"data: cut\n"]).unwrap(), vec![]);
        assert_eq!(split(&[b"event: ping\n\n"]).unwrap(), vec![]);
        assert_eq!(split(&[b"data\n\n"]).unwrap(), vec![ev("message", "")]);
        assert_eq!(
            split(&[b"event: ping\n\ndata: x\n\n"]).unwrap(),
            vec![ev("message", "x")],
            "an event name does not outlive its event"
        );
    }

    #[test]
    fn byte_order_mark_is_skipped_and_utf8_checked() {
        assert_eq!(
            split(&[b"\xEF", b"\xBB\xBFdata: \xC3", b"\xA9\n\n"]).unwrap(),
            vec![ev("message", "é")]
        );
        assert_eq!(split(&[b"data: \xFF\n\n"]), Err(SseError::NotUtf8));
    }

    #[test]
    fn an_event_that_never_ends_is_refused_not_buffered() {
        let line = vec![b'x'; MAX_EVENT_BYTES / 4];
        let mut splitter = SseSplitter::new();
        let mut out = Vec::new();
        splitter.feed(b"data: ", &mut out).unwrap();
        let fed: Result<Vec<()>, SseError> =
            (0..5).map(|_| splitter.feed(&line, &mut out)).collect();
        assert_eq!(fed, Err(SseError::TooLarge));
        // Many data lines without the blank line that ends the event: the same.
        let mut splitter = SseSplitter::new();
        let mut piece = b"data: ".to_vec();
        piece.extend_from_slice(&line);
        piece.push(b'\n');
        let fed: Result<Vec<()>, SseError> =
            (0..5).map(|_| splitter.feed(&piece, &mut out)).collect();
        assert_eq!(fed, Err(SseError::TooLarge));
        assert!(out.is_empty());
    }
}
