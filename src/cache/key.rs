//! The identity of a request for the cache: a SHA-256 over its canonical JSON, so key order and
//! whitespace do not matter, and fields that do not change the answer do not split the cache.
//!
//! `user`, `stream` and `stream_options` are left out; the public model name and the scope are in.

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_providers::chat::ChatRequest;

/// A cache key.
pub type Key = [u8; 32];

/// Fields that change how an answer is delivered or attributed, not what it says.
const IGNORED: [&str; 4] = ["user", "stream", "stream_options", "model"];

/// The key of `request` for the model `route` within `scope` (a key's name, or empty for global).
pub fn of(scope: &str, route: &str, request: &ChatRequest) -> Option<Key> {
    let mut value = serde_json::to_value(request).ok()?;
    let map = value.as_object_mut()?;
    for field in IGNORED {
        map.remove(field);
    }
    // serde_json's map is ordered by key, so this encoding is canonical.
    let canonical = serde_json::to_vec(&Value::Object(std::mem::take(map))).ok()?;
    let mut hasher = Sha256::new();
    for part in [scope.as_bytes(), route.as_bytes(), &canonical] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: &str, route: &str, body: &str) -> Key {
        of(scope, route, &serde_json::from_str(body).unwrap()).unwrap()
    }

    #[test]
    fn order_whitespace_and_delivery_fields_do_not_matter() {
        let a = key(
            "k",
            "m",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"metadata":{"a":1,"b":2}}"#,
        );
        let b = key(
            "k",
            "m",
            r#"{ "temperature": 0, "metadata": {"b": 2, "a": 1},
            "messages": [ {"content": "hi", "role": "user"} ], "model": "m", "stream": true, "user": "u1",
            "stream_options": {"include_usage": true} }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn content_parameters_scope_and_route_do_matter() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let k = key("k", "m", base);
        assert_ne!(
            k,
            key(
                "k",
                "m",
                r#"{"model":"m","messages":[{"role":"user","content":"hi!"}]}"#
            )
        );
        assert_ne!(
            k,
            key(
                "k",
                "m",
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1}"#
            )
        );
        assert_ne!(
            k,
            key(
                "k",
                "m",
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#
            )
        );
        assert_ne!(k, key("other", "m", base));
        assert_ne!(k, key("k", "m2", base));
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(key("ab", "c", base), key("a", "bc", base));
    }
}
