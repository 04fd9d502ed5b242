//! Switchboard, an AI gateway: one OpenAI-compatible endpoint in front of every model provider,
//! with virtual keys, routing and metrics configured in one YAML file.
//!
//! The binary is a thin CLI over [`Gateway`]; wire formats live in `switchboard-providers`.

pub mod config;
pub mod error;
pub mod import;
pub mod server;
pub mod telemetry;

mod api;
mod audit;
mod auth;
mod cache;
mod catalog;
mod charge;
mod clock;
mod connections;
mod context;
mod digest;
mod held_body;
mod mcp;
mod resilience;
mod routing;
mod sse;
mod state;
mod stored_responses;
mod tls;
pub mod tokens;
mod upstream;

pub mod quota;
pub mod usage;

pub use config::Config;

/// Parsers the fuzz targets feed that are not otherwise public: not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// The console's session id in a `Cookie` line.
    pub use crate::api::console_cookie;
    /// The console's same-origin check on a POST (`Host`, then `Origin` or `Referer`).
    pub use crate::api::console_same_origin;
    /// The method of an `/mcp` body the gateway answers beside rmcp or edits rmcp's answer to.
    pub use crate::api::mcp_method_asked;
    /// The trace id of a client's `traceparent`.
    pub use crate::audit::trace_id as traceparent;
    /// A JWT claim's globs (a list, or a space-separated string), compiled.
    pub use crate::auth::claim_globs as jwt_claim_globs;
    /// The key id of a bearer token, read before verification.
    pub use crate::auth::unverified_kid as jwt_kid;
    /// A cached answer as stored in the Redis the replicas share (`sb1\n<ms>\n<target>\n<json>`).
    pub use crate::cache::remote::decode as cache_entry;
    /// A catalog entry id from a URL (`model:NAME`, `tool:NAME`).
    pub use crate::catalog::parse_entry as catalog_entry;
    /// A subscription record as the catalog reads it back.
    pub use crate::catalog::subscription_record;
    /// A `YYYY-MM-DD` day of the catalog, as Unix seconds at its start.
    pub use crate::config::day_start as catalog_day;
    /// A context change as published to every replica (`namespace\nkey\nlisted`).
    pub use crate::context::parse_change as context_change;
    /// The request an upstream MCP server's oversized message answers, from its two ends.
    pub use crate::mcp::oversized_response_id as mcp_oversized_id;
    /// A shared tool registration's body (`{"owner", "tool"}`, or a bare tool entry).
    pub use crate::mcp::read_shared as shared_tool;
    /// An upstream MCP server's message as a tap waiting for one answer keeps it.
    pub use crate::mcp::tapped_answer as mcp_tapped_answer;
    /// The settlements a replica's journal leaves for Redis (`settlements.journal`).
    pub use crate::quota::shared::unacknowledged as settlements_journal;
    /// The finish reasons of JSON passed through unparsed.
    pub use crate::sse::scan_reasons as finish_reasons;
    /// A shared registration as stored (`<expires ms>\n<body>`).
    pub use crate::state::redis::registrations::entry as registration;
    /// The usage ledger's journal lines (`usage.journal`).
    pub use crate::usage::journal_lines as usage_journal;
}
pub use server::{BuildError, Gateway};
