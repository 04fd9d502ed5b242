//! SHA-256 as the gateway uses it: key digests, `key_sha256` hex, file names of stored documents.
//! One module so config, auth and the state directory hash the same way.

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// SHA-256 in lowercase hex, as `key_sha256` is written.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&sha256(bytes))
}

/// Lowercase hex of a digest.
pub fn to_hex(digest: &Digest32) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from 64 hex digits (either case); `None` for anything else.
pub fn parse_hex(hex: &str) -> Option<Digest32> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let digest = sha256(b"sk-test");
        assert_eq!(parse_hex(&to_hex(&digest)), Some(digest));
        assert_eq!(parse_hex(&to_hex(&digest).to_uppercase()), Some(digest));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
