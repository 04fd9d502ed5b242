//! A canonical chat request as Gemini's `generateContent` body: roles to `user`/`model` with
//! same-role turns merged, system messages to `systemInstruction`, tools, tool choice and
//! generation settings.

use serde_json::{Map, Value, json};

use super::wire::{
    Content, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse,
    GenerateContentRequest, GenerationConfig, Part, Tool as GeminiTool, ToolConfig,
};
use super::{calls, media, schema};
use crate::chat::{
    AssistantMessage, ChatRequest, Content as MessageContent, ContentPart, Message, ResponseFormat,
    Tool, ToolChoice, ToolChoiceMode, ToolMessage, legacy_function_message,
};
use crate::error::ProviderError;

/// The Gemini body for `request`.
pub fn encode(request: &ChatRequest) -> Result<GenerateContentRequest, ProviderError> {
    let mut system = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (role, parts) = match message {
            Message::System(m) | Message::Developer(m) => {
                system.extend(text_parts(&m.content));
                continue;
            }
            Message::User(m) => ("user", user_parts(&m.content, &param)?),
            Message::Assistant(m) => ("model", assistant_parts(m, &param)?),
            Message::Tool(m) => ("user", vec![tool_result(request, i, m, &param)?]),
            Message::Function(_) => return Err(legacy_function_message("gemini", i)),
        };
        push_turn(&mut contents, role, parts);
    }
    if contents.is_empty() {
        // Gemini refuses a request without a turn; OpenAI answers one that has only
        // instructions. They become the user's turn.
        push_turn(&mut contents, "user", std::mem::take(&mut system));
    }
    Ok(GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        }),
        tools: tools(request)?,
        tool_config: request.tool_choice.as_ref().map(tool_config),
        generation_config: Some(generation_config(request)?).filter(|c| !c.is_empty()),
    })
}

/// Gemini wants turns to alternate: a turn with the role of the one before joins it.
fn push_turn(contents: &mut Vec<Content>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
        _ => contents.push(Content {
            role: Some(role.to_owned()),
            parts,
        }),
    }
}

fn text_part(text: String) -> Part {
    Part {
        text: Some(text),
        ..Part::default()
    }
}

/// The text of instruction or assistant content; Gemini refuses empty text parts.
fn text_parts(content: &MessageContent) -> Vec<Part> {
    let texts = match content {
        MessageContent::Text(text) => vec![text.clone()],
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.clone()),
                _ => None,
            })
            .collect(),
    };
    texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(text_part)
        .collect()
}

fn user_parts(content: &MessageContent, param: &str) -> Result<Vec<Part>, ProviderError> {
    let MessageContent::Parts(parts) = content else {
        return Ok(text_parts(content));
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{param}.content[{j}]");
        match part {
            ContentPart::Text { text } if text.is_empty() => {}
            ContentPart::Text { text } => out.push(text_part(text.clone())),
            ContentPart::ImageUrl { image_url } => out.push(media::image(image_url, &param)?),
            ContentPart::InputAudio { input_audio } => {
                out.push(media::audio(input_audio, &param)?);
            }
            ContentPart::File { file } => out.push(media::file(file, &param)?),
            ContentPart::Refusal { .. } => {}
        }
    }
    Ok(out)
}

fn assistant_parts(message: &AssistantMessage, param: &str) -> Result<Vec<Part>, ProviderError> {
    let mut parts = message.content.as_ref().map(text_parts).unwrap_or_default();
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let param = format!("{param}.tool_calls[{j}].function.arguments");
        let args = parse_arguments(&call.function.arguments, &param)?;
        parts.push(Part {
            function_call: Some(FunctionCall {
                name: call.function.name.clone(),
                args: Some(args),
            }),
            thought_signature: calls::signature(&call.id).map(str::to_owned),
            ..Part::default()
        });
    }
    Ok(parts)
}

/// Gemini's `args` is a JSON object; OpenAI sends it as a string, empty for no arguments.
fn parse_arguments(arguments: &str, param: &str) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str(arguments) {
        Ok(Value::Object(args)) => Ok(Value::Object(args)),
        _ => Err(ProviderError::invalid_request(
            "tool call arguments must be a JSON object",
            Some(param),
        )),
    }
}

/// A tool result as a `functionResponse`, named after the call it answers: Gemini matches
/// results to calls by function name.
fn tool_result(
    request: &ChatRequest,
    at: usize,
    message: &ToolMessage,
    param: &str,
) -> Result<Part, ProviderError> {
    let name =
        called_function(&request.messages[..at], &message.tool_call_id).ok_or_else(|| {
            ProviderError::invalid_request(
                format!(
                    "tool_call_id {:?} matches no tool call of an earlier assistant message",
                    message.tool_call_id
                ),
                Some(&format!("{param}.tool_call_id")),
            )
        })?;
    let text = message.content.text();
    // A JSON object is the function's result as is; anything else is wrapped, since Gemini
    // takes only objects.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => serde_json::json!({ "result": text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse {
            name: name.to_owned(),
            response,
        }),
        ..Part::default()
    })
}

