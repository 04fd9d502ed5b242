//! What an upstream session hears for its client, passed on: a call's progress to the client that
//! made it, log messages to the client whose session it is; and the call that arranges it.
//!
//! rmcp gives every request a progress token of its own, so a call is sent here with its handle
//! in hand: the token rmcp chose maps back to the client's own, and two clients' tokens (often
//! both `1`) never meet.

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam,
    ClientRequest, ProgressNotificationParam, ProgressToken, RequestId, RequestParamsMeta,
    ServerResult,
};
// MCP logging: SEP-2577 deprecates it, but 2025-11-25 clients and servers speak it.
#[allow(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::{Peer, RoleClient, RoleServer};

/// One upstream session's client, and the calls on it waiting for progress.
#[derive(Default)]
pub struct Relay {
    /// Where log messages go: the client of the call made last; never set on a connection that
    /// serves several clients.
    client: Mutex<Option<Peer<RoleServer>>>,
    /// rmcp's progress token of each call running → its client and the client's own token.
    progress: Mutex<HashMap<ProgressToken, (Peer<RoleServer>, ProgressToken)>>,
}

impl Relay {
    pub async fn progress(&self, mut params: ProgressNotificationParam) {
        let call = lock(&self.progress).get(&params.progress_token).cloned();
        if let Some((client, theirs)) = call {
            params.progress_token = theirs;
            let _ = client.notify_progress(params).await;
        }
    }

    #[allow(deprecated)]
    pub async fn log(&self, params: LoggingMessageNotificationParam) {
        let client = lock(&self.client).clone();
        if let Some(client) = client {
            let _ = client.notify_logging_message(params).await;
        }
    }

    /// Makes `client` the one this session's log messages go to.
    pub fn logs_to(&self, client: &Peer<RoleServer>) {
        *lock(&self.client) = Some(client.clone());
    }
}

/// Calls a tool on `peer` for `client`, relaying the call's progress through `relay`. Dropped
/// before the answer (the client cancelled), the call is cancelled upstream too.
pub async fn call_tool(
    peer: &Peer<RoleClient>,
    relay: &Relay,
    client: &Peer<RoleServer>,
    params: CallToolRequestParams,
) -> Result<CallToolResponse, ServiceError> {
    let theirs = params.progress_token();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = peer
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await?;
    let ours = handle.progress_token.clone();
    if let Some(theirs) = theirs {
        lock(&relay.progress).insert(ours.clone(), (client.clone(), theirs));
    }
    let mut pending = Pending {
        peer: peer.clone(),
        id: Some(handle.id.clone()),
    };
    let answer = handle.await_response().await;
    pending.id = None;
    lock(&relay.progress).remove(&ours);
    match answer? {
        ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
        ServerResult::InputRequiredResult(result) => Ok(CallToolResponse::InputRequired(result)),
        ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
        _ => Err(ServiceError::UnexpectedResponse),
    }
}

/// A request not answered yet; dropped so, it is cancelled upstream.
struct Pending {
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let reason = Some("the client cancelled the call".to_owned());
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(Some(id), reason))
                    .await;
            });
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
