//! A client's Messages request as a canonical chat request: `system` as a system message, tool
//! results as `tool` messages (ids kept), tool uses as tool calls, images and PDFs as parts.
//!
//! What only Anthropic reads (`cache_control`, `top_k`, `thinking`, thinking blocks of earlier
//! turns, server tools) is left out here; an Anthropic target gets the client's own body.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::wire::{
    InBlock, InContent, InMessage, InRole, InSource, InToolChoice, MessagesRequest, System,
    ToolResultContent,
};
use crate::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName,
    FunctionType, ImageUrl, InstructionMessage, Message, NamedToolChoice, Stop, StreamOptions,
    Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolMessage, UserMessage,
};
use crate::error::ProviderError;

/// The canonical request, and the tools it had to leave out.
#[derive(Debug)]
pub struct Translated {
    pub request: ChatRequest,
    /// Anthropic server tools (`web_search_…`, `bash_…`): only an Anthropic target runs them.
    pub dropped_tools: Vec<String>,
}

/// Translates a request, checking what Anthropic would refuse before anything is sent:
/// `max_tokens` when `needs_max_tokens`, and every `tool_result` answering an earlier `tool_use`.
pub fn translate(
    request: &MessagesRequest,
    needs_max_tokens: bool,
) -> Result<Translated, ProviderError> {
    if needs_max_tokens && request.max_tokens.is_none() {
        return Err(ProviderError::invalid_request(
            "max_tokens: Field required",
            Some("max_tokens"),
        ));
    }
    if request.messages.is_empty() {
        return Err(ProviderError::invalid_request(
            "messages: at least one message is required",
            Some("messages"),
        ));
    }
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.extend(system_message(system));
    }
    let mut calls = HashSet::new();
    for (i, message) in request.messages.iter().enumerate() {
        turn(message, i, &mut calls, &mut messages)?;
    }
    let (tools, dropped_tools) = tools(request);
    let has_tools = tools.is_some();
    let (tool_choice, no_parallel) = match &request.tool_choice {
        Some(choice) if has_tools => tool_choice(choice),
        _ => (None, None),
    };
    let chat = ChatRequest {
        model: request.model.clone(),
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: no_parallel.map(|_| false),
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop_sequences.clone().map(Stop::Many),
        max_tokens: request.max_tokens,
        user: request.metadata.as_ref().and_then(|m| m.user_id.clone()),
        stream: request.is_stream().then_some(true),
        // A Messages stream always ends with its usage.
        stream_options: request.is_stream().then(|| StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        }),
        ..ChatRequest::default()
    };
    Ok(Translated {
        request: chat,
        dropped_tools,
    })
}

fn system_message(system: &System) -> Option<Message> {
    let text = match system {
        System::Text(text) => text.clone(),
        System::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                InBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    (!text.is_empty()).then(|| {
        Message::System(InstructionMessage {
            content: Content::Text(text),
            name: None,
            extra: Default::default(),
        })
    })
}

/// One turn as one or more canonical messages. `calls` holds the tool-use ids seen so far.
fn turn(
    message: &InMessage,
    i: usize,
    calls: &mut HashSet<String>,
    out: &mut Vec<Message>,
) -> Result<(), ProviderError> {
    let at = |j: usize, field: &str| format!("messages.{i}.content.{j}{field}");
    let blocks = match &message.content {
        InContent::Text(text) => {
            out.push(plain(message.role, Content::Text(text.clone())));
            return Ok(());
        }
        InContent::Blocks(blocks) => blocks,
    };
    match message.role {
        InRole::Assistant => out.push(Message::Assistant(assistant(blocks, calls, &at)?)),
        InRole::User => {
            let mut parts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    InBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => {
                        if !calls.contains(tool_use_id) {
                            return Err(ProviderError::invalid_request(
                                format!(
                                    "tool_result block(s) provided for tool_use_id {tool_use_id:?} \
                                     without a tool_use block before it"
                                ),
                                Some(&at(j, ".tool_use_id")),
                            ));
                        }
                        let (text, images) = tool_result(content.as_ref(), &at(j, ".content"))?;
                        let text = if *is_error == Some(true) {
                            format!("Error: {text}")
                        } else {
                            text
                        };
                        out.push(Message::Tool(ToolMessage {
                            content: Content::Text(text),
                            tool_call_id: tool_use_id.clone(),
                            extra: Default::default(),
                        }));
                        parts.extend(images);
                    }
                    other => parts.extend(part(other, &at(j, ""))?),
                }
            }
            if !parts.is_empty() {
                out.push(plain(InRole::User, Content::Parts(parts)));
            }
        }
    }
    Ok(())
}

fn plain(role: InRole, content: Content) -> Message {
    match role {
        InRole::User => Message::User(UserMessage {
            content,
            name: None,
            extra: Default::default(),
        }),
        InRole::Assistant => Message::Assistant(AssistantMessage {
            content: Some(content),
            ..AssistantMessage::default()
        }),
    }
}

