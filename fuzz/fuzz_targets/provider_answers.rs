//! Every adapter's whole-answer and error decoders (chat, embeddings, errors, and OpenAI's
//! response objects), on arbitrary bodies: the first byte picks the adapter, the second the
//! status of the error answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::adapter::Adapter;
use switchboard_providers::bedrock::{AwsCredentials, Bedrock};

fuzz_target!(|data: &[u8]| {
    let [which, status, body @ ..] = data else {
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
    let adapters: [&dyn Adapter; 6] = [
        &switchboard_providers::openai::OpenAi,
        &switchboard_providers::anthropic::Anthropic,
        &switchboard_providers::gemini::Gemini,
        &switchboard_providers::cohere::Cohere,
        &switchboard_providers::mistral::Mistral,
        &bedrock,
    ];
    let adapter = adapters[usize::from(*which) % adapters.len()];
    let _ = adapter.chat_response(bytes::Bytes::copy_from_slice(body));
    let _ = adapter.embeddings_response(body);
    let _ = adapter.error_response(400 + u16::from(*status), body);
    let _ = switchboard_providers::responses::decode_answer(body);
});
