//! Cached answers read back from Redis: whatever bytes sit under the key (another format, another
//! tenant's value, a torn write), decoding never panics, and what decodes is what was written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((stored, target, json)) = switchboard::fuzzing::cache_entry(data) {
        assert!(!target.contains('\n'));
        let written = format!("sb1\n{stored}\n{target}\n");
        assert!(data.len() >= written.len() + json.len());
        // Anything after the target line is the answer, byte for byte.
        assert_eq!(&data[data.len() - json.len()..], &json[..]);
    }
});
