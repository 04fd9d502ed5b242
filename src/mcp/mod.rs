//! The MCP server at `/mcp` (Streamable HTTP, session-based revisions up to 2025-11-25) on rmcp:
//! what every session shares (`Shared`), the service, and the auth layer in front of it.
//!
//! Virtual keys are checked before rmcp sees a request (`api::mcp_auth`); the caller rides in the
//! request's extensions, where each session's handler reads it.

mod context_tools;
mod feed;
mod http_tool;
mod registry;
mod schema;
mod servers;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderName;
use rmcp::model::Tool;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::ContextStore;

pub use registry::{RegisterError, Registered, Registry};
pub use servers::McpServers;

/// The rmcp service mounted at `/mcp`.
pub type McpService = StreamableHttpService<session::Session, LocalSessionManager>;

/// What every session uses.
pub struct Shared {
    pub context: Arc<ContextStore>,
    http_tools: Vec<http_tool::HttpTool>,
    context_tools: Vec<context_tools::ContextTool>,
    /// Tools registered at run time, listed after the configured ones.
    registry: Arc<Registry>,
    client: reqwest::Client,
    servers: Arc<McpServers>,
}

impl Shared {
    fn all_tools(&self) -> impl Iterator<Item = &Tool> {
        let http = self.http_tools.iter().map(|t| &t.tool);
        http.chain(self.context_tools.iter().map(|t| &t.tool))
    }
}

/// Builds the service from config, with the record of which key opened each of its sessions;
/// `stop` ends every session (and its open streams) at shutdown.
pub fn service(
    config: &Config,
    context: Arc<ContextStore>,
    registry: Arc<Registry>,
    client: reqwest::Client,
    servers: Arc<McpServers>,
    stop: CancellationToken,
) -> Result<(McpService, SessionOwners), String> {
    let http_tools = config
        .mcp
        .tools
        .iter()
        .map(http_tool::HttpTool::new)
        .collect::<Result<_, _>>()?;
    let shared = Arc::new(Shared {
        context,
        http_tools,
        context_tools: context_tools::tools(),
        registry,
        client,
        servers,
    });
    let mut transport = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop)
        .with_max_request_body_bytes(
            usize::try_from(config.server.max_body.0).unwrap_or(usize::MAX),
        );
    // With keys, a request must carry a key a web page cannot know, so DNS rebinding gains
    // nothing and any Host may reach the gateway. An open gateway keeps rmcp's loopback-only
    // Host check, plus the address it listens on.
    transport = if config.keys.is_empty() {
        let listen = config.server.listen;
        let mut hosts = transport.allowed_hosts.clone();
        hosts.extend([listen.ip().to_string(), listen.to_string()]);
        transport.with_allowed_hosts(hosts)
    } else {
        transport.disable_allowed_hosts()
    };
    let sessions = Arc::new(LocalSessionManager::default());
    let owners = SessionOwners {
        owners: Mutex::default(),
        sessions: sessions.clone(),
        sweep_at: AtomicUsize::new(SWEEP_FLOOR),
    };
    let service = StreamableHttpService::new(
        move || Ok(session::Session::new(shared.clone())),
        sessions,
        transport,
    );
    Ok((service, owners))
}

/// The header naming a session-era request's session.
pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// The header a 2026-07-28 (sessionless) request names its method in.
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");

/// The key that opened each MCP session. rmcp serves a session's GET stream and its DELETE
/// without calling the handler, so the handler's own check cannot guard them; this map does,
/// in front of rmcp.
pub struct SessionOwners {
    owners: Mutex<HashMap<String, Option<String>>>,
    /// rmcp's sessions, to forget the ones it closed on its own (idle, never initialized).
    sessions: Arc<LocalSessionManager>,
    /// The size at which the next new session sweeps out closed ones: twice what survived the
    /// last sweep, so sweeping costs a constant per session.
    sweep_at: AtomicUsize,
}

/// Below this many sessions the map is not swept.
const SWEEP_FLOOR: usize = 1024;

impl SessionOwners {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key that opened a session: `None` if unknown, `Some(None)` for the keyless gateway.
    pub fn owner_of(&self, id: &str) -> Option<Option<String>> {
        self.owners().get(id).cloned()
    }

    /// Records the key that opened a new session.
    pub async fn record(&self, id: String, owner: Option<String>) {
        let size = {
            let mut owners = self.owners();
            owners.insert(id, owner);
            owners.len()
        };
        if size >= self.sweep_at.load(Ordering::Relaxed) {
            self.sweep().await;
        }
    }

    /// Forgets a session the client ended.
    pub fn forget(&self, id: &str) {
        self.owners().remove(id);
    }

    /// Forgets the sessions rmcp no longer has: most clients never send DELETE.
    async fn sweep(&self) {
        let ids: Vec<String> = self.owners().keys().cloned().collect();
        let mut closed = Vec::new();
        for id in ids {
            let live = self.sessions.has_session(&Arc::from(id.as_str())).await;
            if !live.unwrap_or(false) {
                closed.push(id);
            }
        }
        let mut owners = self.owners();
        for id in &closed {
            owners.remove(id);
        }
        self.sweep_at
            .store((owners.len() * 2).max(SWEEP_FLOOR), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_rmcp_has_closed_are_forgotten_when_the_map_grows() {
        let owners = SessionOwners {
            owners: Mutex::default(),
            sessions: Arc::new(LocalSessionManager::default()),
            sweep_at: AtomicUsize::new(2),
        };
        owners.record("closed-1".into(), Some("a".into())).await;
        assert_eq!(owners.owner_of("closed-1"), Some(Some("a".into())));
        // The second entry reaches the sweep size: neither session exists in rmcp any more.
        owners.record("closed-2".into(), None).await;
        assert_eq!(owners.owner_of("closed-1"), None);
        assert_eq!(owners.owner_of("closed-2"), None);
        assert_eq!(owners.sweep_at.load(Ordering::Relaxed), SWEEP_FLOOR);
    }
}
