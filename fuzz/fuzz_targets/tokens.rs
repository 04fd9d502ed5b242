//! The token counter: any text is counted without panicking, and a text counts at least one
//! token per 128 bytes (o200k's longest token) and at most one per byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tokens = switchboard::tokens::count(text);
    assert!(
        tokens <= text.len() as u64,
        "{tokens} tokens in {} bytes",
        text.len()
    );
    assert!(
        tokens >= (text.len() as u64).div_ceil(128),
        "{tokens} tokens in {} bytes",
        text.len()
    );
});
