//! The inbound OpenAI Responses surface (`POST /v1/responses`): a client's Responses request as
//! the canonical chat form, and canonical answers and streams back as response objects and the
//! Responses event sequence.
//!
//! `request` reads the input items (and the conversation a `previous_response_id` continues),
//! `answer` writes the response object, `events` the event stream. `decode` and
//! `decode_stream` read the other way, an upstream's answer to a body passed through.

mod answer;
mod decode;
mod decode_stream;
mod events;
mod request;
mod wire;

pub use answer::{Echo, assistant_turn, encode as encode_answer};
pub use decode::{decode as decode_answer, read as read_answer};
pub use decode_stream::Decoder as StreamDecoder;
pub use events::EventWriter;
pub use request::{Translated, translate};
pub use wire::ResponsesRequest;
