//! What an upstream MCP server sends that the gateway reads itself: the two ends of a message
//! over its `max_result`, searched for the request it answers. Any bytes give an id or none,
//! never a panic; a response written as the Python or the TypeScript SDK writes one gives its
//! own id back, however little of it is kept.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const HEAD: usize = 64 * 1024;
const TAIL: usize = 256;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    raw: &'a [u8],
    number: i64,
    text_id: Option<String>,
    result: String,
    id_first: bool,
}

fuzz_target!(|input: Input| {
    let raw = input.raw;
    let head = &raw[..raw.len().min(HEAD)];
    let tail = &raw[raw.len().saturating_sub(TAIL)..];
    if let Some(id) = switchboard::fuzzing::mcp_oversized_id(head, tail) {
        assert!(id.is_number() || id.is_string());
    }

    let id = input.text_id.map_or(json!(input.number), Value::String);
    let result = json!({"content": [{"type": "text", "text": input.result}]});
    // serde_json writes keys in insertion order (preserve_order is off: sorted), so each SDK's
    // order is written out by hand.
    let message = if input.id_first {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
    } else {
        format!(r#"{{"result":{result},"jsonrpc":"2.0","id":{id}}}"#)
    };
    let bytes = message.as_bytes();
    let head = &bytes[..bytes.len().min(HEAD)];
    let tail = &bytes[bytes.len().saturating_sub(TAIL)..];
    let found = switchboard::fuzzing::mcp_oversized_id(head, tail);
    // The TypeScript order keeps the id in the tail only while the id itself fits there.
    if input.id_first || id.to_string().len() + 2 < TAIL {
        assert_eq!(found, Some(id), "{message}");
    }
});
