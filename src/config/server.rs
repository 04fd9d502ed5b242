//! `server:` of config.yaml: where to listen and the limits of the HTTP surface.
//! Field names are a contract with users; defaults are stated next to each.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{Secret, Size, Span};

/// `server:`: where to listen and how the HTTP surface behaves.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Guards `/admin`; empty or absent disables the admin API.
    #[serde(default)]
    pub admin_key: Option<Secret>,
    /// Largest request body accepted.
    #[serde(default = "default_max_body")]
    pub max_body: Size,
    /// Largest non-streamed answer read from a provider: a provider that never stops sending
    /// fails the try instead of filling the gateway's memory.
    #[serde(default = "default_max_answer")]
    pub max_answer: Size,
    /// How long a shutdown waits for in-flight requests, streams included.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Span,
    /// How long a client has to send a request's headers, counted from when the connection
    /// is ready for the next one: slow-header clients and idle keep-alive connections are
    /// closed after it.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Span,
    /// How long a client has to send a request's whole body, counted from when its handler
    /// starts reading it (after authentication): 408 after it.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: Span,
    /// Client connections open at once; beyond it the gateway stops accepting until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// The web console at `/ui`.
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// `server.console`: the admin dashboard and developer portal at `/ui`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long a login lasts.
    #[serde(default = "default_session_ttl")]
    pub session_ttl: Span,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            session_ttl: default_session_ttl(),
        }
    }
}

fn enabled() -> bool {
    true
}

fn default_session_ttl() -> Span {
    Span(Duration::from_secs(8 * 3600))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin_key: None,
            max_body: default_max_body(),
            max_answer: default_max_answer(),
            shutdown_timeout: default_shutdown_timeout(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_connections: default_max_connections(),
            console: ConsoleConfig::default(),
        }
    }
}

fn default_header_timeout() -> Span {
    Span(Duration::from_secs(30))
}

fn default_body_timeout() -> Span {
    Span(Duration::from_secs(30))
}

/// Well under the 20k+ descriptors a server is usually allowed, leaving room for upstream
/// connections, state files and MCP children.
fn default_max_connections() -> u32 {
    8192
}

pub(super) fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> Size {
    Size(32 * 1024 * 1024)
}

/// Embeddings answers grow with inputs times dimensions: 2048 inputs of 3072 floats is well
/// over 100 MB of JSON.
fn default_max_answer() -> Size {
    Size(256 * 1024 * 1024)
}

fn default_shutdown_timeout() -> Span {
    Span(Duration::from_secs(30))
}
