//! The model catalog: list prices, context windows and default output limits of the current models
//! of each provider, as data. Cost accounting and token reservations read it; config overrides it.
//!
//! Names are matched the way providers spell versions: `gpt-4o-2024-08-06`, Vertex's
//! `claude-sonnet-4-5@20250929` and Bedrock's `us.anthropic.claude-sonnet-4-5-20250929-v1:0` all
//! find the entry of their family.

/// What one model costs and how much it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// USD per million input (prompt) tokens.
    pub input_usd_per_mtok: f64,
    /// USD per million output (completion) tokens.
    pub output_usd_per_mtok: f64,
    /// Tokens of prompt and answer together.
    pub context_window: u32,
    /// The answer length the provider allows, reserved when a request names no `max_tokens`.
    pub max_output_tokens: u32,
}

const fn info(input: f64, output: f64, context_window: u32, max_output_tokens: u32) -> ModelInfo {
    ModelInfo {
        input_usd_per_mtok: input,
        output_usd_per_mtok: output,
        context_window,
        max_output_tokens,
    }
}

/// List prices in USD per million tokens, as each provider publishes them.
static CATALOG: &[(&str, ModelInfo)] = &[
    // OpenAI
    ("gpt-5", info(1.25, 10.0, 400_000, 128_000)),
    ("gpt-5-mini", info(0.25, 2.0, 400_000, 128_000)),
    ("gpt-5-nano", info(0.05, 0.4, 400_000, 128_000)),
    ("gpt-4.1", info(2.0, 8.0, 1_047_576, 32_768)),
    ("gpt-4.1-mini", info(0.4, 1.6, 1_047_576, 32_768)),
    ("gpt-4.1-nano", info(0.1, 0.4, 1_047_576, 32_768)),
    ("gpt-4o", info(2.5, 10.0, 128_000, 16_384)),
    ("gpt-4o-mini", info(0.15, 0.6, 128_000, 16_384)),
    ("gpt-4-turbo", info(10.0, 30.0, 128_000, 4_096)),
    ("gpt-3.5-turbo", info(0.5, 1.5, 16_385, 4_096)),
    ("o1", info(15.0, 60.0, 200_000, 100_000)),
    ("o3", info(2.0, 8.0, 200_000, 100_000)),
    ("o3-pro", info(20.0, 80.0, 200_000, 100_000)),
    ("o3-mini", info(1.1, 4.4, 200_000, 100_000)),
    ("o4-mini", info(1.1, 4.4, 200_000, 100_000)),
    ("text-embedding-3-small", info(0.02, 0.0, 8_191, 0)),
    ("text-embedding-3-large", info(0.13, 0.0, 8_191, 0)),
    ("text-embedding-ada-002", info(0.1, 0.0, 8_191, 0)),
    // Anthropic
    ("claude-opus-4-1", info(15.0, 75.0, 200_000, 32_000)),
    ("claude-opus-4", info(15.0, 75.0, 200_000, 32_000)),
    ("claude-sonnet-4-5", info(3.0, 15.0, 200_000, 64_000)),
    ("claude-sonnet-4", info(3.0, 15.0, 200_000, 64_000)),
    ("claude-haiku-4-5", info(1.0, 5.0, 200_000, 64_000)),
    ("claude-3-7-sonnet", info(3.0, 15.0, 200_000, 64_000)),
    ("claude-3-5-sonnet", info(3.0, 15.0, 200_000, 8_192)),
    ("claude-3-5-haiku", info(0.8, 4.0, 200_000, 8_192)),
    ("claude-3-haiku", info(0.25, 1.25, 200_000, 4_096)),
    // Google Gemini
    ("gemini-2.5-pro", info(1.25, 10.0, 1_048_576, 65_536)),
    ("gemini-2.5-flash", info(0.3, 2.5, 1_048_576, 65_536)),
    ("gemini-2.5-flash-lite", info(0.1, 0.4, 1_048_576, 65_536)),
    ("gemini-2.0-flash", info(0.1, 0.4, 1_048_576, 8_192)),
    ("gemini-2.0-flash-lite", info(0.075, 0.3, 1_048_576, 8_192)),
    ("gemini-embedding-001", info(0.15, 0.0, 2_048, 0)),
    ("text-embedding-004", info(0.0, 0.0, 2_048, 0)),
    // Mistral
    ("mistral-large", info(2.0, 6.0, 131_072, 32_768)),
    ("mistral-medium", info(0.4, 2.0, 131_072, 32_768)),
    ("mistral-small", info(0.1, 0.3, 131_072, 32_768)),
    ("codestral", info(0.3, 0.9, 256_000, 32_768)),
    ("open-mistral-nemo", info(0.15, 0.15, 131_072, 32_768)),
    ("mistral-embed", info(0.1, 0.0, 8_192, 0)),
    // Cohere
    ("command-a", info(2.5, 10.0, 256_000, 8_000)),
    ("command-r-plus", info(2.5, 10.0, 128_000, 4_000)),
    ("command-r", info(0.15, 0.6, 128_000, 4_000)),
    ("command-r7b", info(0.0375, 0.15, 128_000, 4_000)),
    ("embed-v4.0", info(0.12, 0.0, 128_000, 0)),
    ("embed-english-v3.0", info(0.1, 0.0, 512, 0)),
    ("embed-multilingual-v3.0", info(0.1, 0.0, 512, 0)),
    // Amazon Nova and Meta Llama on Bedrock
    ("nova-pro", info(0.8, 3.2, 300_000, 5_000)),
    ("nova-lite", info(0.06, 0.24, 300_000, 5_000)),
    ("nova-micro", info(0.035, 0.14, 128_000, 5_000)),
    ("llama3-3-70b-instruct", info(0.72, 0.72, 128_000, 8_192)),
    ("llama3-1-70b-instruct", info(0.72, 0.72, 128_000, 8_192)),
    ("llama3-1-8b-instruct", info(0.22, 0.22, 128_000, 8_192)),
    // DeepSeek
    ("deepseek-chat", info(0.27, 1.1, 128_000, 8_192)),
    ("deepseek-reasoner", info(0.55, 2.19, 128_000, 64_000)),
];

