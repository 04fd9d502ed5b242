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
    /// How many inputs this is.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(texts) => texts.len(),
            EmbeddingInput::TokenBatches(batches) => batches.len(),
        }
    }

    /// Whether there is no input at all (an empty list).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs in consecutive groups of at most `size` (at least one), in order.
    pub fn batches(&self, size: usize) -> Vec<EmbeddingInput> {
        let size = size.max(1);
        match self {
            EmbeddingInput::Texts(texts) if texts.len() > size => texts
                .chunks(size)
                .map(|batch| EmbeddingInput::Texts(batch.to_vec()))
                .collect(),
            EmbeddingInput::TokenBatches(batches) if batches.len() > size => batches
                .chunks(size)
                .map(|batch| EmbeddingInput::TokenBatches(batch.to_vec()))
                .collect(),
            whole => vec![whole.clone()],
        }
    }

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

impl EmbeddingsResponse {
    /// Adds the answer to the next batch of the same request: its vectors follow, renumbered
    /// after this answer's, and its usage adds up.
    pub fn append(&mut self, next: EmbeddingsResponse) {
        let offset = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.data.extend(next.data.into_iter().map(|mut embedding| {
            embedding.index = embedding.index.saturating_add(offset);
            embedding
        }));
        self.usage.prompt_tokens += next.usage.prompt_tokens;
        self.usage.total_tokens += next.usage.total_tokens;
    }

    /// Fills in what a translated answer cannot know from the body alone: the model asked for,
    /// and base64 vectors when the client asked for them.
    pub fn fit_to(&mut self, request: &EmbeddingsRequest) {
        if self.model.is_empty() {
            self.model.clone_from(&request.model);
        }
        if request.encoding_format == Some(EncodingFormat::Base64) {
            for embedding in &mut self.data {
                if let Vector::Float(values) = &mut embedding.embedding {
                    embedding.embedding =
                        Vector::encode(std::mem::take(values), EncodingFormat::Base64);
                }
            }
        }
    }
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
    fn inputs_split_into_batches_and_answers_join_in_order() {
        let input = EmbeddingInput::Texts((0..5).map(|i| i.to_string()).collect());
        let batches = input.batches(2);
        assert_eq!(
            batches,
            [
                EmbeddingInput::Texts(vec!["0".into(), "1".into()]),
                EmbeddingInput::Texts(vec!["2".into(), "3".into()]),
                EmbeddingInput::Texts(vec!["4".into()]),
            ]
        );
        assert_eq!(EmbeddingInput::Text("x".into()).batches(1).len(), 1);
        let answer = |n: usize, tokens: u64| EmbeddingsResponse {
            object: "list".into(),
            data: (0..n)
                .map(|i| Embedding {
                    object: "embedding".into(),
                    index: i as u32,
                    embedding: Vector::Float(vec![i as f32]),
                })
                .collect(),
            model: "m".into(),
            usage: EmbeddingsUsage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
            extra: Extra::new(),
        };
        let mut whole = answer(2, 3);
        whole.append(answer(2, 4));
        whole.append(answer(1, 5));
        let indexes: Vec<u32> = whole.data.iter().map(|e| e.index).collect();
        assert_eq!(indexes, [0, 1, 2, 3, 4]);
        assert_eq!(whole.data[4].embedding, Vector::Float(vec![0.0]));
        assert_eq!(whole.usage.prompt_tokens, 12);
    }

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
    fn translated_answers_fit_the_request() {
        let request: EmbeddingsRequest = serde_json::from_value(
            json!({"model": "gemini-embedding-001", "input": "a", "encoding_format": "base64"}),
        )
        .unwrap();
        let mut response: EmbeddingsResponse = serde_json::from_value(json!({
            "data": [{"index": 0, "embedding": [1.0]}], "model": "",
            "usage": {"prompt_tokens": 0, "total_tokens": 0}
        }))
        .unwrap();
        response.fit_to(&request);
        assert_eq!(response.model, "gemini-embedding-001");
        assert_eq!(
            response.data[0].embedding,
            Vector::encode(vec![1.0], EncodingFormat::Base64)
        );
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
