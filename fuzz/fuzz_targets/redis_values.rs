//! What replicas read back from the Redis they share, whoever wrote it (another format, another
//! tenant under our prefix, a torn value): cached answers, context change messages, shared
//! registrations and their tool bodies. Decoding never panics, and what decodes is what was written.
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
    if let Some(change) = switchboard::fuzzing::context_change(data) {
        assert!(!change.namespace.is_empty() && !change.key.is_empty());
        assert!(!change.namespace.contains('\n') && !change.key.contains('\n'));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(entry) = switchboard::fuzzing::registration("name", text, 1_000) {
            assert!(text.ends_with(&entry.body));
        }
        // A registration's body from any replica, of any version: read or refused.
        let _ = switchboard::fuzzing::shared_tool(text);
    }
});
