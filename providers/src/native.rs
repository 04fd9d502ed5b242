//! A client's own request body, kept beside its canonical translation for a target that speaks
//! the client's format natively, and sent to it as written but for the model.
//!
//! Translating there and back would lose what the canonical form does not model (Anthropic's
//! `cache_control`, thinking signatures in old turns, beta fields), so the body is not touched.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ProviderError;

/// The wire formats a client can speak to the gateway besides Chat Completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeFormat {
    /// Anthropic's Messages API.
    AnthropicMessages,
    /// OpenAI's Responses API.
    OpenAiResponses,
}

/// The body a client sent, in its own format.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    pub format: NativeFormat,
    pub body: Bytes,
    /// The `anthropic-beta` header the client sent, for Anthropic targets only.
    pub beta: Option<String>,
    /// The provider that holds the stored response this body continues (`previous_response_id`):
    /// the body as written means something there alone; elsewhere the canonical form, which
    /// carries the conversation, is sent.
    pub holder: Option<String>,
    /// A built-in tool the client's `tool_choice` forces: no translation can carry that, so a
    /// target that cannot take the body as written refuses the request.
    pub forced_tool: Option<String>,
}

#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow)]
    model: &'a RawValue,
}

impl Native {
    /// A client's body in `format`, with nothing more said of it.
    pub fn new(format: NativeFormat, body: Bytes) -> Self {
        Native {
            format,
            body,
            beta: None,
            holder: None,
            forced_tool: None,
        }
    }

    /// Whether provider `name`, speaking this format, may be sent the body as written.
    pub fn goes_to(&self, name: &str) -> bool {
        self.holder.as_deref().is_none_or(|holder| holder == name)
    }

    /// The body with its top-level `model` replaced by `model`; every other byte as the client
    /// wrote it.
    pub fn with_model(&self, model: &str) -> Result<Vec<u8>, ProviderError> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|e| ProviderError::invalid_request(format!("body is not UTF-8: {e}"), None))?;
        let found: ModelOnly<'_> = serde_json::from_str(text).map_err(|e| {
            ProviderError::invalid_request(format!("body has no model: {e}"), Some("model"))
        })?;
        // The raw value borrows from `text`, so its place in the body is where it points.
        let value = found.model.get();
        let start = value.as_ptr() as usize - text.as_ptr() as usize;
        let end = start + value.len();
        let quoted = serde_json::to_string(model)
            .map_err(|e| ProviderError::internal(format!("cannot encode model: {e}")))?;
        let mut out = Vec::with_capacity(self.body.len() + quoted.len());
        out.extend_from_slice(&self.body[..start]);
        out.extend_from_slice(quoted.as_bytes());
        out.extend_from_slice(&self.body[end..]);
        Ok(out)
    }
}

/// A top-level member's name, borrowed unless it holds an escape.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object's members in order, each value as written.
struct Members<'a>(Vec<(Name<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

impl Native {
    /// The body without its top-level members named in `drop`, and with `first` (a name and
    /// its JSON) ahead of the rest: what a host that wraps the format (Bedrock) takes. Every
    /// other member keeps its bytes and its place.
    pub fn reshaped(
        &self,
        drop: &[&str],
        first: &[(&str, &str)],
    ) -> Result<Vec<u8>, ProviderError> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|e| ProviderError::invalid_request(format!("body is not UTF-8: {e}"), None))?;
        let members: Members<'_> = serde_json::from_str(text).map_err(|e| {
            ProviderError::invalid_request(format!("body is not a JSON object: {e}"), None)
        })?;
        let mut out = Vec::with_capacity(self.body.len() + 64);
        out.push(b'{');
        let kept = members
            .0
            .iter()
            .filter(|(name, _)| !drop.contains(&name.0.as_ref()));
        let written = first
            .iter()
            .map(|&(name, json)| (Cow::Borrowed(name), json))
            .chain(kept.map(|(name, value)| (name.0.clone(), value.get())));
        for (at, (name, json)) in written.enumerate() {
            if at > 0 {
                out.push(b',');
            }
            let quoted = serde_json::to_string(&name)
                .map_err(|e| ProviderError::internal(format!("cannot encode a name: {e}")))?;
            out.extend_from_slice(quoted.as_bytes());
            out.push(b':');
            out.extend_from_slice(json.as_bytes());
        }
        out.push(b'}');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(body: &str) -> Native {
        Native::new(
            NativeFormat::AnthropicMessages,
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn only_the_model_changes() {
        let body = r#"{ "max_tokens":5,"model" : "smart",  "x":{"model":"inner"},"n":1.0e3}"#;
        let out = native(body).with_model("claude-\"x\"").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{ "max_tokens":5,"model" : "claude-\"x\"",  "x":{"model":"inner"},"n":1.0e3}"#
        );
    }

    #[test]
    fn a_reshaped_body_keeps_every_other_member_as_written() {
        let body =
            r#"{ "model":"smart", "max_tokens" : 5,"stream":true,"x":{"model":"in"},"n":1.50}"#;
        let out = native(body)
            .reshaped(&["model", "stream"], &[("anthropic_version", r#""v1""#)])
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"anthropic_version":"v1","max_tokens":5,"x":{"model":"in"},"n":1.50}"#
        );
        assert!(native("[1]").reshaped(&[], &[]).is_err());
    }

    #[test]
    fn a_body_without_a_model_or_with_two_is_refused() {
        assert!(native(r#"{"max_tokens":5}"#).with_model("m").is_err());
        assert!(
            native(r#"{"model":"a","model":"b"}"#)
                .with_model("m")
                .is_err()
        );
        assert!(native("not json").with_model("m").is_err());
    }
}
