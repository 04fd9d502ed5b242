//! Token counts before a provider reports them: prompts counted with OpenAI's `o200k_base`
//! tokenizer the way OpenAI counts chat messages, for reservations against quotas.
//!
//! The counter is tiktoken's algorithm on a leaner vocabulary ([`bpe`]) and a hand-written,
//! linear-time pre-tokenizer ([`split`]); tests check it against tiktoken count for count. Its work is
//! bounded: a run of one kind of character is merged in slices of [`PIECE_LIMIT`] bytes, and a
//! text beyond [`EXACT_LIMIT`] is counted on that much and the rest estimated at the same rate.

mod bpe;
mod split;

use switchboard_providers::chat::{ChatRequest, Content, ContentPart, Message};
use switchboard_providers::embeddings::EmbeddingsRequest;

/// Tokens OpenAI adds around every message (`<|start|>role ... <|end|>`).
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;
/// An image at low detail; high detail is billed per 512-pixel tile, typically 4 tiles + base.
const IMAGE_LOW: u64 = 85;
const IMAGE_HIGH: u64 = 765;

/// The longest text counted exactly; beyond it the count is an estimate, so that a 32 MiB
/// prompt costs the counter about as much as a 1 MiB one.
pub const EXACT_LIMIT: usize = 1 << 20;
/// The longest piece merged whole. Longer pieces are runs of one kind of character (spaces,
/// letters); merging them in slices may differ from tiktoken by a token per slice.
pub const PIECE_LIMIT: usize = 4096;

/// Builds the vocabulary (a few milliseconds) at start, so that the first request does not.
pub fn warm_up() {
    bpe::warm_up();
}

/// Tokens in a text. Never fails a request: should the counter ever fail, the text is estimated
/// at four bytes a token (the panic is logged as a bug), and the request goes on and is charged.
pub fn count(text: &str) -> u64 {
    std::panic::catch_unwind(|| bounded(text)).unwrap_or_else(|_| text.len().div_ceil(4) as u64)
}

fn bounded(text: &str) -> u64 {
    if text.len() <= EXACT_LIMIT {
        return exact(text);
    }
    let head = &text[..text.floor_char_boundary(EXACT_LIMIT)];
    let counted = u128::from(exact(head));
    // The same tokens per byte for the rest, rounded up: a reservation errs on the high side.
    let estimate = (counted * text.len() as u128).div_ceil(head.len() as u128);
    u64::try_from(estimate).unwrap_or(u64::MAX)
}

fn exact(text: &str) -> u64 {
    split::pieces(text).map(piece).sum()
}

fn piece(mut text: &str) -> u64 {
    let mut tokens = 0;
    while text.len() > PIECE_LIMIT {
        let (slice, rest) = text.split_at(text.floor_char_boundary(PIECE_LIMIT));
        tokens += bpe::count(slice.as_bytes()) as u64;
        text = rest;
    }
    tokens + bpe::count(text.as_bytes()) as u64
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

    /// Texts of every kind the pre-tokenizer and the merge distinguish.
    fn samples() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            "hello",
            "hello world",
            "  leading and trailing  ",
            "a\n\n  b\r\n\tc",
            "It's 2026; we're testing 1234567 numbers, ÜNICODE, Straße, 東京, 😀 and ﷽.",
            "fn main() { println!(\"{}\", x /* y */); }\n    return;\u{3000}\u{3000}x",
            "THE QUICK BROWN FOX'S TAIL'LL WAG'D",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "https://example.com/path?q=1&r=2#frag",
            "\u{0301}\u{0301}a\u{0301}",
        ]
        .map(str::to_owned)
        .into();
        for file in [
            "README.md",
            "ARCHITECTURE.md",
            "docs/configuration.md",
            "src/tokens/bpe.rs",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            texts.push(std::fs::read_to_string(path).unwrap());
        }
        texts
    }

    fn agrees_with_tiktoken(text: &str) {
        let reference = tiktoken_rs::o200k_base_singleton();
        assert_eq!(
            count(text),
            reference.encode_ordinary(text).len() as u64,
            "{text:?}"
        );
    }

    #[test]
    fn counts_exactly_as_tiktoken() {
        for text in samples() {
            agrees_with_tiktoken(&text);
        }
    }

    /// Random texts over an alphabet that exercises every branch of the pattern and its edges:
    /// runs of mixed whitespace before words, apostrophes, digits, marks and case changes.
    #[test]
    fn random_texts_count_exactly_as_tiktoken() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> =
            " \t\n\r\u{3000}\u{a0}aZéÉ'sStTrReEvVlLmMdDſ1৩Ⅻ½.!/\u{0301}東ǅʰ😀-_\""
                .chars()
                .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261206);
        for _ in 0..20_000 {
            let length = rng.random_range(0..40);
            let text: String = (0..length)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            agrees_with_tiktoken(&text);
        }
    }

    /// Random texts over all of Unicode, mixed with spaces and apostrophes: the general
    /// categories the splitter reads agree with tiktoken's regex tables.
    #[test]
    fn random_unicode_counts_exactly_as_tiktoken() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        for _ in 0..5_000 {
            let length = rng.random_range(0..24);
            let text: String = (0..length)
                .map(|_| match rng.random_range(0..4) {
                    0 => [' ', '\'', '\n', 's'][rng.random_range(0..4)],
                    1 => char::from_u32(rng.random_range(0..0x3000)).unwrap_or('x'),
                    _ => char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('x'),
                })
                .collect();
            agrees_with_tiktoken(&text);
        }
    }

    /// tiktoken overflows the stack on this; the counter answers, with tiktoken's own count
    /// (its longest space token is 128 bytes, and slices are a multiple of it).
    #[test]
    fn a_million_spaces_count_on_a_small_stack() {
        let counted = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| count(&" ".repeat(1_000_000)))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(counted, 1_000_000_u64.div_ceil(128));
    }

    #[test]
    fn a_text_past_the_exact_limit_is_estimated_at_the_same_rate() {
        let line = "The quick brown fox jumps over the lazy dog.\n";
        let text = line.repeat(3 * EXACT_LIMIT / line.len());
        let exact = exact(&text);
        let estimated = count(&text);
        assert!(
            estimated >= exact && estimated <= exact + exact / 100,
            "{estimated} vs {exact}"
        );
    }

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
