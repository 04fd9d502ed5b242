//! Sans-I/O wire formats of model providers: the canonical OpenAI types, and adapters that turn a
//! canonical request into an HTTP request and a provider's bytes back into canonical form.
//!
//! Nothing here opens a socket, sleeps or retries; the gateway owns all I/O. That keeps every
//! translation testable from fixtures alone.

pub mod adapter;
pub mod anthropic;
pub mod assemble;
pub mod azure;
pub mod bedrock;
pub mod catalog;
#[doc = include_str!("../CONSTRAINTS.md")]
pub mod constraints {}
pub mod chat;
pub mod chunk_edit;
pub mod cohere;
pub mod embeddings;
pub mod error;
pub mod eventstream;
pub mod gemini;
mod json_scan;
pub mod media;
pub mod messages;
pub mod mistral;
pub mod mock;
pub mod native;
pub mod openai;
mod request_de;
pub mod responses;
pub mod sse_frames;
pub mod tool_ids;

pub use adapter::{
    Adapter, ChatAnswer, ChunkDecoder, Endpoint, NativeEvent, StreamFormat, StreamItem,
    VerbatimChunk,
};
pub use error::{ErrorKind, ProviderError};
pub use native::{Native, NativeFormat};
