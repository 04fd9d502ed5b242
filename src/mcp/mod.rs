//! The MCP server at `/mcp` (Streamable HTTP, session-based revisions up to 2025-11-25) on rmcp:
//! what every session shares (`Shared`), the service, and the auth layer in front of it.
//!
//! Virtual keys are checked before rmcp sees a request; the caller rides in the request's
//! extensions, where each session's handler reads it.

mod context_tools;
mod feed;
mod http_tool;
mod registry;
mod schema;
mod session;
mod upstream;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::Tool;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::config::Config;
use crate::context::ContextStore;

pub use context_tools::parse_ttl;
pub use registry::{RegisterError, Registered, Registry};
pub use upstream::Upstreams;

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
    upstreams: Arc<Upstreams>,
}

impl Shared {
    fn all_tools(&self) -> impl Iterator<Item = &Tool> {
        let http = self.http_tools.iter().map(|t| &t.tool);
        http.chain(self.context_tools.iter().map(|t| &t.tool))
    }
}

/// Builds the service from config; `stop` ends every session (and its open streams) at shutdown.
pub fn service(
    config: &Config,
    context: Arc<ContextStore>,
    registry: Arc<Registry>,
    client: reqwest::Client,
    upstreams: Arc<Upstreams>,
    stop: CancellationToken,
) -> Result<McpService, String> {
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
        upstreams,
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
    Ok(StreamableHttpService::new(
        move || Ok(session::Session::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        transport,
    ))
}

/// Authenticates every `/mcp` request with the virtual keys (401 in OpenAI's shape otherwise)
/// and hands the caller on in the request's extensions.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    match state.keys.authenticate(request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}
