//! What the gateway reads of MCP messages beside rmcp: a client's `/mcp` body, for the method it
//! answers itself (tasks) or edits the answer to, and an upstream server's message, kept whole
//! when it answers a request the gateway waits for. Any bytes give an answer or none, never a
//! panic; a well-formed answer to the awaited id is kept byte for byte, and no other message is.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    raw: &'a [u8],
    id: i64,
    other: i64,
    result: String,
}

const TASK_METHODS: [&str; 5] = [
    "tools/call",
    "tasks/get",
    "tasks/result",
    "tasks/cancel",
    "tasks/list",
];

fuzz_target!(|input: Input| {
    if let Some(method) = switchboard::fuzzing::mcp_method_asked(input.raw) {
        let known = ["initialize", "tools/list"].contains(&method.as_str());
        assert!(known || TASK_METHODS.contains(&method.as_str()), "{method}");
    }
    let id = input.id;
    let _ = switchboard::fuzzing::mcp_tapped_answer(id, input.raw);

    let answer = json!({"jsonrpc": "2.0", "id": input.id, "result": {"text": input.result}});
    let answer = answer.to_string();
    let kept = switchboard::fuzzing::mcp_tapped_answer(id, answer.as_bytes());
    assert_eq!(kept.as_deref(), Some(answer.as_bytes()));
    if input.other != input.id {
        let other = json!({"jsonrpc": "2.0", "id": input.other, "result": {}}).to_string();
        assert_eq!(
            switchboard::fuzzing::mcp_tapped_answer(id, other.as_bytes()),
            None
        );
    }
});
