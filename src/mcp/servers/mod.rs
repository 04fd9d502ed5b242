//! Upstream MCP servers (`mcp.servers`): their tools, offered as `{server}__{tool}`, and calls
//! forwarded to them, each client's on an upstream session of its own. A server that is down
//! offers nothing until its supervisor reconnects.
//!
//! Sessions hear of every change to the set of upstream tools through [`McpServers::changes`].

mod aliases;
mod bounded_http;
mod bounded_stdio;
mod expected;
mod health;
mod link;
mod oversize;
mod prompts;
mod relay;
mod resources;
mod sessions;
mod supervise;
mod tasks;
mod verbatim;

pub use aliases::original as original_uri;
pub use health::Health as ServerHealth;
pub use oversize::response_id as oversized_response_id;
pub use sessions::Holder;
pub use verbatim::{ENVELOPE, kept_for as tapped_answer, restore_lost};

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject, Prompt, Tool,
};
use rmcp::service::ServiceError;
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::{ErrorData, Peer, RoleClient, RoleServer};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::McpServerConfig;
use crate::telemetry::traces;

/// What changed in the servers' offer, as sessions are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Prompts,
    Resources,
}

/// Which face of a server a client sees. A server that speaks both revisions may offer each
/// different things: a sessionless (2026-07-28) client is served by its discovered face when
/// it has one, a session-era client by its session face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Session,
    Stateless,
}

/// Every configured upstream server; a reload adds and removes servers while sessions run.
pub struct McpServers {
    servers: RwLock<Arc<[Arc<Server>]>>,
    changed: broadcast::Sender<Listing>,
    client: reqwest::Client,
    /// Ends every supervisor at shutdown; each server's own token is a child of it.
    stop: CancellationToken,
    supervisors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// How long a sessionless key's upstream session is kept without a call (`mcp.session_idle`).
    idle: Duration,
    /// Which server runs each task a client started.
    tasks: tasks::Tasks,
    /// Which server listed each resource URI last.
    resource_owners: resources::Owners,
}

/// One server and, while it is up, its connection and tools.
struct Server {
    config: McpServerConfig,
    live: RwLock<Option<Live>>,
    /// Its 2026-07-28 face, found by `server/discover` beside the session one, while up.
    modern: RwLock<Option<Live>>,
    /// Told every time the supervisor stores a connection.
    reconnected: tokio::sync::watch::Sender<()>,
    /// The upstream session of each client.
    sessions: Arc<sessions::Sessions>,
    /// Ends this server's supervisor alone, when a reload removes it.
    stop: CancellationToken,
}

/// A connected server: how to reach it, what it offers, and how a caller reports it broken.
#[derive(Clone)]
struct Live {
    /// The supervisor's own session: listing, pings, and the calls of a stateless server.
    peer: Peer<RoleClient>,
    stateless: bool,
    /// Already named with the server's prefix.
    tools: Arc<Vec<Tool>>,
    /// What rmcp's `Tool` cannot hold of each tool (`execution`, fields newer than rmcp), by
    /// the tool's gateway name.
    extras: Arc<HashMap<String, JsonObject>>,
    /// The same for its prompts (none unless it has the capability).
    prompts: Arc<Vec<Prompt>>,
    /// With the resources capability: its resource templates.
    resources: Option<Arc<resources::Templates>>,
    /// The answers of the supervisor's own session wanted whole.
    tap: Arc<verbatim::Tap>,
    /// Wakes the supervisor to list again; every session of the server says so through it.
    list_changed: Arc<tokio::sync::Notify>,
    /// Wakes the supervisor when a request hit a transport error; one per connection, so a
    /// report about an old connection cannot end a new one.
    failed: Arc<tokio::sync::Notify>,
}

