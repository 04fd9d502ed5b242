//! Claude on Bedrock through InvokeModel: a Messages client's body goes to
//! `/model/{id}/invoke` (or `invoke-with-response-stream`) as written, but for what Bedrock
//! wants instead of `model` and `stream` (`anthropic_version`, and `anthropic-beta` as the
//! `anthropic_beta` list), so `cache_control`, thinking signatures and beta fields survive.
//!
//! The answer is Anthropic's message as written; a stream's `chunk` events each wrap one of
//! Anthropic's events in base64, unwrapped here for the client and decoded as Anthropic's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::adapter::{Adapter, ChunkDecoder, NativeEvent, StreamItem};
use crate::anthropic::Anthropic;
use crate::error::ProviderError;
use crate::native::Native;

/// The `anthropic_version` Bedrock's Claude models take.
pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Whether a Bedrock model id (or inference profile, or ARN naming one) is Claude's.
pub(super) fn is_claude(model: &str) -> bool {
    model.contains("anthropic.")
}

/// The body InvokeModel takes for a Messages client's `native` body.
pub(super) fn body(native: &Native) -> Result<Vec<u8>, ProviderError> {
    let version = format!("\"{ANTHROPIC_VERSION}\"");
    let mut first = vec![("anthropic_version", version)];
    if let Some(beta) = &native.beta {
        let betas: Vec<&str> = beta
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .collect();
        let list = serde_json::to_string(&betas)
            .map_err(|e| ProviderError::internal(format!("cannot encode anthropic_beta: {e}")))?;
        first.push(("anthropic_beta", list));
    }
    let first: Vec<(&str, &str)> = first.iter().map(|(n, j)| (*n, j.as_str())).collect();
    native.reshaped(
        &["model", "stream", "anthropic_version", "anthropic_beta"],
        &first,
    )
}

/// A `chunk` event's payload.
#[derive(Deserialize)]
struct Chunk {
    bytes: String,
}

/// The `type` of one of Anthropic's events.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: String,
}

/// Decodes InvokeModelWithResponseStream: each `chunk` unwrapped into Anthropic's event, which
/// goes to the client as it is and is decoded as Anthropic's stream.
pub(super) struct InvokeStream {
    anthropic: Box<dyn ChunkDecoder>,
}

impl InvokeStream {
    pub(super) fn new() -> Self {
        InvokeStream {
            anthropic: Anthropic.chat_stream(),
        }
    }
}

impl ChunkDecoder for InvokeStream {
    fn decode(&mut self, event: &str, data: &str) -> Result<Vec<StreamItem>, ProviderError> {
        if event != "chunk" {
            return Ok(Vec::new());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(ProviderError::bad_response)?;
        let bytes = STANDARD
            .decode(chunk.bytes.as_bytes())
            .map_err(ProviderError::bad_response)?;
        let inner = String::from_utf8(bytes).map_err(ProviderError::bad_response)?;
        let typed: Typed = serde_json::from_str(&inner).map_err(ProviderError::bad_response)?;
        let mut items = self.anthropic.decode(&typed.kind, &inner)?;
        items.insert(
            0,
            StreamItem::Native(Box::new(NativeEvent {
                name: typed.kind,
                data: inner,
            })),
        );
        Ok(items)
    }

    fn finish(&mut self) -> Result<Vec<StreamItem>, ProviderError> {
        self.anthropic.finish()
    }

    fn writes_native(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::native::NativeFormat;

    #[test]
    fn the_body_trades_model_and_stream_for_what_bedrock_takes() {
        let native = Native {
            beta: Some("a-1, b-2".into()),
            ..Native::new(
                NativeFormat::AnthropicMessages,
                Bytes::from_static(br#"{"model":"claude","max_tokens":9,"stream":true,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]}"#),
            )
        };
        assert_eq!(
            String::from_utf8(body(&native).unwrap()).unwrap(),
            r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a-1","b-2"],"max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]}"#
        );
        assert!(is_claude("us.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(!is_claude("amazon.nova-pro-v1:0"));
    }

    #[test]
    fn a_chunk_is_unwrapped_for_the_client_and_decoded() {
        let mut decoder = InvokeStream::new();
        let inner = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#;
        let data = format!(r#"{{"bytes":"{}","p":"abc"}}"#, STANDARD.encode(inner));
        let items = decoder.decode("chunk", &data).unwrap();
        assert_eq!(
            items[0],
            StreamItem::Native(Box::new(NativeEvent {
                name: "message_start".into(),
                data: inner.into()
            }))
        );
        assert!(matches!(items[1], StreamItem::Chunk(_)));
        assert!(decoder.decode("chunk", r#"{"bytes":"!!"}"#).is_err());
    }
}
