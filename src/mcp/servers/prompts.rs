//! What upstream servers offer besides tools: their prompts, merged under each server's prefix,
//! got and their arguments completed on the client's own upstream session; and a client's log
//! level and changed roots passed on to them.

use std::sync::Arc;

use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse, Prompt,
    Reference,
};
// MCP logging: SEP-2577 deprecates it, but 2025-11-25 clients and servers speak it.
#[allow(deprecated)]
use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use rmcp::service::ServiceError;
use rmcp::{ErrorData, Peer, RoleServer};

use super::{Era, Holder, Live, McpServers, Server, expired, is_transport};

impl McpServers {
    /// The prompts of every server that is up, as `era` sees them; where two offer a name,
    /// the first configured.
    pub fn prompts(&self, era: Era) -> Vec<Prompt> {
        self.offered(era, |live| &live.prompts, |prompt| &prompt.name)
    }

    /// Gets a prompt from the server that offers it, on `holder`'s upstream session; `None`
    /// when no server offers the name.
    pub async fn get_prompt(
        &self,
        holder: &Holder,
        downstream: &Peer<RoleServer>,
        mut request: GetPromptRequestParams,
    ) -> Option<Result<GetPromptResponse, ErrorData>> {
        let (server, live) = self.prompt_owner(holder.era(), &request.name)?;
        let prefix = server.config.tool_prefix();
        request.name = request.name.strip_prefix(prefix.as_ref())?.to_owned();
        let upstream = match server
            .session(&live, (holder, downstream), &self.client)
            .await
        {
            Ok(upstream) => upstream,
            Err(_) => return Some(Err(server.unavailable_error())),
        };
        let peer = &upstream.peer;
        let got = Box::pin(server.within_call_timeout(peer.get_prompt_once(request))).await;
        Some(server.answered(holder, got, "a prompt"))
    }

    /// Completes an argument of a server's prompt or resource template on `holder`'s upstream
    /// session; `None` when no server offers it.
    pub async fn complete(
        &self,
        (holder, downstream): (&Holder, &Peer<RoleServer>),
        mut request: CompleteRequestParams,
    ) -> Option<Result<CompleteResult, ErrorData>> {
        let (server, live) = match &mut request.r#ref {
            Reference::Prompt(prompt) => {
                let (server, live) = self.prompt_owner(holder.era(), &prompt.name)?;
                let prefix = server.config.tool_prefix();
                prompt.name = prompt.name.strip_prefix(prefix.as_ref())?.to_owned();
                (server, live)
            }
            Reference::Resource(template) => self.template_owner(holder.era(), &template.uri)?,
            _ => return None,
        };
        let upstream = match server
            .session(&live, (holder, downstream), &self.client)
            .await
        {
            Ok(upstream) => upstream,
            Err(_) => return Some(Err(server.unavailable_error())),
        };
        let peer = &upstream.peer;
        let done = Box::pin(server.within_call_timeout(peer.complete(request))).await;
        Some(server.answered(holder, done, "a completion"))
    }

    /// The server that lists the resource template `uri_template` (the first configured).
    fn template_owner(&self, era: Era, uri_template: &str) -> Option<(Arc<Server>, Live)> {
        self.all().iter().find_map(|server| {
            let live = server.live_for(era)?;
            let offers = live.resources.as_ref()?.offers(uri_template);
            offers.then(|| (server.clone(), live))
        })
    }

    /// The server that offers the prompt `name` (the first configured, if several do).
    fn prompt_owner(&self, era: Era, name: &str) -> Option<(Arc<Server>, Live)> {
        self.offering_server((era, name), |live| &live.prompts, |prompt| &prompt.name)
    }

    /// Passes a client's log level on to its open upstream sessions (a session opened later
    /// keeps its server's default).
    #[allow(deprecated)]
    pub async fn set_level(&self, holder: &Holder, level: LoggingLevel) {
        for server in self.all().iter() {
            if let Some(peer) = server.sessions.opened(holder) {
                let set = peer.set_level(SetLevelRequestParams::new(level));
                if let Err(error) = server.within_call_timeout(set).await {
                    tracing::debug!(server = %server.config.name, ?error, "log level not set");
                }
            }
        }
    }
}

impl McpServers {
    /// Tells `holder`'s open upstream sessions that its client's roots changed.
    #[allow(deprecated)]
    pub async fn roots_changed(&self, holder: &Holder) {
        for server in self.all().iter() {
            if let Some(peer) = server.sessions.opened(holder) {
                let _ = peer.notify_roots_list_changed().await;
            }
        }
    }
}

impl Server {
    /// A request's answer, or the error the client gets: the server's own, "unavailable" when
    /// the session broke (it is dropped), or its `call_timeout` run out.
    pub(super) fn answered<T>(
        &self,
        holder: &Holder,
        got: Result<Result<T, ServiceError>, std::time::Duration>,
        what: &str,
    ) -> Result<T, ErrorData> {
        match got {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(ServiceError::McpError(error))) => Err(error),
            Ok(Err(error)) => {
                if is_transport(&error) || expired(&error) {
                    self.sessions.forget(holder);
                }
                tracing::warn!(server = %self.config.name, %error, "{what} was not got");
                Err(self.unavailable_error())
            }
            Err(timeout) => Err(ErrorData::internal_error(
                format!(
                    "The MCP server '{}' did not answer within {timeout:?} (its call_timeout).",
                    self.config.name
                ),
                None,
            )),
        }
    }
}
