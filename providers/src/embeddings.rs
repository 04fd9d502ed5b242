//! Canonical Embeddings types: OpenAI's `POST /v1/embeddings` request and response.
//!
//! Vectors travel as floats or, when the client asks for `encoding_format: base64` (the OpenAI
//! SDKs' default), as base64 of little-endian `f32`s.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::chat::Extra;

/// `POST /v1/embeddings` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What to embed: text or token ids, one or many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// Each input as text; token ids are rendered as their decimal list.
    pub fn items(&self) -> Vec<String> {
        match self {
            EmbeddingInput::Text(t) => vec![t.clone()],
            EmbeddingInput::Texts(v) => v.clone(),
            EmbeddingInput::Tokens(t) => vec![format!("{t:?}")],
            EmbeddingInput::TokenBatches(b) => b.iter().map(|t| format!("{t:?}")).collect(),
        }
    }
}

/// How vectors are encoded in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// `POST /v1/embeddings` response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    #[serde(default = "list_object")]
    pub object: String,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingsUsage,
    #[serde(flatten)]
    pub extra: Extra,
}

fn list_object() -> String {
    "list".to_owned()
}

fn embedding_object() -> String {
    "embedding".to_owned()
}

/// One vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    #[serde(default = "embedding_object")]
    pub object: String,
    pub index: u32,
    pub embedding: Vector,
}

/// A vector as floats or as base64 of little-endian `f32`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

impl Vector {
    /// Encodes floats the way the client asked for them.
    pub fn encode(values: Vec<f32>, format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => Vector::Float(values),
            EncodingFormat::Base64 => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                Vector::Base64(STANDARD.encode(bytes))
            }
        }
    }
}

impl EmbeddingsResponse {
    /// Fills in what a provider's format leaves out: the model asked for, and base64 vectors
    /// when the client asked for them but the provider only sends floats.
    pub fn fit_to(mut self, request: &EmbeddingsRequest) -> Self {
        if self.model.is_empty() {
            self.model.clone_from(&request.model);
        }
        if request.encoding_format == Some(EncodingFormat::Base64) {
            for item in &mut self.data {
                if let Vector::Float(values) = &mut item.embedding {
                    let values = std::mem::take(values);
                    item.embedding = Vector::encode(values, EncodingFormat::Base64);
                }
            }
        }
        self
    }
}

/// Token counts of an embeddings call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_vectors_are_little_endian_f32() {
        let v = Vector::encode(vec![1.0, -2.5], EncodingFormat::Base64);
        let Vector::Base64(text) = v else {
            panic!("expected base64")
        };
        let bytes = STANDARD.decode(text).unwrap();
        assert_eq!(bytes[..4], 1.0f32.to_le_bytes());
        assert_eq!(bytes[4..], (-2.5f32).to_le_bytes());
    }

    #[test]
    fn every_input_form_parses() {
        for input in [
            json!("a"),
            json!(["a", "b"]),
            json!([1, 2]),
            json!([[1], [2, 3]]),
        ] {
            let req: EmbeddingsRequest =
                serde_json::from_value(json!({"model": "m", "input": input})).unwrap();
            assert!(!req.input.items().is_empty());
        }
    }
}
