//! Canonical chat requests encoded as Cohere Chat v2 bodies (`POST /v2/chat`).
//! Roles, tool calls, images, JSON mode and sampling parameters are renamed to Cohere's words.

use serde_json::{Map, Value, json};

use crate::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, Message, ResponseFormat, Tool, ToolChoice,
    ToolChoiceMode, legacy_function_message, refuse_logprobs,
};
use crate::error::ProviderError;

/// Cohere-only request fields a client may set; they reach Cohere unchanged.
const PASSTHROUGH: [&str; 7] = [
    "documents",
    "citation_options",
    "safety_mode",
    "strict_tools",
    "thinking",
    "priority",
    "k",
];

/// The Cohere body for `request`, as a JSON object.
pub fn encode(request: &ChatRequest) -> Result<Map<String, Value>, ProviderError> {
    refuse_logprobs(
        request,
        "Cohere's log probabilities are not translated by this gateway",
    )?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(ProviderError::invalid_request(
            "cohere returns one choice per request: n must be 1",
            Some("n"),
        ));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    body.insert("messages".into(), Value::Array(messages));
    tools(request, &mut body);
    if let Some(format) = &request.response_format {
        response_format(format, &mut body);
    }
    sampling(request, &mut body);
    for key in PASSTHROUGH {
        if let Some(value) = request.extra.get(key) {
            body.insert(key.into(), value.clone());
        }
    }
    if let Some(k) = request.extra.get("top_k") {
        body.entry("k").or_insert_with(|| k.clone());
    }
    if request.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(body)
}

fn sampling(request: &ChatRequest, body: &mut Map<String, Value>) {
    let numbers = [
        ("temperature", request.temperature),
        ("p", request.top_p),
        ("frequency_penalty", request.frequency_penalty),
        ("presence_penalty", request.presence_penalty),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(max) = request.max_output_tokens() {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(seed) = request.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(stop) = &request.stop {
        body.insert("stop_sequences".into(), json!(stop.sequences()));
    }
}

fn tools(request: &ChatRequest, body: &mut Map<String, Value>) {
    let Some(tools) = request.tools.as_ref().filter(|t| !t.is_empty()) else {
        return;
    };
    let mut chosen: Option<&str> = None;
    match &request.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => {
            body.insert("tool_choice".into(), json!("NONE"));
        }
        // Cohere cannot name one tool: requiring a call while offering only that tool is the
        // same promise in its vocabulary.
        Some(ToolChoice::Named(named)) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
            chosen = Some(named.function.name.as_str());
        }
        Some(ToolChoice::Mode(ToolChoiceMode::Auto)) | None => {}
    }
    let encoded: Vec<Value> = tools
        .iter()
        .filter(|Tool::Function { function }| chosen.is_none_or(|name| function.name == name))
        .map(|Tool::Function { function }| {
            let mut def = Map::new();
            def.insert("name".into(), json!(function.name));
            if let Some(description) = &function.description {
                def.insert("description".into(), json!(description));
            }
            if let Some(parameters) = &function.parameters {
                def.insert("parameters".into(), parameters.clone());
            }
            json!({"type": "function", "function": def})
        })
        .collect();
    // Cohere's strictness is one switch for every tool.
    if tools
        .iter()
        .any(|Tool::Function { function }| function.strict == Some(true))
    {
        body.insert("strict_tools".into(), Value::Bool(true));
    }
    body.insert("tools".into(), Value::Array(encoded));
}

fn response_format(format: &ResponseFormat, body: &mut Map<String, Value>) {
    let encoded = match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { json_schema } => match &json_schema.schema {
            Some(schema) => json!({"type": "json_object", "json_schema": schema}),
            None => json!({"type": "json_object"}),
        },
    };
    body.insert("response_format".into(), encoded);
}

fn message(index: usize, message: &Message) -> Result<Value, ProviderError> {
    Ok(match message {
        // Cohere has no developer role; OpenAI treats it as the system prompt too.
        Message::System(m) | Message::Developer(m) => {
            json!({"role": "system", "content": m.content.text()})
        }
        Message::User(m) => json!({"role": "user", "content": user_content(index, &m.content)?}),
        Message::Assistant(m) => assistant(m),
        Message::Tool(m) => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id,
            "content": m.content.text(),
        }),
        Message::Function(_) => return Err(legacy_function_message("cohere", index)),
    })
}

fn user_content(index: usize, content: &Content) -> Result<Value, ProviderError> {
    let parts = match content {
        Content::Text(text) => return Ok(json!(text)),
        Content::Parts(parts) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match part {
            ContentPart::Text { text } => Ok(json!({"type": "text", "text": text})),
            ContentPart::ImageUrl { image_url } => {
                let mut image = Map::new();
                image.insert("url".into(), json!(image_url.url));
                if let Some(detail) = &image_url.detail {
                    image.insert("detail".into(), json!(detail));
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            _ => Err(ProviderError::invalid_request(
                "cohere accepts text and image_url content parts only",
                Some(&format!("messages[{index}].content[{j}]")),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn assistant(m: &AssistantMessage) -> Value {
    // A refusal in the history is sent as what the assistant said.
    let text = m.said();
    let mut out = Map::new();
    out.insert("role".into(), json!("assistant"));
    match m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
        Some(calls) => {
            // Text that comes with tool calls is the model's plan in Cohere's format.
            if !text.is_empty() {
                out.insert("tool_plan".into(), json!(text));
            }
            let calls: Vec<Value> = calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments}})
                })
                .collect();
            out.insert("tool_calls".into(), Value::Array(calls));
        }
        None => {
            out.insert("content".into(), json!(text));
        }
    }
    Value::Object(out)
}
