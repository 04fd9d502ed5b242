//! A canonical chat request as an Anthropic Messages request: system messages lifted out, roles
//! merged into alternating turns, tools, images, JSON mode and sampling parameters translated.
//!
//! Anthropic has no `response_format`; see [`JSON_TOOL`] for how JSON mode is expressed.

use serde_json::{Value, json};

use crate::catalog;
use crate::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, Message, ResponseFormat, Tool, ToolChoice,
    ToolChoiceMode, ToolMessage, legacy_function_message, refuse_logprobs,
};
use crate::error::ProviderError;

use super::thinking;
use super::wire::{
    Block, MessageContent, MessagesRequest, Metadata, Role, Source, TextBlock, ToolResultContent,
    WireMessage, WireTool, WireToolChoice,
};

/// The tool a `json_schema` answer is forced through when the client brought no tools of its own.
/// A forced tool call is the one way Anthropic guarantees JSON matching a schema on every model;
/// the call's `input` comes back as the message content. With client tools present the schema is
/// given as a system instruction instead, so the client's own tool choice stays intact; so it is
/// with extended thinking on, which Anthropic refuses to combine with a forced tool.
pub const JSON_TOOL: &str = "switchboard_json_response";

/// Output cap when the client set none and the catalog does not know the model.
const FALLBACK_MAX_TOKENS: u32 = 4096;

const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

/// Builds the Messages request body for `request`.
pub fn encode(request: &ChatRequest) -> Result<MessagesRequest<'_>, ProviderError> {
    reject_unexpressible(request)?;
    let (mut system, messages) = conversation(&request.messages)?;
    let (tools, tool_choice, instruction) = tools_and_format(request);
    if let Some(instruction) = instruction {
        system.push(TextBlock::new(instruction));
    }
    Ok(MessagesRequest {
        model: &request.model,
        max_tokens: max_tokens(request),
        messages,
        system,
        stop_sequences: request.stop.as_ref().map(|s| s.sequences()),
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.extra.get("top_k"),
        tools,
        tool_choice,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
        thinking: request.extra.get("thinking"),
        stream: request.is_stream().then_some(true),
    })
}

/// The client's cap, else the model's documented output limit, else a safe default: Anthropic
/// requires `max_tokens` where OpenAI does not.
fn max_tokens(request: &ChatRequest) -> u32 {
    request
        .max_output_tokens()
        .or_else(|| catalog::lookup(&request.model).map(|m| m.max_output_tokens))
        .filter(|&n| n > 0)
        .unwrap_or(FALLBACK_MAX_TOKENS)
}

fn reject_unexpressible(request: &ChatRequest) -> Result<(), ProviderError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(ProviderError::invalid_request(
            "Anthropic returns one choice per request: n must be 1",
            Some("n"),
        ));
    }
    refuse_logprobs(request, "Anthropic does not return log probabilities")
}

/// System and developer messages become `system`; the rest become alternating turns, with tool
/// results as `user` turns of `tool_result` blocks.
fn conversation(messages: &[Message]) -> Result<(Vec<TextBlock>, Vec<WireMessage>), ProviderError> {
    let mut system = Vec::new();
    let mut turns: Vec<(Role, Vec<Block>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        let (role, blocks) = match message {
            Message::System(m) | Message::Developer(m) => {
                let text = m.content.text();
                if !text.is_empty() {
                    system.push(TextBlock::new(text));
                }
                continue;
            }
            Message::User(m) => (Role::User, content_blocks(&m.content, &at("content"))?),
            Message::Assistant(m) => (Role::Assistant, assistant_blocks(m, &at)?),
            Message::Tool(m) => (Role::User, vec![tool_result(m, &at("content"))?]),
            Message::Function(_) => return Err(legacy_function_message("anthropic", i)),
        };
        match turns.last_mut() {
            Some((last, merged)) if *last == role => merged.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .filter(|(_, blocks)| !blocks.is_empty())
        .map(|(role, blocks)| WireMessage {
            role,
            content: compact(blocks),
        })
        .collect();
    Ok((system, messages))
}

fn compact(mut blocks: Vec<Block>) -> MessageContent {
    match blocks.as_mut_slice() {
        [Block::Text { text }] => MessageContent::Text(std::mem::take(text)),
        _ => MessageContent::Blocks(blocks),
    }
}

/// Text, images and PDFs of one message. Anthropic rejects empty text blocks, so none are made.
fn content_blocks(content: &Content, param: &str) -> Result<Vec<Block>, ProviderError> {
    let parts = match content {
        Content::Text(text) => return Ok(text_block(text.clone()).into_iter().collect()),
        Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{param}[{j}]");
        let block = match part {
            ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                text_block(text.clone())
            }
            ContentPart::ImageUrl { image_url } => Some(Block::Image {
                source: image_source(&image_url.url, &at)?,
            }),
            ContentPart::File { file } => Some(document(file, &at)?),
            ContentPart::InputAudio { .. } => {
                return Err(ProviderError::invalid_request(
                    "Anthropic does not accept audio input",
                    Some(&at),
                ));
            }
        };
        blocks.extend(block);
    }
    Ok(blocks)
}

fn text_block(text: String) -> Option<Block> {
    (!text.is_empty()).then_some(Block::Text { text })
}

/// A `data:` URL becomes a base64 source, an `http(s)` URL a url source.
fn image_source(url: &str, param: &str) -> Result<Source, ProviderError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Source::Url {
            url: url.to_owned(),
        });
    }
    let source = data_url(url).ok_or_else(|| {
        ProviderError::invalid_request(
            "an image must be an http(s) URL or a base64 data: URL",
            Some(&format!("{param}.image_url.url")),
        )
    })?;
    Ok(match source {
        Source::Base64 { media_type, data } => Source::Base64 {
            media_type: crate::media::image_type(&media_type, &data),
            data,
        },
        other => other,
    })
}

