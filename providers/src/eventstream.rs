//! The AWS event stream framing (`application/vnd.amazon.eventstream`), split sans-I/O: feed the
//! bytes as they arrive, take out each complete message with its type, name and payload.
//!
//! Prelude, header parsing and both CRCs are checked by `aws-smithy-eventstream`'s frame decoder;
//! this module only buffers and names what it decodes.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Bytes, BytesMut};

use crate::error::ProviderError;

/// The length of a frame's prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;

/// What a message carries, from its `:message-type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `event`: named by `:event-type`.
    Event,
    /// `exception`: a modelled error named by `:exception-type`.
    Exception,
    /// `error`: an unmodelled error named by `:error-code`, described by `:error-message`.
    Error,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMessage {
    pub kind: MessageKind,
    /// The event type, exception type or error code.
    pub name: String,
    /// The payload; for an `error` message, the `:error-message` header instead.
    pub payload: Bytes,
}

/// Splits a byte stream into event stream messages.
#[derive(Debug, Default)]
pub struct FrameSplitter {
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
    /// The decoder has taken a prelude out of the buffer and waits for the rest of its frame.
    mid_frame: bool,
}

impl FrameSplitter {
    pub fn new() -> Self {
        FrameSplitter::default()
    }

    /// Adds bytes and returns every message they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<EventMessage>, ProviderError> {
        self.buffer.extend_from_slice(bytes);
        let mut messages = Vec::new();
        loop {
            let before = self.buffer.len();
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => {
                    self.mid_frame = false;
                    messages.push(name_message(&message)?);
                }
                Ok(DecodedFrame::Incomplete) => {
                    self.mid_frame |= before >= PRELUDE_LEN;
                    return Ok(messages);
                }
                Err(e) => {
                    return Err(ProviderError::bad_response(format!(
                        "invalid event stream frame: {e}"
                    )));
                }
            }
        }
    }

    /// Checks that the stream ended on a frame boundary.
    pub fn finish(&self) -> Result<(), ProviderError> {
        if self.mid_frame || !self.buffer.is_empty() {
            return Err(ProviderError::bad_response(
                "the event stream ended in the middle of a frame",
            ));
        }
        Ok(())
    }
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

fn name_message(message: &Message) -> Result<EventMessage, ProviderError> {
    let missing =
        |what: &str| ProviderError::bad_response(format!("event stream message without {what}"));
    // AWS omits `:message-type` on nothing it documents, but an event is the only sane default.
    let (kind, name) = match header(message, ":message-type").unwrap_or("event") {
        "event" => (
            MessageKind::Event,
            header(message, ":event-type").ok_or_else(|| missing(":event-type"))?,
        ),
        "exception" => (
            MessageKind::Exception,
            header(message, ":exception-type").ok_or_else(|| missing(":exception-type"))?,
        ),
        "error" => {
            let code = header(message, ":error-code").unwrap_or("UnknownError");
            let text = header(message, ":error-message").unwrap_or_default();
            let payload = serde_json::json!({ "message": text }).to_string();
            return Ok(EventMessage {
                kind: MessageKind::Error,
                name: code.to_owned(),
                payload: Bytes::from(payload),
            });
        }
        other => {
            return Err(ProviderError::bad_response(format!(
                "unknown event stream message type {other:?}"
            )));
        }
    };
    Ok(EventMessage {
        kind,
        name: name.to_owned(),
        payload: message.payload().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::Header;

    fn frame(headers: &[(&'static str, &'static str)], payload: &'static str) -> Vec<u8> {
        let mut message = Message::new(Bytes::from_static(payload.as_bytes()));
        for (name, value) in headers {
            message = message.add_header(Header::new(*name, HeaderValue::String((*value).into())));
        }
        let mut bytes = Vec::new();
        write_message_to(&message, &mut bytes).unwrap();
        bytes
    }

    fn event(kind: &'static str, payload: &'static str) -> Vec<u8> {
        frame(
            &[
                (":message-type", "event"),
                (":event-type", kind),
                (":content-type", "application/json"),
            ],
            payload,
        )
    }

    #[test]
    fn messages_split_across_any_chunking() {
        let mut bytes = event("messageStart", r#"{"role":"assistant"}"#);
        bytes.extend(event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        for size in [1, 5, 12, 13, 40, bytes.len()] {
            let mut splitter = FrameSplitter::new();
            let mut names = Vec::new();
            for piece in bytes.chunks(size) {
                names.extend(splitter.feed(piece).unwrap().into_iter().map(|m| m.name));
            }
            assert_eq!(
                names,
                ["messageStart", "contentBlockDelta"],
                "chunks of {size}"
            );
            splitter.finish().unwrap();
        }
    }

    #[test]
    fn exceptions_and_errors_are_named_by_their_type() {
        let mut splitter = FrameSplitter::new();
        let mut bytes = frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            r#"{"message":"slow down"}"#,
        );
        bytes.extend(frame(
            &[
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
                (":error-message", "boom"),
            ],
            "",
        ));
        let messages = splitter.feed(&bytes).unwrap();
        assert_eq!(messages[0].kind, MessageKind::Exception);
        assert_eq!(messages[0].name, "throttlingException");
        assert_eq!(&messages[0].payload[..], br#"{"message":"slow down"}"#);
        assert_eq!(messages[1].kind, MessageKind::Error);
        assert_eq!(messages[1].name, "InternalFailure");
        assert_eq!(&messages[1].payload[..], br#"{"message":"boom"}"#);
    }

    #[test]
    fn a_cut_frame_or_a_bad_crc_is_an_error() {
        let bytes = event("messageStart", r#"{"role":"assistant"}"#);
        for cut in [3, 12, 20] {
            let mut splitter = FrameSplitter::new();
            assert!(splitter.feed(&bytes[..cut]).unwrap().is_empty());
            assert!(splitter.finish().is_err(), "cut at {cut}");
        }
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 6;
        corrupt[last] ^= 0xff;
        assert!(FrameSplitter::new().feed(&corrupt).is_err());
    }
}
