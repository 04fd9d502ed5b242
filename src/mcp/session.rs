//! One MCP session: the `ServerHandler` rmcp drives. Tools, prompts, resources (its own
//! `resources` module) and what the upstream servers offer, each filtered by the caller's globs.
//!
//! The caller comes from the request itself (the auth layer put it there), so every request is
//! judged by the key that sent it, and a session stays with the key that opened it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    Reference, ResultType, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
// MCP logging: SEP-2577 deprecates it, but 2025-11-25 clients and servers speak it.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Shared;
use super::feed::{Feed, Outlet};
use super::outlets::{ListenOutlet, SessionOutlet};
use super::servers::{Era, Holder, original_uri};
use crate::auth::Caller;

/// Resources listed per page.
pub(super) const PAGE: usize = 100;

/// How long a client may keep the resource template list (2026-07-28 `ttlMs`): it is fixed for
/// the life of the process. Tool lists, resource lists and documents change at any moment and
/// are announced when they do, so they are fresh for 0 ms.
pub(super) const TEMPLATES_TTL_MS: u64 = 3_600_000;

/// A session's handler; rmcp makes one per session and drops it when the session ends.
pub struct Session {
    pub(super) shared: Arc<Shared>,
    /// The name of the key that opened the session (`None`: an open gateway).
    owner: OnceLock<Option<String>>,
    pub(super) subscribed: Arc<Mutex<HashSet<String>>>,
    /// Set once the session hears of changes.
    feeding: OnceLock<()>,
    /// The session's id, once a request named it: the upstream sessions and tasks opened on its
    /// behalf end with it.
    pub(super) upstream: OnceLock<String>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(id) = self.upstream.take() {
            let mut clients = self
                .shared
                .clients
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            clients.remove(&id);
            drop(clients);
            self.shared.servers.release(&Holder::Session(id));
        }
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        let stop = CancellationToken::new();
        Session {
            shared,
            owner: OnceLock::new(),
            subscribed: Arc::default(),
            feeding: OnceLock::new(),
            upstream: OnceLock::new(),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        }
    }

    /// The key behind this request; it must be the key that opened the session.
    pub(super) fn caller(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Arc<Caller>, ErrorData> {
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("the request carries no caller", None))?;
        match self.owner.get() {
            Some(owner) if *owner != caller.name => Err(ErrorData::invalid_request(
                "This session was opened with another API key.",
                None,
            )),
            _ => Ok(caller),
        }
    }

    /// The namespace and key of a `context://` URI the caller may use.
    pub(super) fn document_of(
        &self,
        caller: &Caller,
        uri_text: &str,
    ) -> Result<(String, String), ErrorData> {
        // A URI that is no context document names nothing the gateway has.
        let (namespace, key) = parse_uri(uri_text).ok_or_else(|| not_found(uri_text))?;
        if !caller.may_use_context(&namespace) {
            return Err(ErrorData::invalid_params(
                format!("This API key may not use the context namespace '{namespace}'."),
                None,
            ));
        }
        Ok((namespace, key))
    }
}

/// A tool that does not exist and one the key may not use are answered alike.
pub(super) fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("The tool '{name}' does not exist or this API key may not use it."),
        None,
    )
}

/// Resource not found, naming the URI in `data` as SEP-2164 asks.
pub(super) fn not_found(uri: &str) -> ErrorData {
    let message = format!(
        "No resource at {uri}: the gateway's own are context://{{namespace}}/{{key}}, and no \
         upstream server this key may use has it"
    );
    ErrorData::resource_not_found(message, Some(serde_json::json!({ "uri": uri })))
}

pub(super) fn lock(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

/// `context://{namespace}/{key}`; names need no escaping (see `context::valid_name`).
pub fn uri(namespace: &str, key: &str) -> String {
    format!("context://{namespace}/{key}")
}

pub(super) fn parse_uri(uri: &str) -> Option<(String, String)> {
    let (namespace, key) = uri.strip_prefix("context://")?.split_once('/')?;
    let valid = crate::context::valid_name;
    (valid(namespace) && valid(key)).then(|| (namespace.to_owned(), key.to_owned()))
}

/// Who may cache a result a caller got (2026-07-28 `cacheScope`): with keys, what a list or a
/// read holds depends on the key, so only that client may keep it.
fn scope(caller: &Caller) -> CacheScope {
    match caller.name {
        None => CacheScope::Public,
        Some(_) => CacheScope::Private,
    }
}

/// Whether the request speaks 2026-07-28 or later, whose results carry caching hints.
pub(super) fn modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| !v.has_initialize())
}

