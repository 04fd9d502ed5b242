//! The hand-written `Deserialize` of [`ChatRequest`]: one pass over the body, known fields typed,
//! everything else kept in `extra`.
//!
//! It behaves as the derived one would (required `model` and `messages`, duplicates rejected,
//! `null` read as absent) without `flatten`'s intermediate buffering.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::chat::{
    AssistantMessage, ChatRequest, Content, Extra, FunctionMessage, InstructionMessage, Message,
    ToolCall, ToolMessage, UserMessage,
};

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

/// Reads an optional field once; a second occurrence is an error, as with derived impls.
fn once<'de, A, T>(
    slot: &mut Option<T>,
    seen: &mut bool,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if std::mem::replace(seen, true) {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = map.next_value::<Option<T>>()?;
    Ok(())
}

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = ChatRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chat completion request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut request = ChatRequest::default();
        let (mut model, mut messages) = (None::<String>, None);
        // One flag per optional field, in declaration order, to reject duplicates.
        let mut seen = [false; 19];
        while let Some(key) = map.next_key::<String>()? {
            let r = &mut request;
            match key.as_str() {
                "model" => {
                    if model.is_some() {
                        return Err(de::Error::duplicate_field("model"));
                    }
                    model = Some(map.next_value()?);
                }
                "messages" => {
                    if messages.is_some() {
                        return Err(de::Error::duplicate_field("messages"));
                    }
                    messages = Some(map.next_value()?);
                }
                "tools" => once(&mut r.tools, &mut seen[0], "tools", &mut map)?,
                "tool_choice" => once(&mut r.tool_choice, &mut seen[1], "tool_choice", &mut map)?,
                "parallel_tool_calls" => once(
                    &mut r.parallel_tool_calls,
                    &mut seen[2],
                    "parallel_tool_calls",
                    &mut map,
                )?,
                "response_format" => once(
                    &mut r.response_format,
                    &mut seen[3],
                    "response_format",
                    &mut map,
                )?,
                "temperature" => once(&mut r.temperature, &mut seen[4], "temperature", &mut map)?,
                "top_p" => once(&mut r.top_p, &mut seen[5], "top_p", &mut map)?,
                "n" => once(&mut r.n, &mut seen[6], "n", &mut map)?,
                "stop" => once(&mut r.stop, &mut seen[7], "stop", &mut map)?,
                "max_tokens" => once(&mut r.max_tokens, &mut seen[8], "max_tokens", &mut map)?,
                "max_completion_tokens" => once(
                    &mut r.max_completion_tokens,
                    &mut seen[9],
                    "max_completion_tokens",
                    &mut map,
                )?,
                "presence_penalty" => once(
                    &mut r.presence_penalty,
                    &mut seen[10],
                    "presence_penalty",
                    &mut map,
                )?,
                "frequency_penalty" => once(
                    &mut r.frequency_penalty,
                    &mut seen[11],
                    "frequency_penalty",
                    &mut map,
                )?,
                "seed" => once(&mut r.seed, &mut seen[12], "seed", &mut map)?,
                "logprobs" => once(&mut r.logprobs, &mut seen[13], "logprobs", &mut map)?,
                "top_logprobs" => {
                    once(&mut r.top_logprobs, &mut seen[14], "top_logprobs", &mut map)?
                }
                "logit_bias" => once(&mut r.logit_bias, &mut seen[15], "logit_bias", &mut map)?,
                "user" => once(&mut r.user, &mut seen[16], "user", &mut map)?,
                "stream" => once(&mut r.stream, &mut seen[17], "stream", &mut map)?,
                "stream_options" => once(
                    &mut r.stream_options,
                    &mut seen[18],
                    "stream_options",
                    &mut map,
                )?,
                _ => {
                    // As with serde's `flatten`, a repeated unknown key keeps its last value.
                    r.extra.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        request.model = model.ok_or_else(|| de::Error::missing_field("model"))?;
        request.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
        Ok(request)
    }
}

#[derive(Clone, Copy)]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// By hand rather than derived: serde_json reads a derived enum from a number as a syntax error
/// ("expected value"), which loses the field's path; a string visitor makes it a type error that
/// names `messages[i].role`.
impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RoleVisitor;
        impl Visitor<'_> for RoleVisitor {
            type Value = Role;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a role: system, developer, user, assistant, tool or function")
            }

            fn visit_str<E: de::Error>(self, role: &str) -> Result<Role, E> {
                Ok(match role {
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "tool" => Role::Tool,
                    "function" => Role::Function,
                    other => return Err(E::unknown_variant(other, ROLES)),
                })
            }
        }
        deserializer.deserialize_str(RoleVisitor)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

/// The fields of any message, typed; which ones belong is decided once the role is known.
#[derive(Default)]
struct Fields {
    content: Option<Content>,
    // Kept raw until the role is known: a role that does not use one keeps any JSON there.
    name: Option<Value>,
    refusal: Option<Value>,
    tool_call_id: Option<Value>,
    tool_calls: Option<Vec<ToolCall>>,
    extra: Extra,
}

/// A string field of the role, from its raw JSON: absent and `null` are both `None`.
fn text<E: de::Error>(value: Option<Value>, name: &str) -> Result<Option<String>, E> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(E::custom(format!(
            "invalid type for `{name}`: expected a string"
        ))),
    }
}

