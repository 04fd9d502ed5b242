//! A client's Responses request as a canonical chat request: `instructions` as a system message,
//! the stored conversation of `previous_response_id`, then the input items (messages, function
//! calls with their call ids, their outputs as `tool` messages), function tools, `text.format`.
//!
//! OpenAI's built-in tools (`web_search`, `file_search`, …) and items only OpenAI reads
//! (`reasoning`, `item_reference`) are left out; the caller names the tools in a header.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::wire::{Format, Input, ResponsesRequest};
use crate::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName,
    FunctionType, ImageUrl, InstructionMessage, JsonSchemaFormat, Message, NamedToolChoice,
    ResponseFormat, StreamOptions, Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolMessage,
    UserMessage,
};
use crate::error::ProviderError;

/// The canonical request, what was left out, and where the conversation to keep begins.
#[derive(Debug)]
pub struct Translated {
    pub request: ChatRequest,
    /// Built-in tools (by type) and other tools only OpenAI runs.
    pub dropped_tools: Vec<String>,
    /// The built-in tool `tool_choice` forces: only a target taking the client's body as written
    /// can answer, and the canonical request leaves the choice to the model.
    pub forced_builtin: Option<String>,
    /// Messages before this index are this request's `instructions`, which a later response
    /// does not inherit.
    pub conversation_from: usize,
}

impl Translated {
    /// The conversation to store with this request's answer: history and input, the answer last.
    pub fn conversation(&self, answer: Message) -> Vec<Message> {
        let mut messages = self.request.messages[self.conversation_from..].to_vec();
        messages.push(answer);
        messages
    }
}

fn invalid(message: impl Into<String>, param: &str) -> ProviderError {
    ProviderError::invalid_request(message, Some(param))
}

/// Translates `request`, continuing `history` (the conversation of `previous_response_id`).
pub fn translate(
    request: &ResponsesRequest,
    history: Vec<Message>,
) -> Result<Translated, ProviderError> {
    let mut messages = Vec::new();
    if let Some(instructions) = request.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(Message::System(InstructionMessage {
            content: Content::Text(instructions.clone()),
            name: None,
            extra: Default::default(),
        }));
    }
    let conversation_from = messages.len();
    let mut calls: HashSet<String> = history.iter().flat_map(call_ids).collect();
    messages.extend(history);
    match &request.input {
        None => {}
        Some(Input::Text(text)) => messages.push(user(Content::Text(text.clone()))),
        Some(Input::Items(items)) => {
            for (i, item) in items.iter().enumerate() {
                self::item(item, &format!("input[{i}]"), &mut calls, &mut messages)?;
            }
        }
    }
    if messages.len() == conversation_from {
        return Err(invalid("input: the request has nothing to answer", "input"));
    }
    let (tools, dropped_tools) = tools(request.tools.as_deref().unwrap_or_default())?;
    let (tool_choice, forced_builtin) = match &request.tool_choice {
        Some(choice) if tools.is_some() || !dropped_tools.is_empty() => {
            match self::tool_choice(choice, &dropped_tools)? {
                Choice::Canonical(choice) => (choice, None),
                Choice::Builtin(name) => (None, Some(name)),
            }
        }
        _ => (None, None),
    };
    let stream = request.is_stream();
    let chat = ChatRequest {
        model: request.model.clone(),
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        response_format: request
            .text
            .as_ref()
            .and_then(|t| t.format.clone())
            .map(format),
        temperature: request.temperature,
        top_p: request.top_p,
        max_tokens: request.max_output_tokens,
        user: request.user.clone(),
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        }),
        ..ChatRequest::default()
    };
    Ok(Translated {
        request: chat,
        dropped_tools,
        forced_builtin,
        conversation_from,
    })
}

fn call_ids(message: &Message) -> Vec<String> {
    match message {
        Message::Assistant(m) => m
            .tool_calls
            .iter()
            .flatten()
            .map(|c| c.id.clone())
            .collect(),
        _ => Vec::new(),
    }
}

fn user(content: Content) -> Message {
    Message::User(UserMessage {
        content,
        name: None,
        extra: Default::default(),
    })
}

