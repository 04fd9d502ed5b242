//! What clients and providers put in front of the gateway's traces and audit lines: a
//! `traceparent` header, and answers passed through unparsed that are scanned for their finish
//! reasons. Neither panics; a trace id is 32 lowercase hex digits, not all zero; a finish
//! reason is short and holds no quote.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(trace) = switchboard::fuzzing::traceparent(text)
    {
        assert_eq!(trace.len(), 32);
        assert!(
            trace
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(trace.bytes().any(|b| b != b'0'));
    }
    let mut reasons = Vec::new();
    switchboard::fuzzing::finish_reasons(data, &mut reasons);
    assert!(reasons.len() <= 16);
    for reason in &reasons {
        assert!(reason.len() <= 64 * 3 && !reason.contains('"'));
    }
});
