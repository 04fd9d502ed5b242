//! The built-in mock model: deterministic answers derived from the request, so the gateway runs
//! with no API key and load tests have a stand-in whose output and usage are predictable.
//!
//! One token is one whitespace-separated word; a streamed answer sends one word per chunk, and
//! reports exactly the usage the non-streamed answer does.

mod sample;

use serde_json::{Map, Value, json};

use crate::chat::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, FinishReason, FunctionCall,
    FunctionDef, FunctionType, Message, ResponseFormat, ResponseMessage, Tool, ToolCall,
    ToolCallDelta, ToolChoice, ToolChoiceMode, Usage,
};
use crate::embeddings::{
    Embedding, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, EncodingFormat, Vector,
};
use crate::error::ProviderError;

/// Dimensions of a mock embedding when the request does not ask for a size.
pub const DEFAULT_DIMENSIONS: u32 = 1536;

/// The limits of OpenAI's embeddings models, which the mock stands in for: without them one
/// request could ask the gateway for gigabytes of vectors.
const MAX_DIMENSIONS: u32 = 3072;
const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The most of the user's text an answer repeats, and the most tokens an answer has when the
/// request sets no cap: a real model's answer is bounded too.
const MAX_ECHO_BYTES: usize = 64 * 1024;
const MAX_OUTPUT_TOKENS: usize = 16_384;

/// Tokens each message costs beyond its words, as chat formats add role markers.
const MESSAGE_OVERHEAD: u64 = 3;

/// What the mock decided to answer, before it is shaped as a response or a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MockAnswer {
    /// Text pieces, one per token; empty when the answer is a tool call.
    pub pieces: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

impl MockAnswer {
    /// Decides the answer to a chat request.
    pub fn for_request(request: &ChatRequest) -> Self {
        let prompt_tokens = prompt_tokens(request);
        if let Some(function) = tool_to_call(request) {
            let call = ToolCall {
                id: format!(
                    "call_{:016x}",
                    fnv1a(function.name.as_bytes()) ^ fnv1a(last_user_text(request).as_bytes())
                ),
                kind: FunctionType::Function,
                function: FunctionCall {
                    name: function.name.clone(),
                    arguments: arguments_for(function, &last_user_text(request)).to_string(),
                },
            };
            let completion = words(&call.function.arguments).max(1);
            return MockAnswer {
                pieces: Vec::new(),
                tool_calls: vec![call],
                finish_reason: FinishReason::ToolCalls,
                usage: Usage::new(prompt_tokens, completion),
            };
        }
        let (pieces, finish_reason) = limit(split_pieces(&answer_text(request)), request);
        let usage = Usage::new(prompt_tokens, pieces.len() as u64);
        MockAnswer {
            pieces,
            tool_calls: Vec::new(),
            finish_reason,
            usage,
        }
    }

    /// The whole answer as a chat completion with `n` identical choices.
    pub fn response(&self, request: &ChatRequest, id: &str, created: u64) -> ChatResponse {
        let message = ResponseMessage {
            content: (self.tool_calls.is_empty()).then(|| self.pieces.concat()),
            tool_calls: (!self.tool_calls.is_empty()).then(|| self.tool_calls.clone()),
            ..ResponseMessage::default()
        };
        let choices = choices(request)
            .map(|index| Choice {
                index,
                message: message.clone(),
                finish_reason: Some(self.finish_reason.clone()),
                logprobs: None,
                extra: Map::new(),
            })
            .collect();
        let n = u64::from(choices_count(request));
        ChatResponse {
            id: id.to_owned(),
            object: "chat.completion".to_owned(),
            created,
            model: request.model.clone(),
            choices,
            usage: Some(Usage::new(
                self.usage.prompt_tokens,
                self.usage.completion_tokens * n,
            )),
            system_fingerprint: Some("fp_switchboard_mock".to_owned()),
            extra: Map::new(),
        }
    }