/// An assistant turn: its text and its tool calls. Thinking blocks are Anthropic's to check and
/// no other provider reads them.
fn assistant(
    blocks: &[InBlock],
    calls: &mut HashSet<String>,
    at: &dyn Fn(usize, &str) -> String,
) -> Result<AssistantMessage, ProviderError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block {
            InBlock::Text { text: piece } => text.push_str(piece),
            InBlock::ToolUse { id, name, input } => {
                calls.insert(id.clone());
                let arguments = match input {
                    Value::Null => "{}".to_owned(),
                    input => input.to_string(),
                };
                tool_calls.push(ToolCall {
                    id: id.clone(),
                    kind: FunctionType::Function,
                    function: FunctionCall {
                        name: name.clone(),
                        arguments,
                    },
                });
            }
            InBlock::ToolResult { .. } => {
                return Err(ProviderError::invalid_request(
                    "tool_result blocks belong in user turns",
                    Some(&at(j, ".type")),
                ));
            }
            _ => {}
        }
    }
    Ok(AssistantMessage {
        content: (!text.is_empty()).then_some(Content::Text(text)),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        ..AssistantMessage::default()
    })
}

/// A user block as a content part: text, an image, a document (inline PDF as a file, plain text
/// as text). Blocks only Anthropic reads are left out.
fn part(block: &InBlock, param: &str) -> Result<Option<ContentPart>, ProviderError> {
    Ok(match block {
        InBlock::Text { text } => Some(ContentPart::Text { text: text.clone() }),
        InBlock::Image { source } => image(source, param)?,
        InBlock::Document { source } => match source {
            InSource::Base64 { media_type, data } => Some(ContentPart::File {
                file: json!({
                    "filename": "document.pdf",
                    "file_data": format!("data:{media_type};base64,{data}"),
                }),
            }),
            InSource::Text { data } => Some(ContentPart::Text { text: data.clone() }),
            InSource::Url { url } => Some(ContentPart::File {
                file: json!({ "file_url": url }),
            }),
            InSource::Other => None,
        },
        InBlock::ToolUse { .. } => {
            return Err(ProviderError::invalid_request(
                "tool_use blocks belong in assistant turns",
                Some(&format!("{param}.type")),
            ));
        }
        _ => None,
    })
}

fn image(source: &InSource, param: &str) -> Result<Option<ContentPart>, ProviderError> {
    let url = match source {
        InSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        InSource::Url { url } => url.clone(),
        InSource::Text { .. } => {
            return Err(ProviderError::invalid_request(
                "an image source is base64 or url",
                Some(&format!("{param}.source.type")),
            ));
        }
        InSource::Other => return Ok(None),
    };
    Ok(Some(ContentPart::ImageUrl {
        image_url: ImageUrl { url, detail: None },
    }))
}

/// A tool result's text, and its images, which a `tool` message cannot carry: they follow in a
/// user message.
fn tool_result(
    content: Option<&ToolResultContent>,
    param: &str,
) -> Result<(String, Vec<ContentPart>), ProviderError> {
    match content {
        None => Ok((String::new(), Vec::new())),
        Some(ToolResultContent::Text(text)) => Ok((text.clone(), Vec::new())),
        Some(ToolResultContent::Blocks(blocks)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (k, block) in blocks.iter().enumerate() {
                match part(block, &format!("{param}.{k}"))? {
                    Some(ContentPart::Text { text }) => texts.push(text),
                    Some(other) => images.push(other),
                    None => {}
                }
            }
            Ok((texts.join("\n"), images))
        }
    }
}

/// Client tools as functions; server tools are named for the caller and left out.
fn tools(request: &MessagesRequest) -> (Option<Vec<Tool>>, Vec<String>) {
    let mut dropped = Vec::new();
    let mut tools = Vec::new();
    for tool in request.tools.iter().flatten() {
        if !tool.is_client_tool() {
            dropped.push(tool.name.clone());
            continue;
        }
        tools.push(Tool::Function {
            function: FunctionDef {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: Some(
                    tool.input_schema
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                ),
                strict: None,
            },
        });
    }
    ((!tools.is_empty()).then_some(tools), dropped)
}

/// `tool_choice`, and whether parallel calls were turned off.
fn tool_choice(choice: &InToolChoice) -> (Option<ToolChoice>, Option<bool>) {
    let (choice, no_parallel) = match choice {
        InToolChoice::Auto {
            disable_parallel_tool_use,
        } => (
            ToolChoice::Mode(ToolChoiceMode::Auto),
            *disable_parallel_tool_use,
        ),
        InToolChoice::Any {
            disable_parallel_tool_use,
        } => (
            ToolChoice::Mode(ToolChoiceMode::Required),
            *disable_parallel_tool_use,
        ),
        InToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            ToolChoice::Named(NamedToolChoice {
                kind: FunctionType::Function,
                function: FunctionName { name: name.clone() },
            }),
            *disable_parallel_tool_use,
        ),
        InToolChoice::None => (ToolChoice::Mode(ToolChoiceMode::None), None),
    };
    (Some(choice), no_parallel.filter(|&off| off))
}
