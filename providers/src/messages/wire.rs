//! A client's Messages request as Anthropic documents it, typed as far as the translation reads
//! it. Fields and block types it does not read (`cache_control`, citations, server tools) are
//! accepted and left out of the canonical form, never refused.

use serde::Deserialize;
use serde_json::Value;

/// The body of `POST /v1/messages` (and of `/v1/messages/count_tokens`, which has no
/// `max_tokens`).
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub tools: Option<Vec<InTool>>,
    #[serde(default)]
    pub tool_choice: Option<InToolChoice>,
    #[serde(default)]
    pub metadata: Option<InMetadata>,
    #[serde(default)]
    pub thinking: Option<Thinking>,
    #[serde(default)]
    pub stream: Option<bool>,
}

impl MessagesRequest {
    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

/// `system`: a string or text blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<InBlock>),
}

#[derive(Debug, Deserialize)]
pub struct InMetadata {
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `thinking`: `{"type": "enabled", "budget_tokens": N}`, `disabled` or `adaptive`.
#[derive(Debug, Deserialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub budget_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InRole {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: InRole,
    pub content: InContent,
}

/// A turn's content: a string or blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum InContent {
    Text(String),
    Blocks(Vec<InBlock>),
}

/// A content block. Server-tool blocks, citations-only blocks and future kinds are `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InBlock {
    Text {
        text: String,
    },
    Image {
        source: InSource,
    },
    Document {
        source: InSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<ToolResultContent>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Other,
}

/// Where an image or a document comes from.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// A plain-text document.
    Text {
        data: String,
    },
    /// Anthropic's Files API or inline blocks: only an Anthropic target can read them.
    #[serde(other)]
    Other,
}

/// A tool result: a string or blocks (text and images).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<InBlock>),
}

/// A tool: a client tool (`custom` or untyped) with a schema, or one of Anthropic's server or
/// versioned tools (`web_search_20250305`, `bash_20250124`, …), which only Anthropic runs.
#[derive(Debug, Deserialize)]
pub struct InTool {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Value>,
}

impl InTool {
    /// Whether the client defines and runs this tool itself.
    pub fn is_client_tool(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("custom"))
    }
}

/// `tool_choice`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InToolChoice {
    Auto {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}
