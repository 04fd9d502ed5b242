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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
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

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// The key that opened each MCP session. rmcp serves a session's GET stream and its DELETE
/// without calling the handler, so the handler's own check cannot guard them; this map does,
/// in front of rmcp.
#[derive(Default)]
pub struct SessionOwners(Mutex<HashMap<String, Option<String>>>);

impl SessionOwners {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Authenticates every `/mcp` request with the virtual keys (401 in OpenAI's shape otherwise)
/// and hands the caller on in the request's extensions. A request naming a session another
/// key opened is answered as if the session did not exist.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match state.keys.authenticate(request.headers()) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let session = request
        .headers()
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session
        && state
            .mcp_sessions
            .owners()
            .get(id)
            .is_some_and(|owner| *owner != caller.name)
    {
        return crate::error::ApiError::not_found("Session not found").into_response();
    }
    let deleting = request.method() == Method::DELETE;
    let owner = caller.name.clone();
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    let created = response
        .headers()
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok());
    match (&session, created) {
        (None, Some(id)) => {
            state.mcp_sessions.owners().insert(id.to_owned(), owner);
        }
        (Some(id), _) if response.status() == StatusCode::NOT_FOUND => {
            state.mcp_sessions.owners().remove(id);
        }
        (Some(id), _) if deleting && response.status().is_success() => {
            state.mcp_sessions.owners().remove(id);
        }
        _ => {}
    }
    response
}