/// `ttlMs` and `cacheScope` of a result that may change at any moment (it is announced when it
/// does): fresh for 0 ms, kept by whom the caller's key allows. Nothing for session-era peers.
pub(super) fn fresh_hints(
    context: &RequestContext<RoleServer>,
    caller: &Caller,
) -> (Option<u64>, Option<CacheScope>) {
    if modern(context) {
        (Some(0), Some(scope(caller)))
    } else {
        (None, None)
    }
}

/// The session id a request names in `Mcp-Session-Id`.
pub(super) fn session_id(extensions: &rmcp::model::Extensions) -> Option<String> {
    extensions
        .get::<http::request::Parts>()?
        .headers
        .get(&super::SESSION_ID)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

impl ServerHandler for Session {
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        // Prompts come from upstream servers; the list is empty (and answered) without any.
        let capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_logging()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(rmcp::model::Implementation::new(
                "switchboard",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Tools of the services behind Switchboard, and a shared context store: \
                 JSON documents at context://{namespace}/{key}, also reachable with the \
                 context_* tools.",
            )
    }

    /// Every revision rmcp knows: the session-based ones and the stateless 2026-07-28.
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2026_07_28))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let caller = self.caller(&context)?;
        let _ = self.owner.set(caller.name.clone());
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(id) = session_id(&context.extensions) {
            let id = self.upstream.get_or_init(|| id);
            let mut clients = self
                .shared
                .clients
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            clients.insert(id.clone(), context.peer.clone());
        }
        let caller = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>())
            .cloned();
        let Some(caller) = caller else { return };
        if self.feeding.set(()).is_err() {
            return;
        }
        let feed = Feed::new(&self.shared, caller);
        let shared = self
            .shared
            .sessions
            .clone()
            .zip(session_id(&context.extensions));
        let outlet = SessionOutlet {
            peer: context.peer,
            subscribed: self.subscribed.clone(),
            shared,
        };
        let stop = self.stop.clone();
        tokio::spawn(async move { feed.pump(&outlet, &stop).await });
    }

    /// Tools list changes, resource list changes and updates of `context://` documents; which
    /// documents a key may hear of is decided per change, by its `context:` globs.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Other URIs are the upstream servers' (their 2026-07-28 faces are listened to).
        let upstream = self.shared.servers.any();
        let documents = requested.resource_subscriptions.as_ref().map(|uris| {
            let valid = uris
                .iter()
                .filter(|u| parse_uri(u).is_some() || (upstream && u.contains(':')));
            valid.cloned().collect()
        });
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.resource_subscriptions = documents;
        Some(accepted)
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = self.caller(subscription.request_context())?;
        let outlet = ListenOutlet(subscription.sink());
        let upstream = outlet.subscribed().await.into_iter();
        let upstream: Vec<String> = upstream
            .filter(|uri| parse_uri(uri).is_none() && caller.may_use_resource(&original_uri(uri)))
            .collect();
        let mut updates = self.shared.servers.listen_updates(upstream);
        let forwarded = async {
            while let Some(uri) = updates.recv().await {
                if !outlet.resource_updated(uri).await {
                    break;
                }
            }
            std::future::pending::<()>().await;
        };
        let feed = Feed::new(&self.shared, caller);
        tokio::select! {
            () = subscription.cancelled() => {}
            () = feed.pump(&outlet, &self.stop) => {}
            () = forwarded => {}
        }
        Ok(())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let shared = &self.shared;
        let configured = shared.all_tools().into_iter().find(|t| t.name == name);
        configured
            .or_else(|| shared.registry.get(name).map(|t| t.tool.clone()))
            .or_else(|| {
                let eras = [Era::Session, Era::Stateless];
                let mut tools = eras.into_iter().flat_map(|era| shared.servers.tools(era));
                tools.find(|t| t.name == name)
            })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&context)?;
        let mut tools: Vec<Tool> = self.shared.all_tools();
        tools.extend(self.shared.registry.tools());
        let own: HashSet<_> = tools.iter().map(|t| t.name.clone()).collect();
        let era = self.holder(&caller, &context).era();
        let upstream = self.shared.servers.tools(era).into_iter();
        tools.extend(upstream.filter(|t| !own.contains(&t.name)));
        tools.retain(|tool| caller.may_use_tool(&tool.name));
        self.shared.apply_lifecycle(&mut tools);
        let mut result = ListToolsResult::with_all_items(tools);
        (result.ttl_ms, result.cache_scope) = fresh_hints(&context, &caller);
        Ok(result)
    }

    /// Completions of an upstream prompt's arguments, from its server; none for anything else
    /// (the gateway's own resource template names documents any key may not see).
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let caller = self.caller(&context)?;
        let allowed = match &request.r#ref {
            Reference::Prompt(prompt) => caller.may_use_prompt(&prompt.name),
            Reference::Resource(template) => caller.may_use_resource(&template.uri),
            _ => false,
        };
        if !allowed {
            return Ok(CompleteResult::default());
        }
        let holder = self.holder(&caller, &context);
        let completed = self
            .shared
            .servers
            .complete((&holder, &context.peer), request);
        let mut done = match completed.await {
            Some(done) => done?,
            None => CompleteResult::default(),
        };
        // As for a tool's result: 2026-07-28 clients require `resultType`.
        done.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(done)
    }

    /// The client's roots changed: its upstream sessions are told (their servers list them anew).
    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        if let Some(id) = self.upstream.get() {
            self.shared
                .servers
                .roots_changed(&Holder::Session(id.clone()))
                .await;
        }
    }

    /// The client's log level, passed on to its upstream sessions (the gateway itself logs to
    /// its operator, not to MCP clients).
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&context)?;
        let holder = self.holder(&caller, &context);
        self.shared.servers.set_level(&holder, request.level).await;
        Ok(())
    }

    /// The upstream servers' prompts, each key seeing those its `prompts:` globs allow.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let caller = self.caller(&context)?;
        let era = self.holder(&caller, &context).era();
        let mut prompts = self.shared.servers.prompts(era);
        prompts.retain(|prompt| caller.may_use_prompt(&prompt.name));
        let mut result = ListPromptsResult::with_all_items(prompts);
        (result.ttl_ms, result.cache_scope) = fresh_hints(&context, &caller);
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let unknown = || {
            ErrorData::invalid_params(
                format!(
                    "The prompt '{}' does not exist or this API key may not use it.",
                    request.name
                ),
                None,
            )
        };
        if !caller.may_use_prompt(&request.name) {
            return Err(unknown());
        }
        let holder = self.holder(&caller, &context);
        let got = (self.shared.servers).get_prompt(&holder, &context.peer, request.clone());
        let mut prompt = got.await.ok_or_else(unknown)??;
        // As for a tool's result: 2026-07-28 clients require `resultType`.
        if let GetPromptResponse::Complete(result) = &mut prompt {
            result.result_type.get_or_insert(ResultType::COMPLETE);
        }
        Ok(prompt)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let tool = request.name.clone();
        let parts = context.extensions.get::<http::request::Parts>();
        let span = super::tool_span(&tool, parts);
        let who = self.caller(&context).ok().map(|caller| {
            let id = parts.and_then(|p| p.headers.get(crate::telemetry::REQUEST_ID.as_str()));
            let id = id.and_then(|v| v.to_str().ok()).map(str::to_owned);
            (caller.name.clone(), id)
        });
        let checked = self.call_tool_checked(request, context);
        let called = crate::resilience::in_span(span.clone(), checked).await;
        let ended = super::Ended::of(&called);
        self.shared.audit_call(&tool, who, ended, started, span);
        said("tool call", &tool, called)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.list_resources_checked(request, context).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.templates_checked(request, context).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        let read = self.read_resource_checked(request, context).await;
        said("resource read", &uri, read)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri.clone();
        let subscribed = self.subscribe_checked(request, context).await;
        said("subscription", &uri, subscribed)
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.unsubscribe_checked(request, context).await
    }
}

/// A refusal the client caused (an unknown tool or document, bad arguments, a namespace outside
/// its key): said in words, at debug. rmcp's own warning with the error's debug form is filtered
/// out (telemetry).
fn said<T>(what: &str, subject: &str, result: Result<T, ErrorData>) -> Result<T, ErrorData> {
    if let Err(error) = &result {
        tracing::debug!(
            subject,
            code = error.code.0,
            "{what} refused: {}",
            error.message
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_uris_round_trip_and_bad_ones_are_refused() {
        assert_eq!(
            parse_uri(&uri("team-a", "plan.v2")),
            Some(("team-a".into(), "plan.v2".into()))
        );
        for bad in [
            "context://ns",
            "context://ns/a/b",
            "file://ns/k",
            "context://../k",
            "context:///k",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad}");
        }
    }
}
