//! The Messages surface: a client's body parsed and translated to the canonical form, its model
//! spliced for a native target (or reshaped for Bedrock's InvokeModel), and the mock's answer to
//! it written as a message object and as Anthropic's event stream.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard_providers::messages::{self, EventWriter, MessagesRequest};
use switchboard_providers::mock::MockAnswer;
use switchboard_providers::{Native, NativeFormat};

fuzz_target!(|data: &[u8]| {
    let native = Native::new(
        NativeFormat::AnthropicMessages,
        Bytes::copy_from_slice(data),
    );
    if let Ok(spliced) = native.with_model("claude-x") {
        // Splicing keeps the body's JSON valid.
        assert!(serde_json::from_slice::<serde_json::Value>(&spliced).is_ok());
    }
    if let Ok(reshaped) = native.reshaped(&["model", "stream"], &[("anthropic_version", "\"v\"")]) {
        // So does reshaping.
        assert!(serde_json::from_slice::<serde_json::Value>(&reshaped).is_ok());
    }
    let Ok(request) = serde_json::from_slice::<MessagesRequest>(data) else {
        return;
    };
    let Ok(translated) = messages::translate(&request, false) else {
        return;
    };
    let chat = translated.request;
    let answer = MockAnswer::for_request(&chat);
    let _ = messages::encode_answer(&answer.response(&chat, "id", 0));
    let mut writer = EventWriter::new(1);
    let mut out = Vec::new();
    for chunk in answer.chunks(&chat, "id", 0) {
        writer.chunk(&chunk, &mut out);
    }
    writer.finish(&mut out);
});
