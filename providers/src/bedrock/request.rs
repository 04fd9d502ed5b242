//! A canonical chat request as a Converse body: instructions become `system`, tool messages become
//! user `toolResult` blocks, same-role turns are merged, and JSON mode becomes a forced tool call.
//!
//! Anything Converse cannot carry (several choices, images by URL) is refused with a 400 naming
//! the parameter, rather than silently dropped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::wire::{
    ContentBlock, ConverseRequest, Empty, ImageBlock, ImageSource, InferenceConfig, InputSchema,
    Message, NamedTool, Role, SystemBlock, ToolChoice, ToolConfig, ToolEntry, ToolResultBlock,
    ToolResultContent, ToolSpec, ToolUseBlock,
};
use crate::catalog;
use crate::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, Message as ChatMessage, ResponseFormat,
    Tool, ToolChoice as ChatToolChoice, ToolChoiceMode,
};
use crate::error::ProviderError;

/// The tool that carries a JSON-mode answer; decoders turn its call back into text.
pub const JSON_TOOL: &str = "switchboard_json_response";

/// The output cap when neither the request nor the catalog gives one.
const FALLBACK_MAX_TOKENS: u32 = 4096;

/// Translates a request whose `model` is the Bedrock model id.
pub fn converse_request(request: &ChatRequest) -> Result<ConverseRequest, ProviderError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(ProviderError::invalid_request(
            "Bedrock returns one choice per request; 'n' must be 1.",
            Some("n"),
        ));
    }
    crate::chat::refuse_logprobs(
        request,
        "Bedrock's Converse API does not return log probabilities",
    )?;
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        let (role, blocks) = match message {
            ChatMessage::System(m) | ChatMessage::Developer(m) => {
                // Bedrock refuses an empty system block (minimum length 1).
                let text = m.content.text();
                if !text.trim().is_empty() {
                    system.push(SystemBlock { text });
                }
                continue;
            }
            ChatMessage::User(m) => (Role::User, user_blocks(&m.content, i)?),
            ChatMessage::Assistant(m) => (Role::Assistant, assistant_blocks(m, i)?),
            ChatMessage::Tool(m) => (
                Role::User,
                vec![ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id: crate::tool_ids::restricted(&m.tool_call_id),
                    content: vec![tool_result_content(&m.content)],
                })],
            ),
            ChatMessage::Function(_) => {
                return Err(crate::chat::legacy_function_message("bedrock", i));
            }
        };
        if blocks.is_empty() {
            return Err(ProviderError::invalid_request(
                "Bedrock needs every message to have content.",
                Some(&format!("messages[{i}].content")),
            ));
        }
        push_merged(&mut messages, role, blocks);
    }
    let tool_config = tool_config(request);
    if tool_config.is_none() {
        tool_blocks_as_text(&mut messages);
    }
    Ok(ConverseRequest {
        messages,
        system,
        inference_config: inference_config(request),
        tool_config,
    })
}

/// Bedrock refuses tool calls and results in a conversation without a `toolConfig` (no tools
/// offered, or `tool_choice: none`), where OpenAI takes them: a transcript summarised without
/// tools, say. Written as text they keep their meaning, and the model is not offered a tool the
/// client did not offer.
fn tool_blocks_as_text(messages: &mut [Message]) {
    for block in messages.iter_mut().flat_map(|m| &mut m.content) {
        let text = match block {
            ContentBlock::ToolUse(call) => {
                format!("[called tool {} with arguments {}]", call.name, call.input)
            }
            ContentBlock::ToolResult(result) => {
                let content: Vec<String> = result
                    .content
                    .iter()
                    .map(|part| match part {
                        ToolResultContent::Text(text) => text.clone(),
                        ToolResultContent::Json(json) => json.to_string(),
                    })
                    .collect();
                format!(
                    "[result of tool call {}: {}]",
                    result.tool_use_id,
                    content.join("\n")
                )
            }
            ContentBlock::Text(_) | ContentBlock::Image(_) => continue,
        };
        *block = ContentBlock::Text(text);
    }
}

/// Bedrock wants turns to alternate: a turn of the same role as the last extends it.
fn push_merged(messages: &mut Vec<Message>, role: Role, blocks: Vec<ContentBlock>) {
    match messages.last_mut() {
        Some(last) if last.role == role => {
            // Tool results lead their turn, as Bedrock requires after a tool use.
            let (results, rest): (Vec<_>, Vec<_>) = blocks
                .into_iter()
                .partition(|b| matches!(b, ContentBlock::ToolResult(_)));
            let at = last
                .content
                .iter()
                .take_while(|b| matches!(b, ContentBlock::ToolResult(_)))
                .count();
            last.content.splice(at..at, results);
            last.content.extend(rest);
        }
        _ => messages.push(Message {
            role,
            content: blocks,
        }),
    }
}

fn user_blocks(content: &Content, index: usize) -> Result<Vec<ContentBlock>, ProviderError> {
    let parts = match content {
        Content::Text(text) => return Ok(text_block(text).into_iter().collect()),
        Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = || format!("messages[{index}].content[{j}]");
        match part {
            ContentPart::Text { text } => blocks.extend(text_block(text)),
            ContentPart::ImageUrl { image_url } => {
                blocks.push(ContentBlock::Image(image(&image_url.url, &param())?));
            }
            ContentPart::Refusal { refusal } => blocks.extend(text_block(refusal)),
            ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                return Err(ProviderError::invalid_request(
                    "Bedrock's Converse API takes text and images; audio and files cannot be sent.",
                    Some(&param()),
                ));
            }
        }
    }
    Ok(blocks)
}