impl McpServers {
    /// The servers of `configs`, none connected until [`spawn`](Self::spawn); `stop` ends them.
    pub fn new(
        configs: &[McpServerConfig],
        client: reqwest::Client,
        stop: CancellationToken,
        idle: Duration,
    ) -> McpServers {
        let servers = configs.iter().map(|c| Server::new(c, &stop)).collect();
        McpServers {
            servers: RwLock::new(servers),
            changed: broadcast::channel(16).0,
            client,
            stop,
            supervisors: Mutex::default(),
            idle,
            tasks: tasks::Tasks::default(),
            resource_owners: resources::Owners::default(),
        }
    }

    /// Starts one supervisor per server; each connects, watches and reconnects until stopped.
    pub fn spawn(&self) {
        for server in self.all().iter() {
            self.supervise(server.clone());
        }
    }

    fn supervise(&self, server: Arc<Server>) {
        let supervisor = supervise::Supervisor {
            stop: server.stop.clone(),
            server,
            client: self.client.clone(),
            changed: self.changed.clone(),
            idle: self.idle,
        };
        let task = tokio::spawn(supervisor.run());
        let mut supervisors = self.supervisors.lock().unwrap_or_else(|e| e.into_inner());
        supervisors.retain(|t| !t.is_finished());
        supervisors.push(task);
    }

    /// Makes `configs` the servers: a server whose entry is unchanged keeps its connection; a
    /// removed one is disconnected and its tools withdrawn; a new one is connected. Sessions
    /// hear of every change to the tools. Called only once [`spawn`](Self::spawn) has run.
    pub fn reconfigure(&self, configs: &[McpServerConfig]) {
        let current = self.all();
        let kept = |config: &McpServerConfig| current.iter().find(|s| s.config == *config);
        let next: Vec<Arc<Server>> = configs
            .iter()
            .map(|config| match kept(config) {
                Some(server) => server.clone(),
                None => {
                    let server = Server::new(config, &self.stop);
                    self.supervise(server.clone());
                    server
                }
            })
            .collect();
        let removed: Vec<&Arc<Server>> = current
            .iter()
            .filter(|s| !next.iter().any(|n| Arc::ptr_eq(n, s)))
            .collect();
        *self.servers.write().unwrap_or_else(|e| e.into_inner()) = next.into();
        for server in &removed {
            tracing::info!(server = %server.config.name, "MCP server removed by a reload");
            server.stop.cancel();
        }
        if !removed.is_empty() {
            let _ = self.changed.send(Listing::Tools);
            let _ = self.changed.send(Listing::Prompts);
        }
    }

    /// Waits for every supervisor to close its connection once stopped (each gets `grace`).
    pub async fn stopped(&self, grace: Duration) {
        let tasks =
            std::mem::take(&mut *self.supervisors.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = tokio::time::timeout(grace, task).await;
        }
    }

