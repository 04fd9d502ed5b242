//! A stdio server's output read line by line under its `max_result`: a longer line is skipped
//! (never held whole) and the request it answered gets an error naming the limit at once.
//!
//! rmcp's own reader drops an over-long line silently and leaves its caller waiting; this one
//! stands between the child's stdout and rmcp, so rmcp only ever sees lines within the limit.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::oversize;
use super::verbatim::Tap;

/// Buffer between the guard and rmcp's reader.
const PIPE: usize = 256 * 1024;

/// What rmcp reads instead of `stdout`: the same lines, an oversized one replaced by an error
/// for the request it answered; `tap` hears each line first. The guard runs until `stdout` ends
/// or rmcp stops reading.
pub fn guarded(
    stdout: impl AsyncRead + Unpin + Send + 'static,
    server: &str,
    limit: u64,
    tap: std::sync::Arc<Tap>,
) -> DuplexStream {
    let (reader, writer) = tokio::io::duplex(PIPE);
    let server = server.to_owned();
    tokio::spawn(async move {
        if let Err(error) = guard(stdout, (writer, &tap), &server, limit).await {
            tracing::debug!(server, %error, "stdio output guard ended");
        }
    });
    reader
}

async fn guard(
    stdout: impl AsyncRead + Unpin,
    (mut out, tap): (DuplexStream, &Tap),
    server: &str,
    limit: u64,
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(limit + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        if line.ends_with(b"\n") || (line.len() as u64) <= limit {
            tap.heard(&line);
            out.write_all(&line).await?;
            continue;
        }
        let head = line[..line.len().min(oversize::HEAD)].to_vec();
        line = Vec::new();
        let (tail, total) = skip_line(&mut reader, head.len() as u64).await?;
        match oversize::response_id(&head, &tail) {
            Some(id) => {
                tracing::warn!(
                    server,
                    bytes = total,
                    limit,
                    "refused a result over max_result"
                );
                out.write_all(oversize::error_line(&id, server, limit).as_bytes())
                    .await?;
            }
            None => tracing::warn!(
                server,
                bytes = total,
                limit,
                "dropped a message over max_result that answers no request"
            ),
        }
    }
}

/// Reads past the rest of the current line; its last [`oversize::TAIL`] bytes and the line's
/// whole length (`so_far` of it already read).
async fn skip_line(
    reader: &mut BufReader<impl AsyncRead + Unpin>,
    so_far: u64,
) -> std::io::Result<(Vec<u8>, u64)> {
    let mut tail = Vec::with_capacity(2 * oversize::TAIL);
    let mut total = so_far;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok((tail, total));
        }
        let (piece, done) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (&buffer[..at], Some(at + 1)),
            None => (buffer, None),
        };
        tail.extend_from_slice(&piece[piece.len().saturating_sub(oversize::TAIL)..]);
        if tail.len() > oversize::TAIL {
            tail.drain(..tail.len() - oversize::TAIL);
        }
        total += piece.len() as u64;
        let consumed = done.unwrap_or(buffer.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok((tail, total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_oversized_line_becomes_an_error_for_its_id_and_the_rest_flows() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{\"text\":\"{}\"}}}}\n",
            "x".repeat(5000)
        );
        let input = format!("{{\"id\":1}}\n{big}{{\"id\":3}}\n");
        let tap = std::sync::Arc::new(Tap::new(Default::default()));
        let mut out = guarded(std::io::Cursor::new(input.into_bytes()), "s", 1024, tap);
        let mut text = String::new();
        out.read_to_string(&mut text).await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "{\"id\":1}");
        let error: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(error["id"], 2);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1024 bytes")
        );
        assert_eq!(lines[2], "{\"id\":3}");
    }
}
