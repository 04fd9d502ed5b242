//! Cohere Chat v2 answers decoded into canonical completions, with the finish reasons, usage and
//! error bodies that streams share.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::chat::{
    ChatResponse, Choice, FinishReason, FunctionCall, FunctionType, PromptTokensDetails,
    ResponseMessage, ToolCall, Usage,
};
use crate::error::ProviderError;

/// `POST /v2/chat` non-streamed answer.
#[derive(Deserialize)]
struct Answer {
    id: String,
    #[serde(default)]
    finish_reason: Option<String>,
    message: AnswerMessage,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Vec<ContentItem>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    /// What the model says it will do before its tool calls: its text, as OpenAI models write
    /// it beside `tool_calls` (and what the request side sends back as `tool_plan`).
    #[serde(default)]
    tool_plan: Option<String>,
}

/// One item of `message.content`: text, or a reasoning model's thinking.
#[derive(Deserialize)]
struct ContentItem {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

/// A tool call as Cohere writes it; `arguments` is a JSON document in a string, as OpenAI's.
#[derive(Deserialize)]
pub(super) struct WireToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<WireFunction>,
}

#[derive(Deserialize)]
pub(super) struct WireFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// `usage`: what was billed and what the model actually processed.
#[derive(Deserialize, Default)]
pub(super) struct CohereUsage {
    #[serde(default)]
    billed_units: Option<Units>,
    #[serde(default)]
    tokens: Option<Units>,
    #[serde(default)]
    cached_tokens: Option<f64>,
}

/// Cohere's SDKs type these counts as numbers that may carry a fraction: read them as floats.
#[derive(Deserialize, Default)]
struct Units {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl CohereUsage {
    /// Canonical usage: `tokens` counts what the model saw; `billed_units` is the fallback.
    pub fn canonical(&self) -> Usage {
        let pick = |get: fn(&Units) -> Option<f64>| {
            self.tokens
                .as_ref()
                .and_then(get)
                .or_else(|| self.billed_units.as_ref().and_then(get))
                .map_or(0, count)
        };
        let mut usage = Usage::new(pick(|u| u.input_tokens), pick(|u| u.output_tokens));
        if let Some(cached) = self.cached_tokens {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: Some(count(cached)),
                ..PromptTokensDetails::default()
            });
        }
        usage
    }
}

fn count(value: f64) -> u64 {
    // Counts are whole in practice; negative or absurd values clamp rather than wrap.
    value.round().clamp(0.0, u64::MAX as f64) as u64
}

/// OpenAI's finish reason for Cohere's. `ERROR` and `TIMEOUT` mean generation failed part way:
/// the answer is an error, so a client never takes cut text for a finished answer (and a try
/// that has sent nothing yet can be retried).
pub(super) fn finish_reason(reason: &str) -> Result<FinishReason, ProviderError> {
    Ok(match reason.to_ascii_uppercase().as_str() {
        "COMPLETE" | "STOP_SEQUENCE" => FinishReason::Stop,
        // v1's ERROR_LIMIT: the context window filled up.
        "MAX_TOKENS" | "ERROR_LIMIT" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        // Safety stops: v2's content filter and v1's toxicity error.
        "CONTENT_BLOCKED" | "ERROR_TOXIC" => FinishReason::ContentFilter,
        "ERROR" | "TIMEOUT" => {
            return Err(ProviderError::bad_response(format!(
                "cohere stopped generating with finish_reason {reason}"
            )));
        }
        _ => FinishReason::Other(reason.to_ascii_lowercase()),
    })
}

/// Decodes a non-streamed answer; `created` stamps it, since Cohere sends no time.
pub fn decode(body: &[u8], created: u64) -> Result<ChatResponse, ProviderError> {
    let answer: Answer = serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    let mut text = answer.message.tool_plan.clone().unwrap_or_default();
    let mut thinking = String::new();
    for item in &answer.message.content {
        match item.kind.as_str() {
            "text" => text.push_str(item.text.as_deref().unwrap_or_default()),
            "thinking" => thinking.push_str(item.thinking.as_deref().unwrap_or_default()),
            _ => {}
        }
    }
    let tool_calls: Vec<ToolCall> = answer
        .message
        .tool_calls
        .into_iter()
        .map(tool_call)
        .collect::<Result<_, _>>()?;
    let mut extra = Map::new();
    if !thinking.is_empty() {
        // The name DeepSeek, vLLM and others use for reasoning beside an OpenAI answer.
        extra.insert("reasoning_content".into(), Value::String(thinking));
    }
    let message = ResponseMessage {
        content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        extra,
        ..ResponseMessage::default()
    };
    Ok(ChatResponse {
        id: answer.id,
        object: "chat.completion".into(),
        created,
        // Cohere's answer does not name the model; the gateway fills in the one it asked for.
        model: String::new(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: answer
                .finish_reason
                .as_deref()
                .map(finish_reason)
                .transpose()?,
            logprobs: None,
            extra: Map::new(),
        }],
        usage: answer.usage.map(|u| u.canonical()),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

fn tool_call(call: WireToolCall) -> Result<ToolCall, ProviderError> {
    let function = call
        .function
        .ok_or_else(|| ProviderError::bad_response("a tool call without a function"))?;
    Ok(ToolCall {
        id: call.id.unwrap_or_default(),
        kind: FunctionType::Function,
        function: FunctionCall {
            name: function.name.unwrap_or_default(),
            arguments: function.arguments.unwrap_or_default(),
        },
    })
}

/// Cohere's error body: `{"message": ...}`, sometimes with an `id`.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// Translates an error status and body into OpenAI's vocabulary.
pub fn error(status: u16, body: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| format!("cohere returned HTTP {status}"));
    // Cohere answers 498 for an invalid or expired key.
    let status = if status == 498 { 401 } else { status };
    let code = match status {
        401 => Some("invalid_api_key"),
        404 => Some("model_not_found"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
    };
    ProviderError {
        code: code.map(str::to_owned),
        ..ProviderError::from_status(status, message)
    }
}