    fn all(&self) -> Arc<[Arc<Server>]> {
        self.servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A signal for every time a server's tools appear, change or disappear, and for every
    /// reload that changed the configured tools.
    pub fn changes(&self) -> broadcast::Receiver<Listing> {
        self.changed.subscribe()
    }

    /// Tells every session that the tools changed.
    pub fn announce(&self) {
        let _ = self.changed.send(Listing::Tools);
    }

    /// The tools of every server that is up, as `era` sees them; where two offer a name, the
    /// first configured.
    pub fn tools(&self, era: Era) -> Vec<Tool> {
        self.offered(era, |live| &live.tools, |tool| &tool.name)
    }

    /// What the server offering the tool `name` listed of it beyond what rmcp's `Tool` holds.
    pub fn tool_extras(&self, era: Era, name: &str) -> Option<JsonObject> {
        let (_, live) = self.owner(era, name)?;
        live?.extras.get(name).cloned()
    }

    /// Whether some tool of a server that is up has something rmcp's `Tool` cannot hold.
    pub fn any_extras(&self) -> bool {
        self.all().iter().any(|s| {
            [Era::Session, Era::Stateless]
                .iter()
                .any(|era| s.live_for(*era).is_some_and(|l| !l.extras.is_empty()))
        })
    }

    /// Whether any server is configured.
    pub fn any(&self) -> bool {
        !self.all().is_empty()
    }

    /// What every server that is up offers of one kind (`of`), a name (`name`) once: the first
    /// configured server's.
    fn offered<T: Clone>(
        &self,
        era: Era,
        of: impl Fn(&Live) -> &[T],
        name: impl Fn(&T) -> &str,
    ) -> Vec<T> {
        let mut seen = std::collections::HashSet::new();
        let lives: Vec<Live> = self.all().iter().filter_map(|s| s.live_for(era)).collect();
        lives
            .iter()
            .flat_map(|live| of(live).iter())
            .filter(|item| seen.insert(name(item).to_owned()))
            .cloned()
            .collect()
    }

    /// The first configured server that offers `name` among what `of` lists, and its
    /// connection.
    fn offering_server<T>(
        &self,
        (era, name): (Era, &str),
        of: impl Fn(&Live) -> &[T],
        named: impl Fn(&T) -> &str,
    ) -> Option<(Arc<Server>, Live)> {
        self.all().iter().find_map(|server| {
            let live = server.live_for(era)?;
            let offers = of(&live).iter().any(|item| named(item) == name);
            offers.then(|| (server.clone(), live))
        })
    }

    /// Closes the upstream sessions of `holder` (its client session ended).
    pub fn release(&self, holder: &Holder) {
        for server in self.all().iter() {
            server.sessions.forget(holder);
        }
        self.tasks.forget(holder);
    }

    /// The name of the server that offers the tool `name` now (to either era), if one does.
    pub fn offering(&self, name: &str) -> Option<String> {
        [Era::Session, Era::Stateless].into_iter().find_map(|era| {
            let (server, live) = self.owner(era, name)?;
            live.map(|_| server.config.name.clone())
        })
    }

    /// The server that offers `name` to `era` (the first configured, if several do) and that
    /// face's connection; a server that is down, for a name under its non-empty prefix.
    fn owner(&self, era: Era, name: &str) -> Option<(Arc<Server>, Option<Live>)> {
        let live = self.offering_server((era, name), |live| &live.tools, |tool| &tool.name);
        live.map(|(server, live)| (server, Some(live))).or_else(|| {
            let all = self.all();
            let down = all.iter().find(|server| {
                let prefix = server.config.tool_prefix();
                !prefix.is_empty() && name.starts_with(prefix.as_ref()) && server.live().is_none()
            });
            down.map(|server| (server.clone(), None))
        })
    }

    /// Forwards a call of one of the servers' tools on `holder`'s upstream session and returns
    /// the server's answer as is; `None` when no server offers the name.
    pub async fn call(
        &self,
        holder: &Holder,
        downstream: &Peer<RoleServer>,
        request: CallToolRequestParams,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        let (server, live) = self.owner(holder.era(), &request.name)?;
        let Some(live) = live else {
            return Some(Ok(server.unavailable()));
        };
        let prefix = server.config.tool_prefix();
        let tool = request.name.strip_prefix(prefix.as_ref())?.to_owned();
        let span = traces::child(
            format!("tools/call {tool}"),
            traces::Kind::Client,
            vec![
                traces::Attribute::new("mcp.method.name", "tools/call"),
                traces::Attribute::new("gen_ai.tool.name", tool.clone()),
                traces::Attribute::new("switchboard.mcp_server", server.config.name.clone()),
            ],
        );
        let mut request = request;
        if let Some(span) = &span {
            // W3C trace context travels in the request's `_meta` (MCP SEP-414).
            let mut headers = http::HeaderMap::new();
            traces::inject_from(span, &mut headers);
            let meta = request.meta.get_or_insert_default();
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    meta.0.insert(name.as_str().to_owned(), value.into());
                }
            }
        }
        // On the heap: with rmcp's own futures inside, it is large enough to overflow a 2 MiB
        // thread stack in a debug build.
        let called = Box::pin(server.call(
            live,
            (holder, downstream),
            tool,
            request,
            &self.client,
            &self.changed,
        ))
        .await;
        let error = match &called {
            Err(error) => Some((error.code.0.to_string(), error.message.to_string())),
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                Some(("tool_error".to_owned(), String::new()))
            }
            Ok(_) => None,
        };
        traces::end(span, error);
        Some(called)
    }
}

