//! The inbound Anthropic Messages surface (`POST /v1/messages`): a client's Messages request as
//! the canonical chat form, and canonical answers, streams and errors back in Anthropic's shapes.
//!
//! This is the other direction from `anthropic/`, which speaks Messages to Anthropic as a
//! provider. `request` reads and checks the client's body, `answer` writes the message object,
//! `events` writes the SSE event sequence, `errors` the error envelope. An Anthropic target is
//! sent the client's own body instead (see [`Native`]), so nothing it understands is lost.

mod answer;
mod errors;
mod events;
mod request;
mod wire;

pub use answer::{CACHE_CREATION_FIELD, encode as encode_answer};
pub use errors::{error_body, error_type};
pub use events::EventWriter;
pub use request::{Translated, translate};
pub use wire::MessagesRequest;

/// The `anthropic-beta` header: forwarded to Anthropic targets only.
pub const BETA_HEADER: &str = "anthropic-beta";
