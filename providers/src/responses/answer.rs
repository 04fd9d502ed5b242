//! A canonical chat completion as OpenAI's response object: output items (reasoning, the
//! message, function calls) with ids derived from the response's, status, usage, and what the
//! response echoes of its request.
//!
//! The event stream (`events`) builds its items with the same functions, so a streamed response
//! ends in the object a whole one is.

use serde_json::{Map, Value, json};

use super::wire::ResponsesRequest;
use crate::anthropic::REASONING_FIELD;
use crate::chat::{
    AssistantMessage, ChatResponse, Content, FinishReason, FunctionCall, FunctionType, Message,
    ToolCall, Usage,
};

/// A response's identity and what it echoes of its request.
#[derive(Debug, Clone)]
pub struct Echo {
    /// `resp_…`.
    pub id: String,
    pub created_at: u64,
    /// The request's fields a response object repeats.
    fields: Map<String, Value>,
}

impl Echo {
    pub fn new(id: String, created_at: u64, request: &ResponsesRequest) -> Self {
        let mut fields = Map::new();
        let mut put = |name: &str, value: Value| {
            fields.insert(name.to_owned(), value);
        };
        put("instructions", json!(request.instructions));
        put("tools", json!(request.tools.clone().unwrap_or_default()));
        put(
            "tool_choice",
            request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        );
        put(
            "parallel_tool_calls",
            json!(request.parallel_tool_calls.unwrap_or(true)),
        );
        put(
            "text",
            request
                .text
                .as_ref()
                .map_or_else(|| json!({"format": {"type": "text"}}), |t| json!(t)),
        );
        put("temperature", json!(request.temperature));
        put("top_p", json!(request.top_p));
        put("max_output_tokens", json!(request.max_output_tokens));
        put("previous_response_id", json!(request.previous_response_id));
        put("store", json!(request.stores()));
        put(
            "metadata",
            json!(request.metadata.clone().unwrap_or_default()),
        );
        put("user", json!(request.user));
        put(
            "reasoning",
            request
                .reasoning
                .clone()
                .unwrap_or_else(|| json!({"effort": null, "summary": null})),
        );
        put("truncation", json!("disabled"));
        Echo {
            id,
            created_at,
            fields,
        }
    }

    /// The id's part after `resp_`, which the output items' ids share.
    fn suffix(&self) -> &str {
        self.id.strip_prefix("resp_").unwrap_or(&self.id)
    }

    pub(super) fn reasoning_id(&self) -> String {
        format!("rs_{}", self.suffix())
    }

    pub(super) fn message_id(&self) -> String {
        format!("msg_{}", self.suffix())
    }

    pub(super) fn call_id(&self, index: usize) -> String {
        format!("fc_{}_{index}", self.suffix())
    }

    /// The response object: `status` with its output and usage so far.
    pub fn object(
        &self,
        status: &str,
        model: &str,
        output: Vec<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), json!(self.id));
        object.insert("object".into(), json!("response"));
        object.insert("created_at".into(), json!(self.created_at));
        object.insert("status".into(), json!(status));
        object.insert("error".into(), Value::Null);
        object.insert("incomplete_details".into(), Value::Null);
        object.insert("model".into(), json!(model));
        object.insert("output".into(), Value::Array(output));
        for (name, value) in &self.fields {
            object.insert(name.clone(), value.clone());
        }
        object.insert("usage".into(), usage.map_or(Value::Null, usage_object));
        Value::Object(object)
    }
}

/// What one answer says, in the order a response lists it.
#[derive(Debug, Default, Clone)]
pub(super) struct Turn {
    pub reasoning: Option<String>,
    pub text: Option<String>,
    pub refusal: Option<String>,
    /// (call id, name, arguments).
    pub calls: Vec<(String, String, String)>,
}

