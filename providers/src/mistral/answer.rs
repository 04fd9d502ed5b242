//! Mistral's own words in answers and chunks, brought to OpenAI's: a content list of thinking
//! and text chunks becomes `content` plus `reasoning_content`, and `model_length` becomes `length`.

use std::sync::LazyLock;

use memchr::memmem::{self, Finder};
use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::json_scan;

static CONTENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"content\""));

/// Whether `json` may hold anything [`normalize`] changes. Inside a JSON string every quote is
/// escaped, so a quoted word found here is a key or a whole value, never text; a false alarm
/// only costs a parse.
pub(super) fn needs_normalizing(json: &[u8]) -> bool {
    memmem::find(json, b"\"model_length\"").is_some()
        || memmem::find(json, b"\"error\"").is_some()
        || json_scan::values(&CONTENT, json).any(|at| json[at..].starts_with(b"["))
}

/// Rewrites every choice of an answer (`message`) or chunk (`delta`) in OpenAI's words. A choice
/// Mistral ended with `error` fails the whole answer: its text is cut short, and a client must not
/// take it for a finished one.
pub(super) fn normalize(answer: &mut Value) -> Result<(), ProviderError> {
    let Some(choices) = answer.get_mut("choices").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some("model_length") => {
                choice.insert("finish_reason".into(), Value::from("length"));
            }
            Some("error") => {
                return Err(ProviderError::bad_response(
                    "mistral stopped generating with finish_reason \"error\"",
                ));
            }
            _ => {}
        }
        if let Some(Value::Object(message)) = choice.get_mut("message") {
            split_thinking(message, Value::Null);
        }
        if let Some(Value::Object(delta)) = choice.get_mut("delta") {
            split_thinking(delta, Value::String(String::new()));
        }
    }
    Ok(())
}

/// Turns a content list into its text, and its thinking chunks into `reasoning_content`.
/// `no_text` is what content becomes when only thinking came: `null` in a message, and in a
/// delta an empty string, which adds nothing to the text a client assembles.
fn split_thinking(message: &mut Map<String, Value>, no_text: Value) {
    let Some(Value::Array(parts)) = message.get("content") else {
        return;
    };
    let (mut text, mut thinking) = (String::new(), String::new());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => push_text(part.get("text"), &mut text),
            Some("thinking") => push_text(part.get("thinking"), &mut thinking),
            _ => {}
        }
    }
    let content = if text.is_empty() {
        no_text
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !thinking.is_empty() {
        message.insert("reasoning_content".into(), Value::String(thinking));
    }
}

/// A string, or a list of text chunks (how Mistral nests a thinking chunk's text).
fn push_text(value: Option<&Value>, out: &mut String) {
    match value {
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(parts)) => {
            for part in parts {
                push_text(part.get("text"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_bodies_with_something_to_change_are_parsed() {
        assert!(!needs_normalizing(
            br#"{"choices":[{"delta":{"content":"say \"error\" [1]"},"finish_reason":null}]}"#
        ));
        assert!(needs_normalizing(
            br#"{"choices":[{"delta":{"content" : [{"type":"thinking"}]}}]}"#
        ));
        assert!(needs_normalizing(
            br#"{"choices":[{"finish_reason":"model_length"}]}"#
        ));
        assert!(needs_normalizing(
            br#"{"choices":[{"finish_reason":"error"}]}"#
        ));
    }

    #[test]
    fn thinking_becomes_reasoning_content() {
        let mut answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "Let me "}, {"type": "text", "text": "think."}]},
            {"type": "text", "text": "4"}, {"type": "text", "text": "2"}
        ]}, "finish_reason": "model_length"}]});
        normalize(&mut answer).unwrap();
        assert_eq!(
            answer["choices"][0],
            json!({"index": 0, "message": {"role": "assistant", "content": "42",
                "reasoning_content": "Let me think."}, "finish_reason": "length"})
        );
        let mut chunk = json!({"choices": [{"index": 0, "delta": {"content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "Hm"}]}]}}]});
        normalize(&mut chunk).unwrap();
        assert_eq!(
            chunk["choices"][0]["delta"],
            json!({"content": "", "reasoning_content": "Hm"})
        );
    }

    #[test]
    fn an_error_finish_fails_the_answer() {
        let mut answer = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]});
        assert!(normalize(&mut answer).is_err());
    }
}