    /// The answer as stream chunks: a role chunk, one chunk per piece or tool call, a finish
    /// chunk, and a usage chunk when the client asked for one.
    pub fn chunks(&self, request: &ChatRequest, id: &str, created: u64) -> Vec<ChatChunk> {
        let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatChunk {
            id: id.to_owned(),
            object: "chat.completion.chunk".to_owned(),
            created,
            model: request.model.clone(),
            choices,
            usage,
            system_fingerprint: Some("fp_switchboard_mock".to_owned()),
            extra: Map::new(),
        };
        let each = |delta: &Delta, finish: Option<FinishReason>| {
            choices(request)
                .map(|index| ChunkChoice {
                    index,
                    delta: delta.clone(),
                    finish_reason: finish.clone(),
                    logprobs: None,
                    extra: Map::new(),
                })
                .collect::<Vec<_>>()
        };
        let mut out = Vec::with_capacity(self.pieces.len() + 3);
        let role = Delta {
            role: Some("assistant".to_owned()),
            content: self.tool_calls.is_empty().then(String::new),
            ..Delta::default()
        };
        out.push(chunk(each(&role, None), None));
        for piece in &self.pieces {
            let delta = Delta {
                content: Some(piece.clone()),
                ..Delta::default()
            };
            out.push(chunk(each(&delta, None), None));
        }
        for (index, call) in self.tool_calls.iter().enumerate() {
            let delta = Delta {
                tool_calls: Some(vec![ToolCallDelta::whole(index as u32, call.clone())]),
                ..Delta::default()
            };
            out.push(chunk(each(&delta, None), None));
        }
        out.push(chunk(
            each(&Delta::default(), Some(self.finish_reason.clone())),
            None,
        ));
        if request.wants_stream_usage() {
            let n = u64::from(choices_count(request));
            let usage = Usage::new(self.usage.prompt_tokens, self.usage.completion_tokens * n);
            out.push(chunk(Vec::new(), Some(usage)));
        }
        out
    }
}

fn choices_count(request: &ChatRequest) -> u32 {
    request.n.unwrap_or(1).max(1)
}

fn choices(request: &ChatRequest) -> std::ops::Range<u32> {
    0..choices_count(request)
}

/// Refuses what OpenAI's embeddings models refuse: more than 2048 inputs, or a size outside
/// 1..=3072 dimensions.
pub fn check_embeddings(request: &EmbeddingsRequest) -> Result<(), ProviderError> {
    if let Some(dimensions) = request
        .dimensions
        .filter(|d| !(1..=MAX_DIMENSIONS).contains(d))
    {
        return Err(ProviderError::invalid_request(
            format!("'dimensions' must be between 1 and {MAX_DIMENSIONS}; got {dimensions}."),
            Some("dimensions"),
        ));
    }
    if request.input.len() > MAX_EMBEDDING_INPUTS {
        return Err(ProviderError::invalid_request(
            format!(
                "'input' may hold at most {MAX_EMBEDDING_INPUTS} items; got {}.",
                request.input.len()
            ),
            Some("input"),
        ));
    }
    Ok(())
}

/// Deterministic embeddings: each input seeds a generator, the vector is normalised to length 1.
pub fn embeddings(request: &EmbeddingsRequest) -> EmbeddingsResponse {
    let dimensions = request.dimensions.unwrap_or(DEFAULT_DIMENSIONS) as usize;
    let format = request.encoding_format.unwrap_or(EncodingFormat::Float);
    let items = request.input.items();
    let tokens: u64 = items.iter().map(|t| words(t).max(1)).sum();
    let data = items
        .iter()
        .enumerate()
        .map(|(index, text)| Embedding {
            object: "embedding".to_owned(),
            index: index as u32,
            embedding: Vector::encode(unit_vector(text, dimensions), format),
        })
        .collect();
    EmbeddingsResponse {
        object: "list".to_owned(),
        data,
        model: request.model.clone(),
        usage: EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
        extra: Map::new(),
    }
}

