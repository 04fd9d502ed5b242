//! One connection to an upstream MCP server as an rmcp client: Streamable HTTP over the gateway's
//! reqwest client, or a child process over stdio, both within the server's `max_result`; and the
//! handler that hears its notifications.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
// Logging, sampling and roots: SEP-2577 deprecates them, but 2025-11-25 clients and servers
// speak them.
use rmcp::ErrorData;
#[allow(deprecated)]
use rmcp::model::{
    ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequest,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
    ElicitResult, Implementation, ListRootsRequest, ListRootsResult,
    LoggingMessageNotificationParam, ProtocolVersion, ServerRequest,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use tokio::sync::Notify;

use super::relay::Relay;
use super::verbatim::{Tap, Tapped};
use super::{bounded_http::BoundedHttp, bounded_stdio};
use crate::config::{McpServerConfig, McpServerTransport, Secret};

/// A live connection.
type Running = RunningService<RoleClient, Handler>;

/// Longest wait between attempts to reopen a server's notification stream.
const STREAM_RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a closing connection may take (a child process gets this long to exit).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection and, over stdio, the process at its other end (killed if it outlives it).
pub struct Link {
    running: Running,
    child: Option<tokio::process::Child>,
    /// The server speaks a sessionless revision (2026-07-28 or later) over HTTP: one connection
    /// serves every client without sharing state between them.
    pub stateless: bool,
    /// Where what the session hears for its client goes.
    pub relay: Arc<Relay>,
    /// Answers the gateway wants as the server wrote them.
    pub tap: Arc<Tap>,
}

impl Link {
    pub fn peer(&self) -> &Peer<RoleClient> {
        self.running.peer()
    }

    /// Ends the session (an HTTP DELETE, or stdin closed) and waits a little for the process.
    pub async fn close(self) {
        let Link {
            mut running, child, ..
        } = self;
        let _ = running.close_with_timeout(CLOSE_TIMEOUT).await;
        if let Some(mut child) = child {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, child.wait()).await;
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot start the command: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("initialization failed: {0}")]
    Initialize(String),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Hears the upstream's notifications: changed tool or prompt lists for the gateway, log
/// messages for the client; and passes the server's requests to the client. The
/// same signal says the server forgot the session: listing again finds out what changed.
pub struct Handler {
    pub list_changed: Arc<Notify>,
    relay: Arc<Relay>,
    /// What the session's client can answer (sampling, elicitation, roots), declared upstream.
    answers: ClientCapabilities,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let gateway = Implementation::new("switchboard", env!("CARGO_PKG_VERSION"));
        ClientConfig::new(self.answers.clone(), gateway)
    }

    #[allow(deprecated)]
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.relay.ask(request, &context.ct).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(odd_answer()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.relay.ask(request, &context.ct).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(odd_answer()),
        }
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let request = ServerRequest::ListRootsRequest(ListRootsRequest::default());
        match self.relay.ask(request, &context.ct).await? {
            ClientResult::ListRootsResult(result) => Ok(result),
            _ => Err(odd_answer()),
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.relay.log(params).await;
    }
}

fn odd_answer() -> ErrorData {
    ErrorData::internal_error("the client answered with something else", None)
}

/// What of a client's capabilities an upstream session declares for it: what the gateway passes
/// on (sampling, elicitation, roots).
pub fn answers_of(client: &ClientCapabilities) -> ClientCapabilities {
    let mut answers = ClientCapabilities::default();
    answers.sampling = client.sampling.clone();
    answers.elicitation = client.elicitation.clone();
    answers.roots = client.roots.clone();
    answers
}

/// Environment variables a command inherits from the gateway; nothing else of the gateway's
/// environment (which holds provider keys) reaches a local server.
const INHERITED_ENV: [&str; 7] = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"];

/// Connects and completes MCP initialization within the server's timeout, declaring that the
/// session answers what `answers` holds; `list_changed` is woken whenever the server says its
/// tools changed.
pub async fn connect(
    config: &McpServerConfig,
    client: &reqwest::Client,
    list_changed: Arc<Notify>,
    answers: ClientCapabilities,
) -> Result<Link, LinkError> {
    let relay = Arc::new(Relay::default());
    let tap = Arc::new(Tap::new(relay.clone()));
    let handler = Handler {
        list_changed,
        relay: relay.clone(),
        answers,
    };
    let timeout = config.timeout.0;
    let limit = config.max_result.0;
    let connecting = async {
        match config.transport() {
            Some(McpServerTransport::Http { url, headers }) => {
                let transport = http_transport(config, client, (url, headers), &handler, &tap)?;
                let running = handler.serve(transport).await.map_err(initialize_error)?;
                let stateless = running
                    .peer()
                    .peer_info()
                    .is_some_and(|info| info.protocol_version >= ProtocolVersion::V_2026_07_28);
                Ok(Link {
                    running,
                    child: None,
                    stateless,
                    relay,
                    tap,
                })
            }
            Some(McpServerTransport::Stdio { command, args, env }) => {
                let mut child = command_of(command, args, env)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()?;
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    return Err(LinkError::Config(
                        "the command's pipes are missing".to_owned(),
                    ));
                };
                let stdout = bounded_stdio::guarded(stdout, &config.name, limit, tap.clone());
                let transport = Tapped {
                    inner: AsyncRwTransport::new_client(stdout, stdin),
                    tap: tap.clone(),
                };
                let running = handler.serve(transport).await.map_err(initialize_error)?;
                Ok(Link {
                    running,
                    child: Some(child),
                    stateless: false,
                    relay,
                    tap,
                })
            }
            None => Err(LinkError::Config("neither url nor command".to_owned())),
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| LinkError::Timeout(timeout))?
}

/// The server's 2026-07-28 face, over HTTP: connected by `server/discover`, each request
/// carrying its own `_meta`, so one connection serves every sessionless client. `Ok(None)`
/// when the server does not speak that revision (a stdio server is asked nothing).
pub async fn discover(
    config: &McpServerConfig,
    client: &reqwest::Client,
    list_changed: Arc<Notify>,
) -> Result<Option<Link>, LinkError> {
    let Some(McpServerTransport::Http { url, headers }) = config.transport() else {
        return Ok(None);
    };
    if !config.discover {
        return Ok(None);
    }
    let relay = Arc::new(Relay::default());
    let tap = Arc::new(Tap::per_request(relay.clone()));
    // Declared so the server may ask for input; each call says what its own client answers.
    let mut answers = ClientCapabilities::default();
    answers.sampling = Some(Default::default());
    answers.elicitation = Some(Default::default());
    answers.roots = Some(Default::default());
    let handler = Handler {
        list_changed,
        relay: relay.clone(),
        answers,
    };
    let transport = http_transport(config, client, (url, headers), &handler, &tap)?;
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let timeout = config.timeout.0;
    let connecting = handler.serve_with_lifecycle(transport, lifecycle);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(LinkError::Timeout(timeout)),
        // Refused or not understood: a session-era server.
        Ok(Err(_)) => Ok(None),
        Ok(Ok(running)) => Ok(Some(Link {
            running,
            child: None,
            stateless: true,
            relay,
            tap,
        })),
    }
}

