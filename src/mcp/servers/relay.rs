//! What an upstream session hears for a client, passed on: log messages and task status
//! notifications to the client whose session it is, a call's progress to the client that made
//! the call, and the server's requests (sampling, elicitation, roots) to the client whose session
//! it is, their answers back.
//!
//! Notifications heard whole ([`super::verbatim`]) leave through one queue per connection, in the
//! order the server sent them; a call's answer waits for the queue to pass on what came before
//! it, so a client never hears a call's progress after its result.

use std::sync::{Mutex, OnceLock};

// MCP logging: SEP-2577 deprecates it, but 2025-11-25 clients and servers speak it.
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientResult, CustomNotification,
    ProgressNotification, ProgressNotificationParam, ServerNotification, ServerRequest,
};
#[allow(deprecated)]
use rmcp::model::{LoggingMessageNotification, LoggingMessageNotificationParam};
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::{ErrorData, Peer, RoleServer};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::lock;

/// Notifications waiting for their client; past this, new ones are dropped (a client that
/// cannot keep up loses progress ticks, never a call's answer).
const QUEUED: usize = 1024;

/// One upstream session's clients.
#[derive(Default)]
pub struct Relay {
    /// Where log messages and task statuses go: the client of the call made last; never set on a
    /// connection that serves several clients.
    client: Mutex<Option<Peer<RoleServer>>>,
    /// Started with the first notification passed on.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

enum Queued {
    Send(Peer<RoleServer>, Box<ServerNotification>),
    /// Answered once everything queued before it was sent.
    Flush(oneshot::Sender<()>),
}

impl Relay {
    #[allow(deprecated)]
    pub async fn log(&self, params: LoggingMessageNotificationParam) {
        let client = lock(&self.client).clone();
        if let Some(client) = client {
            let _ = client.notify_logging_message(params).await;
        }
    }

    /// Passes a notification the typed model cannot carry whole (a 2025-11-25 task's status) to
    /// this session's client.
    pub fn notify(&self, method: &str, params: Option<Value>) {
        let client = lock(&self.client).clone();
        if let Some(client) = client {
            self.send_to(&client, method, params);
        }
    }

    /// Passes a log message of a call to its `client`, after everything queued before it.
    #[allow(deprecated)]
    pub fn log_to(&self, client: &Peer<RoleServer>, params: LoggingMessageNotificationParam) {
        let message = LoggingMessageNotification::new(params);
        self.queued(
            client,
            ServerNotification::LoggingMessageNotification(message),
        );
    }

    /// Passes a notification to `client`, after everything queued before it.
    pub fn send_to(&self, client: &Peer<RoleServer>, method: &str, params: Option<Value>) {
        let notification = CustomNotification::new(method, params);
        self.queued(client, ServerNotification::CustomNotification(notification));
    }

    /// Passes a call's progress to `client`, after everything queued before it. Typed, so that
    /// it travels on the stream of the request it reports on.
    pub fn progress_to(&self, client: &Peer<RoleServer>, params: ProgressNotificationParam) {
        let progress = ProgressNotification::new(params);
        self.queued(client, ServerNotification::ProgressNotification(progress));
    }

    fn queued(&self, client: &Peer<RoleServer>, notification: ServerNotification) {
        if let Some(queue) = self.queue()
            && queue
                .try_send(Queued::Send(client.clone(), Box::new(notification)))
                .is_err()
        {
            tracing::debug!("a client is not keeping up; a notification is dropped");
        }
    }

    /// Returns once every notification queued so far has been handed to its client.
    pub async fn flush(&self) {
        let Some(queue) = self.queue.get() else {
            return;
        };
        let (done, sent) = oneshot::channel();
        if queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = sent.await;
        }
    }

    /// Asks this session's client what its server asks (sampling, elicitation, roots) and gives
    /// back the answer; the client is told if the server cancels (`cancelled`) first.
    pub async fn ask(
        &self,
        request: ServerRequest,
        cancelled: &CancellationToken,
    ) -> Result<ClientResult, ErrorData> {
        let client = lock(&self.client).clone();
        let Some(client) = client else {
            let message = "no client of the gateway is there to answer this request";
            return Err(ErrorData::internal_error(message, None));
        };
        let options = PeerRequestOptions::no_options();
        let handle = client.send_cancellable_request(request, options).await;
        let handle = handle.map_err(unanswered)?;
        let id = handle.id.clone();
        tokio::select! {
            answer = handle.await_response() => answer.map_err(unanswered),
            () = cancelled.cancelled() => {
                let reason = Some("the server cancelled its request".to_owned());
                let params = CancelledNotificationParam::new(Some(id), reason);
                let cancel = CancelledNotification::new(params);
                let notice = ServerNotification::CancelledNotification(cancel);
                let _ = client.send_notification(notice).await;
                Err(ErrorData::internal_error("cancelled", None))
            }
        }
    }

    /// Makes `client` the one this session's log messages go to.
    pub fn logs_to(&self, client: &Peer<RoleServer>) {
        *lock(&self.client) = Some(client.clone());
    }

    fn queue(&self) -> Option<&mpsc::Sender<Queued>> {
        if let Some(queue) = self.queue.get() {
            return Some(queue);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.queue.get_or_init(|| {
            let (queue, mut queued) = mpsc::channel(QUEUED);
            runtime.spawn(async move {
                while let Some(next) = queued.recv().await {
                    match next {
                        Queued::Send(client, notification) => {
                            let _ = client.send_notification(*notification).await;
                        }
                        Queued::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
            queue
        }))
    }
}

/// The client's own error, or why it gave none.
fn unanswered(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the client did not answer: {other}"), None),
    }
}
