//! Extended thinking blocks carried through OpenAI's shape as `thinking_blocks` (the field LiteLLM
//! uses): out in answers and streams, back in assistant turns with their signatures intact.
//!
//! Anthropic requires a tool loop with thinking on to send the turn's thinking back unmodified;
//! `reasoning_content` alone cannot, as it has no signature.

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::Block;
use crate::chat::AssistantMessage;
use crate::error::ProviderError;

/// The field of a message (or delta) that holds the blocks.
pub const THINKING_BLOCKS: &str = "thinking_blocks";

/// A thinking block as the client sees it, or `None` for any other block.
pub(super) fn to_client(block: &Block) -> Option<Value> {
    match block {
        Block::Thinking {
            thinking,
            signature,
        } => Some(json!({"type": "thinking", "thinking": thinking, "signature": signature})),
        Block::RedactedThinking { data } => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        _ => None,
    }
}

/// A block a client sends back.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientBlock {
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
}

/// The thinking blocks an assistant message brings back, in Anthropic's shape; they lead the
/// turn, as Anthropic wrote them. `param` names the field in errors.
pub(super) fn from_client(
    message: &AssistantMessage,
    param: &str,
) -> Result<Vec<Block>, ProviderError> {
    let Some(value) = message.extra.get(THINKING_BLOCKS).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let blocks = Vec::<ClientBlock>::deserialize(value).map_err(|e| {
        ProviderError::invalid_request(
            format!("thinking_blocks must be a list of thinking or redacted_thinking blocks: {e}"),
            Some(param),
        )
    })?;
    // An unsigned block (from a stream cut before its signature) would be refused whole.
    Ok(blocks
        .into_iter()
        .filter_map(|block| match block {
            ClientBlock::Thinking {
                thinking,
                signature: Some(signature),
            } => Some(Block::Thinking {
                thinking,
                signature: Some(signature),
            }),
            ClientBlock::Thinking {
                signature: None, ..
            } => None,
            ClientBlock::RedactedThinking { data } => Some(Block::RedactedThinking { data }),
        })
        .collect())
}
