//! The supervisor of one upstream server: connects, lists its tools, pings it, refreshes the
//! list when the server says it changed, and reconnects with backoff after any failure.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientRequest, PingRequest, Tool};
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleClient};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::link::{self, Running};
use super::{Live, Server};
use crate::config::{TOOL_SEPARATOR, valid_tool_name};

/// First wait before reconnecting; doubled after each failure up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a closing connection may take (a child process gets this long to exit).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Supervisor {
    pub server: Arc<Server>,
    pub client: reqwest::Client,
    pub changed: broadcast::Sender<()>,
    pub stop: CancellationToken,
}

/// Why watching a connection ended.
enum Ended {
    Stopped,
    /// The connection broke; `served` says whether its tools were ever listed.
    Broke {
        served: bool,
    },
}

impl Supervisor {
    pub async fn run(self) {
        let name = self.server.config.name.clone();
        let mut backoff = MIN_BACKOFF;
        loop {
            let connected = tokio::select! {
                () = self.stop.cancelled() => return,
                connected = link::connect(&self.server.config, &self.client) => connected,
            };
            match connected {
                Ok(running) => match self.watch(running).await {
                    Ended::Stopped => return,
                    Ended::Broke { served } => {
                        if served {
                            backoff = MIN_BACKOFF;
                        }
                    }
                },
                Err(error) => {
                    tracing::warn!(server = %name, %error, "cannot connect to MCP server")
                }
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Serves the server's tools until the connection breaks or the gateway stops.
    async fn watch(&self, mut running: Running) -> Ended {
        let name = &self.server.config.name;
        let peer = running.peer().clone();
        let list_changed = running.service().list_changed.clone();
        let failed = Arc::new(Notify::new());
        let mut served = false;
        let mut ping = tokio::time::interval(self.server.config.ping_interval.0);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Listing first: the first tick of an interval is immediate.
        let mut refresh = true;
        let ended = loop {
            if refresh {
                match self.list(&peer).await {
                    Ok(tools) => {
                        if !served {
                            tracing::info!(server = %name, tools = tools.len(), "MCP server is up");
                        }
                        served = true;
                        let tools = Arc::new(tools);
                        let live = Live {
                            peer: peer.clone(),
                            tools,
                            failed: failed.clone(),
                        };
                        self.server.set_live(Some(live), &self.changed);
                    }
                    Err(error) => break Some(error),
                }
                refresh = false;
            }
            tokio::select! {
                () = self.stop.cancelled() => break None,
                () = failed.notified() => break Some("a request failed".to_owned()),
                () = list_changed.notified() => refresh = true,
                _ = ping.tick() => {
                    if let Err(error) = self.ping(&peer).await {
                        break Some(error);
                    }
                }
            }
        };
        self.server.set_live(None, &self.changed);
        let _ = running.close_with_timeout(CLOSE_TIMEOUT).await;
        match ended {
            None => Ended::Stopped,
            Some(error) => {
                tracing::warn!(server = %name, %error, "MCP server is down; its tools are withdrawn");
                Ended::Broke { served }
            }
        }
    }

    /// The server's tools, renamed `{server}__{tool}`.
    async fn list(&self, peer: &Peer<RoleClient>) -> Result<Vec<Tool>, String> {
        let tools = self.within(peer.list_all_tools()).await?;
        Ok(expose(&self.server.config.name, tools))
    }

    async fn ping(&self, peer: &Peer<RoleClient>) -> Result<(), String> {
        let request = ClientRequest::PingRequest(PingRequest::default());
        self.within(peer.send_request(request)).await.map(drop)
    }

    /// Any failure or silence past the server's timeout counts as the server being down.
    async fn within<T>(
        &self,
        request: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, String> {
        let timeout = self.server.config.timeout.0;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

/// Prefixes each tool with its server's name; a name outside the MCP spec's tool-name rules
/// (1-128 of letters, digits, '_', '-', '.') cannot be offered and is skipped.
fn expose(server: &str, tools: Vec<Tool>) -> Vec<Tool> {
    tools
        .into_iter()
        .filter_map(|mut tool| {
            let name = format!("{server}{TOOL_SEPARATOR}{}", tool.name);
            if !valid_tool_name(&name) {
                tracing::warn!(server, tool = %tool.name, "skipping a tool whose gateway name {name:?} is not a valid MCP tool name");
                return None;
            }
            tool.name = name.into();
            Some(tool)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_prefixed_and_names_outside_the_spec_skipped() {
        let schema = Arc::new(serde_json::Map::new());
        let tools = ["echo", "bad name", "x".repeat(130).as_str(), "a.b-c_d"]
            .map(|name| Tool::new(name.to_owned(), "", schema.clone()))
            .to_vec();
        let names: Vec<String> = expose("up", tools)
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        assert_eq!(names, ["up__echo", "up__a.b-c_d"]);
    }
}
