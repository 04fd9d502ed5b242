//! The Cohere adapter against Cohere's documented payloads: requests encoded, answers, streams
//! and errors decoded, and random requests surviving an encode-then-decode round trip.

mod fixtures;
mod round_trip;