fn unit_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = fnv1a(text.as_bytes()) | 1;
    let mut values: Vec<f32> = (0..dimensions)
        .map(|_| {
            // xorshift64*: cheap, deterministic, good enough spread for a stand-in.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        values.iter_mut().for_each(|v| *v /= norm);
    }
    values
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn prompt_tokens(request: &ChatRequest) -> u64 {
    request
        .messages
        .iter()
        .map(|m| MESSAGE_OVERHEAD + words(&message_text(m)))
        .sum()
}

fn message_text(message: &Message) -> String {
    match message {
        Message::System(m) | Message::Developer(m) => m.content.text(),
        Message::User(m) => m.content.text(),
        Message::Assistant(m) => m.content.as_ref().map(|c| c.text()).unwrap_or_default(),
        Message::Tool(m) => m.content.text(),
        Message::Function(m) => m.content.as_ref().map(|c| c.text()).unwrap_or_default(),
    }
}

fn last_user_text(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::User(u) => Some(u.content.text()),
            _ => None,
        })
        .unwrap_or_default()
}

fn answer_text(request: &ChatRequest) -> String {
    // Structured output: JSON that parses, as the client's SDK (`.parse()`, LangChain's
    // `with_structured_output`, instructor) requires; pretty-printed so a stream has pieces.
    let said = last_user_text(request);
    let said = said.trim();
    let short = &said[..said.floor_char_boundary(64)];
    match &request.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema.schema.clone().unwrap_or(Value::Bool(true));
            let value = match sample::sample(&schema, short) {
                // `true` (no schema) gives a string; the answer is still an object.
                Value::String(text) if json_schema.schema.is_none() => json!({ "answer": text }),
                value => value,
            };
            return serde_json::to_string_pretty(&value).unwrap_or_default();
        }
        Some(ResponseFormat::JsonObject) => {
            let value = json!({ "answer": format!("Mock answer to: {short}") });
            return serde_json::to_string_pretty(&value).unwrap_or_default();
        }
        _ => {}
    }
    match request.messages.last() {
        Some(Message::Tool(result)) => format!("The tool returned: {}", result.content.text()),
        _ => {
            let said = last_user_text(request);
            let said = said.trim();
            if said.is_empty() {
                "Hello from the Switchboard mock model.".to_owned()
            } else {
                let end = said.floor_char_boundary(MAX_ECHO_BYTES);
                format!("Mock answer to: {}", &said[..end])
            }
        }
    }
}

/// Splits text into pieces that concatenate back to it: each word with its leading space.
fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_whitespace() && current.chars().any(|x| !x.is_whitespace()) {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Applies stop sequences and the output cap, as a real model would.
fn limit(mut pieces: Vec<String>, request: &ChatRequest) -> (Vec<String>, FinishReason) {
    if let Some(stop) = &request.stop {
        let text = pieces.concat();
        if let Some(cut) = stop
            .sequences()
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            pieces = split_pieces(&text[..cut]);
        }
    }
    let max = request
        .max_output_tokens()
        .map_or(MAX_OUTPUT_TOKENS, |max| {
            (max as usize).min(MAX_OUTPUT_TOKENS)
        });
    if pieces.len() > max {
        pieces.truncate(max);
        (pieces, FinishReason::Length)
    } else {
        (pieces, FinishReason::Stop)
    }
}

/// The tool the mock calls: only when the last message is the user's and tools are allowed.
fn tool_to_call(request: &ChatRequest) -> Option<&FunctionDef> {
    let tools = request.tools.as_ref()?;
    if !matches!(request.messages.last(), Some(Message::User(_))) {
        return None;
    }
    let find = |name: &str| {
        tools
            .iter()
            .find_map(|Tool::Function { function }| (function.name == name).then_some(function))
    };
    match &request.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => None,
        Some(ToolChoice::Named(named)) => find(&named.function.name),
        _ => tools.first().map(|Tool::Function { function }| function),
    }
}

