//! The Responses surface: a client's body parsed and translated to the canonical form (its
//! input items, tools and tool choice), and the mock's answer written as a response object and
//! as the Responses event stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::mock::MockAnswer;
use switchboard_providers::responses::{self, Echo, EventWriter, ResponsesRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ResponsesRequest>(data) else {
        return;
    };
    let Ok(translated) = responses::translate(&request, Vec::new()) else {
        return;
    };
    let chat = &translated.request;
    let echo = Echo::new("resp_fuzz".into(), 0, &request);
    let answer = MockAnswer::for_request(chat);
    let (object, turn) = responses::encode_answer(&answer.response(chat, "id", 0), &echo);
    assert_eq!(object["id"], "resp_fuzz");
    let _ = translated.conversation(turn);
    let mut writer = EventWriter::new(echo);
    let mut out = Vec::new();
    for chunk in answer.chunks(chat, "id", 0) {
        writer.chunk(&chunk, &mut out);
    }
    writer.finish(&mut out);
    assert!(writer.finished().is_some());
});