/// The function named by the latest earlier call with this id.
fn called_function<'a>(earlier: &'a [Message], id: &str) -> Option<&'a str> {
    earlier.iter().rev().find_map(|message| match message {
        Message::Assistant(m) => m
            .tool_calls
            .iter()
            .flatten()
            .find(|call| call.id == id)
            .map(|call| call.function.name.as_str()),
        _ => None,
    })
}

fn tools(request: &ChatRequest) -> Result<Option<Vec<GeminiTool>>, ProviderError> {
    let Some(tools) = request.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut declarations = Vec::with_capacity(tools.len());
    for (i, Tool::Function { function }) in tools.iter().enumerate() {
        let param = format!("tools[{i}].function.parameters");
        let parameters = match &function.parameters {
            Some(parameters) => Some(schema::reduce(parameters, &param)?),
            None => None,
        };
        declarations.push(FunctionDeclaration {
            name: function.name.clone(),
            description: function.description.clone(),
            parameters: parameters.filter(has_properties),
        });
    }
    Ok(Some(vec![GeminiTool {
        function_declarations: declarations,
    }]))
}

/// Gemini refuses an object schema without properties; a function without any is declared
/// without `parameters`.
fn has_properties(schema: &Value) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
}

fn tool_config(choice: &ToolChoice) -> ToolConfig {
    let (mode, allowed) = match choice {
        ToolChoice::Mode(ToolChoiceMode::Auto) => ("AUTO", None),
        ToolChoice::Mode(ToolChoiceMode::None) => ("NONE", None),
        ToolChoice::Mode(ToolChoiceMode::Required) => ("ANY", None),
        ToolChoice::Named(named) => ("ANY", Some(vec![named.function.name.clone()])),
    };
    ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode: mode.to_owned(),
            allowed_function_names: allowed,
        },
    }
}

fn generation_config(request: &ChatRequest) -> Result<GenerationConfig, ProviderError> {
    let (response_mime_type, response_schema) = match &request.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json".to_owned()), None),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let param = "response_format.json_schema.schema";
            let schema = match &json_schema.schema {
                Some(schema) => Some(schema::reduce(schema, param)?),
                None => None,
            };
            (Some("application/json".to_owned()), schema)
        }
    };
    Ok(GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        max_output_tokens: request.max_output_tokens(),
        stop_sequences: request.stop.as_ref().map(|s| s.sequences()),
        candidate_count: request.n,
        seed: request.seed,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        response_mime_type,
        response_schema,
        thinking_config: thinking_config(request),
        response_logprobs: request.logprobs.filter(|&wanted| wanted),
        // Gemini takes a count only beside `responseLogprobs`, and refuses 0.
        logprobs: request
            .top_logprobs
            .filter(|&top| top > 0 && request.logprobs == Some(true)),
    })
}

/// Gemini's `thinkingConfig`: the client's own (`thinkingConfig`, or `thinking_config`, bare or
/// inside `google` as Google's OpenAI-compatible endpoint takes it from `extra_body`), else
/// OpenAI's `reasoning_effort` in the terms of the model's generation: a token budget for Gemini
/// 2.x, with the budgets Google's own OpenAI-compatible endpoint uses, and a thinking level from
/// Gemini 3 on. Pro models cannot stop thinking, and Gemini 3 Pro knows only `low` and `high`.
fn thinking_config(request: &ChatRequest) -> Option<Value> {
    if let Some(own) = request.extra.get("thinkingConfig") {
        return Some(own.clone());
    }
    let snake = request
        .extra
        .get("google")
        .and_then(|google| google.get("thinking_config"))
        .or_else(|| request.extra.get("thinking_config"));
    if let Some(Value::Object(own)) = snake {
        let camel = own
            .iter()
            .map(|(key, value)| (snake_to_camel(key), value.clone()))
            .collect();
        return Some(Value::Object(camel));
    }
    let effort = request.extra.get("reasoning_effort")?.as_str()?;
    // `models/gemini-2.5-flash` and `tunedModels/...` name the model after the slash.
    let model = request.model.rsplit('/').next().unwrap_or_default();
    let pro = model.contains("-pro");
    if model.starts_with("gemini-2") {
        let budget = match effort {
            "none" | "minimal" if pro => 128,
            "none" | "minimal" => 0,
            "low" => 1024,
            "medium" => 8192,
            _ => 24576,
        };
        Some(json!({"thinkingBudget": budget}))
    } else {
        let level = match effort {
            "none" | "minimal" | "low" if pro => "low",
            _ if pro => "high",
            "none" | "minimal" => "minimal",
            "low" => "low",
            "medium" => "medium",
            _ => "high",
        };
        Some(json!({"thinkingLevel": level}))
    }
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