/// Arguments that satisfy the required properties of the tool's schema.
fn arguments_for(function: &FunctionDef, user_text: &str) -> Value {
    let params = function.parameters.as_ref();
    let properties = params
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object);
    let required = params
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut args = Map::new();
    for name in required.iter().filter_map(Value::as_str) {
        let kind = properties
            .and_then(|p| p.get(name))
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match kind {
            "integer" | "number" => json!(0),
            "boolean" => json!(false),
            "array" => json!([]),
            "object" => json!({}),
            _ => json!(user_text),
        };
        args.insert(name.to_owned(), value);
    }
    Value::Object(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn streamed_answer_matches_plain_answer_and_usage() {
        let req = request(json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "tell me about switchboards"}]
        }));
        let answer = MockAnswer::for_request(&req);
        let plain = answer.response(&req, "id", 1);
        let chunks = answer.chunks(&req, "id", 1);
        assert!(chunks.len() > 3, "several chunks");
        assert_eq!(
            chunks[0].choices[0].delta.role.as_deref(),
            Some("assistant")
        );
        let streamed: String = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.delta.content.clone())
            .collect();
        assert_eq!(Some(streamed), plain.choices[0].message.content);
        assert_eq!(chunks.last().unwrap().usage, plain.usage);
        assert_eq!(
            plain.choices[0].message.content.as_deref(),
            Some("Mock answer to: tell me about switchboards")
        );
    }

    #[test]
    fn tool_call_then_tool_result() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
        let req = request(json!({"model": "m", "tools": tools,
            "messages": [{"role": "user", "content": "Paris"}]}));
        let answer = MockAnswer::for_request(&req);
        assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            answer.tool_calls[0].function.arguments,
            r#"{"city":"Paris"}"#
        );
        let follow_up = request(json!({"model": "m", "tools": tools, "messages": [
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": answer.tool_calls[0].id, "type": "function", "function": answer.tool_calls[0].function}]},
            {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": "sunny"}]}));
        let text = MockAnswer::for_request(&follow_up).pieces.concat();
        assert_eq!(text, "The tool returned: sunny");
    }

    #[test]
    fn structured_output_is_json_that_fits_the_schema_plain_and_streamed() {
        let schema = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"], "additionalProperties": false});
        let req = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "strict": true, "schema": schema}}}),
        );
        let answer = MockAnswer::for_request(&req);
        let text = answer.pieces.concat();
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value, json!({"city": "Weather?", "days": 1}));
        assert!(answer.pieces.len() > 1, "streamed in pieces");
        let chunks = answer.chunks(&req, "id", 0);
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c.choices.first().and_then(|c| c.delta.content.clone()))
            .collect();
        assert_eq!(streamed, text);

        let req = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "response_format": {"type": "json_object"}}),
        );
        let text = MockAnswer::for_request(&req).pieces.concat();
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert!(value.is_object(), "{value}");
    }

    #[test]
    fn max_tokens_and_stop_are_honoured() {
        let req = request(json!({"model": "m", "max_tokens": 2,
            "messages": [{"role": "user", "content": "one two three four"}]}));
        let answer = MockAnswer::for_request(&req);
        assert_eq!(
            (answer.pieces.len(), answer.finish_reason.clone()),
            (2, FinishReason::Length)
        );
        let req = request(json!({"model": "m", "stop": "three",
            "messages": [{"role": "user", "content": "one two three four"}]}));
        assert_eq!(
            MockAnswer::for_request(&req).pieces.concat(),
            "Mock answer to: one two "
        );
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let req: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", "b"], "dimensions": 8}))
                .unwrap();
        let one = embeddings(&req);
        assert_eq!(one, embeddings(&req));
        let Vector::Float(v) = &one.data[0].embedding else {
            panic!("floats")
        };
        assert_eq!(v.len(), 8);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_ne!(one.data[0].embedding, one.data[1].embedding);
    }
}
