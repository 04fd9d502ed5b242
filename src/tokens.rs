//! Token counts before a provider reports them: prompts counted with OpenAI's `o200k_base`
//! tokenizer (tiktoken) the way OpenAI counts chat messages, for reservations against quotas.
//!
//! The tokenizer takes about 150 ms to load, so [`warm_up`] loads it on a spare thread at start
//! when some key has a token or dollar limit; requests never pay for it.

use switchboard_providers::chat::{ChatRequest, Content, ContentPart, Message};
use switchboard_providers::embeddings::EmbeddingsRequest;
use tiktoken_rs::CoreBPE;

/// Tokens OpenAI adds around every message (`<|start|>role ... <|end|>`).
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;
/// An image at low detail; high detail is billed per 512-pixel tile, typically 4 tiles + base.
const IMAGE_LOW: u64 = 85;
const IMAGE_HIGH: u64 = 765;

fn tokenizer() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

/// Loads the tokenizer in the background so that the first request does not wait for it.
pub fn warm_up() {
    std::thread::spawn(|| {
        tokenizer();
    });
}

/// Tokens in a text.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tokenizer().encode_ordinary(text).len() as u64
}

/// Tokens of a chat request's prompt: messages, tool definitions and the reply priming.
pub fn prompt(request: &ChatRequest) -> u64 {
    let messages: u64 = request.messages.iter().map(message).sum();
    let tools = request
        .tools
        .as_ref()
        .and_then(|tools| serde_json::to_string(tools).ok())
        .map_or(0, |json| count(&json));
    messages + tools + REPLY_PRIMING
}

fn message(message: &Message) -> u64 {
    let role = count(message.role());
    let body = match message {
        Message::System(m) | Message::Developer(m) => content(&m.content) + name(&m.name),
        Message::User(m) => content(&m.content) + name(&m.name),
        Message::Assistant(m) => {
            let calls = m.tool_calls.iter().flatten().map(|call| {
                count(&call.function.name) + count(&call.function.arguments) + PER_MESSAGE
            });
            m.content.as_ref().map_or(0, content) + calls.sum::<u64>() + name(&m.name)
        }
        Message::Tool(m) => content(&m.content),
        Message::Function(m) => m.content.as_ref().map_or(0, content) + count(&m.name),
    };
    PER_MESSAGE + role + body
}

fn name(name: &Option<String>) -> u64 {
    name.as_deref().map_or(0, |n| count(n) + 1)
}

fn content(content: &Content) -> u64 {
    match content {
        Content::Text(text) => count(text),
        Content::Parts(parts) => parts.iter().map(part).sum(),
    }
}

fn part(part: &ContentPart) -> u64 {
    match part {
        ContentPart::Text { text } => count(text),
        ContentPart::Refusal { refusal } => count(refusal),
        ContentPart::ImageUrl { image_url } if image_url.detail.as_deref() == Some("low") => {
            IMAGE_LOW
        }
        ContentPart::ImageUrl { .. } => IMAGE_HIGH,
        // Audio and files are billed by the provider's own measure; their JSON is a floor.
        ContentPart::InputAudio { input_audio: value } | ContentPart::File { file: value } => {
            count(&value.to_string())
        }
    }
}

/// Tokens of an embeddings request's input.
pub fn embeddings(request: &EmbeddingsRequest) -> u64 {
    use switchboard_providers::embeddings::EmbeddingInput;
    match &request.input {
        EmbeddingInput::Text(text) => count(text),
        EmbeddingInput::Texts(texts) => texts.iter().map(|t| count(t)).sum(),
        EmbeddingInput::Tokens(tokens) => tokens.len() as u64,
        EmbeddingInput::TokenBatches(batches) => batches.iter().map(|b| b.len() as u64).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ChatRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn counts_messages_like_openai() {
        // OpenAI's cookbook: 3 per message + role + content, + 3 to prime the reply.
        let one = request(serde_json::json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]
        }));
        assert_eq!(prompt(&one), 3 + 1 + 1 + 3);
        let two = request(serde_json::json!({
            "model": "gpt-4o", "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello"}
            ]
        }));
        assert_eq!(prompt(&two), prompt(&one) + 3 + 1 + count("You are terse."));
    }

    #[test]
    fn tools_and_images_count() {
        let plain = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this"}]}]
        }));
        let image = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}
            ]}]
        }));
        assert_eq!(prompt(&image), prompt(&plain) + IMAGE_LOW);
        let tools = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this"}]}],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        }));
        assert!(prompt(&tools) > prompt(&plain) + 5);
    }

    #[test]
    fn embeddings_inputs_count_per_item() {
        let texts: EmbeddingsRequest = serde_json::from_value(
            serde_json::json!({"model": "e", "input": ["hello", "hello world"]}),
        )
        .unwrap();
        assert_eq!(embeddings(&texts), 3);
        let tokens: EmbeddingsRequest =
            serde_json::from_value(serde_json::json!({"model": "e", "input": [1, 2, 3, 4]}))
                .unwrap();
        assert_eq!(embeddings(&tokens), 4);
    }
}