/// Reads a raw field once.
fn raw<'de, A: MapAccess<'de>>(
    slot: &mut Option<Value>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl Fields {
    /// Moves a known field that this role does not use into `extra`, as the derived form would.
    fn keep<T: serde::Serialize>(extra: &mut Extra, name: &str, value: Option<T>) {
        if let Some(value) = value.and_then(|v| serde_json::to_value(v).ok()) {
            extra.insert(name.to_owned(), value);
        }
    }

    /// Moves a raw field this role does not use into `extra`, `null` included.
    fn keep_raw(extra: &mut Extra, name: &str, value: Option<Value>) {
        if let Some(value) = value {
            extra.insert(name.to_owned(), value);
        }
    }

    fn content<E: de::Error>(&mut self) -> Result<Content, E> {
        self.content
            .take()
            .ok_or_else(|| E::missing_field("content"))
    }
}

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object with a role")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut role = None::<Role>;
        let mut f = Fields::default();
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "role" => {
                    if role.is_some() {
                        return Err(de::Error::duplicate_field("role"));
                    }
                    role = Some(map.next_value()?);
                }
                "content" => once(&mut f.content, &mut seen[0], "content", &mut map)?,
                "name" => raw(&mut f.name, "name", &mut map)?,
                "refusal" => raw(&mut f.refusal, "refusal", &mut map)?,
                "tool_calls" => once(&mut f.tool_calls, &mut seen[3], "tool_calls", &mut map)?,
                "tool_call_id" => raw(&mut f.tool_call_id, "tool_call_id", &mut map)?,
                _ => {
                    f.extra.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        let role = role.ok_or_else(|| de::Error::missing_field("role"))?;
        let mut extra = std::mem::take(&mut f.extra);
        Ok(match role {
            Role::System | Role::Developer | Role::User => {
                let content = f.content()?;
                let name = text(f.name, "name")?;
                Fields::keep_raw(&mut extra, "refusal", f.refusal);
                Fields::keep(&mut extra, "tool_calls", f.tool_calls);
                Fields::keep_raw(&mut extra, "tool_call_id", f.tool_call_id);
                match role {
                    Role::User => Message::User(UserMessage {
                        content,
                        name,
                        extra,
                    }),
                    Role::System => Message::System(InstructionMessage {
                        content,
                        name,
                        extra,
                    }),
                    _ => Message::Developer(InstructionMessage {
                        content,
                        name,
                        extra,
                    }),
                }
            }
            Role::Assistant => {
                Fields::keep_raw(&mut extra, "tool_call_id", f.tool_call_id);
                Message::Assistant(AssistantMessage {
                    content: f.content,
                    refusal: text(f.refusal, "refusal")?,
                    tool_calls: f.tool_calls,
                    name: text(f.name, "name")?,
                    extra,
                })
            }
            Role::Tool => {
                let content = f.content()?;
                let tool_call_id = text(f.tool_call_id, "tool_call_id")?
                    .ok_or_else(|| de::Error::missing_field("tool_call_id"))?;
                Fields::keep_raw(&mut extra, "name", f.name);
                Fields::keep_raw(&mut extra, "refusal", f.refusal);
                Fields::keep(&mut extra, "tool_calls", f.tool_calls);
                Message::Tool(ToolMessage {
                    content,
                    tool_call_id,
                    extra,
                })
            }
            Role::Function => {
                let name = text(f.name, "name")?.ok_or_else(|| de::Error::missing_field("name"))?;
                Fields::keep_raw(&mut extra, "refusal", f.refusal);
                Fields::keep(&mut extra, "tool_calls", f.tool_calls);
                Fields::keep_raw(&mut extra, "tool_call_id", f.tool_call_id);
                Message::Function(FunctionMessage {
                    name,
                    content: f.content,
                    extra,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_duplicate_null_and_unknown_fields() {
        let err = serde_json::from_str::<ChatRequest>(r#"{"messages": []}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `model`"), "{err}");
        let err = serde_json::from_str::<ChatRequest>(
            r#"{"model": "a", "messages": [], "n": 1, "n": 2}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate field `n`"), "{err}");
        let req: ChatRequest = serde_json::from_value(
            json!({"model": "a", "messages": [], "temperature": null, "seed": 3, "x-custom": [1]}),
        )
        .unwrap();
        assert_eq!((req.temperature, req.seed), (None, Some(3)));
        assert_eq!(req.extra.get("x-custom"), Some(&json!([1])));
        assert!(serde_json::from_str::<ChatRequest>(r#"["model"]"#).is_err());
        assert!(
            serde_json::from_str::<ChatRequest>(
                r#"{"model": "a", "messages": [], "stream": "yes"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn messages_by_role_round_trip_and_reject_what_the_role_needs() {
        let messages = json!([
            {"role": "developer", "content": "rules", "name": "ops"},
            {"content": [{"type": "text", "text": "hi"}], "role": "user", "x-trace": 1},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok", "name": "f"},
            {"role": "system", "content": "s"}
        ]);
        let parsed: Vec<Message> = serde_json::from_value(messages.clone()).unwrap();
        assert!(
            matches!(&parsed[1], Message::User(u) if u.extra.get("x-trace") == Some(&json!(1)))
        );
        assert!(matches!(&parsed[3], Message::Tool(t) if t.extra.get("name") == Some(&json!("f"))));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), messages);
        let lenient: Message = serde_json::from_value(
            json!({"role": "tool", "tool_call_id": "c", "content": "x", "name": 7, "refusal": null}),
        )
        .unwrap();
        assert!(
            matches!(&lenient, Message::Tool(t) if t.extra.get("name") == Some(&json!(7)) && t.extra.get("refusal") == Some(&json!(null))),
            "fields another role uses are kept as they came"
        );
        for bad in [
            json!({"role": "user", "content": "x", "name": 7}),
            json!({"content": "x"}),
            json!({"role": "user"}),
            json!({"role": "tool", "content": "x"}),
            json!({"role": "wizard", "content": "x"}),
            json!({"role": "user", "content": 5}),
        ] {
            assert!(
                serde_json::from_value::<Message>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
