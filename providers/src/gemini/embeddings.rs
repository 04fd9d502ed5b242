//! Embeddings: one input through `embedContent`, several through `batchEmbedContents`, each
//! request naming `models/{model}`; `dimensions` is `outputDimensionality`.

use serde::{Deserialize, Serialize};

use super::wire::{Content, Part};
use crate::embeddings::{
    Embedding, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
    EncodingFormat, Vector,
};
use crate::error::ProviderError;

/// One `embedContent` request, also the element of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedContentRequest {
    pub model: String,
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dimensionality: Option<u32>,
}

/// `batchEmbedContents` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchEmbedRequest {
    pub requests: Vec<EmbedContentRequest>,
}

/// The path action and body for `request`; `model` is the path form (`models/...`).
pub fn encode(
    request: &EmbeddingsRequest,
    model: &str,
) -> Result<(&'static str, Vec<u8>), ProviderError> {
    let texts = match &request.input {
        EmbeddingInput::Text(text) => vec![text.clone()],
        EmbeddingInput::Texts(texts) if !texts.is_empty() => texts.clone(),
        EmbeddingInput::Texts(_) => {
            return Err(ProviderError::invalid_request(
                "input must not be empty",
                Some("input"),
            ));
        }
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(ProviderError::invalid_request(
                "Gemini embeds text only, not token ids",
                Some("input"),
            ));
        }
    };
    let mut requests: Vec<EmbedContentRequest> = texts
        .into_iter()
        .map(|text| EmbedContentRequest {
            model: model.to_owned(),
            content: Content {
                role: None,
                parts: vec![Part {
                    text: Some(text),
                    ..Part::default()
                }],
            },
            output_dimensionality: request.dimensions,
        })
        .collect();
    let (action, body) = match requests.len() {
        1 => ("embedContent", serde_json::to_vec(&requests.remove(0))),
        _ => (
            "batchEmbedContents",
            serde_json::to_vec(&BatchEmbedRequest { requests }),
        ),
    };
    let body = body.map_err(|e| ProviderError::internal(format!("cannot encode request: {e}")))?;
    Ok((action, body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedAnswer {
    #[serde(default)]
    embedding: Option<Values>,
    #[serde(default)]
    embeddings: Option<Vec<Values>>,
    #[serde(default)]
    usage_metadata: Option<EmbedUsage>,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedUsage {
    #[serde(default)]
    prompt_token_count: u64,
}

/// Either answer as OpenAI's list of vectors, as floats; the gateway re-encodes when asked.
pub fn decode(body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
    let answer: EmbedAnswer = serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    let vectors = match (answer.embedding, answer.embeddings) {
        (Some(one), None) => vec![one],
        (None, Some(many)) => many,
        _ => {
            return Err(ProviderError::bad_response(
                "expected exactly one of embedding or embeddings",
            ));
        }
    };
    let prompt_tokens = answer.usage_metadata.map_or(0, |u| u.prompt_token_count);
    Ok(EmbeddingsResponse {
        object: "list".into(),
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| Embedding {
                object: "embedding".into(),
                index: index as u32,
                embedding: Vector::encode(v.values, EncodingFormat::Float),
            })
            .collect(),
        model: String::new(),
        usage: EmbeddingsUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
        extra: Default::default(),
    })
}
