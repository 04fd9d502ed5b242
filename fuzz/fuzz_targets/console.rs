//! What the console and the catalog read from anyone: a browser's `Cookie`, `Host` and `Origin`,
//! an entry id in a URL, a day in YAML or a form, a subscription record read back from Redis or
//! the data directory. Nothing panics; a session id is 64 hex digits or nothing; a day starts at
//! midnight; an entry id names a kind and the rest of the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = fuzzing::console_cookie(text) {
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let (host, from) = text.split_once('\n').unwrap_or((text, ""));
    if fuzzing::console_same_origin(Some(host), Some(from)) {
        // An origin is accepted only when it names exactly the host asked.
        let rest = from.split_once("://").map_or("", |(_, rest)| rest);
        assert_eq!(rest.split('/').next(), Some(host));
    }
    if let Some((_, name)) = fuzzing::catalog_entry(text) {
        assert!(!name.is_empty() && text.ends_with(name));
    }
    if let Some(seconds) = fuzzing::catalog_day(text) {
        assert_eq!(seconds % 86_400, 0);
    }
    let _ = fuzzing::subscription_record(text);
});