fn str_field<'a>(item: &'a Value, field: &str, at: &str) -> Result<&'a str, ProviderError> {
    item.get(field).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            format!("{at}.{field}: a string is required"),
            &format!("{at}.{field}"),
        )
    })
}

/// One input item, appended as canonical messages.
fn item(
    item: &Value,
    at: &str,
    calls: &mut HashSet<String>,
    out: &mut Vec<Message>,
) -> Result<(), ProviderError> {
    let kind = item.get("type").and_then(Value::as_str);
    let role = item.get("role").and_then(Value::as_str);
    match (kind, role) {
        (Some("message") | None, Some(role)) => out.push(message(item, role, at)?),
        (Some("function_call"), _) => {
            let call_id = str_field(item, "call_id", at)?.to_owned();
            let name = str_field(item, "name", at)?.to_owned();
            let arguments = item
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            calls.insert(call_id.clone());
            let call = ToolCall {
                id: call_id,
                kind: FunctionType::Function,
                function: FunctionCall {
                    name,
                    arguments: arguments.to_owned(),
                },
            };
            // Calls that follow an assistant message (or each other) belong to that turn.
            match out.last_mut() {
                Some(Message::Assistant(turn)) => {
                    turn.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => out.push(Message::Assistant(AssistantMessage {
                    tool_calls: Some(vec![call]),
                    ..AssistantMessage::default()
                })),
            }
        }
        (Some("function_call_output"), _) => {
            let call_id = str_field(item, "call_id", at)?;
            if !calls.contains(call_id) {
                return Err(invalid(
                    format!(
                        "{at}.call_id: no function_call with call_id {call_id:?} came before this output"
                    ),
                    &format!("{at}.call_id"),
                ));
            }
            let (text, media) = match item.get("output") {
                Some(Value::String(text)) => (text.clone(), Vec::new()),
                Some(Value::Array(parts)) => output_parts(parts, &format!("{at}.output"))?,
                _ => {
                    return Err(invalid(
                        format!("{at}.output: a string or content parts are required"),
                        &format!("{at}.output"),
                    ));
                }
            };
            out.push(Message::Tool(ToolMessage {
                content: Content::Text(text),
                tool_call_id: call_id.to_owned(),
                extra: Default::default(),
            }));
            if !media.is_empty() {
                out.push(user(Content::Parts(media)));
            }
        }
        (Some(_), _) => {}
        (None, None) => {
            return Err(invalid(format!("{at}: an item needs a type or a role"), at));
        }
    }
    Ok(())
}

/// A `message` item (or a bare `{role, content}`).
fn message(item: &Value, role: &str, at: &str) -> Result<Message, ProviderError> {
    let content = match item.get("content") {
        Some(Value::String(text)) => Content::Text(text.clone()),
        Some(Value::Array(parts)) => Content::Parts(
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| part(p, &format!("{at}.content[{j}]")))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect(),
        ),
        _ => {
            return Err(invalid(
                format!("{at}.content: a string or content parts are required"),
                &format!("{at}.content"),
            ));
        }
    };
    let instruction = |content| InstructionMessage {
        content,
        name: None,
        extra: Default::default(),
    };
    Ok(match role {
        "user" => user(content),
        "system" => Message::System(instruction(content)),
        "developer" => Message::Developer(instruction(content)),
        "assistant" => Message::Assistant(AssistantMessage {
            content: Some(Content::Text(content.text())),
            ..AssistantMessage::default()
        }),
        other => {
            return Err(invalid(
                format!("{at}.role: expected user, assistant, system or developer, got {other:?}"),
                &format!("{at}.role"),
            ));
        }
    })
}

