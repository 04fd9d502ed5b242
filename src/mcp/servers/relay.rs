//! What an upstream session hears for its client, passed on: log messages and task status
//! notifications go to the client whose session it is.
//!
//! Progress is not relayed yet: rmcp replaces a call's progress token with its own and hands its
//! notifications to spawned tasks, so one could reach the client after the call's answer, when
//! the client no longer listens for it; keeping the order needs the raw messages our transports
//! see.

use std::sync::Mutex;

// MCP logging: SEP-2577 deprecates it, but 2025-11-25 clients and servers speak it.
#[allow(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::model::{CustomNotification, ServerNotification};
use rmcp::{Peer, RoleServer};

use super::lock;
use serde_json::Value;

/// One upstream session's client.
#[derive(Default)]
pub struct Relay {
    /// Where log messages go: the client of the call made last; never set on a connection that
    /// serves several clients.
    client: Mutex<Option<Peer<RoleServer>>>,
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
        let Some(client) = lock(&self.client).clone() else {
            return;
        };
        let notification = CustomNotification::new(method, params);
        tokio::spawn(async move {
            let notification = ServerNotification::CustomNotification(notification);
            let _ = client.send_notification(notification).await;
        });
    }

    /// Makes `client` the one this session's log messages go to.
    pub fn logs_to(&self, client: &Peer<RoleServer>) {
        *lock(&self.client) = Some(client.clone());
    }
}
