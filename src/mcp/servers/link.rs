//! One connection to an upstream MCP server as an rmcp client: Streamable HTTP over the gateway's
//! reqwest client, or a child process over stdio; and the handler that hears its notifications.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::sync::Notify;

use crate::config::{McpServerConfig, McpServerTransport, Secret};

/// A live connection.
pub type Running = RunningService<RoleClient, Handler>;

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

/// Hears the upstream's notifications; only a changed tool list matters to the gateway.
pub struct Handler {
    pub list_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let gateway = Implementation::new("switchboard", env!("CARGO_PKG_VERSION"));
        ClientConfig::new(ClientCapabilities::default(), gateway)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }
}

/// Environment variables a command inherits from the gateway; nothing else of the gateway's
/// environment (which holds provider keys) reaches a local server.
const INHERITED_ENV: [&str; 7] = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"];

/// Connects and completes MCP initialization within the server's timeout.
pub async fn connect(
    config: &McpServerConfig,
    client: &reqwest::Client,
) -> Result<Running, LinkError> {
    let handler = Handler {
        list_changed: Arc::new(Notify::new()),
    };
    let timeout = config.timeout.0;
    let connecting = async {
        match config.transport() {
            Some(McpServerTransport::Http { url, headers }) => {
                let transport = StreamableHttpClientTransport::with_client(
                    client.clone(),
                    StreamableHttpClientTransportConfig::with_uri(url)
                        .custom_headers(header_map(headers)?),
                );
                handler.serve(transport).await.map_err(initialize_error)
            }
            Some(McpServerTransport::Stdio { command, args, env }) => {
                let (transport, _) = TokioChildProcess::builder(command_of(command, args, env))
                    .stderr(Stdio::inherit())
                    .spawn()?;
                handler.serve(transport).await.map_err(initialize_error)
            }
            None => Err(LinkError::Config("neither url nor command".to_owned())),
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| LinkError::Timeout(timeout))?
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