/// A content part: text in any of its names, an image, a file.
fn part(part: &Value, at: &str) -> Result<Option<ContentPart>, ProviderError> {
    let text = |field: &str| part.get(field).and_then(Value::as_str).map(str::to_owned);
    Ok(match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => Some(ContentPart::Text {
            text: text("text").ok_or_else(|| invalid(format!("{at}.text is required"), at))?,
        }),
        Some("refusal") => text("refusal").map(|text| ContentPart::Text { text }),
        Some("input_image") => text("image_url").map(|url| ContentPart::ImageUrl {
            image_url: ImageUrl {
                url,
                detail: text("detail").filter(|d| d != "auto"),
            },
        }),
        Some("input_file") => {
            let mut file = serde_json::Map::new();
            for field in ["file_data", "filename", "file_id"] {
                if let Some(value) = text(field) {
                    file.insert(field.to_owned(), json!(value));
                }
            }
            (!file.is_empty()).then_some(ContentPart::File {
                file: Value::Object(file),
            })
        }
        Some(_) => None,
        None => return Err(invalid(format!("{at}.type is required"), at)),
    })
}

/// A function call's output given as parts: its text, and its media for a user message.
fn output_parts(parts: &[Value], at: &str) -> Result<(String, Vec<ContentPart>), ProviderError> {
    let mut texts = Vec::new();
    let mut media = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        match part(p, &format!("{at}[{k}]"))? {
            Some(ContentPart::Text { text }) => texts.push(text),
            Some(other) => media.push(other),
            None => {}
        }
    }
    Ok((texts.join("\n"), media))
}

/// Function tools, and the names of the tools left out.
fn tools(tools: &[Value]) -> Result<(Option<Vec<Tool>>, Vec<String>), ProviderError> {
    let mut functions = Vec::new();
    let mut dropped = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => functions.push(Tool::Function {
                function: FunctionDef {
                    name: str_field(tool, "name", &at)?.to_owned(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    parameters: tool
                        .get("parameters")
                        .filter(|p| !p.is_null())
                        .cloned()
                        .or_else(|| Some(json!({"type": "object", "properties": {}}))),
                    strict: tool.get("strict").and_then(Value::as_bool),
                },
            }),
            Some(kind) => {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or(kind);
                dropped.push(name.to_owned());
            }
            None => {
                return Err(invalid(
                    format!("{at}.type is required"),
                    &format!("{at}.type"),
                ));
            }
        }
    }
    Ok(((!functions.is_empty()).then_some(functions), dropped))
}

/// What `tool_choice` asks of the translation.
enum Choice {
    Canonical(Option<ToolChoice>),
    /// A built-in tool, left out of the canonical request, is forced.
    Builtin(String),
}

/// `tool_choice`; forcing a tool that was not given is refused.
fn tool_choice(choice: &Value, dropped: &[String]) -> Result<Choice, ProviderError> {
    let mode = |m| Ok(Choice::Canonical(Some(ToolChoice::Mode(m))));
    match choice {
        Value::String(s) if s == "auto" => mode(ToolChoiceMode::Auto),
        Value::String(s) if s == "none" => mode(ToolChoiceMode::None),
        Value::String(s) if s == "required" => mode(ToolChoiceMode::Required),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                    invalid(
                        "tool_choice.name is required for a function",
                        "tool_choice.name",
                    )
                })?;
                Ok(Choice::Canonical(Some(ToolChoice::Named(
                    NamedToolChoice {
                        kind: FunctionType::Function,
                        function: FunctionName {
                            name: name.to_owned(),
                        },
                    },
                ))))
            }
            Some("allowed_tools") => mode(ToolChoiceMode::Auto),
            Some(kind) => {
                let forced = o.get("name").and_then(Value::as_str).unwrap_or(kind);
                if dropped.iter().any(|d| d == forced || d.starts_with(kind)) {
                    return Ok(Choice::Builtin(forced.to_owned()));
                }
                Err(invalid(
                    format!("tool_choice forces the tool {forced:?}, but no such tool was given"),
                    "tool_choice",
                ))
            }
            None => Err(invalid("tool_choice.type is required", "tool_choice.type")),
        },
        _ => Err(invalid(
            "tool_choice must be auto, none, required or a tool",
            "tool_choice",
        )),
    }
}

fn format(format: Format) -> ResponseFormat {
    match format {
        Format::Text => ResponseFormat::Text,
        Format::JsonObject => ResponseFormat::JsonObject,
        Format::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name,
                description,
                schema,
                strict,
            },
        },
    }
}