impl Turn {
    fn of(response: &ChatResponse) -> Turn {
        let Some(choice) = response.choices.first() else {
            return Turn::default();
        };
        let message = &choice.message;
        Turn {
            reasoning: message
                .extra
                .get(REASONING_FIELD)
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            text: message.content.clone().filter(|t| !t.is_empty()),
            refusal: message.refusal.clone().filter(|t| !t.is_empty()),
            calls: message
                .tool_calls
                .iter()
                .flatten()
                .map(|c| {
                    (
                        c.id.clone(),
                        c.function.name.clone(),
                        c.function.arguments.clone(),
                    )
                })
                .collect(),
        }
    }

    /// The output items, completed.
    pub fn items(&self, echo: &Echo) -> Vec<Value> {
        let mut items = Vec::new();
        if let Some(reasoning) = &self.reasoning {
            items.push(reasoning_item(&echo.reasoning_id(), reasoning));
        }
        if self.text.is_some() || self.refusal.is_some() {
            let parts = message_parts(self.text.as_deref(), self.refusal.as_deref());
            items.push(message_item(&echo.message_id(), "completed", parts));
        }
        for (i, (call_id, name, arguments)) in self.calls.iter().enumerate() {
            items.push(call_item(
                &echo.call_id(i),
                call_id,
                name,
                arguments,
                "completed",
            ));
        }
        items
    }

    /// The answer as the assistant turn of a stored conversation.
    pub fn assistant(&self) -> Message {
        let said: Vec<&str> = [&self.text, &self.refusal]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        Message::Assistant(AssistantMessage {
            content: (!said.is_empty()).then(|| Content::Text(said.join("\n"))),
            tool_calls: (!self.calls.is_empty()).then(|| {
                self.calls
                    .iter()
                    .map(|(id, name, arguments)| ToolCall {
                        id: id.clone(),
                        kind: FunctionType::Function,
                        function: FunctionCall {
                            name: name.clone(),
                            arguments: arguments.clone(),
                        },
                    })
                    .collect()
            }),
            ..AssistantMessage::default()
        })
    }
}

/// A completion's answer as the assistant turn of a stored conversation.
pub fn assistant_turn(response: &ChatResponse) -> Message {
    Turn::of(response).assistant()
}

/// The response object for a whole answer, and the assistant turn to store with it.
pub fn encode(response: &ChatResponse, echo: &Echo) -> (Value, Message) {
    let turn = Turn::of(response);
    let reason = response
        .choices
        .first()
        .and_then(|c| c.finish_reason.as_ref());
    let mut object = echo.object(
        status(reason),
        &response.model,
        turn.items(echo),
        response.usage.as_ref(),
    );
    object["incomplete_details"] = incomplete(reason);
    (object, turn.assistant())
}

/// `completed`, or `incomplete` when the answer was cut short.
pub(super) fn status(reason: Option<&FinishReason>) -> &'static str {
    match reason {
        Some(FinishReason::Length | FinishReason::ContentFilter) => "incomplete",
        _ => "completed",
    }
}

pub(super) fn incomplete(reason: Option<&FinishReason>) -> Value {
    match reason {
        Some(FinishReason::Length) => json!({"reason": "max_output_tokens"}),
        Some(FinishReason::ContentFilter) => json!({"reason": "content_filter"}),
        _ => Value::Null,
    }
}

pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    json!({"type": "reasoning", "id": id, "summary": summary})
}

pub(super) fn message_parts(text: Option<&str>, refusal: Option<&str>) -> Vec<Value> {
    let mut parts = Vec::new();
    if let Some(text) = text {
        parts.push(text_part(text));
    }
    if let Some(refusal) = refusal {
        parts.push(json!({"type": "refusal", "refusal": refusal}));
    }
    parts
}

pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

pub(super) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": arguments, "status": status})
}

/// Usage in the Responses API's names.
fn usage_object(usage: &Usage) -> Value {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0);
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens)
        .unwrap_or(0);
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens,
    })
}
