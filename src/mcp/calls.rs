//! A session's tool calls: the caller's key checked, whose upstream sessions the call uses, and
//! the call run by the gateway's own tool of that name or forwarded to the upstream server.

use rmcp::model::{CallToolRequestParams, CallToolResponse, ResultType};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer};

use super::servers::{ENVELOPE, Holder};
use super::session::{Session, session_id, unknown_tool};
use crate::auth::Caller;

impl Session {
    /// Whose upstream sessions a request of `caller` uses: its MCP session's, or, without one,
    /// its key's.
    pub(super) fn holder(&self, caller: &Caller, context: &RequestContext<RoleServer>) -> Holder {
        match session_id(&context.extensions) {
            Some(id) => Holder::Session(self.upstream.get_or_init(|| id).clone()),
            None => Holder::Key(caller.name.clone()),
        }
    }

    /// A tool call: the caller's key checked, then run until done or cancelled by the client.
    pub(super) async fn call_tool_checked(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // rmcp keeps the client's `_meta` beside the params: it goes upstream with a forwarded
        // call in the params' own, where the call also finds the client's progress token (rmcp
        // sends a token of its own upstream instead).
        // The 2026-07-28 envelope (`io.modelcontextprotocol/*`) describes the client's own
        // exchange with the gateway, not the gateway's with the server: it stays here, but for
        // what the client says of itself (capabilities, log level), which a stateless server
        // is told in place of the gateway's connection's.
        let theirs = context.meta.0.0.iter();
        let passed = theirs.filter(|(key, _)| {
            !key.starts_with("io.modelcontextprotocol/") || ENVELOPE.contains(&key.as_str())
        });
        let passed: serde_json::Map<String, serde_json::Value> = passed
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !passed.is_empty() {
            let meta = request.meta.get_or_insert_default();
            meta.0.0.extend(passed);
        }
        let caller = self.caller(&context)?;
        let name = &request.name;
        let allowed = caller.may_use_tool(name)
            || (self.shared.catalog.changed_elsewhere().await && caller.may_use_tool(name));
        if !allowed {
            return Err(unknown_tool(name));
        }
        if let Some(retired) = self.shared.lifecycle_of_call(&caller, &request.name) {
            return Ok(CallToolResponse::Complete(retired));
        }
        // A context write is not cut short: dropped mid-way, its file would change while the
        // store's memory and subscribers never heard of it. It is quick anyway.
        if self
            .shared
            .context_tools
            .iter()
            .any(|t| t.tool.name == request.name)
        {
            let holder = Holder::Key(None);
            return self
                .dispatch(&caller, (&holder, &context.peer), request)
                .await;
        }
        let holder = self.holder(&caller, &context);
        // A client that cancels the call (or goes away) stops it here: the service's request,
        // or the upstream server's call, is dropped rather than run to its timeout.
        tokio::select! {
            called = self.dispatch(&caller, (&holder, &context.peer), request) => called,
            () = context.ct.cancelled() => Err(ErrorData::internal_error(
                "the call was cancelled by the client",
                None,
            )),
        }
    }

    /// Runs a call the caller may make: served here, or forwarded to an upstream server. The
    /// gateway's own tools come first: a server offering its names unchanged cannot shadow them.
    async fn dispatch(
        &self,
        caller: &Caller,
        (holder, client): (&Holder, &Peer<RoleServer>),
        request: CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        let shared = &self.shared;
        let name = request.name.as_ref();
        let configured = shared.http_tools.load_full();
        let arguments = || request.arguments.clone().unwrap_or_default();
        let result = if let Some(tool) = configured.iter().find(|t| t.tool.name == name) {
            tool.call(&shared.client, arguments()).await
        } else if let Some(tool) = shared.context_tools.iter().find(|t| t.tool.name == name) {
            tool.call(&shared.context, caller, arguments()).await
        } else if let Some(tool) = shared.registry.get(name) {
            tool.call(&shared.client, arguments()).await
        } else if let Some(forwarded) = shared.servers.call(holder, client, request.clone()).await {
            return forwarded.map(|mut response| {
                // A session-era server sends no `resultType`, which 2026-07-28 clients require;
                // rmcp takes it out again for session-era peers.
                if let CallToolResponse::Complete(result) = &mut response {
                    result.result_type.get_or_insert(ResultType::COMPLETE);
                }
                response
            });
        } else {
            return Err(unknown_tool(name));
        };
        Ok(result.into())
    }
}
