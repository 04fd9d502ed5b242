//! Amazon Titan text embeddings through InvokeModel: `{"inputText"}` in, `{"embedding",
//! "inputTextTokenCount"}` out. Converse has no embeddings, and Titan embeds one text per call.
//!
//! Vectors come back as floats; the gateway encodes them as the client asked.

use serde::{Deserialize, Serialize};

use crate::embeddings::{
    Embedding, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
    EncodingFormat, Vector,
};
use crate::error::ProviderError;

/// Titan's InvokeModel body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanRequest {
    pub input_text: String,
    /// Titan v2 only: 256, 512 or 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: u64,
}

pub fn titan_request(request: &EmbeddingsRequest) -> Result<TitanRequest, ProviderError> {
    let text = match &request.input {
        EmbeddingInput::Text(text) => text,
        EmbeddingInput::Texts(texts) if texts.len() == 1 => &texts[0],
        EmbeddingInput::Texts(_) => {
            return Err(ProviderError::invalid_request(
                "Bedrock's Titan embeddings take one input per request; send one string.",
                Some("input"),
            ));
        }
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(ProviderError::invalid_request(
                "Bedrock's Titan embeddings take text, not token ids.",
                Some("input"),
            ));
        }
    };
    Ok(TitanRequest {
        input_text: text.clone(),
        dimensions: request.dimensions,
    })
}

pub fn titan_response(body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
    let answer: TitanResponse =
        serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    Ok(EmbeddingsResponse {
        object: "list".to_owned(),
        data: vec![Embedding {
            object: "embedding".to_owned(),
            index: 0,
            embedding: Vector::encode(answer.embedding, EncodingFormat::Float),
        }],
        model: String::new(),
        usage: EmbeddingsUsage {
            prompt_tokens: answer.input_text_token_count,
            total_tokens: answer.input_text_token_count,
        },
        extra: Default::default(),
    })
}
