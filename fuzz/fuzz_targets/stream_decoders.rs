//! Every SSE provider's stream decoder, on events framed from arbitrary bytes: the first byte
//! picks the provider (OpenAI, Anthropic, Gemini, Cohere, Mistral) or OpenAI's Responses events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::adapter::Adapter;
use switchboard_providers::sse_frames::SseSplitter;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let adapters: [&dyn Adapter; 5] = [
        &switchboard_providers::openai::OpenAi,
        &switchboard_providers::anthropic::Anthropic,
        &switchboard_providers::gemini::Gemini,
        &switchboard_providers::cohere::Cohere,
        &switchboard_providers::mistral::Mistral,
    ];
    let mut decoder = match usize::from(which) % (adapters.len() + 1) {
        at if at < adapters.len() => adapters[at].chat_stream(),
        _ => switchboard_providers::openai::WithResponses
            .native_stream(switchboard_providers::NativeFormat::OpenAiResponses),
    };
    let mut splitter = SseSplitter::new();
    let mut events = Vec::new();
    if splitter.feed(bytes, &mut events).is_err() {
        return;
    }
    for event in &events {
        if decoder.decode(&event.event, &event.data).is_err() {
            return;
        }
    }
    let _ = decoder.finish();
});