impl Server {
    fn new(config: &McpServerConfig, stop: &CancellationToken) -> Arc<Server> {
        Arc::new(Server {
            config: config.clone(),
            live: RwLock::new(None),
            modern: RwLock::new(None),
            reconnected: tokio::sync::watch::channel(()).0,
            sessions: Arc::default(),
            stop: stop.child_token(),
        })
    }

    fn live(&self) -> Option<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The face `era` is served by: the discovered one for a sessionless client when the
    /// server has it, the session one otherwise.
    fn live_for(&self, era: Era) -> Option<Live> {
        if era == Era::Stateless {
            let modern = self
                .modern
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if modern.is_some() {
                return modern;
            }
        }
        self.live()
    }

    /// Replaces the connection state (the session face and the discovered one, which is never
    /// up without it); tells sessions when the offered tools or prompts changed.
    fn set_live(
        &self,
        (live, modern): (Option<Live>, Option<Live>),
        changed: &broadcast::Sender<Listing>,
    ) {
        let mut slot = self.live.write().unwrap_or_else(|e| e.into_inner());
        let mut modern_slot = self.modern.write().unwrap_or_else(|e| e.into_inner());
        let tools_of = |live: Option<&Live>| live.map(|l| (l.tools.clone(), l.extras.clone()));
        let prompts_of = |live: Option<&Live>| live.map(|l| l.prompts.clone());
        let tools_changed = tools_of(slot.as_ref()) != tools_of(live.as_ref())
            || tools_of(modern_slot.as_ref()) != tools_of(modern.as_ref());
        let prompts_changed = prompts_of(slot.as_ref()) != prompts_of(live.as_ref())
            || prompts_of(modern_slot.as_ref()) != prompts_of(modern.as_ref());
        let up = live.is_some();
        *modern_slot = modern.filter(|_| up);
        *slot = live;
        drop(modern_slot);
        drop(slot);
        if up {
            self.reconnected.send_replace(());
        } else {
            // A server that is down has no sessions: their calls end now, not at call_timeout.
            self.sessions.close_all();
        }
        if tools_changed {
            let _ = changed.send(Listing::Tools);
        }
        if prompts_changed {
            let _ = changed.send(Listing::Prompts);
        }
    }

    /// Drops the connection `broken` (unless a newer one replaced it) and wakes the supervisor.
    fn fail(&self, broken: &Live, changed: &broadcast::Sender<Listing>) {
        let current = self.live();
        if current.is_some_and(|l| Arc::ptr_eq(&l.failed, &broken.failed)) {
            self.set_live((None, None), changed);
        }
        broken.failed.notify_one();
    }

