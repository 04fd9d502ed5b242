//! The chat request parser, then everything a parsed request goes through: every adapter's
//! request translation and the mock's answers (its JSON-schema sampler included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::adapter::{Adapter, Endpoint};
use switchboard_providers::chat::ChatRequest;
use switchboard_providers::mock::MockAnswer;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ChatRequest>(data) else {
        return;
    };
    let endpoint = Endpoint {
        base_url: "http://127.0.0.1:1/v1".into(),
        ..Endpoint::default()
    };
    let adapters: [&dyn Adapter; 5] = [
        &switchboard_providers::openai::OpenAi,
        &switchboard_providers::anthropic::Anthropic,
        &switchboard_providers::gemini::Gemini,
        &switchboard_providers::cohere::Cohere,
        &switchboard_providers::mistral::Mistral,
    ];
    for adapter in adapters {
        let _ = adapter.chat_request(&endpoint, &request);
    }
    let answer = MockAnswer::for_request(&request);
    let _ = answer.response(&request, "id", 0);
    let _ = answer.chunks(&request, "id", 0);
});
