//! Tool-call ids as providers with a pattern for them accept them. A conversation can carry ids
//! another provider minted (`functions.get_weather:0`, or the gateway's own Gemini ids with a
//! thought signature, hundreds of characters long); Anthropic takes only `[a-zA-Z0-9_-]+` and
//! Bedrock `[a-zA-Z0-9_-]{1,64}`, so such ids are rewritten on the way out.
//!
//! The rewrite is a pure function of the id, so a call and its result, rewritten apart, still
//! match; the client keeps its own ids, and with them whatever a Gemini signature carries.

/// The longest id written: Bedrock's bound, well within Anthropic's.
pub const MAX_LENGTH: usize = 64;

/// How much of an unusable id's own valid characters the rewrite keeps, for a reader.
const KEPT: usize = 40;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `id` if it is `[a-zA-Z0-9_-]{1,64}`, else its valid characters (up to 40) and `_h` and 11
/// characters of its hash.
pub fn restricted(id: &str) -> String {
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if (1..=MAX_LENGTH).contains(&id.len()) && id.bytes().all(valid) {
        return id.to_owned();
    }
    let mut out: String = id
        .bytes()
        .filter(|&b| valid(b))
        .take(KEPT)
        .map(char::from)
        .collect();
    out.push_str("_h");
    out.push_str(&base62(fnv1a(id), 11));
    out
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
pub fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `count` base-62 digits of `hash`, least significant first.
pub fn base62(mut hash: u64, count: usize) -> String {
    (0..count)
        .map(|_| {
            let c = ALPHABET[(hash % 62) as usize];
            hash /= 62;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_pass_and_others_are_rewritten_the_same_way_every_time() {
        assert_eq!(restricted("toolu_01A-b"), "toolu_01A-b");
        let replayed = restricted("functions.get_weather:0");
        assert_eq!(replayed, restricted("functions.get_weather:0"));
        assert!(
            replayed.starts_with("functionsget_weather0_h"),
            "{replayed}"
        );
        let signed = format!("call_1__thought__{}", "CiQB0e/+x==".repeat(40));
        let rewritten = restricted(&signed);
        assert!(rewritten.len() <= MAX_LENGTH, "{rewritten}");
        assert!(
            rewritten
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert_ne!(rewritten, restricted(&format!("{signed}x")));
        assert_eq!(restricted("").len(), "_h".len() + 11);
        assert_eq!(restricted(&"a".repeat(65)).len(), 40 + 2 + 11);
    }
}
