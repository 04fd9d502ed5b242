//! The identity of a request for the cache: a SHA-256 over its canonical JSON, so key order and
//! whitespace do not matter, and fields that do not change the answer do not split the cache.
//!
//! `user`, `stream` and `stream_options` are left out; the public model name and the scope are in.

use sha2::{Digest, Sha256};
use switchboard_providers::chat::ChatRequest;

/// A cache key.
pub type Key = [u8; 32];

/// The key of `request` for the model `route` within `scope` (a key's name, or empty for global).
///
/// The request is hashed as JSON with every object's keys sorted, so equal requests hash equally
/// whatever their key order or whitespace. (Requests keep the client's key order everywhere
/// else: a JSON schema's property order is the order a model writes its answer in.) The fields
/// that only change delivery or attribution (`user`, `stream`, `stream_options`, and `model`,
/// replaced by the resolved route) are taken out while encoding and put back.
pub fn of(scope: &str, route: &str, request: &mut ChatRequest) -> Option<Key> {
    let model = std::mem::take(&mut request.model);
    let user = request.user.take();
    let stream = request.stream.take();
    let stream_options = request.stream_options.take();
    let encoded = serde_json::to_value(&*request);
    request.model = model;
    request.user = user;
    request.stream = stream;
    request.stream_options = stream_options;
    let mut canonical = encoded.ok()?;
    canonical.sort_all_objects();
    let mut hasher = Sha256::new();
    for part in [scope.as_bytes(), route.as_bytes()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    serde_json::to_writer(HashWriter(&mut hasher), &canonical).ok()?;
    if let Some(native) = &request.native {
        // What the translation leaves out (`thinking`, `top_k`) changes a native target's
        // answer: the client's own body is in the key too, but for delivery and attribution.
        let mut body: serde_json::Value = serde_json::from_slice(&native.body).ok()?;
        if let Some(fields) = body.as_object_mut() {
            for field in ["model", "stream", "metadata"] {
                fields.remove(field);
            }
        }
        body.sort_all_objects();
        serde_json::to_writer(HashWriter(&mut hasher), &body).ok()?;
    }
    Some(hasher.finalize().into())
}

/// Feeds serialized bytes straight into the hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: &str, route: &str, body: &str) -> Key {
        let mut request: ChatRequest = serde_json::from_str(body).unwrap();
        let before = request.clone();
        let key = of(scope, route, &mut request).unwrap();
        assert_eq!(request, before, "hashing leaves the request as it was");
        key
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
        assert_eq!(
            k,
            key(
                "k",
                "m",
                r#"{"model":"other-name","messages":[{"role":"user","content":"hi"}]}"#
            )
        );
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(key("ab", "c", base), key("a", "bc", base));
    }
}
