//! Cohere Embed v2 (`POST /v2/embed`): canonical embeddings requests as Cohere bodies, and
//! Cohere's float vectors back as OpenAI's list, base64-encoded when the client asked.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::embeddings::{
    Embedding, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, Vector,
};
use crate::error::ProviderError;

/// Documents are what most OpenAI embeddings calls embed; a client can say otherwise with
/// Cohere's own `input_type`.
const DEFAULT_INPUT_TYPE: &str = "search_document";

/// The Cohere body for `request`.
pub fn encode(request: &EmbeddingsRequest) -> Result<Map<String, Value>, ProviderError> {
    let texts = match &request.input {
        EmbeddingInput::Text(text) => vec![text.clone()],
        EmbeddingInput::Texts(texts) => texts.clone(),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            return Err(ProviderError::invalid_request(
                "cohere embeds text, not token ids",
                Some("input"),
            ));
        }
    };
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("texts".into(), json!(texts));
    let input_type = request
        .extra
        .get("input_type")
        .cloned()
        .unwrap_or_else(|| json!(DEFAULT_INPUT_TYPE));
    body.insert("input_type".into(), input_type);
    body.insert("embedding_types".into(), json!(["float"]));
    if let Some(dimensions) = request.dimensions {
        body.insert("output_dimension".into(), json!(dimensions));
    }
    if let Some(truncate) = request.extra.get("truncate") {
        body.insert("truncate".into(), truncate.clone());
    }
    Ok(body)
}

#[derive(Deserialize)]
struct Answer {
    embeddings: ByType,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct ByType {
    float: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    billed_units: Option<Billed>,
}

#[derive(Deserialize)]
struct Billed {
    #[serde(default)]
    input_tokens: Option<f64>,
}

/// Decodes Cohere's answer as float vectors; the gateway encodes them as the client asked.
pub fn decode(body: &[u8]) -> Result<EmbeddingsResponse, ProviderError> {
    let answer: Answer = serde_json::from_slice(body).map_err(ProviderError::bad_response)?;
    let tokens = answer
        .meta
        .and_then(|m| m.billed_units)
        .and_then(|b| b.input_tokens)
        .map_or(0, |t| t.round().max(0.0) as u64);
    let data = answer
        .embeddings
        .float
        .into_iter()
        .enumerate()
        .map(|(i, values)| Embedding {
            object: "embedding".into(),
            index: u32::try_from(i).unwrap_or(u32::MAX),
            embedding: Vector::Float(values),
        })
        .collect();
    Ok(EmbeddingsResponse {
        object: "list".into(),
        data,
        // Cohere's answer does not name the model; the gateway fills in the one it asked for.
        model: String::new(),
        usage: EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
        extra: Map::new(),
    })
}
