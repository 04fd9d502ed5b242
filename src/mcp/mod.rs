//! The MCP server at `/mcp` (Streamable HTTP, session-based revisions up to 2025-11-25) on rmcp:
//! what every session shares (`Shared`), the service, and the auth layer in front of it.
//!
//! Virtual keys are checked before rmcp sees a request (`api::mcp_auth`); the caller rides in the
//! request's extensions, where each session's handler reads it.

mod calls;
mod context_tools;
mod feed;
mod http_tool;
mod lifecycle;
mod openapi_call;
mod outlets;
mod owners;
mod registry;
mod resources;
mod schema;
mod servers;
mod session;
mod shared_sessions;
mod tasks;

use std::sync::Arc;

use arc_swap::ArcSwap;

use axum::http::HeaderName;
use rmcp::model::Tool;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::ContextStore;
use crate::telemetry::traces;

pub use lifecycle::Origin as ToolOrigin;
pub use owners::{SessionOwners, TooManySessions};
pub use registry::{RegisterError, Registered, Registry, read_shared, shared_entry};
pub use servers::{
    Era, McpServers, ServerHealth, oversized_response_id, restore_lost, tapped_answer,
};
pub use shared_sessions::SharedSessions;
pub use tasks::TASK_METHODS;

/// The rmcp service mounted at `/mcp`.
pub type McpService = StreamableHttpService<session::Session, LocalSessionManager>;

/// What every session uses.
pub struct Shared {
    pub context: Arc<ContextStore>,
    /// `mcp.tools`, replaced whole by a reload.
    http_tools: ArcSwap<Vec<http_tool::HttpTool>>,
    context_tools: Vec<context_tools::ContextTool>,
    /// Tools registered at run time, listed after the configured ones.
    registry: Arc<Registry>,
    client: reqwest::Client,
    servers: Arc<McpServers>,
    /// With `state.redis`: sessions any replica can serve.
    sessions: Option<Arc<SharedSessions>>,
    /// Where each tool call is recorded.
    audit: crate::audit::Audit,
    /// Each tool's lifecycle: retired ones unlisted and refused, deprecated ones marked.
    catalog: Arc<crate::catalog::Catalog>,
    /// The session-era clients whose sessions live here, by session id: what is answered beside
    /// rmcp (tasks) reaches them through these.
    clients: std::sync::Mutex<std::collections::HashMap<String, rmcp::Peer<rmcp::RoleServer>>>,
}

/// How a tool call ended, as its audit line tells it.
pub(crate) enum Ended {
    Answered,
    /// The tool ran and reported an error.
    ToolError,
    /// Refused or failed before the tool answered.
    Refused,
}

impl Ended {
    fn of(called: &Result<rmcp::model::CallToolResponse, rmcp::ErrorData>) -> Ended {
        match called {
            Err(_) => Ended::Refused,
            Ok(rmcp::model::CallToolResponse::Complete(result))
                if result.is_error == Some(true) =>
            {
                Ended::ToolError
            }
            Ok(_) => Ended::Answered,
        }
    }
}

/// The configured HTTP tools: `mcp.tools`, then each `mcp.openapi` service's operations.
fn http_tools_of(config: &Config) -> Result<Vec<http_tool::HttpTool>, String> {
    let yaml = config.mcp.tools.iter().map(http_tool::HttpTool::new);
    let openapi = config.mcp.openapi.iter().flat_map(|service| {
        service
            .loaded
            .iter()
            .map(move |op| http_tool::HttpTool::of_operation(service, op))
    });
    yaml.chain(openapi).collect()
}

impl Shared {
    /// The configured tools: `mcp.tools`, then `mcp.openapi`'s, then the context tools.
    fn all_tools(&self) -> Vec<Tool> {
        let http = self.http_tools.load();
        let http = http.iter().map(|t| t.tool.clone());
        http.chain(self.context_tools.iter().map(|t| t.tool.clone()))
            .collect()
    }

    /// Applies a reloaded config: its `mcp.tools`, the names registrations may not take, and
    /// its upstream servers. Sessions hear `tools/list_changed` when what they list changed.
    pub fn reconfigure(&self, config: &Config) -> Result<(), String> {
        let tools = http_tools_of(config)?;
        let before: Vec<Tool> = self
            .http_tools
            .load()
            .iter()
            .map(|t| t.tool.clone())
            .collect();
        let changed = before.len() != tools.len()
            || before.iter().zip(&tools).any(|(old, new)| *old != new.tool);
        self.http_tools.store(Arc::new(tools));
        self.registry.reconfigure(config);
        self.servers.reconfigure(&config.mcp.servers);
        if changed {
            self.servers.announce();
        }
        Ok(())
    }

