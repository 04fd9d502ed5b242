//! Bedrock's AWS event-stream frames (prelude, CRCs, headers) and its stream decoders: the
//! ConverseStream one, or (odd step) InvokeModel's base64 `chunk`s of Anthropic's events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::adapter::Adapter;
use switchboard_providers::bedrock::{AwsCredentials, Bedrock};
use switchboard_providers::eventstream::FrameSplitter;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let bedrock = Bedrock::new(
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        },
        "us-east-1",
    );
    let mut decoder = if step % 2 == 0 {
        bedrock.chat_stream()
    } else {
        bedrock.native_stream(switchboard_providers::NativeFormat::AnthropicMessages)
    };
    let mut splitter = FrameSplitter::new();
    for piece in bytes.chunks(usize::from(step).max(1)) {
        let Ok(messages) = splitter.feed(piece) else {
            return;
        };
        for message in messages {
            let data = String::from_utf8_lossy(&message.payload);
            if decoder.decode(&message.name, &data).is_err() {
                return;
            }
        }
    }
    let _ = splitter.finish();
    let _ = decoder.finish();
});
