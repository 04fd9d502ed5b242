//! hyper's own answers to requests it cannot parse (400, 414, 431), given a body in OpenAI's
//! error shape: a client library reading `error.message` gets one instead of an empty body.
//!
//! hyper writes those answers itself, before any service runs, with `content-length: 0`; no
//! hook reaches them. A thin wrapper around the socket recognises exactly that head as it is
//! written and sends the same status with a JSON body instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The part of hyper's error head after its status line: nothing else the gateway sends
/// declares an empty body and the end of the connection in this order.
const HYPER_ERROR_HEADERS: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";

/// A connection's socket, rewriting hyper's bodiless error answers as they pass.
pub struct ErrorBodies<T> {
    inner: T,
    /// A rewritten answer still to be written; the caller was told its head was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ErrorBodies<T> {
    pub fn new(inner: T) -> Self {
        ErrorBodies {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The answer to send instead of `head`, when `head` is one of hyper's error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let status_line_end = memchr::memmem::find(head, b"\r\n")?;
    let status_line = head.get(..status_line_end)?;
    if !status_line.starts_with(b"HTTP/1.1 4")
        || !head[status_line_end..].starts_with(HYPER_ERROR_HEADERS)
        || !head.ends_with(b"\r\n\r\n")
    {
        return None;
    }
    let (message, code) = match status_line.get(9..12)? {
        b"431" => (
            "The request's headers are larger than the gateway accepts.",
            "request_header_fields_too_large",
        ),
        b"414" => (
            "The request's URI is longer than the gateway accepts.",
            "uri_too_long",
        ),
        _ => (
            "The request is not valid HTTP/1.1 and could not be read.",
            "bad_request",
        ),
    };
    let body = format!(
        r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
    );
    // hyper's own lines (status, connection, date) stay; only the length and the body change.
    let rest = &head[status_line_end + HYPER_ERROR_HEADERS.len()..head.len() - 2];
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(status_line);
    answer.extend_from_slice(b"\r\nconnection: close\r\ncontent-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    answer.extend_from_slice(rest);
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    Some(answer)
}

impl<T: AsyncWrite + Unpin> ErrorBodies<T> {
    /// Writes what is pending of a rewritten answer; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorBodies<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorBodies<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = rewrite(buf)
        {
            self.pending = answer;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper's error head comes alone, in the first slice.
        if let Some(first) = bufs.first()
            && first.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = rewrite(first)
        {
            self.pending = answer;
            return Poll::Ready(Ok(first.len()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body_and_nothing_else_changes() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 04:41:15 GMT\r\n\r\n";
        let answer = String::from_utf8(rewrite(head).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(
            head.ends_with("date: Sun, 06 Dec 2026 04:41:15 GMT"),
            "{head}"
        );
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], "request_header_fields_too_large");
        // The gateway's own answers pass untouched.
        let own = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(rewrite(own).is_none());
        assert!(
            rewrite(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n")
                .is_none()
        );
    }
}
