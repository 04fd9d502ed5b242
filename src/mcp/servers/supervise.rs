//! The supervisor of one upstream server: connects, lists its tools, pings it, refreshes the
//! list when the server says it changed, and reconnects with backoff after any failure.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientRequest, JsonObject, PingRequest, Prompt, Tool};
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleClient};
use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use super::Listing;
use tokio_util::sync::CancellationToken;

use super::link::{self, Link};
use super::verbatim::{self, Tap};
use super::{Live, Server};
use crate::config::valid_tool_name;

/// First wait before reconnecting; doubled after each failure up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Supervisor {
    pub server: Arc<Server>,
    pub client: reqwest::Client,
    pub changed: broadcast::Sender<Listing>,
    pub stop: CancellationToken,
    /// How long a client's upstream session may go without a call.
    pub idle: Duration,
}

/// What went wrong with one request of the supervisor's.
#[derive(Debug, thiserror::Error)]
enum Silence {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(ServiceError),
}

/// Why watching a connection ended.
enum Ended {
    Stopped,
    /// The connection broke; `served` says whether its tools were ever listed.
    Broke {
        served: bool,
    },
}

/// One face of a connected server as sessions use it; `notices` are its `list_changed` and
/// `failed`, shared by both faces, so a failure on either reconnects the server.
fn assemble(
    link: &Link,
    listed: Listed,
    (list_changed, failed): (&Arc<Notify>, &Arc<Notify>),
) -> Live {
    let (tools, prompts, resources) = listed;
    let (tools, extras) = tools.into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
    let extras = extras.into_iter().flatten().collect();
    Live {
        peer: link.peer().clone(),
        stateless: link.stateless,
        tools: Arc::new(tools),
        extras: Arc::new(extras),
        tap: link.tap.clone(),
        prompts: Arc::new(prompts),
        resources: resources.map(Arc::new),
        list_changed: list_changed.clone(),
        failed: failed.clone(),
    }
}

