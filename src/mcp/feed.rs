//! What one MCP client hears of: changes to the tools and context documents its key may see,
//! merged from the registry, the upstream servers and the context store, and delivered to an
//! [`Outlet`] (a 2025 session's stream or a 2026-07-28 `subscriptions/listen` stream).
//!
//! Both protocol eras get the same changes through the same loop; only the way a notice is
//! sent differs, and that is all an `Outlet` says.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::servers::Listing;
use super::session::uri;
use crate::auth::Caller;
use crate::context::Change;

/// A change a client may be told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The tools the key may use changed.
    Tools,
    /// The prompts of the upstream servers changed.
    Prompts,
    /// An upstream server's resources changed.
    Resources,
    /// A document of a namespace the key may use was written or removed; `listed` when the
    /// set of documents changed with it.
    Document { uri: String, listed: bool },
    /// Context changes were missed (the client fell behind): any document may have changed.
    DocumentsLost,
}

/// Where notices go. Each method answers whether the client is still there to hear more.
pub trait Outlet: Send + Sync {
    fn tools_changed(&self) -> impl Future<Output = bool> + Send;
    fn prompts_changed(&self) -> impl Future<Output = bool> + Send;
    fn resources_changed(&self) -> impl Future<Output = bool> + Send;
    /// Sent only for documents the client subscribed to.
    fn resource_updated(&self, uri: String) -> impl Future<Output = bool> + Send;
    /// The documents the client subscribed to (through any replica, when they share sessions).
    fn subscribed(&self) -> impl Future<Output = Vec<String>> + Send;
}

/// The merged change streams, seen through one caller's globs.
pub struct Feed {
    caller: Arc<Caller>,
    registry: broadcast::Receiver<String>,
    servers: broadcast::Receiver<Listing>,
    context: broadcast::Receiver<Change>,
}

impl Feed {
    /// Starts listening now: only changes from here on are delivered.
    pub fn new(shared: &Shared, caller: Arc<Caller>) -> Feed {
        Feed {
            caller,
            registry: shared.registry.changes(),
            servers: shared.servers.changes(),
            context: shared.context.changes(),
        }
    }

    /// The next change this caller may see; `None` once every source has closed.
    pub async fn next(&mut self) -> Option<Notice> {
        loop {
            let notice = tokio::select! {
                change = self.registry.recv() => match change {
                    Ok(name) => self.caller.may_use_tool(&name).then_some(Notice::Tools),
                    // One of the missed changes may concern this key.
                    Err(RecvError::Lagged(_)) => Some(Notice::Tools),
                    Err(RecvError::Closed) => return None,
                },
                change = self.servers.recv() => match change {
                    Ok(Listing::Tools) | Err(RecvError::Lagged(_)) => Some(Notice::Tools),
                    Ok(Listing::Prompts) => Some(Notice::Prompts),
                    Ok(Listing::Resources) => Some(Notice::Resources),
                    Err(RecvError::Closed) => return None,
                },
                change = self.context.recv() => match change {
                    Ok(change) if change.missed => Some(Notice::DocumentsLost),
                    Ok(change) => self.caller.may_use_context(&change.namespace).then(|| {
                        Notice::Document { uri: uri(&change.namespace, &change.key), listed: change.listed }
                    }),
                    Err(RecvError::Lagged(_)) => Some(Notice::DocumentsLost),
                    Err(RecvError::Closed) => return None,
                },
            };
            if notice.is_some() {
                return notice;
            }
        }
    }

    /// Delivers every notice to `outlet` until `stop`, the sources close or the client leaves.
    pub async fn pump(mut self, outlet: &impl Outlet, stop: &CancellationToken) {
        loop {
            let notice = tokio::select! {
                () = stop.cancelled() => return,
                notice = self.next() => notice,
            };
            let Some(notice) = notice else { return };
            if !deliver(outlet, notice).await {
                return;
            }
        }
    }
}

/// Without upstream servers there is nothing to hear from them: wait forever.
async fn deliver(outlet: &impl Outlet, notice: Notice) -> bool {
    match notice {
        Notice::Tools => outlet.tools_changed().await,
        Notice::Prompts => outlet.prompts_changed().await,
        Notice::Resources => outlet.resources_changed().await,
        Notice::Document { uri, listed } => {
            if listed && !outlet.resources_changed().await {
                return false;
            }
            if outlet.subscribed().await.contains(&uri) {
                return outlet.resource_updated(uri).await;
            }
            true
        }
        Notice::DocumentsLost => {
            if !outlet.resources_changed().await {
                return false;
            }
            for uri in outlet.subscribed().await {
                if !outlet.resource_updated(uri).await {
                    return false;
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what it is told.
    #[derive(Default)]
    struct Recorder {
        heard: Mutex<Vec<String>>,
        subscribed: Vec<String>,
    }

    impl Recorder {
        fn push(&self, what: String) -> bool {
            self.heard.lock().unwrap().push(what);
            true
        }
    }

    impl Outlet for Recorder {
        async fn tools_changed(&self) -> bool {
            self.push("tools".into())
        }
        async fn prompts_changed(&self) -> bool {
            self.push("prompts".into())
        }
        async fn resources_changed(&self) -> bool {
            self.push("resources".into())
        }
        async fn resource_updated(&self, uri: String) -> bool {
            self.push(uri)
        }
        async fn subscribed(&self) -> Vec<String> {
            self.subscribed.clone()
        }
    }

    #[tokio::test]
    async fn documents_reach_only_their_subscribers_and_creations_change_the_list() {
        let outlet = Recorder {
            subscribed: vec!["context://a/x".into()],
            ..Recorder::default()
        };
        let created = |uri: &str| Notice::Document {
            uri: uri.into(),
            listed: true,
        };
        assert!(deliver(&outlet, created("context://a/x")).await);
        let updated = Notice::Document {
            uri: "context://a/y".into(),
            listed: false,
        };
        assert!(deliver(&outlet, updated).await);
        assert!(deliver(&outlet, Notice::DocumentsLost).await);
        assert!(deliver(&outlet, Notice::Tools).await);
        assert!(deliver(&outlet, Notice::Prompts).await);
        let heard = outlet.heard.lock().unwrap().clone();
        assert_eq!(
            heard,
            [
                "resources",
                "context://a/x",
                "resources",
                "context://a/x",
                "tools",
                "prompts"
            ]
        );
    }
}