/// `data:<media type>;base64,<data>`.
fn data_url(url: &str) -> Option<Source> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    (!media_type.is_empty()).then(|| Source::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

/// An OpenAI `file` part holding inline PDF data becomes a `document` block.
fn document(file: &Value, param: &str) -> Result<Block, ProviderError> {
    let source = file
        .get("file_data")
        .and_then(Value::as_str)
        .and_then(data_url)
        .filter(
            |s| matches!(s, Source::Base64 { media_type, .. } if media_type == "application/pdf"),
        );
    source.map(|source| Block::Document { source }).ok_or_else(|| {
        ProviderError::invalid_request(
            "Anthropic accepts files as inline PDF data (file.file_data as a data:application/pdf;base64 URL)",
            Some(param),
        )
    })
}

fn assistant_blocks(
    message: &AssistantMessage,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<Block>, ProviderError> {
    let mut blocks = thinking::from_client(message, &at(thinking::THINKING_BLOCKS))?;
    if let Some(content) = &message.content {
        blocks.extend(content_blocks(content, &at("content"))?);
    }
    blocks.extend(message.refusal.clone().and_then(text_block));
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.trim();
        let input = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                ProviderError::invalid_request(
                    format!("tool call arguments are not JSON: {e}"),
                    Some(&at(&format!("tool_calls[{j}].function.arguments"))),
                )
            })?
        };
        blocks.push(Block::ToolUse {
            id: crate::tool_ids::restricted(&call.id),
            name: call.function.name.clone(),
            input,
        });
    }
    Ok(blocks)
}

fn tool_result(message: &ToolMessage, param: &str) -> Result<Block, ProviderError> {
    let content = match &message.content {
        Content::Text(text) => ToolResultContent::Text(text.clone()),
        parts => ToolResultContent::Blocks(content_blocks(parts, param)?),
    };
    Ok(Block::ToolResult {
        tool_use_id: crate::tool_ids::restricted(&message.tool_call_id),
        content,
    })
}

type ToolsAndFormat = (Vec<WireTool>, Option<WireToolChoice>, Option<String>);

/// Client tools and tool choice, plus what JSON mode adds: the forced [`JSON_TOOL`], or a
/// system instruction.
fn tools_and_format(request: &ChatRequest) -> ToolsAndFormat {
    let tools: Vec<WireTool> = request
        .tools
        .iter()
        .flatten()
        .map(|Tool::Function { function }| WireTool {
            name: function.name.clone(),
            description: function.description.clone(),
            input_schema: function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        })
        .collect();
    let no_parallel = (request.parallel_tool_calls == Some(false)).then_some(true);
    match &request.response_format {
        Some(ResponseFormat::JsonSchema { json_schema })
            if tools.is_empty() && !thinks(request) =>
        {
            let tool =
                WireTool {
                    name: JSON_TOOL.to_owned(),
                    description: Some(json_schema.description.clone().unwrap_or_else(|| {
                        format!("Give the answer as {} JSON.", json_schema.name)
                    })),
                    input_schema: json_schema
                        .schema
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object"})),
                };
            let choice = WireToolChoice::Tool {
                name: JSON_TOOL.to_owned(),
                disable_parallel_tool_use: Some(true),
            };
            (vec![tool], Some(choice), None)
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema.schema.clone().unwrap_or_else(|| json!({}));
            let instruction = format!(
                "When you give your final answer rather than calling a tool, respond with a single JSON value matching this JSON schema and nothing else: {schema}"
            );
            let choice = tool_choice(request.tool_choice.as_ref(), no_parallel);
            (tools, choice, Some(instruction))
        }
        Some(ResponseFormat::JsonObject) => {
            let choice = tool_choice(request.tool_choice.as_ref(), no_parallel);
            (tools, choice, Some(JSON_OBJECT_INSTRUCTION.to_owned()))
        }
        Some(ResponseFormat::Text) | None if tools.is_empty() => (tools, None, None),
        Some(ResponseFormat::Text) | None => {
            let choice = tool_choice(request.tool_choice.as_ref(), no_parallel);
            (tools, choice, None)
        }
    }
}

/// Whether the request turns on extended thinking (Anthropic's `thinking`, passed as an extra
/// field): `enabled` or `adaptive`, anything but `disabled`.
fn thinks(request: &ChatRequest) -> bool {
    request
        .extra
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|kind| kind != "disabled")
}

/// OpenAI's `tool_choice` and `parallel_tool_calls: false` as one Anthropic `tool_choice`.
fn tool_choice(choice: Option<&ToolChoice>, no_parallel: Option<bool>) -> Option<WireToolChoice> {
    let disable_parallel_tool_use = no_parallel;
    match choice {
        None if no_parallel.is_none() => None,
        None | Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => Some(WireToolChoice::Auto {
            disable_parallel_tool_use,
        }),
        // `none` takes no options: with no tool call there is nothing to parallelize.
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => Some(WireToolChoice::None),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(WireToolChoice::Any {
            disable_parallel_tool_use,
        }),
        Some(ToolChoice::Named(named)) => Some(WireToolChoice::Tool {
            name: named.function.name.clone(),
            disable_parallel_tool_use,
        }),
    }
}
