//! Black-box tests: the real gateway on a loopback port, in front of fake providers that check
//! what they receive and answer in their documented wire format.

mod agents;
mod anthropic;
mod audit;
mod azure;
mod bedrock;
mod bodies;
mod cache;
mod chat;
mod cli;
mod cohere;
mod common;
mod connections;
mod context;
mod discovery;
mod errors;
mod gemini;
mod grants;
mod limits;
mod mcp;
mod mcp_limits;
mod mcp_registry;
mod mcp_stateless;
mod mcp_upstreams;
mod messages;
mod mistral;
mod providers;
mod python;
mod quota;
mod reload;
mod replicas;
mod replicas_mcp;
mod resilience;
mod responses;
mod responses_native;
mod surface;
