//! Where a client's changes are delivered: a 2025 session's own stream (its subscriptions pick
//! the document updates it hears) or a 2026-07-28 `subscriptions/listen` stream.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{SubscriptionSendError, SubscriptionSink};
use rmcp::{Peer, RoleServer};

use super::feed::Outlet;
use super::shared_sessions::SharedSessions;

/// A 2025 session's own stream, where the session's subscriptions decide which document
/// updates it hears.
pub struct SessionOutlet {
    pub peer: Peer<RoleServer>,
    pub subscribed: Arc<Mutex<HashSet<String>>>,
    /// With shared sessions: the session's id and where its subscriptions through other
    /// replicas are.
    pub shared: Option<(Arc<SharedSessions>, String)>,
}

impl Outlet for SessionOutlet {
    async fn tools_changed(&self) -> bool {
        self.peer.notify_tool_list_changed().await.is_ok()
    }
    async fn prompts_changed(&self) -> bool {
        self.peer.notify_prompt_list_changed().await.is_ok()
    }
    async fn resources_changed(&self) -> bool {
        self.peer.notify_resource_list_changed().await.is_ok()
    }
    async fn resource_updated(&self, uri: String) -> bool {
        let notice = ResourceUpdatedNotificationParam::new(uri);
        self.peer.notify_resource_updated(notice).await.is_ok()
    }
    async fn subscribed(&self) -> Vec<String> {
        let mut all: HashSet<String> = self
            .subscribed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((sessions, id)) = &self.shared {
            // Redis away: what this replica heard of still counts.
            all.extend(sessions.subscriptions(id).await.unwrap_or_default());
        }
        all.into_iter().collect()
    }
}

/// A 2026-07-28 `subscriptions/listen` stream; its sink drops what the filter did not accept.
pub struct ListenOutlet<'a>(pub &'a SubscriptionSink);

impl ListenOutlet<'_> {
    fn alive(sent: Result<(), SubscriptionSendError>) -> bool {
        matches!(
            sent,
            Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_))
        )
    }
}

impl Outlet for ListenOutlet<'_> {
    async fn tools_changed(&self) -> bool {
        Self::alive(self.0.notify_tool_list_changed().await)
    }
    async fn prompts_changed(&self) -> bool {
        Self::alive(self.0.notify_prompt_list_changed().await)
    }
    async fn resources_changed(&self) -> bool {
        Self::alive(self.0.notify_resource_list_changed().await)
    }
    async fn resource_updated(&self, uri: String) -> bool {
        Self::alive(self.0.notify_resource_updated(uri).await)
    }
    async fn subscribed(&self) -> Vec<String> {
        self.0
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default()
    }
}