/// Bedrock refuses blank text blocks; an empty string simply adds nothing.
fn text_block(text: &str) -> Option<ContentBlock> {
    (!text.trim().is_empty()).then(|| ContentBlock::Text(text.to_owned()))
}

/// A `data:image/<type>;base64,...` URL as an image block; Bedrock cannot fetch URLs.
fn image(url: &str, param: &str) -> Result<ImageBlock, ProviderError> {
    let refuse = |why: &str| ProviderError::invalid_request(why, Some(param));
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(refuse(
            "Bedrock cannot fetch images by URL; send the image inline as a data:image/...;base64 URL.",
        ));
    };
    let (media_type, data) = rest
        .split_once(";base64,")
        .ok_or_else(|| refuse("an image data URL must be base64-encoded"))?;
    let format = match crate::media::image_type(media_type, data).as_str() {
        "image/png" => "png",
        "image/jpeg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err(refuse("Bedrock takes png, jpeg, gif and webp images")),
    };
    STANDARD
        .decode(data)
        .map_err(|_| refuse("the image data URL is not valid base64"))?;
    Ok(ImageBlock {
        format: format.to_owned(),
        source: ImageSource {
            bytes: data.to_owned(),
        },
    })
}

fn assistant_blocks(
    message: &AssistantMessage,
    index: usize,
) -> Result<Vec<ContentBlock>, ProviderError> {
    // A refusal in the history (a part or the `refusal` field) is what the assistant said:
    // sent as text, so that the message is not left without content.
    let mut blocks: Vec<ContentBlock> = text_block(&message.said()).into_iter().collect();
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = if call.function.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.function.arguments
        };
        let input: Value = serde_json::from_str(arguments).map_err(|_| {
            ProviderError::invalid_request(
                "tool call arguments must be a JSON document",
                Some(&format!(
                    "messages[{index}].tool_calls[{j}].function.arguments"
                )),
            )
        })?;
        blocks.push(ContentBlock::ToolUse(ToolUseBlock {
            tool_use_id: crate::tool_ids::restricted(&call.id),
            name: call.function.name.clone(),
            input,
        }));
    }
    Ok(blocks)
}

/// A tool's output: a JSON object goes as `json`, anything else as text.
fn tool_result_content(content: &Content) -> ToolResultContent {
    let text = content.text();
    match serde_json::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => ToolResultContent::Json(value),
        _ => ToolResultContent::Text(text),
    }
}

fn inference_config(request: &ChatRequest) -> InferenceConfig {
    let max_tokens = request
        .max_output_tokens()
        .or_else(|| {
            catalog::lookup(&request.model)
                .map(|info| info.max_output_tokens)
                .filter(|&max| max > 0)
        })
        .unwrap_or(FALLBACK_MAX_TOKENS);
    InferenceConfig {
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: request
            .stop
            .as_ref()
            .map(|s| s.sequences())
            .unwrap_or_default(),
    }
}

/// Tools and the choice among them. Bedrock has no `none` choice: `tool_choice: none` omits the
/// tools.
fn tool_config(request: &ChatRequest) -> Option<ToolConfig> {
    let mut tools: Vec<ToolEntry> = request
        .tools
        .iter()
        .flatten()
        .map(|Tool::Function { function }| ToolEntry {
            tool_spec: ToolSpec {
                name: function.name.clone(),
                // `description` has a minimum length of 1: an empty one is left out.
                description: function
                    .description
                    .clone()
                    .filter(|d| !d.trim().is_empty()),
                input_schema: InputSchema {
                    json: function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                },
            },
        })
        .collect();
    let mut choice = match &request.tool_choice {
        None | Some(ChatToolChoice::Mode(ToolChoiceMode::Auto)) => Some(ToolChoice::Auto(Empty {})),
        Some(ChatToolChoice::Mode(ToolChoiceMode::Required)) => Some(ToolChoice::Any(Empty {})),
        Some(ChatToolChoice::Named(named)) => Some(ToolChoice::Tool(NamedTool {
            name: named.function.name.clone(),
        })),
        Some(ChatToolChoice::Mode(ToolChoiceMode::None)) => {
            tools.clear();
            None
        }
    };
    if let Some(schema) = json_schema(request.response_format.as_ref()) {
        // Alone, the JSON tool is forced; beside the caller's tools, some tool must be called.
        choice = Some(if tools.is_empty() {
            ToolChoice::Tool(NamedTool {
                name: JSON_TOOL.to_owned(),
            })
        } else {
            ToolChoice::Any(Empty {})
        });
        tools.push(ToolEntry {
            tool_spec: ToolSpec {
                name: JSON_TOOL.to_owned(),
                description: Some("Answer with a JSON document.".to_owned()),
                input_schema: InputSchema { json: schema },
            },
        });
    }
    (!tools.is_empty()).then_some(ToolConfig {
        tools,
        tool_choice: choice,
    })
}

/// The schema a JSON-mode answer must follow, if the request asks for JSON.
fn json_schema(format: Option<&ResponseFormat>) -> Option<Value> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(json!({"type": "object"})),
        ResponseFormat::JsonSchema { json_schema } => Some(
            json_schema
                .schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
    }
}