/// rmcp's Streamable HTTP client over the gateway's bounded reqwest wrapper, tapped.
fn http_transport(
    config: &McpServerConfig,
    client: &reqwest::Client,
    (url, headers): (&str, &std::collections::BTreeMap<String, Secret>),
    handler: &Handler,
    tap: &Arc<Tap>,
) -> Result<Tapped<StreamableHttpClientTransport<BoundedHttp>>, LinkError> {
    let limit = config.max_result.0;
    let mut settings = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(header_map(headers)?)
        // A server that forgot the session (a restart) is reconnected by the supervisor,
        // which lists the tools again; rmcp would renew it unseen.
        .reinit_on_expired_session(false);
    let size = usize::try_from(limit).unwrap_or(usize::MAX);
    settings.max_sse_event_size = size;
    settings.max_json_response_size = size;
    // The notification stream is reopened within seconds after a break, so a server back from
    // a restart is asked about the session (and says 404) soon.
    let mut backoff = ExponentialBackoff::default();
    backoff.max_delay = Some(STREAM_RETRY_CAP);
    settings.retry_config = Arc::new(backoff);
    let bounded = BoundedHttp {
        client: client.clone(),
        server: config.name.as_str().into(),
        limit,
        forgotten: handler.list_changed.clone(),
        tap: tap.clone(),
    };
    Ok(Tapped {
        inner: StreamableHttpClientTransport::with_client(bounded, settings),
        tap: tap.clone(),
    })
}

fn initialize_error(error: rmcp::service::ClientInitializeError) -> LinkError {
    LinkError::Initialize(error.to_string())
}

fn header_map(
    headers: &std::collections::BTreeMap<String, Secret>,
) -> Result<HashMap<HeaderName, HeaderValue>, LinkError> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| LinkError::Config(format!("header {name:?}: {e}")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| LinkError::Config(format!("header {name}: invalid value")))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

fn command_of(
    command: &str,
    args: &[String],
    env: &std::collections::BTreeMap<String, Secret>,
) -> tokio::process::Command {
    let mut process = tokio::process::Command::new(command);
    process.args(args).env_clear().kill_on_drop(true);
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            process.env(name, value);
        }
    }
    process.envs(env.iter().map(|(name, value)| (name, value.expose())));
    process
}
