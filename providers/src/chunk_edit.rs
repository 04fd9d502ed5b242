//! The few edits a relay makes to a chunk it otherwise forwards as sent: a missing `role` added
//! to the first deltas, and a `usage` the client did not ask for taken out.
//!
//! Only the objects on the way to an edit are taken apart; every other value is copied as the
//! provider wrote it, so unknown fields, big integers and escapes reach the client unchanged.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ProviderError;

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edits {
    /// Which choices whose delta names no role get `"role": "assistant"`.
    pub add_role: RoleTo,
    /// The chunk's own `usage` is removed.
    pub strip_usage: bool,
}

/// The choices a role is added to (when their delta names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleTo {
    Nobody,
    Every,
    /// The choices whose `index` has its bit set: the first deltas of choices in a stream that
    /// sends them in separate chunks (`n` is at most 128).
    Indices(u128),
}

impl RoleTo {
    fn covers(self, index: Option<u32>) -> bool {
        match self {
            RoleTo::Nobody => false,
            RoleTo::Every => true,
            RoleTo::Indices(mask) => index.is_some_and(|i| i < 128 && mask & (1 << i) != 0),
        }
    }
}

/// `json` with `edits` made; a chunk that is not an object is a bad response.
pub fn edit(json: &str, edits: Edits) -> Result<String, ProviderError> {
    let chunk: Members = serde_json::from_str(json).map_err(ProviderError::bad_response)?;
    let mut out = String::with_capacity(json.len() + 24);
    let mut members = chunk
        .0
        .iter()
        .filter(|(key, _)| !(edits.strip_usage && key == "usage"));
    write_object(&mut out, &mut members, |out, key, value| {
        if edits.add_role != RoleTo::Nobody && key == "choices" {
            with_roles(out, value, edits.add_role)
        } else {
            out.push_str(value.get());
            Ok(())
        }
    })?;
    Ok(out)
}

/// `choices` with a role in every delta `to` covers that lacks one.
fn with_roles(out: &mut String, choices: &RawValue, to: RoleTo) -> Result<(), ProviderError> {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(choices.get()) else {
        out.push_str(choices.get()); // Not a list: nothing to give a role to.
        return Ok(());
    };
    out.push('[');
    for (i, choice) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Ok(Members(members)) = serde_json::from_str::<Members>(choice.get()) else {
            out.push_str(choice.get());
            continue;
        };
        let index = members
            .iter()
            .find(|(key, _)| key == "index")
            .and_then(|(_, raw)| serde_json::from_str::<u32>(raw.get()).ok());
        if !to.covers(index) {
            out.push_str(choice.get());
            continue;
        }
        // A finish-only choice without a delta gets one, as if it had said `"delta": null`.
        let missing = (!members.iter().any(|(key, _)| key == "delta"))
            .then(|| ("delta".to_owned(), RawValue::NULL));
        let mut fields = members.iter().chain(missing.as_ref());
        write_object(out, &mut fields, |out, key, value| {
            if key == "delta" {
                delta_with_role(out, value)
            } else {
                out.push_str(value.get());
                Ok(())
            }
        })?;
    }
    out.push(']');
    Ok(())
}

fn delta_with_role(out: &mut String, delta: &RawValue) -> Result<(), ProviderError> {
    let members = match serde_json::from_str::<Option<Members>>(delta.get()) {
        Ok(Some(Members(members))) => members,
        Ok(None) => Vec::new(), // `"delta": null`
        Err(_) => {
            out.push_str(delta.get());
            return Ok(());
        }
    };
    let named = members
        .iter()
        .any(|(key, value)| key == "role" && value.get() != "null");
    if named {
        out.push_str(delta.get());
        return Ok(());
    }
    out.push_str(r#"{"role":"assistant""#);
    for (key, value) in members.iter().filter(|(key, _)| key != "role") {
        out.push(',');
        push_key(out, key)?;
        out.push_str(value.get());
    }
    out.push('}');
    Ok(())
}

fn write_object<'a>(
    out: &mut String,
    members: &mut dyn Iterator<Item = &'a (String, &'a RawValue)>,
    mut value: impl FnMut(&mut String, &str, &RawValue) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    out.push('{');
    for (i, (key, raw)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, key)?;
        value(out, key, raw)?;
    }
    out.push('}');
    Ok(())
}

fn push_key(out: &mut String, key: &str) -> Result<(), ProviderError> {
    let quoted = serde_json::to_string(key).map_err(ProviderError::bad_response)?;
    out.push_str(&quoted);
    out.push(':');
    Ok(())
}

/// An object's members in order, values unparsed.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Of<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Of<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Of(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: Edits = Edits {
        add_role: RoleTo::Every,
        strip_usage: false,
    };

    #[test]
    fn a_role_is_added_and_everything_else_kept_as_written() {
        let chunk = r#"{"id":"c","seed":18446744073709551617,"p":0.1000000000000000055511151231257827,"e":"\u00e9","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        assert_eq!(
            edit(chunk, ROLE).unwrap(),
            r#"{"id":"c","seed":18446744073709551617,"p":0.1000000000000000055511151231257827,"e":"\u00e9","choices":[{"index":0,"delta":{"role":"assistant","content":"x"},"logprobs":null,"finish_reason":null}],"usage":null}"#
        );
    }

    #[test]
    fn a_missing_or_null_delta_or_role_gets_one_and_a_named_role_stays() {
        for (chunk, edited) in [
            (
                r#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#,
                r#"{"choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant"}}]}"#,
            ),
            (
                r#"{"choices":[{}]}"#,
                r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
            ),
            (
                r#"{"choices":[{"delta":null}]}"#,
                r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
            ),
            (
                r#"{"choices":[{"delta":{"role":null,"content":"a"}}]}"#,
                r#"{"choices":[{"delta":{"role":"assistant","content":"a"}}]}"#,
            ),
            (
                r#"{"choices":[{"delta":{"role":"assistant"}},{"index":1,"delta":{"content":"b"}}]}"#,
                r#"{"choices":[{"delta":{"role":"assistant"}},{"index":1,"delta":{"role":"assistant","content":"b"}}]}"#,
            ),
        ] {
            assert_eq!(edit(chunk, ROLE).unwrap(), edited, "{chunk}");
        }
    }

    #[test]
    fn a_role_goes_only_to_the_choices_named() {
        let only_one = Edits {
            add_role: RoleTo::Indices(1 << 1),
            strip_usage: false,
        };
        assert_eq!(
            edit(r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#, only_one).unwrap(),
            r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"role":"assistant","content":"b"}}]}"#
        );
    }

    #[test]
    fn usage_is_taken_out_and_the_rest_kept() {
        let strip = Edits {
            add_role: RoleTo::Nobody,
            strip_usage: true,
        };
        assert_eq!(
            edit(
                r#"{"id":"c","choices":[{"delta":{"content":"x"}}],"usage":{"total_tokens":3},"x":[1,2.50,1e3]}"#,
                strip
            )
            .unwrap(),
            r#"{"id":"c","choices":[{"delta":{"content":"x"}}],"x":[1,2.50,1e3]}"#
        );
        assert!(edit(r#""hello""#, strip).is_err());
        assert!(edit("{oops", strip).is_err());
    }
}
