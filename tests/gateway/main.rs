//! Black-box tests: the real gateway on a loopback port, in front of fake providers that check
//! what they receive and answer in their documented wire format.

mod cache;
mod chat;
mod cli;
mod common;
mod context;
mod errors;
mod limits;
mod mcp;
mod python;
mod quota;
mod resilience;
mod surface;
