//! A message from an upstream server larger than its `max_result`: which request it answers,
//! read from the little of it that is kept, and the error that answers that request instead.
//!
//! Only the first [`HEAD`] and last [`TAIL`] bytes of such a message are kept. SDKs write the
//! `id` of a response near one end: Python's before the result, TypeScript's after it.

use serde_json::Value;

/// Bytes kept from the start of an oversized message.
pub const HEAD: usize = 64 * 1024;
/// Bytes kept from its end.
pub const TAIL: usize = 256;

/// The JSON-RPC error code of an oversized result: the gateway's own failure to relay it.
const INTERNAL_ERROR: i64 = -32603;

/// The `id` of the response whose message starts with `head` and ends with `tail`; `None` for
/// a request or notification of the server's (which carry `method`), or when no `id` is seen.
pub fn response_id(head: &[u8], tail: &[u8]) -> Option<Value> {
    let top = top_level(head);
    if top.method {
        return None;
    }
    top.id.or_else(|| trailing_id(tail))
}

/// The JSON-RPC error line (newline included) that answers `id` in place of a result larger
/// than `limit` bytes from the server `server`.
pub fn error_line(id: &Value, server: &str, limit: u64) -> String {
    let message = too_large(server, limit);
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": INTERNAL_ERROR, "message": message},
    });
    format!("{error}\n")
}

/// What the caller of an oversized result is told.
pub fn too_large(server: &str, limit: u64) -> String {
    format!(
        "The result from MCP server '{server}' is larger than its max_result ({limit} bytes); \
         nothing of it was forwarded."
    )
}

/// What the top level of a message's first bytes says.
#[derive(Default)]
struct TopLevel {
    id: Option<Value>,
    method: bool,
}

/// Walks the object's top level (strings and nesting skipped) for the keys `id` and `method`.
fn top_level(head: &[u8]) -> TopLevel {
    let mut found = TopLevel::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let end = string_end(head, i + 1);
                let Some(end) = end else { break };
                let key = &head[i + 1..end];
                let after = skip_space(head, end + 1);
                if depth == 1 && head.get(after) == Some(&b':') {
                    match key {
                        b"method" => found.method = true,
                        b"id" if found.id.is_none() => found.id = id_value(&head[after + 1..]),
                        _ => {}
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The index of the quote closing a string whose contents start at `from`.
fn string_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_space(bytes: &[u8], from: usize) -> usize {
    let spaces = bytes.get(from..).unwrap_or_default();
    from + spaces
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// A JSON-RPC id (a number or a string) at the start of `rest`, whatever follows it.
fn id_value(rest: &[u8]) -> Option<Value> {
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
    match values.next()? {
        Ok(id @ (Value::Number(_) | Value::String(_))) => Some(id),
        _ => None,
    }
}

/// The id of a message ending `..."id":<id>}`, as TypeScript's SDK writes a response. Inside a
/// string every quote is escaped, so an unescaped `"id":` is the structure's own.
fn trailing_id(tail: &[u8]) -> Option<Value> {
    let end = tail.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if tail[end] != b'}' {
        return None;
    }
    let body = &tail[..end];
    let at = memchr::memmem::rfind(body, b"\"id\":")?;
    if at > 0 && !matches!(body[at - 1], b',' | b'{' | b' ' | b'\n' | b'\t') {
        return None;
    }
    let value = body[at + 5..].trim_ascii();
    match serde_json::from_slice::<Value>(value).ok()? {
        id @ (Value::Number(_) | Value::String(_)) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_id_is_found_before_the_result_or_after_it() {
        let python = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"xx"#;
        assert_eq!(response_id(python, b"xxx\"}]}}"), Some(json!(7)));
        let typescript = br#"{"result":{"content":[{"type":"text","text":"xxx"#;
        let tail = br#"xx"}],"structuredContent":{"id":9}},"jsonrpc":"2.0","id":"a-1"}"#;
        assert_eq!(response_id(typescript, tail), Some(json!("a-1")));
    }

    #[test]
    fn nested_and_quoted_ids_are_not_the_messages() {
        let head = br#"{"result":{"id":1,"text":"\"id\":2"},"#;
        assert_eq!(response_id(head, br#"x\"id\":3}"}}"#), None);
        assert_eq!(response_id(head, br#"{"id":4}}"#), None);
    }

    #[test]
    fn a_request_of_the_servers_is_no_response() {
        let head = br#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"#;
        assert_eq!(response_id(head, b"}}"), None);
    }

    #[test]
    fn the_error_line_answers_the_id_and_names_the_limit() {
        let line = error_line(&json!(3), "files", 1024);
        assert!(line.ends_with('\n'));
        let error: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(error["id"], 3);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("'files'") && message.contains("max_result (1024 bytes)"));
    }
}