    /// Runs a call on `holder`'s session. A session the server forgot (it restarted) is
    /// replaced once the supervisor has reconnected and listed again, and the call retried:
    /// the server never saw it.
    async fn call(
        &self,
        mut live: Live,
        (holder, downstream): (&Holder, &Peer<RoleServer>),
        tool: String,
        mut request: CallToolRequestParams,
        client: &reqwest::Client,
        changed: &broadcast::Sender<Listing>,
    ) -> Result<CallToolResponse, ErrorData> {
        let gateway_name = std::mem::replace(&mut request.name, Cow::Owned(tool));
        let name = &self.config.name;
        let mut retried = false;
        loop {
            let upstream = match self.session(&live, (holder, downstream), client).await {
                Ok(upstream) => upstream,
                Err(refusal) => return Ok(refusal),
            };
            let (peer, tap) = (&upstream.peer, &upstream.tap);
            let call = verbatim::call_tool(peer, tap, request.clone(), downstream, live.stateless);
            match self.within_call_timeout(call).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(ServiceError::McpError(error))) => return Err(error),
                Ok(Err(error)) if expired(&error) && !retried => {
                    tracing::info!(server = %name, "MCP server forgot the session; reconnecting");
                    retried = true;
                    self.sessions.forget(holder);
                    self.fail(&live, changed);
                    match self.recovered(&live, holder.era()).await {
                        Some(next) if next.tools.iter().any(|t| t.name == gateway_name) => {
                            live = next;
                        }
                        Some(_) => return Ok(self.gone(&gateway_name)),
                        None => return Ok(self.unavailable()),
                    }
                }
                // Each request to a stateless server is a connection of its own: one that failed
                // (an answer rmcp cannot read, say) says nothing of the next. Pings tell whether
                // the server is there.
                Ok(Err(error)) if is_transport(&error) && live.stateless => {
                    tracing::warn!(server = %name, %error, "MCP server failed a tool call");
                    return Ok(tool_error(format!(
                        "The MCP server '{name}' did not answer the call in MCP's terms."
                    )));
                }
                Ok(Err(error)) if is_transport(&error) => {
                    tracing::warn!(server = %name, %error, "MCP server failed during a tool call");
                    self.sessions.forget(holder);
                    return Ok(self.unavailable());
                }
                Ok(Err(error)) => {
                    return Ok(tool_error(format!(
                        "The MCP server '{name}' did not complete the call: {error}"
                    )));
                }
                Err(timeout) => {
                    return Ok(tool_error(format!(
                        "The MCP server '{name}' did not answer within {timeout:?} (its call_timeout)."
                    )));
                }
            }
        }
    }

    async fn within_call_timeout<T>(
        &self,
        call: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<Result<T, ServiceError>, Duration> {
        let timeout = self.config.call_timeout.0;
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| timeout)
    }

    /// The connection that replaces `broken`, once the supervisor has made it and listed its
    /// tools; `None` if none came within the server's timeout.
    async fn recovered(&self, broken: &Live, era: Era) -> Option<Live> {
        let mut reconnected = self.reconnected.subscribe();
        let wait = async {
            loop {
                if let Some(live) = self.live_for(era)
                    && !Arc::ptr_eq(&live.failed, &broken.failed)
                {
                    return live;
                }
                if reconnected.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(self.config.timeout.0, wait).await.ok()
    }

    fn gone(&self, tool: &str) -> CallToolResponse {
        tool_error(format!(
            "The MCP server '{}' restarted and no longer offers the tool '{tool}'.",
            self.config.name
        ))
    }

    fn unavailable_error(&self) -> ErrorData {
        ErrorData::internal_error(
            format!(
                "The MCP server '{}' is unavailable; its prompts return when it recovers.",
                self.config.name
            ),
            None,
        )
    }

    fn unavailable(&self) -> CallToolResponse {
        tool_error(format!(
            "The MCP server '{}' is unavailable; its tools return when it recovers.",
            self.config.name
        ))
    }
}

/// A lock of the servers' bookkeeping; a panic elsewhere leaves nothing half-written in it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the server answered that it does not know the session (HTTP 404): it restarted.
fn expired(error: &ServiceError) -> bool {
    let ServiceError::TransportSend(error) = error else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.error.as_ref());
    while let Some(current) = source {
        if matches!(
            current.downcast_ref::<StreamableHttpError<reqwest::Error>>(),
            Some(StreamableHttpError::SessionExpired)
        ) {
            return true;
        }
        source = current.source();
    }
    false
}

/// Whether the connection itself broke, as opposed to the server refusing one request.
fn is_transport(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::TransportSend(_) | ServiceError::TransportClosed
    )
}

fn tool_error(text: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text)]).into()
}
