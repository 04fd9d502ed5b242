//! The inbound OpenAI Responses surface (`POST /v1/responses`): a client's Responses request as
//! the canonical chat form, and canonical answers and streams back as response objects and the
//! Responses event sequence.
//!
//! `request` reads the input items (and the conversation a `previous_response_id` continues),
//! `answer` writes the response object, `events` the event stream.

mod answer;
mod events;
mod request;
mod wire;

pub use answer::{Echo, encode as encode_answer};
pub use events::EventWriter;
pub use request::{Translated, translate};
pub use wire::ResponsesRequest;