/// Bedrock prefixes a model id with an inference-profile region and the vendor.
const BEDROCK_PREFIXES: &[&str] = &[
    "us.",
    "eu.",
    "apac.",
    "global.",
    "anthropic.",
    "amazon.",
    "meta.",
    "mistral.",
    "cohere.",
];

/// The catalog entry for a provider's model name, if its family is known.
pub fn lookup(model: &str) -> Option<&'static ModelInfo> {
    let lower = model.to_ascii_lowercase();
    // Routers such as OpenRouter name models `vendor/model`.
    let mut name = lower.rsplit('/').next().unwrap_or(&lower);
    for prefix in BEDROCK_PREFIXES {
        name = name.strip_prefix(prefix).unwrap_or(name);
    }
    // The longest family name that the model starts with, followed by a version separator.
    CATALOG
        .iter()
        .filter(|(family, _)| {
            name.strip_prefix(family)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '@', ':']))
        })
        .max_by_key(|(family, _)| family.len())
        .map(|(_, info)| info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str) -> Option<(f64, f64)> {
        lookup(model).map(|i| (i.input_usd_per_mtok, i.output_usd_per_mtok))
    }

    #[test]
    fn versions_and_hosts_find_their_family() {
        assert_eq!(price("gpt-4o-2024-08-06"), Some((2.5, 10.0)));
        assert_eq!(price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.6)));
        assert_eq!(price("claude-sonnet-4-5-20250929"), Some((3.0, 15.0)));
        assert_eq!(price("claude-sonnet-4-5@20250929"), Some((3.0, 15.0)));
        assert_eq!(
            price("us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            Some((0.8, 4.0))
        );
        assert_eq!(price("openai/gpt-4.1-mini"), Some((0.4, 1.6)));
        assert_eq!(price("amazon.nova-pro-v1:0"), Some((0.8, 3.2)));
        assert_eq!(price("Mistral-Large-Latest"), Some((2.0, 6.0)));
    }

    #[test]
    fn a_family_does_not_swallow_its_longer_siblings() {
        assert_eq!(price("o3-pro"), Some((20.0, 80.0)));
        assert_eq!(price("o3"), Some((2.0, 8.0)));
        assert_eq!(price("gpt-4"), None, "gpt-4 is not gpt-4o or gpt-4.1");
        assert_eq!(price("gpt-4.10"), None);
        assert_eq!(price("my-local-llama"), None);
    }

    #[test]
    fn every_entry_is_sane() {
        for (name, info) in CATALOG {
            assert!(info.input_usd_per_mtok >= 0.0 && info.output_usd_per_mtok >= 0.0);
            assert!(info.context_window > info.max_output_tokens, "{name}");
            assert_eq!(lookup(name), Some(info), "{name} finds itself");
        }
    }
}