impl Supervisor {
    pub async fn run(self) {
        let name = self.server.config.name.clone();
        let mut backoff = MIN_BACKOFF;
        loop {
            let list_changed = Arc::new(Notify::new());
            // The supervisor's own session serves no client: it answers nothing.
            let answers = Default::default();
            let config = &self.server.config;
            let connecting = link::connect(config, &self.client, list_changed.clone(), answers);
            let connected = tokio::select! {
                () = self.stop.cancelled() => return,
                connected = connecting => connected,
            };
            // A server of the sessionless revision alone refuses `initialize`.
            let connected = match connected {
                Err(error) => self.discovered(&list_changed).await.ok_or(error),
                connected => connected,
            };
            match connected {
                Ok(link) => match self.watch(link, list_changed).await {
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
    async fn watch(&self, link: Link, list_changed: Arc<Notify>) -> Ended {
        let name = &self.server.config.name;
        let peer = link.peer().clone();
        let failed = Arc::new(Notify::new());
        let modern = match link.stateless {
            true => None,
            false => self.discovered(&list_changed).await,
        };
        let mut served = false;
        let mut missed = 0;
        let mut ping = tokio::time::interval(self.server.config.ping_interval.0);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Listing first: the first tick of an interval is immediate.
        let mut refresh = true;
        let ended = loop {
            if refresh {
                match self.list(&peer, &link.tap).await {
                    Ok(listed) => {
                        let served_before = served;
                        if !served {
                            let tools = listed.0.len();
                            tracing::info!(server = %name, tools, "MCP server is up");
                            self.server.refill(&self.client, &list_changed);
                        }
                        served = true;
                        let notices = (&list_changed, &failed);
                        let live = assemble(&link, listed, notices);
                        let modern = match &modern {
                            Some(face) => self.face(face, notices).await,
                            None => None,
                        };
                        let has_resources = live.resources.is_some();
                        self.server.set_live((Some(live), modern), &self.changed);
                        // Resource lists are not kept here (each client lists its own): a
                        // server's notice that they changed is passed on as it came.
                        if served_before && has_resources {
                            let _ = self.changed.send(Listing::Resources);
                        }
                    }
                    Err(error) => break Some(error),
                }
                refresh = false;
            }
            tokio::select! {
                () = self.stop.cancelled() => break None,
                () = failed.notified() => break Some("a request failed".to_owned()),
                () = list_changed.notified() => refresh = true,
                _ = ping.tick() => match self.ping(&peer).await {
                    Ok(()) => {
                        missed = 0;
                        self.server.sessions.close_idle(self.idle);
                    }
                    // One slow answer (a loaded machine, a pause) is not yet a hung server.
                    Err(Silence::Timeout(_)) if missed == 0 => missed = 1,
                    Err(error) => break Some(error.to_string()),
                }
            }
        };
        self.server.set_live((None, None), &self.changed);
        link.close().await;
        if let Some(modern) = modern {
            modern.close().await;
        }
        match ended {
            None => Ended::Stopped,
            Some(error) => {
                tracing::warn!(server = %name, %error, "MCP server is down; its tools are withdrawn");
                Ended::Broke { served }
            }
        }
    }

    /// The server's 2026-07-28 face, when it has one (a connection by `server/discover`).
    async fn discovered(&self, list_changed: &Arc<Notify>) -> Option<Link> {
        let config = &self.server.config;
        let discovering = link::discover(config, &self.client, list_changed.clone());
        let found = tokio::select! {
            () = self.stop.cancelled() => return None,
            found = discovering => found,
        };
        match found {
            Ok(Some(link)) => {
                tracing::info!(server = %config.name, "MCP server has a 2026-07-28 face");
                Some(link)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::info!(server = %config.name, %error, "no 2026-07-28 face");
                None
            }
        }
    }

    /// What the discovered face offers now; none (its clients served by the session face)
    /// when it cannot be listed.
    async fn face(&self, link: &Link, notices: (&Arc<Notify>, &Arc<Notify>)) -> Option<Live> {
        match self.list(link.peer(), &link.tap).await {
            Ok(listed) => Some(assemble(link, listed, notices)),
            Err(error) => {
                let name = &self.server.config.name;
                tracing::warn!(server = %name, %error, "its 2026-07-28 face cannot be listed");
                None
            }
        }
    }

    /// The server's tools (each with what rmcp's `Tool` cannot hold of it) and prompts (if it
    /// has any), named with its prefix.
    async fn list(&self, peer: &Peer<RoleClient>, tap: &Tap) -> Result<Listed, String> {
        let tools = self
            .within(verbatim::tools(peer, tap))
            .await
            .map_err(|e| e.to_string())?;
        let has_prompts = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.prompts.is_some());
        let prompts = if has_prompts {
            self.within(peer.list_all_prompts())
                .await
                .map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        let has_resources = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.resources.is_some());
        let resources = if has_resources {
            let templates = self.within(peer.list_all_resource_templates()).await;
            // A server with resources but no templates may not answer the method at all.
            Some(super::resources::Templates::new(
                &templates.unwrap_or_default(),
            ))
        } else {
            None
        };
        let config = &self.server.config;
        let prefix = config.tool_prefix();
        let prompts = prompts
            .into_iter()
            .map(|mut prompt| {
                prompt.name = format!("{prefix}{}", prompt.name);
                prompt
            })
            .collect();
        Ok((expose(&config.name, &prefix, tools), prompts, resources))
    }

    /// Whether the server answers at all: an error is an answer too (2026-07-28 removed
    /// `ping`, and a server of that revision alone says it does not know the method).
    async fn ping(&self, peer: &Peer<RoleClient>) -> Result<(), Silence> {
        let request = ClientRequest::PingRequest(PingRequest::default());
        match self.within(peer.send_request(request)).await {
            Ok(_) | Err(Silence::Failed(ServiceError::McpError(_))) => Ok(()),
            Err(silence) => Err(silence),
        }
    }

    /// Any failure or silence past the server's timeout counts against the server.
    async fn within<T>(
        &self,
        request: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, Silence> {
        let timeout = self.server.config.timeout.0;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(Silence::Failed(error)),
            Err(_) => Err(Silence::Timeout(timeout)),
        }
    }
}

/// A server's tools, each with what rmcp's `Tool` lost of it (by its gateway name, if
/// anything), its prompts, and with the resources capability its resource templates.
type Listed = (
    Vec<(Tool, Option<(String, JsonObject)>)>,
    Vec<Prompt>,
    Option<super::resources::Templates>,
);

/// Each tool of `server` as rmcp reads it, named with `prefix`, and what that reading lost; a
/// tool rmcp cannot read, or whose name falls outside the MCP spec's tool-name rules (1-128 of
/// letters, digits, '_', '-', '.'), cannot be offered and is skipped.
fn expose(
    server: &str,
    prefix: &str,
    tools: Vec<JsonObject>,
) -> Vec<(Tool, Option<(String, JsonObject)>)> {
    tools
        .into_iter()
        .filter_map(|whole| {
            let mut tool: Tool = match serde_json::from_value(Value::Object(whole.clone())) {
                Ok(tool) => tool,
                Err(error) => {
                    let name = whole.get("name").and_then(Value::as_str).unwrap_or_default();
                    tracing::warn!(server, tool = name, %error, "skipping a tool that is not a valid MCP tool");
                    return None;
                }
            };
            let name = format!("{prefix}{}", tool.name);
            if !valid_tool_name(&name) {
                tracing::warn!(server, tool = %tool.name, "skipping a tool whose gateway name {name:?} is not a valid MCP tool name");
                return None;
            }
            let lost = match serde_json::to_value(&tool) {
                Ok(Value::Object(typed)) => verbatim::lost(&whole, &typed),
                _ => JsonObject::new(),
            };
            tool.name = name.clone().into();
            Some((tool, (!lost.is_empty()).then_some((name, lost))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_prefixed_and_names_outside_the_spec_skipped() {
        let tool = |name: &str| {
            let tool = serde_json::json!({"name": name, "inputSchema": {"type": "object"}});
            tool.as_object().cloned().unwrap()
        };
        let mut tools: Vec<JsonObject> = ["echo", "bad name", "x".repeat(130).as_str(), "a.b-c_d"]
            .map(tool)
            .to_vec();
        tools.push(
            serde_json::json!({"name": "no_schema"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let mut required = tool("long");
        required.insert(
            "execution".into(),
            serde_json::json!({"taskSupport": "required"}),
        );
        tools.push(required);
        let exposed = expose("up", "up__", tools);
        let names: Vec<&str> = exposed.iter().map(|(t, _)| t.name.as_ref()).collect();
        assert_eq!(names, ["up__echo", "up__a.b-c_d", "up__long"]);
        let (name, lost) = exposed[2].1.clone().unwrap();
        assert_eq!(name, "up__long");
        assert_eq!(lost["execution"]["taskSupport"], "required");
        assert!(exposed[0].1.is_none());
    }
}
