//! Black-box tests: the real gateway on a loopback port, in front of fake providers that check
//! what they receive and answer in their documented wire format.

mod azure;
mod cache;
mod chat;
mod cli;
mod cohere;
mod common;
mod errors;
mod limits;
mod mistral;
mod python;
mod quota;
mod surface;