    /// The session-era client whose session is `id`, while its session lives here.
    fn client(&self, id: &str) -> Option<rmcp::Peer<rmcp::RoleServer>> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.get(id).cloned()
    }

    /// Writes a tool call's audit line (who called which tool, and whether it failed) and ends
    /// its span with the same facts.
    fn audit_call(
        &self,
        tool: &str,
        who: Option<(Option<String>, Option<String>)>,
        ended: Ended,
        started: std::time::Instant,
        span: Option<traces::TraceContext>,
    ) {
        let failed = !matches!(ended, Ended::Answered);
        let (key, request_id) = who.unwrap_or_default();
        let line = crate::audit::Line {
            action: "mcp.tool_call",
            request_id,
            key,
            tool: Some(tool.to_owned()),
            outcome: if failed { "error" } else { "ok" },
            ..crate::audit::Line::default()
        };
        if let Some(span) = &span {
            traces::annotate(span, crate::audit::attributes(&line));
        }
        let error = failed.then(|| ("tool_error".to_owned(), String::new()));
        traces::end(span, error);
        // A name a client made up must not make a series.
        let served = !matches!(ended, Ended::Refused) || self.serves(tool);
        let label = if served { tool } else { "unknown" };
        crate::audit::write_now(&self.audit, line, started, label);
    }

    /// Each upstream server's state, for the console.
    pub fn server_health(&self) -> Vec<ServerHealth> {
        self.servers.health()
    }

    /// Tools registered at run time, with their TTL.
    pub fn registrations(&self) -> Vec<registry::Listing> {
        self.registry.list()
    }

    /// The upstream MCP server that offers the tool `name` now, if one does.
    pub fn server_offering(&self, name: &str) -> Option<String> {
        self.servers.offering(name)
    }

    /// Whether a tool of that name is configured, registered or offered by a server.
    fn serves(&self, tool: &str) -> bool {
        self.all_tools().iter().any(|t| t.name == tool)
            || self.registry.get(tool).is_some()
            || self.servers.offering(tool).is_some()
    }

    /// Ends every upstream server's connection and waits for each (up to `grace`).
    pub async fn stop_servers(&self, grace: std::time::Duration) {
        self.servers.stopped(grace).await;
    }

    /// Connects to every upstream server; they reconnect on their own until stopped.
    pub fn start_servers(&self) {
        self.servers.spawn();
    }
}

/// What the MCP service is built on besides the config.
pub struct Parts {
    pub context: Arc<ContextStore>,
    pub registry: Arc<Registry>,
    pub client: reqwest::Client,
    pub servers: Arc<McpServers>,
    /// Ends every session (and its open streams) at shutdown.
    pub stop: CancellationToken,
    /// With `state.redis`: sessions any replica can serve.
    pub sessions: Option<Arc<SharedSessions>>,
    pub audit: crate::audit::Audit,
    pub catalog: Arc<crate::catalog::Catalog>,
}

/// Builds the service from config, with the record of which key opened each of its sessions;
/// `stop` ends every session (and its open streams) at shutdown.
pub fn service(
    config: &Config,
    parts: Parts,
) -> Result<(McpService, SessionOwners, Arc<Shared>), String> {
    let Parts {
        context,
        registry,
        client,
        servers,
        stop,
        sessions,
        audit,
        catalog,
    } = parts;
    let http_tools = http_tools_of(config)?;
    let shared = Arc::new(Shared {
        context,
        http_tools: ArcSwap::from_pointee(http_tools),
        context_tools: context_tools::tools(),
        registry,
        client,
        servers,
        sessions: sessions.clone(),
        audit,
        catalog,
        clients: std::sync::Mutex::default(),
    });
    let mut transport = StreamableHttpServerConfig::default();
    if let Some(sessions) = sessions {
        transport.session_store = Some(sessions);
    }
    let mut transport = transport
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
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(config.mcp.session_idle.0);
    let sessions = Arc::new(sessions);
    let max_per_key = usize::try_from(config.mcp.max_sessions_per_key).unwrap_or(usize::MAX);
    let owners = SessionOwners::new(sessions.clone(), max_per_key);
    let sessions_shared = shared.clone();
    let service = StreamableHttpService::new(
        move || Ok(session::Session::new(sessions_shared.clone())),
        sessions,
        transport,
    );
    Ok((service, owners, shared))
}

/// The span of a tool call, a child of the request that carries it (whose trace context the
/// gateway put in its headers); `None` when traces are off.
fn tool_span(tool: &str, parts: Option<&http::request::Parts>) -> Option<traces::TraceContext> {
    if !traces::enabled() {
        return None;
    }
    let parent = parts.map_or_else(traces::TraceContext::current, |p| {
        traces::extract(&p.headers)
    });
    Some(traces::start(
        &parent,
        format!("execute_tool {tool}"),
        traces::Kind::Internal,
        vec![
            traces::Attribute::new("gen_ai.operation.name", "execute_tool"),
            traces::Attribute::new("gen_ai.tool.name", tool.to_owned()),
        ],
    ))
}

/// The header naming a session-era request's session.
pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// The header a 2026-07-28 (sessionless) request names its method in.
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
